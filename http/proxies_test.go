package http_test

// Client addresses behind proxies (VOXANNE_TRUSTED_PROXIES) and the rate
// limits that key on them: the forwarding header's lines are read together, in
// order, and the right-most address not from a trusted proxy is the client, so
// an entry the client forged on the left never wins.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	voxhttp "github.com/voxanne/voxanne/http"
	"github.com/voxanne/voxanne/internal/testenv"
)

// signInVia sends a password sign-in whose X-Forwarded-For header has one
// line per entry of lines (as HAProxy adds its own line), and returns the
// status.
func signInVia(t *testing.T, e *testenv.Env, email, password string, lines ...string) *testenv.Response {
	t.Helper()
	return postVia(t, e, "/auth/v1/token?grant_type=password", map[string]any{"email": email, "password": password}, lines...)
}

func postVia(t *testing.T, e *testenv.Env, path string, body any, lines ...string) *testenv.Response {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", e.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, l := range lines {
		req.Header.Add("X-Forwarded-For", l)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return &testenv.Response{Status: resp.StatusCode, Header: resp.Header, Body: out}
}

// lastSessionIP is the client address recorded with the newest session.
func lastSessionIP(t *testing.T, e *testenv.Env) string {
	t.Helper()
	var ip string
	if err := e.QueryRow(t.Context(), "select coalesce(ip, '') from auth.sessions order by created_at desc limit 1").Scan(&ip); err != nil {
		t.Fatal(err)
	}
	return ip
}

// HAProxy with "option forwardfor" adds its own X-Forwarded-For line below
// whatever the client sent: a forged first line must not become the client,
// whether the proxy is trusted by hop count, by CIDR or through the older
// VOXANNE_RATE_LIMIT_HEADER alone.
func TestTrustedProxiesForgedFirstLineNeverWins(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		header  string
		proxies voxhttp.TrustedProxies
	}{
		{"one hop", "", voxhttp.TrustedProxies{Hops: 1}},
		{"loopback CIDR", "", voxhttp.TrustedProxies{Nets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		{"rate-limit header only", "X-Forwarded-For", voxhttp.TrustedProxies{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := testenv.New(t, testenv.Options{ClientIPHeader: c.header, TrustedProxies: c.proxies,
				RateLimits: &voxhttp.RateLimits{SignIn: voxhttp.Rate{N: 2, Per: time.Hour}}})
			signUp(t, e, "hap@example.com")
			// Two sign-ins from the real client 198.51.100.1, each behind a
			// different forged line.
			for i, forged := range []string{"203.0.113.7", "203.0.113.8, 192.0.2.1"} {
				r := signInVia(t, e, "hap@example.com", testenv.Password, forged, "198.51.100.1")
				wantStatus(t, r, 200, fmt.Sprintf("sign-in %d", i+1))
				if ip := lastSessionIP(t, e); ip != "198.51.100.1" {
					t.Fatalf("session recorded client %q, want 198.51.100.1 (forged line %q)", ip, forged)
				}
			}
			// The real client's bucket is empty whatever it forges next.
			r := signInVia(t, e, "hap@example.com", testenv.Password, "203.0.113.9", "198.51.100.1")
			wantStatus(t, r, 429, "third sign-in from the same client behind a new forged line")
			if r.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			// Another real client is not affected.
			wantStatus(t, signInVia(t, e, "hap@example.com", testenv.Password, "203.0.113.7", "198.51.100.2"), 200, "another client")
		})
	}
}

// Hop counts and CIDRs pick the right-most untrusted address; with no
// trusted proxy the header is ignored and the socket peer is the client.
func TestTrustedProxiesChain(t *testing.T) {
	t.Parallel()
	cidrs := voxhttp.TrustedProxies{Nets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}}
	for _, c := range []struct {
		name    string
		proxies voxhttp.TrustedProxies
		lines   []string
		want    string
	}{
		{"no proxies: header ignored", voxhttp.TrustedProxies{}, []string{"198.51.100.1"}, "127.0.0.1"},
		{"no header", voxhttp.TrustedProxies{Hops: 1}, nil, "127.0.0.1"},
		{"two hops", voxhttp.TrustedProxies{Hops: 2}, []string{"203.0.113.7, 198.51.100.1", "10.0.0.5"}, "198.51.100.1"},
		{"fewer entries than hops", voxhttp.TrustedProxies{Hops: 3}, []string{"198.51.100.1"}, "198.51.100.1"},
		{"CIDRs skip internal hops", cidrs, []string{"203.0.113.7", "198.51.100.1, 10.1.2.3", "10.9.9.9"}, "198.51.100.1"},
		{"CIDRs: all trusted, left-most", cidrs, []string{"10.1.2.3, 10.9.9.9"}, "10.1.2.3"},
		{"CIDRs not matching the peer: header ignored", voxhttp.TrustedProxies{Nets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
			[]string{"198.51.100.1"}, "127.0.0.1"},
		{"ports and IPv6", voxhttp.TrustedProxies{Hops: 2}, []string{"[2001:db8::1]:4711", "198.51.100.9:80"}, "2001:db8::1"},
		{"garbage at the client's place", voxhttp.TrustedProxies{Hops: 2}, []string{"nonsense, 10.0.0.5"}, "10.0.0.5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := testenv.New(t, testenv.Options{TrustedProxies: c.proxies})
			signUp(t, e, "chain@example.com")
			wantStatus(t, signInVia(t, e, "chain@example.com", testenv.Password, c.lines...), 200, "sign in")
			if ip := lastSessionIP(t, e); ip != c.want {
				t.Errorf("client %q, want %q", ip, c.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "", "1": "1", " 2 ": "2", "10.0.0.0/8": "10.0.0.0/8",
		"10.1.2.3/8, 192.168.0.1": "10.0.0.0/8,192.168.0.1/32", "::1, fd00::/8": "::1/128,fd00::/8"} {
		p, err := voxhttp.ParseTrustedProxies(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseTrustedProxies(%q) = %q, %v; want %q", in, p.String(), err, want)
		}
	}
	for _, in := range []string{"0", "-1", "33", "ten", "10.0.0.0/33", "10.0.0.0/8, proxy", ","} {
		if _, err := voxhttp.ParseTrustedProxies(in); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted", in)
		}
	}
}

// The dashboard reads RemoteAddr; serve wraps it in the resolver's middleware,
// which puts the resolved client there (a forged first line never wins).
func TestClientIPMiddlewareForTheDashboard(t *testing.T) {
	t.Parallel()
	var got string
	h := voxhttp.ClientIPResolver{Proxies: voxhttp.TrustedProxies{Hops: 1}}.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.RemoteAddr
	}))
	r, _ := http.NewRequest("GET", "/login", nil)
	r.RemoteAddr = "10.0.0.2:51234"
	r.Header.Add("X-Forwarded-For", "203.0.113.7")
	r.Header.Add("X-Forwarded-For", "198.51.100.1")
	h.ServeHTTP(nil, r)
	if got != "198.51.100.1:0" {
		t.Errorf("RemoteAddr %q, want 198.51.100.1:0", got)
	}
	// Without trusted proxies the request passes untouched.
	voxhttp.ClientIPResolver{}.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr })).ServeHTTP(nil, r)
	if got != "10.0.0.2:51234" {
		t.Errorf("RemoteAddr %q, want the peer", got)
	}
}
