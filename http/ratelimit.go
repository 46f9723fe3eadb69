package http

import (
	"fmt"
	"net"
	"net/http"
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
	Email   Rate // per email address on password sign-in
}

// DefaultRateLimits are the limits used when none are configured.
var DefaultRateLimits = RateLimits{
	SignIn:  Rate{30, 5 * time.Minute},
	Refresh: Rate{150, 5 * time.Minute},
	Verify:  Rate{30, 5 * time.Minute},
	Recover: Rate{30, 5 * time.Minute},
	Email:   Rate{10, 5 * time.Minute},
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

// allow takes a token for key, or says how long until one is available.
func (l *limiter) allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	b, _ := l.buckets.ComputeIfAbsent(key, func() (*rate.Limiter, bool) {
		return rate.NewLimiter(rate.Every(l.rate.Per/time.Duration(l.rate.N)), l.rate.N), false
	})
	now := time.Now()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// clientIP is the socket peer, or, behind a proxy, the configured trusted
// header's right-most address: the one the proxy itself appended (entries to
// its left come from the client and can be forged).
func (s *Server) clientIP(r *http.Request) string {
	if s.ClientIPHeader != "" {
		if v := r.Header.Get(s.ClientIPHeader); v != "" {
			last := v[strings.LastIndexByte(v, ',')+1:]
			if ip := net.ParseIP(strings.TrimSpace(last)); ip != nil {
				return ip.String()
			}
		}
	}
	return remoteHost(r)
}
