package http

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"
)

// Rate is a token bucket: N requests per Per, with bursts of up to N.
type Rate struct {
	N   int
	Per time.Duration
}

// ParseRate reads "N/duration" (for example "30/5m") or "off".
func ParseRate(s string) (Rate, error) {
	if s == "off" {
		return Rate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	count, err1 := strconv.Atoi(n)
	d, err2 := time.ParseDuration(per)
	if !ok || err1 != nil || err2 != nil || count < 1 || d <= 0 {
		return Rate{}, fmt.Errorf("want N/duration such as 30/5m, or off")
	}
	return Rate{N: count, Per: d}, nil
}

// RateLimits are the auth endpoints' limits. The defaults are close to
// Supabase Auth's.
type RateLimits struct {
	SignIn  Rate // per client IP on /signup and password sign-in
	Refresh Rate // per client IP on refresh-token grants
	Verify  Rate // per client IP on /verify
	Recover Rate // per client IP on /recover
	// Email bounds failed password sign-ins per (email address, client IP): an
	// attacker's guesses use up their own bucket, not the real user's.
	Email Rate
	// EmailGlobal bounds failed password sign-ins per email address over all
	// client IPs, much higher than Email: the cap on guessing from many IPs.
	EmailGlobal Rate
	// RecoverEmail bounds /recover per email address, so no one can flood an
	// inbox from many IPs.
	RecoverEmail Rate
	// PasswordChange bounds password changes (PUT /user) per user: each is an
	// argon2id hash.
	PasswordChange Rate
	// OrgSwitch bounds POST /api/orgs/{id}/switch per user: each mints a
	// session.
	OrgSwitch Rate
}

// DefaultRateLimits are the limits used when none are configured.
var DefaultRateLimits = RateLimits{
	SignIn:  Rate{30, 5 * time.Minute},
	Refresh: Rate{150, 5 * time.Minute},
	Verify:  Rate{30, 5 * time.Minute},
	Recover: Rate{30, 5 * time.Minute},
	Email:   Rate{10, 5 * time.Minute},

	EmailGlobal:  Rate{100, 5 * time.Minute},
	RecoverEmail: Rate{5, time.Hour},

	PasswordChange: Rate{10, time.Hour},
	OrgSwitch:      Rate{60, 5 * time.Minute},
}

// limiter keeps one bucket per key in a bounded cache, so a flood of distinct
// keys cannot exhaust memory; an idle key's bucket would be full anyway.
type limiter struct {
	rate    Rate
	buckets *otter.Cache[string, *rate.Limiter]
}

func newLimiter(r Rate) *limiter {
	if r.N == 0 {
		return nil
	}
	return &limiter{rate: r, buckets: otter.Must(&otter.Options[string, *rate.Limiter]{
		MaximumSize:      100_000,
		ExpiryCalculator: otter.ExpiryAccessing[string, *rate.Limiter](r.Per),
	})}
}

// reserve takes a token for key, or says how long until one is available. The
// token is taken before the attempt, so parallel attempts cannot overrun the
// bucket; refund gives it back when the attempt turns out not to count (a
// correct password).
func (l *limiter) reserve(key string) (ok bool, wait time.Duration, refund func()) {
	if l == nil {
		return true, 0, func() {}
	}
	b, _ := l.buckets.ComputeIfAbsent(key, func() (*rate.Limiter, bool) {
		return rate.NewLimiter(rate.Every(l.rate.Per/time.Duration(l.rate.N)), l.rate.N), false
	})
	now := time.Now()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d, nil
	}
	// CancelAt restores only reservations not yet due at the given time, so
	// the refund names the moment the token was taken.
	return true, 0, func() { r.CancelAt(now) }
}

// TrustedProxies says which hops in front of Voxanne may name the client in
// X-Forwarded-For: either a count of hops (the socket peer is the first) or
// the networks of the proxies. The zero value trusts no proxy.
type TrustedProxies struct {
	Hops int
	Nets []netip.Prefix
}

// IsZero reports whether no proxy is trusted.
func (t TrustedProxies) IsZero() bool { return t.Hops == 0 && len(t.Nets) == 0 }

// ParseTrustedProxies reads VOXANNE_TRUSTED_PROXIES: "" (none), a number of
// hops from 1 to 32, or comma-separated CIDRs or addresses.
func ParseTrustedProxies(s string) (TrustedProxies, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return TrustedProxies{}, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 32 {
			return TrustedProxies{}, fmt.Errorf("want a number of proxy hops from 1 to 32, or comma-separated CIDRs")
		}
		return TrustedProxies{Hops: n}, nil
	}
	var t TrustedProxies
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil {
				return TrustedProxies{}, fmt.Errorf("%q is neither a number of hops nor a CIDR such as 10.0.0.0/8", part)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		t.Nets = append(t.Nets, p.Masked())
	}
	if len(t.Nets) == 0 {
		return TrustedProxies{}, fmt.Errorf("want a number of proxy hops or comma-separated CIDRs")
	}
	return t, nil
}

// String is the setting's text form.
func (t TrustedProxies) String() string {
	if t.Hops > 0 {
		return strconv.Itoa(t.Hops)
	}
	parts := make([]string, len(t.Nets))
	for i, n := range t.Nets {
		parts[i] = n.String()
	}
	return strings.Join(parts, ",")
}

// ClientIPResolver finds a request's client address behind trusted proxies.
type ClientIPResolver struct {
	// Header is the forwarding header ("": X-Forwarded-For when Proxies is
	// set, else the socket peer is the client).
	Header string
	// Proxies are the trusted hops. Zero with a Header set trusts one hop: the
	// header's right-most address, the one the proxy itself appended.
	Proxies TrustedProxies
}

// ClientIP returns the client address of r: every line of the forwarding
// header, joined in order, with the socket peer after them, read from the right;
// the first address not from a trusted proxy is the client. Entries to its
// left were written by the client and may be forged, so they never count.
func (c ClientIPResolver) ClientIP(r *http.Request) string {
	peer := remoteHost(r)
	header, proxies := c.Header, c.Proxies
	if proxies.IsZero() {
		if header == "" {
			return peer
		}
		proxies = TrustedProxies{Hops: 1}
	}
	if header == "" {
		header = "X-Forwarded-For"
	}
	var chain []string
	for _, line := range r.Header.Values(header) {
		for _, v := range strings.Split(line, ",") {
			chain = append(chain, strings.TrimSpace(v))
		}
	}
	chain = append(chain, peer)
	// Walk from the socket peer (k = 0) leftwards.
	last := peer
	for k := 0; k < len(chain); k++ {
		a, ok := parseForwardedAddr(chain[len(chain)-1-k])
		if !ok {
			// Garbage where a trusted proxy should have written an address:
			// the nearest hop known is the best this request tells.
			return last
		}
		trusted := k < proxies.Hops
		for _, n := range proxies.Nets {
			trusted = trusted || n.Contains(a)
		}
		if !trusted {
			return a.String()
		}
		last = a.String()
	}
	return last
}

// parseForwardedAddr reads one forwarded address, with or without a port.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// Middleware sets each request's RemoteAddr to its client address, for
// handlers (the dashboard) that read the peer address themselves.
func (c ClientIPResolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.Header != "" || !c.Proxies.IsZero() {
			r2 := *r
			r2.RemoteAddr = net.JoinHostPort(c.ClientIP(r), "0")
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}

// clientIP is the request's client address (see ClientIPResolver).
func (s *Server) clientIP(r *http.Request) string {
	return ClientIPResolver{Header: s.ClientIPHeader, Proxies: s.TrustedProxies}.ClientIP(r)
}
