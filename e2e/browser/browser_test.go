// Package browser_test drives the dashboard in a real headless Chromium
// (Debian's chromium, through chromedp) against the real binary (`voxanne
// serve`, built once per run) on a real PostgreSQL: the seed's twelve manual
// scenarios as named tests, the screenshots of every page at desktop and
// phone widths, and the performance figures (logged, not asserted). An
// in-process instance of the same assembly (internal/testenv) on the same
// database seeds it; the browser and every API check talk to the binary only.
//
// The tests are skipped under `go test -short` only; without a browser they
// fail, so that CI cannot pass them by accident.
package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/voxanne/voxanne/internal/testbin"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/internal/testsmtp"
	"github.com/voxanne/voxanne/web/webtest"
)

var (
	// binary is the built `voxanne` command.
	binary        string
	browserOnce   sync.Once
	browserCtx    context.Context
	browserErr    error
	stopBrowser   = func() {}
	browserTmpDir string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test here drives the browser: no database cluster to start.
		os.Exit(m.Run())
	}
	bin, remove, err := testbin.Build("../../cmd/voxanne")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = bin
	code := testdb.Main(m)
	remove()
	stopBrowser()
	if browserTmpDir != "" {
		os.RemoveAll(browserTmpDir)
	}
	os.Exit(code)
}

// chromiumPath finds the browser: $VOXANNE_CHROMIUM, else Debian's chromium.
func chromiumPath() (string, error) {
	if p := os.Getenv("VOXANNE_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium found: install it (apt-get install chromium) or set VOXANNE_CHROMIUM")
}

// browser returns the one shared headless browser, starting it on first use.
func browser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests are skipped under -short")
	}
	browserOnce.Do(func() {
		path, err := chromiumPath()
		if err != nil {
			browserErr = err
			return
		}
		browserTmpDir, err = os.MkdirTemp("", "voxanne-chromium-")
		if err != nil {
			browserErr = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
			chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
			chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true), chromedp.UserDataDir(browserTmpDir), chromedp.WindowSize(1280, 900))
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(alloc)
		if err := chromedp.Do(ctx); err != nil {
			cancelCtx()
			cancelAlloc()
			browserErr = fmt.Errorf("start %s: %w", path, err)
			return
		}
		browserCtx = ctx
		stopBrowser = func() { cancelCtx(); cancelAlloc() }
	})
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	return browserCtx
}

// record is what one tab saw: every request, console message and error.
type record struct {
	mu        sync.Mutex
	requests  []*network.Request
	documents []string
	console   []string
	statuses  map[string]int64
}

func (r *record) add(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		r.requests = append(r.requests, e.Request)
		if e.Type == network.ResourceTypeDocument {
			r.documents = append(r.documents, e.Request.Method+" "+e.Request.URL)
		}
	case *network.EventResponseReceived:
		r.statuses[e.Response.URL] = e.Response.Status
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			r.console = append(r.console, "console."+string(e.Type)+": "+strings.Join(parts, " "))
		}
	case *runtime.EventExceptionThrown:
		r.console = append(r.console, "exception: "+e.ExceptionDetails.Text)
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
			r.console = append(r.console, "log."+string(e.Entry.Level)+": "+e.Entry.Text+" "+e.Entry.URL)
		}
	}
}

// documentCount is the number of document requests (navigations and
// redirects) so far.
func (r *record) documentCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.documents)
}

func (r *record) docsSince(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.documents[n:]...)
}

// answered reports whether a response to url arrived with status 200.
func (r *record) answered(url string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statuses[url] == 200
}

func (r *record) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.console...)
}

func (r *record) allRequests() []*network.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*network.Request(nil), r.requests...)
}

// tab is a fresh browser context (its own cookies) on the shared browser.
type tab struct {
	t   *testing.T
	ctx context.Context
	rec *record
	srv *server
}

func (s *server) tab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser(t), chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	rec := &record{statuses: map[string]int64{}}
	if err := chromedp.Listen(ctx, rec.add); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	return &tab{t: t, ctx: ctx, rec: rec, srv: s}
}

// open navigates to a path of the server and returns the final HTTP status.
func (b *tab) open(path string) int64 {
	b.t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(b.srv.url+path))
	if err != nil {
		b.t.Fatalf("open %s: %v", path, err)
	}
	if resp == nil {
		return 0
	}
	return resp.Status
}

// path is the current location's path and query.
func (b *tab) path() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatal(err)
	}
	return u.RequestURI()
}

// eval evaluates a JavaScript expression.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// html is the current document's markup.
func (b *tab) html() string {
	b.t.Helper()
	return eval[string](b, "document.documentElement.outerHTML")
}

// text is the current document's visible text.
func (b *tab) text() string {
	b.t.Helper()
	return eval[string](b, "document.body.innerText")
}

// submit clicks the button matching sel and waits for the page it loads.
func (b *tab) submit(sel string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
		b.t.Fatalf("submit %s: %v", sel, err)
	}
}

// fill types value into the input matching sel.
func (b *tab) fill(sel, value string) {
	b.t.Helper()
	eval[chromedp.Void](b, `document.querySelector('`+sel+`').value = ""`)
	if err := chromedp.Do(b.ctx, chromedp.SendKeys(chromedp.CSS(sel), value)); err != nil {
		b.t.Fatalf("fill %s: %v", sel, err)
	}
}

// login signs in through the login form.
func (b *tab) login(email string) {
	b.t.Helper()
	b.open("/login")
	b.fill("#email", email)
	b.fill("#password", testenv.Password)
	b.submit(`form[action="/login"] button[type=submit]`)
}

// cookies returns the browser's cookies for the server (HttpOnly included:
// the DevTools protocol sees what page scripts cannot).
func (b *tab) cookies() []*network.Cookie {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.srv.url + "/"}})
	if err != nil {
		b.t.Fatal(err)
	}
	return res.Cookies
}

// server is the system under test, the built binary at url, with two orgs
// of data that env (an in-process instance on the same database) seeded.
type server struct {
	url                  string
	env                  *testenv.Env
	mail                 *testsmtp.Server
	owner, admin, member *testenv.Session
	ownerB               *testenv.Session
	a, b                 webtest.Fixture
}

func newServer(t *testing.T) *server {
	t.Helper()
	browser(t) // skip or fail before any set-up
	dbURL := testdb.NewDatabase(t)
	e := testenv.New(t, testenv.Options{DB: testdb.Open(t, dbURL)})
	s := &server{env: e, mail: testsmtp.Start(t)}
	s.url = s.serve(t, dbURL)
	s.owner = e.SignUp("owner@alpha.example")
	s.admin = e.AddMember(s.owner, "admin@alpha.example", "admin")
	s.member = e.AddMember(s.owner, "member@alpha.example", "member")
	s.ownerB = e.SignUp("owner@bravo.example")
	s.a = webtest.Seed(t, e, s.owner.OrgID(), "Alpha")
	s.b = webtest.Seed(t, e, s.ownerB.OrgID(), "Bravo")
	seedRealistic(t, e, s.owner.OrgID())
	return s
}

// serve runs `voxanne serve` on the database at dbURL, as production runs it
// (its own address and public URL, mail through SMTP), and waits until it
// answers /health.
func (s *server) serve(t *testing.T, dbURL string) string {
	t.Helper()
	addr := testbin.FreeAddr(t)
	logs := &bytes.Buffer{}
	cmd := exec.Command(binary, "serve", "--addr", addr)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "VOXANNE_PUBLIC_URL=http://"+addr, "VOXANNE_DATA_DIR="+t.TempDir(),
		"VOXANNE_SMTP_URL="+s.mail.URL("", ""), "VOXANNE_MAILER_AUTOCONFIRM=true", "VOXANNE_LOG_FORMAT=json",
		// The scenarios sign in again and again from one address.
		"VOXANNE_RATE_LIMIT_SIGN_IN=1000/1m", "VOXANNE_RATE_LIMIT_RECOVER=1000/1m", "VOXANNE_RATE_LIMIT_EMAIL=1000/1m")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("voxanne serve's log:\n%s", logs)
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(url + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("voxanne serve never became healthy:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// api sends a request to the binary's API (headers are name, value pairs)
// and returns the status and body.
func (s *server) api(t *testing.T, method, path string, body any, headers ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// token signs in through the binary's /auth/v1 and returns the access token
// it issued.
func (s *server) token(t *testing.T, email string) string {
	t.Helper()
	status, body := s.api(t, "POST", "/auth/v1/token?grant_type=password", map[string]string{"email": email, "password": testenv.Password})
	var sess struct {
		AccessToken string `json:"access_token"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &sess) != nil || sess.AccessToken == "" {
		t.Fatalf("sign in %s: %d %s", email, status, body)
	}
	return sess.AccessToken
}

// seedRealistic gives an org a few days of varied calls and texts, so that
// the screenshots show what a clinic sees.
func seedRealistic(t *testing.T, e *testenv.Env, org string) {
	names := []string{"Maria Lopez", "James Chen", "Aisha Patel", "Tom Becker", "Sofia Rossi"}
	reasons := []string{"customer-ended-call", "assistant-ended-call", "silence-timed-out", "voicemail", "customer-ended-call"}
	summaries := []string{"Booked a cleaning for Thursday at 3pm.", "Asked about Saturday opening hours; answered.",
		"Caller did not speak.", "Reached voicemail on a reminder call.", "Moved an appointment to Monday at 11."}
	now := time.Now().UTC()
	for i, name := range names {
		ct := webtest.InsertRow(t, e, "contacts", org, map[string]any{"phone_number": fmt.Sprintf("+1415555%04d", 1001+i),
			"name": name, "call_count": 2, "message_count": 1, "last_seen_at": now.Add(-time.Duration(i) * time.Hour)})
		for j := 0; j < 2; j++ {
			k := (i + j) % len(reasons)
			start := now.Add(-time.Duration(i*7+j*29) * time.Hour)
			webtest.InsertRow(t, e, "calls", org, map[string]any{"contact_id": ct, "from_number": fmt.Sprintf("+1415555%04d", 1001+i),
				"to_number": "+14155550100", "status": "ended", "ended_reason": reasons[k], "summary": summaries[k],
				"transcript": "AI: Thanks for calling Alpha Dental, how can I help? User: " + summaries[k] + " AI: Done, anything else? User: No, thanks.",
				"started_at": start, "created_at": start, "ended_at": start.Add(time.Duration(40+i*30) * time.Second),
				"duration_seconds": float64(40 + i*30), "cost_usd": 0.05 + float64(i)*0.03, "direction": "inbound",
				"success_evaluation": "true", "structured_data": `{"appointment": {"day": "Thursday", "time": "15:00"}}`})
		}
		webtest.InsertRow(t, e, "messages", org, map[string]any{"contact_id": ct, "from_number": fmt.Sprintf("+1415555%04d", 1001+i),
			"to_number": "+14155550199", "body": "Running 10 minutes late, sorry!", "created_at": now.Add(-time.Duration(i*5) * time.Hour)})
	}
	webtest.InsertRow(t, e, "calls", org, map[string]any{"status": "in-progress", "from_number": "+14155559999", "started_at": now, "direction": "inbound"})
}

// appPages are the signed-in pages and their headings.
var appPages = []struct{ path, heading string }{
	{"/overview", "Overview"}, {"/calls", "Calls"}, {"/messages", "Messages"}, {"/contacts", "Contacts"},
	{"/team", "Team"}, {"/settings", "Settings"}, {"/audit", "Audit log"}, {"/account", "Account"},
}

// TestDashboardInBrowser runs the seed's twelve manual scenarios against one
// server and one browser; each scenario is a named subtest with its own
// browser context (cookies).
func TestDashboardInBrowser(t *testing.T) {
	s := newServer(t)

	t.Run("LoginFlowWithoutLoops", func(t *testing.T) {
		b := s.tab(t)
		n := b.rec.documentCount()
		b.open("/calls")
		if got := b.path(); got != "/login?next=%2Fcalls" {
			t.Fatalf("landed on %s", got)
		}
		if docs := b.rec.docsSince(n); len(docs) != 2 {
			t.Errorf("opening /calls signed out took %d document loads: %v", len(docs), docs)
		}
		n = b.rec.documentCount()
		b.fill("#email", "owner@alpha.example")
		b.fill("#password", testenv.Password)
		b.submit(`form[action="/login"] button[type=submit]`)
		if got := b.path(); got != "/calls" {
			t.Fatalf("after sign-in: %s", got)
		}
		if docs := b.rec.docsSince(n); len(docs) != 2 {
			t.Errorf("sign-in took %d document loads: %v", len(docs), docs)
		}
		n = b.rec.documentCount()
		b.open("/login")
		if got := b.path(); got != "/calls" {
			t.Errorf("/login signed in: %s", got)
		}
		b.open("/")
		if got := b.path(); got != "/calls" {
			t.Errorf("/ signed in: %s", got)
		}
		if docs := b.rec.docsSince(n); len(docs) != 4 {
			t.Errorf("/login and / signed in took %d document loads: %v", len(docs), docs)
		}
		// A wrong password stays on the form with a message.
		c := s.tab(t)
		c.open("/login")
		c.fill("#email", "owner@alpha.example")
		c.fill("#password", "wrong-password-123")
		c.submit(`form[action="/login"] button[type=submit]`)
		if got := c.path(); got != "/login" || !strings.Contains(c.text(), "not right") {
			t.Errorf("wrong password: %s", got)
		}
	})

	t.Run("DashboardAccessWithoutLogin", func(t *testing.T) {
		b := s.tab(t)
		for _, p := range append(appPages, struct{ path, heading string }{"/calls/" + s.a.CallID, ""}) {
			b.open(p.path)
			if got := b.path(); got != "/login?next="+url.QueryEscape(p.path) {
				t.Errorf("%s signed out landed on %s", p.path, got)
			}
			if strings.Contains(b.html(), "Alpha") {
				t.Errorf("%s signed out shows tenant data", p.path)
			}
		}
	})

	t.Run("NavigationBetweenProtectedPages", func(t *testing.T) {
		b := s.tab(t)
		b.login("owner@alpha.example")
		for _, p := range appPages {
			b.submit(`nav.nav a[href="` + p.path + `"], .user a[href="` + p.path + `"]`)
			if got := b.path(); got != p.path {
				t.Errorf("link to %s went to %s", p.path, got)
			}
			if h := eval[string](b, `document.querySelector("h1").innerText`); h != p.heading {
				t.Errorf("%s: heading %q", p.path, h)
			}
			if cur := eval[string](b, `(document.querySelector('[aria-current="page"]')||{}).textContent||""`); cur == "" {
				t.Errorf("%s: no navigation entry marked current", p.path)
			}
		}
		b.open("/calls")
		b.submit(`#calls-table tbody a[href="/calls/` + s.a.CallID + `"]`)
		if !strings.HasPrefix(b.path(), "/calls/") || !strings.Contains(b.text(), "Transcript") {
			t.Errorf("call detail: %s", b.path())
		}
		b.submit(`aside a[href^="/contacts/"]`)
		if !strings.HasPrefix(b.path(), "/contacts/") || !strings.Contains(b.text(), "Timeline") {
			t.Errorf("contact page: %s", b.path())
		}
		// Edit the contact through the form.
		b.fill("#notes", "Prefers afternoon appointments.")
		b.submit(`form.stack button[type=submit]`)
		if !strings.Contains(b.path(), "saved=1") || !strings.Contains(b.html(), "Prefers afternoon appointments.") {
			t.Errorf("contact edit: %s", b.path())
		}
		// Keyboard: the skip link is the first focusable element.
		if err := chromedp.Do(b.ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		if got := eval[string](b, `document.activeElement.className`); got != "skip" {
			t.Errorf("first Tab focuses %q, want the skip link", got)
		}
	})

	t.Run("LogoutFlow", func(t *testing.T) {
		b := s.tab(t)
		b.login("owner@alpha.example")
		b.open("/contacts/" + s.a.ContactID)
		if !strings.Contains(b.text(), "Alpha Caller") {
			t.Fatal("contact not shown")
		}
		var old *network.Cookie
		for _, c := range b.cookies() {
			if c.Name == "vx_session" {
				old = c
			}
		}
		if old == nil {
			t.Fatal("no session cookie")
		}
		b.submit(`.user form[action="/logout"] button`)
		if got := b.path(); got != "/login" {
			t.Fatalf("after sign-out: %s", got)
		}
		for _, c := range b.cookies() {
			if c.Name == "vx_session" {
				t.Error("the session cookie survived sign-out")
			}
		}
		// The back button shows no tenant data: the page is not cached and
		// the server sends the browser to sign in.
		if _, err := chromedp.Run(b.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.NavigateBack())); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.html(), "Alpha") || !strings.HasPrefix(b.path(), "/login") {
			t.Errorf("back after sign-out shows %s with tenant data: %v", b.path(), strings.Contains(b.html(), "Alpha"))
		}
		// The old cookie, put back, is dead.
		if _, err := chromedp.Call(b.ctx, network.SetCookie, network.SetCookieParams{Name: "vx_session", Value: old.Value,
			URL: s.url + "/", Path: "/", HTTPOnly: new(true)}); err != nil {
			t.Fatal(err)
		}
		b.open("/calls")
		if got := b.path(); got != "/login?next=%2Fcalls" {
			t.Errorf("old cookie after sign-out reached %s", got)
		}
	})

	t.Run("OrganizationIsolation", func(t *testing.T) {
		b := s.tab(t)
		b.login("owner@bravo.example")
		for _, p := range []string{"/overview", "/calls", "/calls?q=Alpha", "/messages", "/contacts", "/team", "/settings", "/audit"} {
			b.open(p)
			html := b.html()
			for _, secret := range s.a.Secrets {
				if strings.Contains(html, secret) {
					t.Errorf("org B's %s shows org A's %q", p, secret)
				}
			}
			if p == "/calls" && !strings.Contains(html, "Bravo-only summary") {
				t.Error("org B does not see its own call")
			}
		}
	})

	t.Run("APIAuthenticationRequirements", func(t *testing.T) {
		b := s.tab(t)
		b.login("owner@alpha.example")
		// The dashboard's cookie is no API credential, and the page has no
		// token to send.
		for _, p := range []string{"/api/calls", "/api/me", "/api/org/members", "/auth/v1/user"} {
			status := eval[int](b, `fetch("`+p+`", {credentials: "include"}).then(r => r.status)`)
			if status != 401 {
				t.Errorf("%s from the signed-in page: %d, want 401", p, status)
			}
		}
		// With a bearer token the API answers.
		if status, body := s.api(t, "GET", "/api/calls", nil, testenv.Bearer(s.token(t, "owner@alpha.example"))...); status != 200 {
			t.Errorf("API with a token: %d %s", status, body)
		}
		if status, _ := s.api(t, "GET", "/api/calls", nil, "Authorization", "Bearer not-a-token"); status != 401 {
			t.Errorf("API with a bad token: %d", status)
		}
	})

	t.Run("XOrgIDNeverSentAndIgnored", func(t *testing.T) {
		b := s.tab(t)
		b.login("owner@bravo.example")
		for _, p := range appPages {
			b.open(p.path)
		}
		for _, r := range b.rec.allRequests() {
			for h := range r.Headers {
				if strings.EqualFold(h, "x-org-id") {
					t.Errorf("the page sent x-org-id to %s", r.URL)
				}
			}
		}
		// A forged header (and query parameter) naming org A changes nothing.
		if _, err := chromedp.Call(b.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"X-Org-Id": s.owner.OrgID()}}); err != nil {
			t.Fatal(err)
		}
		b.open("/calls?org_id=" + s.owner.OrgID())
		if html := b.html(); strings.Contains(html, "Alpha") || !strings.Contains(html, "Bravo") {
			t.Error("x-org-id or org_id changed the org")
		}
		if _, err := chromedp.Call(b.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{}}); err != nil {
			t.Fatal(err)
		}
		status, body := s.api(t, "GET", "/api/calls", nil, append(testenv.Bearer(s.token(t, "owner@bravo.example")), "X-Org-Id", s.owner.OrgID())...)
		if status != 200 || strings.Contains(body, "Alpha") || !strings.Contains(body, "Bravo") {
			t.Errorf("API with a forged x-org-id: %d", status)
		}
	})

	t.Run("CrossTenantAccessRejection", func(t *testing.T) {
		b := s.tab(t)
		b.login("owner@bravo.example")
		for _, p := range []string{"/calls/" + s.a.CallID, "/contacts/" + s.a.ContactID} {
			if status := b.open(p); status != 404 {
				t.Errorf("%s: %d, want 404", p, status)
			}
			html := b.html()
			for _, secret := range s.a.Secrets {
				if strings.Contains(html, secret) && !strings.Contains(p, secret) {
					t.Errorf("%s shows org A's %q", p, secret)
				}
			}
			if !strings.Contains(b.text(), "Not found") {
				t.Errorf("%s: not the not-found page", p)
			}
		}
	})

	t.Run("NetworkTrafficInspection", func(t *testing.T) {
		b := s.tab(t)
		b.login("owner@alpha.example")
		for _, p := range appPages {
			b.open(p.path)
		}
		b.open("/calls/" + s.a.CallID)
		b.open("/contacts/" + s.a.ContactID)
		host := strings.TrimPrefix(s.url, "http://")
		reqs := b.rec.allRequests()
		if len(reqs) < 10 {
			t.Fatalf("only %d requests recorded", len(reqs))
		}
		for _, r := range reqs {
			u, err := url.Parse(r.URL)
			if err != nil {
				t.Fatal(err)
			}
			if u.Scheme != "data" && u.Host != host {
				t.Errorf("request to a third party: %s", r.URL)
			}
			low := strings.ToLower(r.URL)
			for _, bad := range []string{"eyj", "access_token", "refresh_token", "token="} {
				if strings.Contains(low, bad) {
					t.Errorf("a token in a URL: %s", r.URL)
				}
			}
			for h, v := range r.Headers {
				if strings.EqualFold(h, "x-org-id") || strings.EqualFold(h, "authorization") {
					t.Errorf("request header %s: %v to %s", h, v, r.URL)
				}
			}
		}
		if c := eval[string](b, "document.cookie"); strings.Contains(c, "vx_session") || strings.Contains(c, "eyJ") || strings.Contains(c, "vx_csrf") {
			t.Errorf("document.cookie shows %q", c)
		}
		if n := eval[int](b, "localStorage.length + sessionStorage.length"); n != 0 {
			t.Errorf("%d items in web storage", n)
		}
		for _, c := range b.cookies() {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Path != "/" {
				t.Errorf("cookie %s: httpOnly %v sameSite %s path %s", c.Name, c.HTTPOnly, c.SameSite, c.Path)
			}
			if strings.Contains(c.Value, "eyJ") {
				t.Errorf("cookie %s holds a JWT", c.Name)
			}
		}
	})

	t.Run("ErrorPageWhenRemovedFromOrg", func(t *testing.T) {
		b := s.tab(t)
		b.login("member@alpha.example")
		b.open("/calls")
		if !strings.Contains(b.text(), "Alpha") {
			t.Fatal("member does not see the org's calls")
		}
		if status, body := s.api(t, "DELETE", "/api/org/members/"+s.member.User.ID, nil, testenv.Bearer(s.token(t, "owner@alpha.example"))...); status != 204 {
			t.Fatalf("remove member: %d %s", status, body)
		}
		n := b.rec.documentCount()
		if status := b.open("/calls"); status != 403 {
			t.Errorf("after removal: %d, want 403", status)
		}
		if docs := b.rec.docsSince(n); len(docs) != 1 {
			t.Errorf("the error page took %d document loads: %v", len(docs), docs)
		}
		text := b.text()
		if !strings.Contains(text, "no longer have access") || strings.Contains(b.html(), "Alpha") {
			t.Errorf("org error page: %q", text)
		}
		for _, sel := range []string{`form[action="/orgs"] input[name=name]`, `form[action="/logout"] button`, `form[action="/orgs/switch"] button`} {
			if n := eval[int](b, `document.querySelectorAll('`+sel+`').length`); n == 0 {
				t.Errorf("org error page lacks %s", sel)
			}
		}
		b.screenshot("orgerror", "desktop")
		b.submit(`main form[action="/orgs/switch"] button`)
		if got := b.path(); got != "/calls" || !strings.Contains(b.text(), "No calls yet") {
			t.Errorf("after switching: %s", got)
		}
	})

	t.Run("ConsoleErrorAudit", func(t *testing.T) {
		b := s.tab(t)
		b.open("/login")
		b.open("/signup")
		b.open("/forgot")
		b.open("/reset")
		b.open("/invitations/accept?token=nope")
		b.login("owner@alpha.example")
		for _, p := range appPages {
			b.open(p.path)
		}
		b.open("/calls/" + s.a.CallID)
		b.open("/contacts/" + s.a.ContactID)
		b.open("/calls?status=ended&q=cleaning")
		b.open("/audit?verify=1")
		if msgs := b.rec.messages(); len(msgs) != 0 {
			t.Errorf("console errors and warnings:\n%s", strings.Join(msgs, "\n"))
		}
	})

	t.Run("PerformanceBaseline", func(t *testing.T) {
		b := s.tab(t)
		b.login("owner@alpha.example")
		if err := chromedp.Do(b.ctx, chromedp.Legacy(noCache{})); err != nil {
			t.Log("cache not disabled:", err)
		}
		for _, p := range append(appPages, struct{ path, heading string }{"/calls/" + s.a.CallID, ""}, struct{ path, heading string }{"/contacts/" + s.a.ContactID, ""}) {
			b.open(p.path)
			dcl := eval[float64](b, `(() => { const n = performance.getEntriesByType("navigation")[0]; return n.domContentLoadedEventEnd - n.startTime; })()`)
			bytes := eval[float64](b, `(() => { let s = 0; for (const e of performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"))) { s += e.transferSize || e.encodedBodySize || 0; } return s; })()`)
			t.Logf("performance %-44s DOMContentLoaded %6.1f ms, transferred %6.1f KB", p.path, dcl, bytes/1024)
			if bytes > 100*1024 {
				t.Errorf("%s transferred %.0f KB, over the 100 KB budget", p.path, bytes/1024)
			}
		}
	})

	t.Run("LiveUpdates", func(t *testing.T) {
		a := s.tab(t)
		a.login("owner@alpha.example")
		a.open("/calls")
		bTab := s.tab(t)
		bTab.login("owner@bravo.example")
		bTab.open("/calls")
		// The server subscribes a stream before it answers it.
		deadline := time.Now().Add(10 * time.Second)
		for !a.rec.answered(s.url+"/events") || !bTab.rec.answered(s.url+"/events") {
			if time.Now().After(deadline) {
				t.Fatal("the calls pages did not open their event streams")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The call is written, and announced, as the webhook job does it.
		start := time.Now()
		id := webtest.InsertRow(t, s.env, "calls", s.owner.OrgID(), map[string]any{"from_number": "+14155557777",
			"summary": "Live call just in", "status": "in-progress", "started_at": time.Now()})
		if err := s.env.DB.NotifyDashboard(context.Background(), s.owner.OrgID()); err != nil {
			t.Fatal(err)
		}
		if err := s.env.DB.NotifyDashboard(context.Background(), s.ownerB.OrgID()); err != nil {
			t.Fatal(err)
		}
		for !strings.Contains(a.html(), id) {
			if time.Since(start) > 5*time.Second {
				t.Fatal("the new call did not appear on the open calls page")
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("performance: a new call appeared on the open calls page %v after it was stored", time.Since(start).Round(time.Millisecond))
		time.Sleep(300 * time.Millisecond)
		if strings.Contains(bTab.html(), id) || strings.Contains(bTab.html(), "Live call just in") {
			t.Error("org B's open calls page shows org A's new call")
		}
	})

	t.Run("PasswordRecoveryLink", func(t *testing.T) {
		s.env.SignUp("forgetful@alpha.example")
		b := s.tab(t)
		b.open("/forgot")
		b.fill("#email", "forgetful@alpha.example")
		b.submit(`form[action="/forgot"] button[type=submit]`)
		if !strings.Contains(b.text(), "we sent it a link") {
			t.Fatal("no confirmation after asking for a link")
		}
		mail := s.mail.WaitFor(t, "forgetful@alpha.example")
		i := strings.Index(mail.Data, s.url+"/")
		if i < 0 {
			t.Fatalf("no link to the server in the mail:\n%s", mail.Data)
		}
		link := strings.Fields(mail.Data[i:])[0]
		if _, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(link)); err != nil {
			t.Fatal(err)
		}
		// The page script moves the session from the fragment into the form.
		deadline := time.Now().Add(5 * time.Second)
		for b.path() != "/reset" || eval[string](b, `location.hash`) != "" || eval[string](b, `(document.getElementById("refresh_token")||{}).value||""`) == "" {
			if time.Now().After(deadline) {
				t.Fatalf("recovery link landed on %s, hash %q", b.path(), eval[string](b, `location.hash`))
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.fill("#password", "Recovered-Passw0rd-77")
		b.fill("#password2", "Recovered-Passw0rd-77")
		b.submit(`#reset-form button[type=submit]`)
		if got := b.path(); got != "/calls" {
			t.Errorf("after the reset: %s", got)
		}
	})

	t.Run("AccessibilityAudit", func(t *testing.T) {
		axe := axeScript(t)
		b := s.tab(t)
		audit := func(name string) {
			t.Helper()
			eval[chromedp.Void](b, axe)
			out := eval[string](b, `axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(
				r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
					.map(v => v.impact + " " + v.id + ": " + v.help + " (" + v.nodes.map(n => n.target.join(" ")).slice(0, 3).join(", ") + ")")))`)
			var found []string
			if err := json.Unmarshal([]byte(out), &found); err != nil {
				t.Fatalf("%s: axe result %q: %v", name, out, err)
			}
			for _, f := range found {
				t.Errorf("%s: %s", name, f)
			}
		}
		for _, p := range []string{"/login", "/signup", "/forgot", "/reset", "/invitations/accept?token=x"} {
			b.open(p)
			audit(p)
		}
		b.login("owner@alpha.example")
		for _, p := range appPages {
			b.open(p.path)
			audit(p.path)
		}
		for _, p := range []string{"/calls/" + s.a.CallID, "/contacts/" + s.a.ContactID, "/calls/00000000-0000-0000-0000-000000000000"} {
			b.open(p)
			audit(p)
		}
		// Dark mode has its own colours: audit their contrast too.
		if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/overview", "/calls", "/calls/" + s.a.CallID, "/team"} {
			b.open(p)
			audit(p + " (dark)")
		}
		b.screenshot("team-dark", "desktop")
	})

	t.Run("Screenshots", func(t *testing.T) {
		b := s.tab(t)
		for _, p := range []string{"/login", "/signup", "/forgot"} {
			b.open(p)
			b.screenshots(strings.TrimPrefix(p, "/"))
		}
		b.login("admin@alpha.example")
		for _, p := range appPages {
			b.open(p.path)
			b.screenshots(strings.TrimPrefix(p.path, "/"))
		}
		b.open("/calls/" + s.a.CallID)
		b.screenshots("call")
		b.open("/contacts/" + s.a.ContactID)
		b.screenshots("contact")
		b.open("/calls/00000000-0000-0000-0000-000000000000")
		b.screenshots("notfound")
		t.Logf("screenshots in %s", screenshotDir(t))
	})
}

// axeScript returns axe-core's browser script, installing the npm package in
// e2e/browser/axe on first use.
func axeScript(t *testing.T) string {
	t.Helper()
	path := filepath.Join("axe", "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(path); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			t.Fatal("npm is required for the accessibility audit (apt-get install nodejs npm)")
		}
		npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = "axe"
		if out, err := npm.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noCache turns the browser cache off, so that every page load is measured
// cold.
type noCache struct{}

func (noCache) Do(ctx context.Context) error {
	_, err := chromedp.Call(ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
	return err
}

// screenshotDir is where screenshots go: $VOXANNE_SCREENSHOTS, else
// e2e/browser/screenshots (ignored by git).
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("VOXANNE_SCREENSHOTS")
	if dir == "" {
		dir = "screenshots"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// screenshots saves the current page at desktop and phone widths. The phone
// shot is of the page loaded again at that width, as a phone would load it,
// and the page must fit: nothing wider than the screen, no table cut off
// (scrolling sideways inside its frame), the current page's tab in view.
func (b *tab) screenshots(name string) {
	b.t.Helper()
	b.screenshot(name, "desktop")
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2))); err != nil {
		b.t.Fatal(err)
	}
	if _, err := chromedp.Run(b.ctx, chromedp.Reload()); err != nil {
		b.t.Fatalf("reload %s at phone width: %v", name, err)
	}
	if w := eval[int](b, "document.documentElement.scrollWidth"); w > 390 {
		b.t.Errorf("%s is %d px wide on a 390 px phone", name, w)
	}
	if cut := eval[[]string](b, `Array.from(document.querySelectorAll(".table-wrap")).filter(w => w.scrollWidth > w.clientWidth + 1)
		.map(w => Array.from(w.querySelectorAll("th")).map(th => th.textContent).join("|"))`); len(cut) > 0 {
		b.t.Errorf("%s: tables cut off on a 390 px phone (columns %q)", name, cut)
	}
	if !eval[bool](b, `(() => { const nav = document.querySelector("nav.nav"), cur = nav && nav.querySelector('[aria-current="page"]');
		if (!cur) { return true; }
		const n = nav.getBoundingClientRect(), c = cur.getBoundingClientRect();
		return c.left >= n.left - 1 && c.right <= n.right + 1; })()`) {
		b.t.Errorf("%s: the current page's tab is scrolled out of view on a 390 px phone", name)
	}
	b.screenshot(name, "phone")
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		b.t.Fatal(err)
	}
}

func (b *tab) screenshot(name, variant string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	ext := ".png"
	if len(buf) > 2 && buf[0] == 0xff && buf[1] == 0xd8 {
		ext = ".jpg"
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(b.t), name+"-"+variant+ext), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
