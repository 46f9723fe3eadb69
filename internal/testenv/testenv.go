// Package testenv runs a complete Voxanne for tests: a fresh database (from
// internal/testdb) and the same assembly as serve's (internal/app) behind an
// httptest server.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth"
	"github.com/voxanne/voxanne/auth/password"
	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/internal/app"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/jobs"
	"github.com/voxanne/voxanne/postgres"
	"github.com/voxanne/voxanne/web"
)

// The tests share two cores with each other (t.Parallel) and with whatever else
// the machine runs: a password hash may wait for a slot far longer than in
// production, and a test about something else must not see the 429 that
// bounded hashing answers then. TestPasswordHashingBusyAnswers429 sets its own
// short wait.
func init() { password.MaxWait = time.Minute }

// Options adjust the environment; the zero value is a default server with
// autoconfirm on and rate limits off.
type Options struct {
	Autoconfirm   *bool
	DisableSignup bool
	// RateLimits nil turns every limit off.
	RateLimits *voxhttp.RateLimits
	JWTExp     time.Duration
	JWTSecret  string
	KEK        string
	// AuditKey keys the audit chain, as VOXANNE_AUDIT_KEY does for serve.
	AuditKey       string
	CORSOrigins    []string
	ClientIPHeader string
	// TrustedProxies are the proxy hops trusted to name the client.
	TrustedProxies voxhttp.TrustedProxies
	// Mailer replaces the in-memory mailbox.
	Mailer voxanne.Mailer
	// DB replaces the fresh database (for layer knock-out tests).
	DB *postgres.DB
	// Webhook secrets; defaults VapiSecret and TwilioToken.
	VapiSecret, VapiSecretPrev, TwilioToken, TwilioTokenPrev string
	// PasswordMinLength is VOXANNE_PASSWORD_MIN_LENGTH (0: the default 8).
	PasswordMinLength int
	// NoJobWorkers leaves stored events unprocessed (jobs only queue).
	NoJobWorkers bool
}

// Default webhook secrets of test environments.
const (
	VapiSecret  = "vapi-test-secret"
	TwilioToken = "twilio-test-token"
)

// Env is a running test server.
type Env struct {
	T      testing.TB
	DB     *postgres.DB
	Keys   *postgres.KeyRing
	Auth   *postgres.AuthService
	Server *httptest.Server
	URL    string
	Mail   *Mailbox
	Logs   *bytes.Buffer
	Issuer string
	// Authn is the /api token authenticator; its revocation listener runs
	// for the test's lifetime.
	Authn *auth.Authenticator
	// Live receives the revocation feed's state changes (true: connected).
	Live chan bool
	Orgs *postgres.OrgStore
	// Ingest stores and processes webhook events.
	Ingest *postgres.IngestStore
	// Endpoints manages webhook endpoints and operator number assignments.
	Endpoints *postgres.EndpointStore
	// Jobs is the River client working the event jobs.
	Jobs *jobs.Runner
	// Events is the dashboard's hub of live updates.
	Events *web.Hub
	// Handler is the server whose router the test server runs.
	Handler *voxhttp.Server
}

// Mailbox records sent mails.
type Mailbox struct {
	mu    sync.Mutex
	mails []voxanne.Mail
	sent  chan struct{}
}

// Send records m.
func (m *Mailbox) Send(ctx context.Context, mail voxanne.Mail) error {
	m.mu.Lock()
	m.mails = append(m.mails, mail)
	m.mu.Unlock()
	select {
	case m.sent <- struct{}{}:
	default:
	}
	return nil
}

// WaitFor returns the first mail to `to`, waiting up to 5 s (mails are sent in
// the background).
func (m *Mailbox) WaitFor(t testing.TB, to string) voxanne.Mail {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m.mu.Lock()
		for _, mail := range m.mails {
			if mail.To == to {
				m.mu.Unlock()
				return mail
			}
		}
		m.mu.Unlock()
		select {
		case <-m.sent:
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("no mail to %s", to)
	return voxanne.Mail{}
}

// Nth returns the nth mail (from 1) to `to`, waiting up to 5 s for it.
func (m *Mailbox) Nth(t testing.TB, to string, n int) voxanne.Mail {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		seen := 0
		for _, mail := range m.mails {
			if mail.To == to {
				if seen++; seen == n {
					m.mu.Unlock()
					return mail
				}
			}
		}
		m.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no mail number %d to %s (%d arrived)", n, to, seen)
		}
		select {
		case <-m.sent:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Count returns how many mails went to `to`.
func (m *Mailbox) Count(to string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, mail := range m.mails {
		if mail.To == to {
			n++
		}
	}
	return n
}

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// New starts an environment on a fresh database; it is torn down with the test.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	db := opts.DB
	if db == nil {
		db = testdb.New(t)
	}
	return NewOn(t, db, opts)
}

// NewOn starts an environment on db (several environments on one database act
// as several instances).
func NewOn(t testing.TB, db *postgres.DB, opts Options) *Env {
	t.Helper()
	ctx := context.Background()
	if opts.JWTExp == 0 {
		opts.JWTExp = time.Hour
	}
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewJSONHandler(&syncBuffer{b: logs}, nil))
	e := &Env{T: t, DB: db, Mail: &Mailbox{sent: make(chan struct{}, 1)}, Logs: logs}
	var mailer voxanne.Mailer = e.Mail
	if opts.Mailer != nil {
		mailer = opts.Mailer
	}
	rl := opts.RateLimits
	if rl == nil {
		rl = &voxhttp.RateLimits{}
	}
	if opts.VapiSecret == "" {
		opts.VapiSecret = VapiSecret
	}
	if opts.TwilioToken == "" {
		opts.TwilioToken = TwilioToken
	}
	// Start the listener first: the issuer names its address.
	ts := httptest.NewUnstartedServer(nil)
	e.URL = "http://" + ts.Listener.Addr().String()
	e.Issuer = e.URL + "/auth/v1"
	// The same assembly as serve's.
	a, err := app.New(ctx, db, app.Config{
		PublicURL: e.URL, Version: "test", Logger: logger,
		JWTExp: opts.JWTExp, JWTSecret: opts.JWTSecret, KeyEncryptionKey: opts.KEK, AuditKey: opts.AuditKey,
		VapiSecret: opts.VapiSecret, VapiSecretPrev: opts.VapiSecretPrev,
		TwilioToken: opts.TwilioToken, TwilioTokenPrev: opts.TwilioTokenPrev,
		Autoconfirm: opts.Autoconfirm == nil || *opts.Autoconfirm, DisableSignup: opts.DisableSignup, Mailer: mailer,
		Workers: 4, JobsInsertOnly: opts.NoJobWorkers, PasswordMinLength: opts.PasswordMinLength,
		RateLimits: rl, RateLimitHeader: opts.ClientIPHeader, TrustedProxies: opts.TrustedProxies, CORSOrigins: opts.CORSOrigins,
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	e.Keys, e.Auth, e.Authn, e.Orgs, e.Ingest, e.Endpoints, e.Jobs, e.Events, e.Handler =
		a.Keys, a.Auth, a.Authn, a.Orgs, a.Ingest, a.Endpoints, a.Jobs, a.Events, a.API
	live := make(chan bool, 16)
	a.Start(func(ok bool) {
		select {
		case live <- ok:
		default:
		}
	})
	t.Cleanup(a.Close)
	e.Live = live
	// The feed is live before the first request, as in production after start-up.
	select {
	case <-live:
	case <-time.After(10 * time.Second):
		t.Fatal("testenv: revocation listener did not connect")
	}
	ts.Config.Handler = contractCheck(t, a.Handler)
	voxhttp.ConfigureServer(ts.Config)
	ts.Start()
	t.Cleanup(ts.Close)
	e.Server = ts
	return e
}

// Response is a decoded HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// Decode decodes the body into v.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode: %v: %s", err, r.Body)
	}
}

// Do sends a request; body is JSON-encoded unless it is a string or []byte.
// headers are name, value pairs (they override the JSON Content-Type).
func (e *Env) Do(method, path string, body any, headers ...string) *Response {
	e.T.Helper()
	return e.DoFor(e.T, method, path, body, headers...)
}

// DoFor is Do reporting to t (a subtest's). It also checks the X-Request-Id
// that every response must carry.
func (e *Env) DoFor(t testing.TB, method, path string, body any, headers ...string) *Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: response has no X-Request-Id", method, path)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Session is a signed-in user.
type Session struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	User         struct {
		ID          string         `json:"id"`
		Email       string         `json:"email"`
		AppMetadata map[string]any `json:"app_metadata"`
	} `json:"user"`
}

// OrgID is the session user's active org as the server reported it.
func (s *Session) OrgID() string { v, _ := s.User.AppMetadata["org_id"].(string); return v }

// SignUp signs up email with a strong password and returns the session.
func (e *Env) SignUp(email string) *Session {
	e.T.Helper()
	r := e.Do("POST", "/auth/v1/signup", map[string]any{"email": email, "password": Password, "data": map[string]any{"org_name": "Org " + email}})
	if r.Status != 200 {
		e.T.Fatalf("sign up %s: %d %s", email, r.Status, r.Body)
	}
	var s Session
	r.Decode(e.T, &s)
	return &s
}

// SignIn signs in with Password.
func (e *Env) SignIn(email string) *Session {
	e.T.Helper()
	r := e.Do("POST", "/auth/v1/token?grant_type=password", map[string]any{"email": email, "password": Password})
	if r.Status != 200 {
		e.T.Fatalf("sign in %s: %d %s", email, r.Status, r.Body)
	}
	var s Session
	r.Decode(e.T, &s)
	return &s
}

// Bearer returns the Authorization header pair for tok.
func Bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// Password is the strong password SignUp uses.
const Password = "Vx-correct-horse-battery-9"

// Invite has owner (a session of an admin or owner) invite email with role and
// returns the secret token from the invitation's accept_url.
func (e *Env) Invite(owner *Session, email, role string) (id, secret string) {
	e.T.Helper()
	r := e.Do("POST", "/api/org/invitations", map[string]any{"email": email, "role": role}, Bearer(owner.AccessToken)...)
	if r.Status != 201 {
		e.T.Fatalf("invite %s: %d %s", email, r.Status, r.Body)
	}
	var inv struct {
		ID        string `json:"id"`
		AcceptURL string `json:"accept_url"`
	}
	r.Decode(e.T, &inv)
	_, secret, ok := strings.Cut(inv.AcceptURL, "token=")
	if !ok {
		e.T.Fatalf("accept_url without token: %s", inv.AcceptURL)
	}
	return inv.ID, secret
}

// Switch switches s to org and returns the new session.
func (e *Env) Switch(s *Session, org string) *Session {
	e.T.Helper()
	r := e.Do("POST", "/api/orgs/"+org+"/switch", nil, Bearer(s.AccessToken)...)
	if r.Status != 200 {
		e.T.Fatalf("switch to %s: %d %s", org, r.Status, r.Body)
	}
	var out Session
	r.Decode(e.T, &out)
	return &out
}

// AddMember signs up email, has it join owner's org with role through an
// invitation, and returns its session for that org.
func (e *Env) AddMember(owner *Session, email, role string) *Session {
	e.T.Helper()
	_, secret := e.Invite(owner, email, role)
	s := e.SignUp(email)
	if r := e.Do("POST", "/api/invitations/accept", map[string]any{"token": secret}, Bearer(s.AccessToken)...); r.Status != 200 {
		e.T.Fatalf("accept for %s: %d %s", email, r.Status, r.Body)
	}
	return e.Switch(s, owner.OrgID())
}

var rowSeq atomic.Int64

// InsertRow inserts a row of org into a voice table (calls, messages,
// contacts, phone_numbers) through the owner pool, as the webhook jobs would,
// filling the required columns fields leaves out, and returns its id.
func (e *Env) InsertRow(t testing.TB, table, org string, fields map[string]any) string {
	t.Helper()
	n := rowSeq.Add(1)
	f := map[string]any{"org_id": org}
	switch table {
	case "calls":
		f["provider_call_id"] = fmt.Sprintf("call-%d-%s", n, uuid.NewString())
		f["status"] = "ended"
	case "messages":
		f["provider_message_id"] = fmt.Sprintf("SM%d%s", n, strings.ReplaceAll(uuid.NewString(), "-", ""))
		f["direction"] = "inbound"
	case "contacts":
		f["phone_number"] = fmt.Sprintf("+1212%07d", n)
	case "phone_numbers":
		f["provider"] = "vapi"
		f["e164"] = fmt.Sprintf("+1646%07d", n)
	default:
		t.Fatalf("InsertRow: unknown table %s", table)
	}
	maps.Copy(f, fields)
	cols := slices.Sorted(maps.Keys(f))
	args := make([]any, len(cols))
	marks := make([]string, len(cols))
	for i, c := range cols {
		args[i] = f[c]
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	var id string
	sql := fmt.Sprintf("insert into %s (%s) values (%s) returning id::text", table, strings.Join(cols, ", "), strings.Join(marks, ", "))
	if err := e.QueryRow(context.Background(), sql, args...).Scan(&id); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return id
}

// Exec runs one statement as the database owner, for fixtures and for checking
// what the server wrote: the owner sees every organization's rows.
func (e *Env) Exec(ctx context.Context, sql string, args ...any) (tag pgconn.CommandTag, err error) {
	err = e.DB.InOwner(ctx, "test fixture", func(c postgres.Conn) error {
		tag, err = c.Exec(ctx, sql, args...)
		return err
	})
	return tag, err
}

// Query runs one query as the database owner (see Exec).
func (e *Env) Query(ctx context.Context, sql string, args ...any) (rows pgx.Rows, err error) {
	err = e.DB.InOwner(ctx, "test fixture", func(c postgres.Conn) error {
		rows, err = c.Query(ctx, sql, args...)
		return err
	})
	return rows, err
}

// QueryRow runs one single-row query as the database owner (see Exec).
func (e *Env) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	var row pgx.Row
	if err := e.DB.InOwner(ctx, "test fixture", func(c postgres.Conn) error {
		row = c.QueryRow(ctx, sql, args...)
		return nil
	}); err != nil {
		panic(err) // InOwner fails only without a reason, and this one has one
	}
	return row
}
