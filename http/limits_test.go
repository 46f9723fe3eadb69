package http_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

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
	if _, err := e.DB.Owner.Exec(context.Background(), `insert into audit_log (org_id, action, details, prev_hash, hash)
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
		if held = e.DB.Tenant.Stat().AcquiredConns(); held == 0 {
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
	e := testenv.New(t, testenv.Options{})
	a := e.SignUp("pages@example.com")
	if _, err := e.DB.Owner.Exec(context.Background(), `insert into audit_log (org_id, action, prev_hash, hash)
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
	if err := e.DB.Owner.QueryRow(context.Background(), `select count(*) from audit_log where org_id = $1`, a.OrgID()).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if n != want || n < 1234 {
		t.Fatalf("exported %d of %d entries", n, want)
	}
}

// Made-up methods and paths cannot grow /metrics: they are counted as "other"
// and the catch-all route.
func TestMetricsLabelsBounded(t *testing.T) {
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
