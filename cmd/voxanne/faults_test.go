package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/webhook"
)

// tenant is a signed-up user with an org and the org's own Vapi endpoint.
type tenant struct {
	token, endpoint, secret string
}

func newTenant(t *testing.T, url, email string) tenant {
	t.Helper()
	var s struct {
		AccessToken string `json:"access_token"`
	}
	if code := doJSON(t, "POST", url+"/auth/v1/signup", "", map[string]any{"email": email, "password": "Vx-correct-horse-battery-9",
		"data": map[string]any{"org_name": "Faults " + email}}, &s); code != 200 {
		t.Fatalf("sign up: %d", code)
	}
	var ep struct{ URL, Secret string }
	if code := doJSON(t, "POST", url+"/api/org/webhook-endpoints", s.AccessToken, map[string]any{"provider": "vapi"}, &ep); code != 201 {
		t.Fatalf("create endpoint: %d", code)
	}
	return tenant{token: s.AccessToken, endpoint: ep.URL, secret: ep.Secret}
}

func doJSON(t *testing.T, method, url, token string, body, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// load drives a server from several clients at once until stop is closed:
// authenticated reads of the database (GET /api/me) and end-of-call reports to
// the tenant's endpoint, each call new. It records every answer.
type load struct {
	mu       sync.Mutex
	statuses map[int]int
	acked    []string // call ids whose report was answered 200
	bad      []string // answers that are neither 200 nor 503 with Retry-After
	// latencies of 503 answers, and when each request started and ended
	unavailable []time.Duration
	requests    []span
}

type span struct {
	start, end time.Time
	status     int
}

func runLoad(t *testing.T, url string, tn tenant, clients int, stop chan struct{}) (*load, *sync.WaitGroup) {
	l := &load{statuses: map[int]int{}}
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 60 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var req *http.Request
				callID := ""
				if i%2 == 0 {
					req, _ = http.NewRequest("GET", url+"/api/me", nil)
					req.Header.Set("Authorization", "Bearer "+tn.token)
				} else {
					callID = fmt.Sprintf("fault-%d-%d-%d", c, i, time.Now().UnixNano())
					body, _ := json.Marshal(map[string]any{"message": map[string]any{
						"type": "end-of-call-report", "endedReason": "customer-ended-call",
						"call":     map[string]any{"id": callID, "type": "inboundPhoneCall", "customer": map[string]any{"number": "+14155551234"}},
						"artifact": map[string]any{"transcript": "AI: Hello. User: Bye."},
					}})
					ts := strconv.FormatInt(time.Now().Unix(), 10)
					req, _ = http.NewRequest("POST", tn.endpoint, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("X-Timestamp", ts)
					req.Header.Set("X-Signature", webhook.SignVapi(tn.secret, ts, body))
				}
				start := time.Now()
				resp, err := client.Do(req)
				end := time.Now()
				if err != nil {
					l.record(span{start, end, 0}, "", fmt.Sprintf("%s %s: %v", req.Method, req.URL.Path, err))
					time.Sleep(50 * time.Millisecond)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				problem := ""
				switch {
				case resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "":
				case resp.StatusCode == 200:
				default:
					problem = fmt.Sprintf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, body)
				}
				acked := ""
				if resp.StatusCode == 200 && callID != "" {
					acked = callID
				}
				l.record(span{start, end, resp.StatusCode}, acked, problem)
			}
		}()
	}
	return l, &wg
}

func (l *load) record(s span, acked, problem string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[s.status]++
	l.requests = append(l.requests, s)
	if acked != "" {
		l.acked = append(l.acked, acked)
	}
	if problem != "" && len(l.bad) < 20 {
		l.bad = append(l.bad, problem)
	}
	if s.status == 503 {
		l.unavailable = append(l.unavailable, s.end.Sub(s.start))
	}
}

// waitHealthy polls /health until it answers 200.
func waitHealthy(t *testing.T, url string, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	t.Fatalf("/health not back to 200 within %s", within)
}

// callIDs returns the provider call ids of the tenant's calls.
func callIDs(t *testing.T, url string, tn tenant) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	cursor := ""
	for {
		var page struct {
			Data []struct {
				ProviderCallID string `json:"provider_call_id"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		if code := doJSON(t, "GET", url+"/api/calls?limit=100"+cursor, tn.token, nil, &page); code != 200 {
			t.Fatalf("list calls: %d", code)
		}
		for _, c := range page.Data {
			ids[c.ProviderCallID] = true
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			return ids
		}
		cursor = "&cursor=" + *page.NextCursor
	}
}

// waitProcessed waits until every acknowledged call is in the tenant's calls.
func waitProcessed(t *testing.T, url string, tn tenant, acked []string) {
	t.Helper()
	var missing []string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		have := callIDs(t, url, tn)
		missing = missing[:0]
		for _, id := range acked {
			if !have[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return
		}
	}
	t.Fatalf("%d of %d acknowledged events never processed, e.g. %v", len(missing), len(acked), missing[:min(3, len(missing))])
}

// serverFigures reads the server's goroutines (from /metrics) and its open
// sockets (from /proc); -1 when /metrics does not answer.
func serverFigures(url string, pid int) (goroutines, sockets int) {
	goroutines = -1
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get(url + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
				goroutines, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return goroutines, sockets
}

// postgresProcesses returns the postmaster and its children.
func postgresProcesses(t *testing.T, postmaster int) []int {
	t.Helper()
	pids := []int{postmaster}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(postmaster) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// serve supervises its cluster: PostgreSQL killed with SIGKILL while requests
// flow is restarted by itself, /health comes back to 200 by itself, nothing
// answers 500 meanwhile (an outage is 503 with Retry-After), and every event
// acknowledged before, during or after is processed.
func TestServeSupervisesItsCluster(t *testing.T) {
	t.Parallel()
	dataDir := testdb.ServerDir(t)
	env := []string{"VOXANNE_DATA_DIR=" + dataDir, "DATABASE_URL=", "VOXANNE_LOG_FORMAT=json"}
	cmd, url, logs := startServe(t, env, 30*time.Second)
	tn := newTenant(t, url, "supervised@example.com")

	stop := make(chan struct{})
	l, wg := runLoad(t, url, tn, 4, stop)
	time.Sleep(time.Second)
	killed := postmasterPID(t, dataDir)
	if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if pid, err := os.ReadFile(filepath.Join(dataDir, "postgres", "postmaster.pid")); err == nil &&
			!strings.HasPrefix(string(pid), strconv.Itoa(killed)+"\n") && strings.Contains(logs.String(), "managed postgres restarted") {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("PostgreSQL not restarted:\n%s", logs)
		}
	}
	waitHealthy(t, url, 60*time.Second)
	healthyAfter := time.Since(killedAt)
	time.Sleep(time.Second) // load on the restarted cluster too
	close(stop)
	wg.Wait()

	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("answers %v; /health 200 again %s after the SIGKILL; 503s answered in median %s", l.statuses, healthyAfter.Round(time.Millisecond), median(l.unavailable).Round(time.Millisecond))
	if len(l.bad) > 0 {
		t.Errorf("answers other than 200 or 503 with Retry-After: %q", l.bad)
	}
	if len(l.acked) == 0 {
		t.Fatal("no event acknowledged")
	}
	waitProcessed(t, url, tn, l.acked)
	stopAndCheckNoPostgres(t, cmd, postmasterPID(t, dataDir), logs)
}

// While PostgreSQL hangs (its processes stopped with SIGSTOP for 15 s),
// requests end within their deadline (3 s here) with 503 and Retry-After, while
// it still hangs, and the server's goroutines and sockets stay bounded; after
// SIGCONT everything works again and the figures come back down. The figures
// before, during (peak) and after are logged.
func TestHungDatabaseAnswers503WithinTheDeadline(t *testing.T) {
	t.Parallel()
	dataDir := testdb.ServerDir(t)
	const clients, deadline, stall = 16, 3 * time.Second, 15 * time.Second
	env := []string{"VOXANNE_DATA_DIR=" + dataDir, "DATABASE_URL=", "VOXANNE_LOG_FORMAT=json",
		"VOXANNE_REQUEST_TIMEOUT=" + strconv.Itoa(int(deadline.Seconds()))}
	cmd, url, logs := startServe(t, env, 30*time.Second)
	tn := newTenant(t, url, "hung@example.com")
	pid := cmd.Process.Pid

	// Warm: the token cached, the pools filled by a short load.
	warm := make(chan struct{})
	wl, wwg := runLoad(t, url, tn, clients, warm)
	time.Sleep(2 * time.Second)
	close(warm)
	wwg.Wait()
	if len(wl.bad) > 0 {
		t.Fatalf("before the stall: %q", wl.bad)
	}
	g0, s0 := serverFigures(url, pid)

	procs := postgresProcesses(t, postmasterPID(t, dataDir))
	for _, p := range procs {
		_ = syscall.Kill(p, syscall.SIGSTOP)
	}
	stoppedAt := time.Now()
	cont := func() {
		for _, p := range procs {
			_ = syscall.Kill(p, syscall.SIGCONT)
		}
	}
	defer cont()
	stop := make(chan struct{})
	l, wg := runLoad(t, url, tn, clients, stop)
	gMax, sMax := g0, s0
	// Requests start for the first 8 s: the last ones have a deadline and
	// as much again before the database resumes.
	for time.Since(stoppedAt) < stall-2*deadline-time.Second {
		time.Sleep(250 * time.Millisecond)
		g, s := serverFigures(url, pid)
		gMax, sMax = max(gMax, g), max(sMax, s)
	}
	close(stop)
	// The clients' last requests end by themselves, before SIGCONT.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stall - time.Since(stoppedAt)):
		t.Error("requests still waiting on the stopped database when it resumed")
	}
	for time.Since(stoppedAt) < stall {
		time.Sleep(100 * time.Millisecond)
	}
	contAt := time.Now()
	cont()
	<-done

	waitHealthy(t, url, 60*time.Second)
	var g1, s1 int
	for until := time.Now().Add(30 * time.Second); time.Now().Before(until); time.Sleep(500 * time.Millisecond) {
		if g1, s1 = serverFigures(url, pid); g1 >= 0 && g1 <= g0+20 {
			break
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("deadline %s, %d clients, PostgreSQL stopped %s: answers %v; 503 latency median %s",
		deadline, clients, stall, l.statuses, median(l.unavailable).Round(time.Millisecond))
	t.Logf("goroutines before %d, during (peak) %d, after %d; sockets before %d, during (peak) %d, after %d", g0, gMax, g1, s0, sMax, s1)

	if len(l.bad) > 0 {
		t.Errorf("answers other than 200 or 503 with Retry-After: %q", l.bad)
	}
	if l.statuses[503] == 0 {
		t.Error("no request answered 503 while the database hung")
	}
	// Every request ended while PostgreSQL was still stopped: none waited for
	// it. (Ordering, not timing: the deadline is a fifth of the stall.)
	for _, r := range l.requests {
		if r.end.After(contAt) {
			t.Errorf("a request from %s ended after the database resumed (status %d)", r.start.Sub(stoppedAt).Round(time.Millisecond), r.status)
			break
		}
	}
	// Bounded: a few goroutines and a socket per client and per pooled
	// connection (at most 60 connections, each made within 5 s).
	if gMax < 0 || gMax > g0+10*clients {
		t.Errorf("goroutines: %d before, %d during", g0, gMax)
	}
	if sMax > s0+6*clients {
		t.Errorf("sockets: %d before, %d during", s0, sMax)
	}
	if g1 < 0 || g1 > g0+20 {
		t.Errorf("goroutines after: %d (before %d)", g1, g0)
	}
	var ok struct{}
	if code := doJSON(t, "GET", url+"/api/me", tn.token, nil, &ok); code != 200 {
		t.Errorf("after the stall: /api/me %d", code)
	}
	stopAndCheckNoPostgres(t, cmd, postmasterPID(t, dataDir), logs)
}
