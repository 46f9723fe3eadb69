package http_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voxanne/voxanne/auth/password"
	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/internal/testenv"
)

// stalledRequest sends a request on a raw connection whose receive buffer is
// tiny and never reads the answer: a client as slow as can be.
func stalledRequest(t *testing.T, e *testenv.Env, path, token string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", path, token)
	return conn
}

// Slow readers of the audit-log export hold no database connection, an org
// runs at most two exports at once, and other orgs' requests and /health go
// on as usual. (Before: each stalled export held a tenant connection inside an
// open transaction; 22 of them starved every tenant.)
func TestSlowExportReadersStarveNoOne(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	a, b := e.SignUp("exporter@example.com"), e.SignUp("bystander@example.com")
	// A log far larger than any socket buffer: the export must block on the
	// client, not finish.
	if _, err := e.Exec(context.Background(), `insert into audit_log (org_id, action, details, prev_hash, hash)
		select $1, 'bulk.entry', jsonb_build_object('n', g, 'pad', repeat('x', 2000)), '', '' from generate_series(1, 6000) g`, a.OrgID()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		c := stalledRequest(t, e, "/api/org/audit-log/export", a.AccessToken)
		// Wait for the answer to start (the export runs), then stop reading.
		if _, err := c.Read(make([]byte, 64)); err != nil {
			t.Fatal(err)
		}
	}
	// Both exports are in flight: a third of the same org is refused at once.
	third := e.Do("GET", "/api/org/audit-log/export", nil, testenv.Bearer(a.AccessToken)...)
	if third.Status != http.StatusTooManyRequests || third.Header.Get("Retry-After") == "" || third.JSON(t)["code"] != "over_request_rate_limit" {
		t.Fatalf("third export of one org: %d %q %s", third.Status, third.Header.Get("Retry-After"), third.Body[:min(len(third.Body), 200)])
	}
	// While they wait on their readers, no tenant connection is held.
	deadline := time.Now().Add(10 * time.Second)
	held := int32(-1)
	for time.Now().Before(deadline) {
		if held = e.DB.TenantStat().Acquired; held == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if held != 0 {
		t.Fatalf("stalled exports hold %d tenant connections", held)
	}
	// Another org exports and reads at the same time, and /health is fine.
	if r := e.Do("GET", "/api/org/audit-log/export", nil, testenv.Bearer(b.AccessToken)...); r.Status != 200 {
		t.Fatalf("B's export: %d", r.Status)
	}
	for i := range 20 {
		if r := e.Do("GET", "/api/calls", nil, testenv.Bearer(b.AccessToken)...); r.Status != 200 {
			t.Fatalf("B's request %d: %d", i, r.Status)
		}
	}
	if r := e.Do("GET", "/health", nil); r.Status != 200 {
		t.Fatalf("/health: %d %s", r.Status, r.Body)
	}
}

// A complete export is every entry, in order, across page boundaries.
func TestExportCrossesPages(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	a := e.SignUp("pages@example.com")
	if _, err := e.Exec(context.Background(), `insert into audit_log (org_id, action, prev_hash, hash)
		select $1, 'bulk.entry', '', '' from generate_series(1, 1234)`, a.OrgID()); err != nil {
		t.Fatal(err)
	}
	r := e.Do("GET", "/api/org/audit-log/export", nil, testenv.Bearer(a.AccessToken)...)
	if r.Status != 200 {
		t.Fatalf("export: %d", r.Status)
	}
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if !strings.Contains(sc.Text(), fmt.Sprintf(`"seq":%d,`, n)) {
			t.Fatalf("line %d: %s", n, sc.Text())
		}
	}
	var want int
	if err := e.QueryRow(context.Background(), `select count(*) from audit_log where org_id = $1`, a.OrgID()).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if n != want || n < 1234 {
		t.Fatalf("exported %d of %d entries", n, want)
	}
}

// Made-up methods and paths cannot grow /metrics: they are counted as "other"
// and the catch-all route.
func TestMetricsLabelsBounded(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	send := func(from, to int) {
		for i := from; i < to; i++ {
			req, err := http.NewRequest(fmt.Sprintf("M%dX", i), e.URL+fmt.Sprintf("/made/up/%d", i), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	size := func() int {
		body := string(e.Do("GET", "/metrics", nil).Body)
		n := 0
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "voxanne_http_request_duration_seconds_bucket") {
				n++
			}
		}
		return n
	}
	send(0, 10)
	size() // /metrics itself is counted from its first answer on
	before := size()
	send(10, 2000)
	if after := size(); after != before {
		t.Fatalf("request histogram series grew from %d to %d", before, after)
	}
	if body := string(e.Do("GET", "/metrics", nil).Body); strings.Contains(body, "M1999X") || strings.Contains(body, "/made/up") {
		t.Fatal("made-up method or path in /metrics")
	}
}

// Free-text filters and search are bounded; the header block is 64 KiB.
func TestInputSizeLimits(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("limits@example.com")
	long := strings.Repeat("é", 257)
	for _, path := range []string{"/api/calls?q=" + long, "/api/calls?status=" + long, "/api/org/audit-log?action=" + long} {
		r := e.Do("GET", path, nil, testenv.Bearer(s.AccessToken)...)
		if r.Status != 400 || r.JSON(t)["code"] != "validation_failed" {
			t.Errorf("%.40s…: %d %s", path, r.Status, r.Body)
		}
	}
	if r := e.Do("GET", "/api/calls?q="+strings.Repeat("é", 256), nil, testenv.Bearer(s.AccessToken)...); r.Status != 200 {
		t.Errorf("256 characters: %d %s", r.Status, r.Body)
	}
	// net/http enforces the limit with some slack: well past 64 KiB, refused
	// (the default would take 1 MiB).
	req, _ := http.NewRequest("GET", e.URL+"/health", nil)
	req.Header.Set("X-Padding", strings.Repeat("p", 128<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("128 KiB of headers: %d", resp.StatusCode)
	}
}

// Password hashing is bounded: past a short wait, sign-ins answer 429 with
// Retry-After — for accounts that exist and ones that don't alike — and never
// a 500.
func TestPasswordHashingBusyAnswers429(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	e.SignUp("busy@example.com")
	defer func(w time.Duration) { password.MaxWait = w }(password.MaxWait)
	password.MaxWait = time.Millisecond
	type result struct {
		known  bool
		status int
		retry  string
	}
	results := make(chan result, 40)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			email := fmt.Sprintf("nobody-%d@example.com", i)
			if i%2 == 0 {
				email = "busy@example.com"
			}
			r := e.Do("POST", "/auth/v1/token?grant_type=password", map[string]any{"email": email, "password": "wrong-password-123"})
			results <- result{i%2 == 0, r.Status, r.Header.Get("Retry-After")}
		})
	}
	wg.Wait()
	close(results)
	busy := map[bool]int{}
	for r := range results {
		switch {
		case r.status == http.StatusTooManyRequests && r.retry != "":
			busy[r.known]++
		case r.status == http.StatusBadRequest:
		default:
			t.Errorf("known=%v: %d (Retry-After %q)", r.known, r.status, r.retry)
		}
	}
	if busy[true] == 0 || busy[false] == 0 {
		t.Fatalf("no 429 under a burst with a 1 ms wait: %v", busy)
	}
}

// user_metadata is at most 4 KiB, at sign-up and after every merge, so no
// account can make its own tokens unusable; a refused update changes nothing.
func TestUserMetadataBounded(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	big := map[string]any{"bio": strings.Repeat("b", 5000)}
	r := e.Do("POST", "/auth/v1/signup", map[string]any{"email": "meta@example.com", "password": "a-long-password-1", "data": big})
	if r.Status != 400 || r.JSON(t)["error_code"] != "validation_failed" {
		t.Fatalf("sign-up with 5 KB of metadata: %d %s", r.Status, r.Body)
	}
	var n int
	if err := e.QueryRow(context.Background(), `select count(*) from auth.users where email = 'meta@example.com'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused sign-up left %d users (%v)", n, err)
	}
	s := e.SignUp("meta@example.com")
	put := func(data map[string]any) *testenv.Response {
		return e.Do("PUT", "/auth/v1/user", map[string]any{"data": data}, testenv.Bearer(s.AccessToken)...)
	}
	if r := put(map[string]any{"a": strings.Repeat("a", 3000)}); r.Status != 200 {
		t.Fatalf("3 KB: %d %s", r.Status, r.Body)
	}
	if r := put(map[string]any{"b": strings.Repeat("b", 3000)}); r.Status != 400 {
		t.Fatalf("merged past 4 KB: %d %s", r.Status, r.Body)
	}
	var meta string
	if err := e.QueryRow(context.Background(), `select raw_user_meta_data::text from auth.users where email = 'meta@example.com'`).Scan(&meta); err != nil || strings.Contains(meta, `"b"`) {
		t.Fatalf("refused update was written: %.80s %v", meta, err)
	}
	op, err := e.Auth.ServiceRoleToken(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.Do("POST", "/auth/v1/admin/users", map[string]any{"email": "meta2@example.com", "user_metadata": big}, testenv.Bearer(op)...); r.Status != 400 {
		t.Fatalf("admin create with 5 KB: %d %s", r.Status, r.Body)
	}
}

// Password changes and org switches are limited per user (each costs a hash
// or a new session); another user is not affected.
func TestPerUserLimits(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{RateLimits: &voxhttp.RateLimits{
		PasswordChange: voxhttp.Rate{N: 2, Per: time.Hour}, OrgSwitch: voxhttp.Rate{N: 3, Per: time.Hour}}})
	a, b := e.SignUp("changer@example.com"), e.SignUp("other@example.com")
	for i, want := range []int{200, 200, 429} {
		r := e.Do("PUT", "/auth/v1/user", map[string]any{"password": fmt.Sprintf("new-password-%d-x", i)}, testenv.Bearer(a.AccessToken)...)
		if r.Status != want || (want == 429 && r.Header.Get("Retry-After") == "") {
			t.Fatalf("password change %d: %d %s", i, r.Status, r.Body)
		}
	}
	// Metadata-only updates are not password changes.
	if r := e.Do("PUT", "/auth/v1/user", map[string]any{"data": map[string]any{"k": "v"}}, testenv.Bearer(a.AccessToken)...); r.Status != 200 {
		t.Fatalf("metadata update: %d %s", r.Status, r.Body)
	}
	if r := e.Do("PUT", "/auth/v1/user", map[string]any{"password": "b-new-password-1"}, testenv.Bearer(b.AccessToken)...); r.Status != 200 {
		t.Fatalf("another user's change: %d %s", r.Status, r.Body)
	}
	tok := b.AccessToken
	for i, want := range []int{200, 200, 200, 429} {
		r := e.Do("POST", "/api/orgs/"+b.OrgID()+"/switch", nil, testenv.Bearer(tok)...)
		if r.Status != want {
			t.Fatalf("switch %d: %d %s", i, r.Status, r.Body)
		}
		if want == 200 {
			tok, _ = r.JSON(t)["access_token"].(string)
		}
	}
}
