// Package webtest helps tests drive the dashboard: a cookie-keeping client that
// does not follow redirects, CSRF-token extraction, and voice data inserted as
// the webhook jobs would insert it.
package webtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testenv"
)

// Client is one browser: it keeps cookies and reports redirects instead of
// following them.
type Client struct {
	T    testing.TB
	Base string
	HC   *http.Client
}

// NewClient returns a client of the server at base.
func NewClient(t testing.TB, base string) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{T: t, Base: base, HC: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Page is a response.
type Page struct {
	Status   int
	Header   http.Header
	Body     string
	Location string
}

// Do sends a request; headers are name, value pairs.
func (c *Client) Do(method, path string, form url.Values, headers ...string) *Page {
	c.T.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.Base+path, body)
	if err != nil {
		c.T.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.HC.Do(req)
	if err != nil {
		c.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.T.Fatal(err)
	}
	return &Page{Status: resp.StatusCode, Header: resp.Header, Body: string(b), Location: resp.Header.Get("Location")}
}

// Get fetches path.
func (c *Client) Get(path string) *Page {
	c.T.Helper()
	return c.Do("GET", path, nil)
}

// Post posts form to path.
func (c *Client) Post(path string, form url.Values, headers ...string) *Page {
	c.T.Helper()
	return c.Do("POST", path, form, headers...)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// CSRF returns the first form token of a page's body ("" when none).
func CSRF(body string) string {
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// Token fetches path and returns its form token.
func (c *Client) Token(path string) string {
	c.T.Helper()
	p := c.Get(path)
	tok := CSRF(p.Body)
	if tok == "" {
		c.T.Fatalf("GET %s: %d, no CSRF token in the page", path, p.Status)
	}
	return tok
}

// Login signs in through the login form and returns where it landed.
func (c *Client) Login(email, password string) *Page {
	c.T.Helper()
	tok := c.Token("/login")
	p := c.Post("/login", url.Values{"csrf": {tok}, "email": {email}, "password": {password}})
	if p.Status != http.StatusSeeOther {
		c.T.Fatalf("login %s: %d %s", email, p.Status, p.Body)
	}
	return p
}

// Cookie returns the client's cookie name ("" when none).
func (c *Client) Cookie(name string) string {
	u, _ := url.Parse(c.Base)
	for _, ck := range c.HC.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// SetCookie replaces the client's cookie name.
func (c *Client) SetCookie(name, value string) {
	u, _ := url.Parse(c.Base)
	c.HC.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// seq numbers the fixtures' phone numbers.
var seq atomic.Int64

// InsertRow inserts a row of org into a voice table (testenv.Env.InsertRow).
func InsertRow(t testing.TB, e *testenv.Env, table, org string, fields map[string]any) string {
	t.Helper()
	return e.InsertRow(t, table, org, fields)
}

// Fixture is one org's call, contact, message and phone number, and strings
// of theirs that must never reach another org.
type Fixture struct {
	CallID, ContactID, MessageID, PhoneID string
	Secrets                               []string
}

// Seed gives org a contact with a call and a text, and a phone number; every
// string is prefixed with tag so that a test can look for leaks.
func Seed(t testing.TB, e *testenv.Env, org, tag string) Fixture {
	t.Helper()
	var f Fixture
	n := seq.Add(1)
	phone := fmt.Sprintf("+1415%07d", 5550000+n)
	f.ContactID = InsertRow(t, e, "contacts", org, map[string]any{"phone_number": phone,
		"name": tag + " Caller", "email": strings.ToLower(tag) + "@example.com", "notes": tag + "-only note",
		"call_count": 1, "message_count": 1})
	f.CallID = InsertRow(t, e, "calls", org, map[string]any{"contact_id": f.ContactID, "from_number": phone,
		"to_number": "+14155550111", "summary": tag + "-only summary", "transcript": "AI: Hello. User: " + tag + "-only transcript",
		"started_at": time.Now().Add(-time.Hour), "duration_seconds": 42.0, "ended_reason": "customer-ended-call",
		"recording_url": "https://recordings.example/" + tag + ".wav", "direction": "inbound"})
	f.MessageID = InsertRow(t, e, "messages", org, map[string]any{"contact_id": f.ContactID, "from_number": phone,
		"to_number": "+14155550111", "body": tag + "-only text"})
	f.PhoneID = InsertRow(t, e, "phone_numbers", org, map[string]any{"label": tag + "-only line"})
	// Phone numbers without their "+", which html/template writes as &#43;.
	f.Secrets = []string{f.CallID, f.ContactID, f.PhoneID, tag + "-only", tag + " Caller", strings.TrimPrefix(phone, "+")}
	return f
}
