package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
)

// fakeVoxanne mimics the parts of Voxanne that "voxbench auth" touches:
// sign-up, password sign-in and one bearer-protected /api route.
type fakeVoxanne struct {
	mu        sync.Mutex
	passwords map[string]string // email -> password
	orgNames  map[string]string // email -> requested org name
	tokens    map[string]int    // issued token -> times used
	signIns   int
	refreshes int
	refresh   map[string]bool // issued refresh token -> spent
	failWith  int             // if non-zero, sign-up answers with this status
}

func newFake() *fakeVoxanne {
	return &fakeVoxanne{passwords: map[string]string{}, orgNames: map[string]string{}, tokens: map[string]int{}, refresh: map[string]bool{}}
}

func (f *fakeVoxanne) session(w http.ResponseWriter, tok string) {
	f.tokens[tok] = 0
	f.refresh["r-"+tok] = false
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token": %q, "token_type": "bearer", "expires_in": 3600, "refresh_token": %q, "user": {}}`, tok, "r-"+tok)
}

func (f *fakeVoxanne) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/v1/signup", func(w http.ResponseWriter, r *http.Request) {
		if f.failWith != 0 {
			w.WriteHeader(f.failWith)
			fmt.Fprint(w, `{"code":"over_request_rate_limit","message":"slow down"}`)
			return
		}
		var in struct {
			Email    string            `json:"email"`
			Password string            `json:"password"`
			Data     map[string]string `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !strings.HasSuffix(in.Email, "@example.com") || len(in.Password) < 8 {
			http.Error(w, `{"code":"validation_failed"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, dup := f.passwords[in.Email]; dup {
			http.Error(w, `{"code":"user_already_exists"}`, http.StatusUnprocessableEntity)
			return
		}
		f.passwords[in.Email] = in.Password
		f.orgNames[in.Email] = in.Data["org_name"]
		f.session(w, fmt.Sprintf("t%d", len(f.passwords)-1))
	})
	mux.HandleFunc("POST /auth/v1/token", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Email, Password string
			RefreshToken    string `json:"refresh_token"`
		}
		if r.URL.Query().Get("grant_type") == "refresh_token" && json.NewDecoder(r.Body).Decode(&in) == nil {
			// Every refresh token is single-use, as Voxanne's are.
			f.mu.Lock()
			defer f.mu.Unlock()
			if spent, ok := f.refresh[in.RefreshToken]; !ok || spent {
				http.Error(w, `{"code":"refresh_token_already_used"}`, http.StatusBadRequest)
				return
			}
			f.refresh[in.RefreshToken] = true
			f.refreshes++
			f.session(w, fmt.Sprintf("f%d", f.refreshes))
			return
		}
		if r.URL.Query().Get("grant_type") != "password" || json.NewDecoder(r.Body).Decode(&in) != nil {
			http.Error(w, `{"code":"validation_failed"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if pw, ok := f.passwords[in.Email]; !ok || pw != in.Password {
			http.Error(w, `{"code":"invalid_credentials"}`, http.StatusBadRequest)
			return
		}
		f.signIns++
		f.session(w, fmt.Sprintf("s%d", f.signIns))
	})
	mux.HandleFunc("GET /api/session", func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		_, known := f.tokens[tok]
		if known {
			f.tokens[tok]++
		}
		f.mu.Unlock()
		if !ok || !known {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, `{"code":"bad_jwt","message":"invalid token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok": true}`)
	})
	return mux
}

func runVoxbench(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func decodeReport(t *testing.T, stdout string) authReport {
	t.Helper()
	var rep authReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	return rep
}

func TestAuthEndToEnd(t *testing.T) {
	fake := newFake()
	srv := httptest.NewServer(fake.handler())
	defer srv.Close()

	code, stdout, stderr := runVoxbench(t, "auth", "--url", srv.URL, "--duration", "1s", "--warmup", "0",
		"--users", "5", "--concurrency", "4", "--orgs", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	rep := decodeReport(t, stdout)
	if rep.Requests <= 0 {
		t.Errorf("requests = %d, want > 0", rep.Requests)
	}
	if rep.Failed != 0 || rep.TransportErrors != 0 || len(rep.ErrorsByStatus) != 0 {
		t.Errorf("errors: failed %d, transport %d, by status %v\n%s", rep.Failed, rep.TransportErrors, rep.ErrorsByStatus, stderr)
	}
	if rep.Samples != rep.Requests || rep.Latency.Max <= 0 || rep.Latency.P50 > rep.Latency.P99 {
		t.Errorf("latency: %+v over %d samples", rep.Latency, rep.Samples)
	}
	if rep.DurationSeconds < 1 || rep.DurationSeconds > 3 {
		t.Errorf("duration = %vs, want about 1s", rep.DurationSeconds)
	}
	if rep.Users != 5 || rep.Orgs != 5 || rep.StoppedEarly != "" {
		t.Errorf("report header: %+v", rep)
	}

	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.passwords) != 5 {
		t.Errorf("server saw %d sign-ups, want 5", len(fake.passwords))
	}
	for email, org := range fake.orgNames {
		var i int
		if _, err := fmt.Sscanf(email[strings.LastIndex(email, "-")+1:], "%d@", &i); err != nil {
			t.Fatalf("email %q: %v", email, err)
		}
		if want := fmt.Sprintf("Bench org %d", i%2); org != want {
			t.Errorf("%s asked for org %q, want %q", email, org, want)
		}
	}
	// Round-robin: every user's token was used.
	for tok, uses := range fake.tokens {
		if uses == 0 {
			t.Errorf("token %s never used", tok)
		}
	}
	// The text report, on stderr because of --json, has the promised lines.
	for _, want := range []string{"orgs:         5 (one per user; memberships across orgs need the organizations API)", "requests/s:", "p99.9:", "max:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("text report lacks %q:\n%s", want, stderr)
		}
	}
}

func TestAuthFreshTokens(t *testing.T) {
	fake := newFake()
	srv := httptest.NewServer(fake.handler())
	defer srv.Close()

	// A warm-up, to check that it does not eat into the pool.
	code, stdout, stderr := runVoxbench(t, "auth", "--url", srv.URL, "--duration", "10s", "--warmup", "200ms",
		"--users", "5", "--concurrency", "4", "--fresh-tokens", "--pool", "40", "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	rep := decodeReport(t, stdout)
	if rep.StoppedEarly != "exhausted" || rep.Requests != 40 || rep.Failed != 0 {
		t.Errorf("want 40 requests, no errors, stopped early on the empty pool; got %d requests, %d failed, stopped %q",
			rep.Requests, rep.Failed, rep.StoppedEarly)
	}
	if rep.Pool != 40 || rep.SignIns != 40 {
		t.Errorf("pool %d from %d sign-ins, want 40 from 40", rep.Pool, rep.SignIns)
	}
	if rep.WarmupRequests == 0 {
		t.Errorf("no warm-up requests")
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.signIns != 40 {
		t.Errorf("server saw %d sign-ins, want 40", fake.signIns)
	}
	// Every pool token (s1..s40) was used exactly once; only the sign-up
	// tokens (t0..t4) were reused, by the warm-up.
	for tok, uses := range fake.tokens {
		if strings.HasPrefix(tok, "s") && uses != 1 {
			t.Errorf("pool token %s used %d times, want once", tok, uses)
		}
	}
}

func TestAuthSetupFailure(t *testing.T) {
	fake := newFake()
	fake.failWith = http.StatusTooManyRequests
	srv := httptest.NewServer(fake.handler())
	defer srv.Close()

	code, _, stderr := runVoxbench(t, "auth", "--url", srv.URL, "--users", "3", "--duration", "1s")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"HTTP 429", "slow down", "VOXANNE_RATE_LIMIT_SIGN_IN=100000/1m"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestAuthCountsErrors(t *testing.T) {
	// A route that rejects every token: the run must report 401s and fail.
	fake := newFake()
	srv := httptest.NewServer(fake.handler())
	defer srv.Close()
	code, stdout, _ := runVoxbench(t, "auth", "--url", srv.URL, "--duration", "300ms", "--warmup", "0",
		"--users", "2", "--concurrency", "2", "--path", "/api/nope", "--json")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	rep := decodeReport(t, stdout)
	if rep.Requests == 0 || rep.ErrorsByStatus[404] != rep.Requests {
		t.Errorf("want every request counted as 404: %+v", rep.summary)
	}
}

func TestUsage(t *testing.T) {
	code, _, stderr := runVoxbench(t, "auth", "--url", "http://10.0.0.1:8080")
	if code != 2 || !strings.Contains(stderr, "not a loopback address") {
		t.Errorf("remote --url: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runVoxbench(t, "auth", "--duration", "11m")
	if code != 2 || !strings.Contains(stderr, "--duration") {
		t.Errorf("--duration 11m: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runVoxbench(t, "auth", "--pool", "10")
	if code != 2 || !strings.Contains(stderr, "--fresh-tokens") {
		t.Errorf("--pool without --fresh-tokens: exit %d, stderr %q", code, stderr)
	}
	code, stdout, _ := runVoxbench(t, "auth", "--help")
	if code != 0 {
		t.Errorf("--help: exit %d", code)
	}
	for _, f := range []string{"--url", "--users", "--orgs", "--concurrency", "--duration", "--path", "--warmup", "--fresh-tokens", "--pool", "--json"} {
		if !strings.Contains(stdout, "  "+f) {
			t.Errorf("--help does not explain %s", f)
		}
	}
	code, _, stderr = runVoxbench(t, "ingest", "--rate", "-1")
	if code != 2 || !strings.Contains(stderr, "--rate") {
		t.Errorf("ingest --rate -1: exit %d, stderr %q", code, stderr)
	}
	code, stdout, _ = runVoxbench(t, "--help")
	if code != 0 || !strings.Contains(stdout, "voxbench auth [flags]") || !strings.Contains(stdout, "voxbench ingest [flags]") {
		t.Errorf("voxbench --help: exit %d\n%s", code, stdout)
	}
	if code, _, _ := runVoxbench(t, "bogus"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
}

// Each POST mode loads its own endpoint, every refresh token is spent once
// (the fake refuses a second use, which would show as errors), and the report
// carries the server's CPU and memory: the fake runs in this process, which
// /proc finds by its listening port.
func TestAuthPostModes(t *testing.T) {
	for _, mode := range []string{modeRefresh, modePassword, modeSignup} {
		t.Run(mode, func(t *testing.T) {
			fake := newFake()
			srv := httptest.NewServer(fake.handler())
			defer srv.Close()
			code, stdout, stderr := runVoxbench(t, "auth", "--mode", mode, "--url", srv.URL, "--duration", "500ms",
				"--warmup", "0", "--users", "6", "--concurrency", "3", "--json")
			if code != 0 {
				t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
			}
			rep := decodeReport(t, stdout)
			if rep.Load != mode || rep.Requests == 0 || rep.Failed != 0 {
				t.Fatalf("load %q: %d requests, %d failed: %v", rep.Load, rep.Requests, rep.Failed, rep.ErrorBodies)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			switch mode {
			case modeRefresh:
				if fake.refreshes != rep.Requests {
					t.Errorf("server saw %d refreshes, report %d requests", fake.refreshes, rep.Requests)
				}
			case modePassword:
				if fake.signIns != rep.Requests {
					t.Errorf("server saw %d sign-ins, report %d requests", fake.signIns, rep.Requests)
				}
			case modeSignup:
				if len(fake.passwords) != rep.Requests || rep.Users != 0 {
					t.Errorf("server saw %d sign-ups, report %d requests and %d set-up users", len(fake.passwords), rep.Requests, rep.Users)
				}
			}
			if r := rep.Resources; r.Note != "" || r.ServerPID != os.Getpid() || r.ServerRSSMBPeak <= 0 || r.ServerCPUSeconds < 0 {
				t.Errorf("resources: %+v", r)
			}
		})
	}
}

func TestAuthModeFlagsChecked(t *testing.T) {
	for _, args := range [][]string{
		{"--mode", "delete"},
		{"--mode", "refresh", "--users", "4", "--concurrency", "4"},
		{"--mode", "password", "--path", "/api/me"},
		{"--mode", "signup", "--fresh-tokens"},
	} {
		if code, _, stderr := runVoxbench(t, append([]string{"auth"}, args...)...); code != 2 || !strings.Contains(stderr, "--") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
