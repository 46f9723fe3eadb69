package http

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/voxanne/voxanne"
)

// Server-wide limits: no client may hold a connection, a goroutine or a
// pooled database connection for longer than these allow.
const (
	// ReadHeaderTimeout bounds how long a client may take to send headers.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request, body included (webhook
	// bodies are at most 5 MiB).
	ReadTimeout = 30 * time.Second
	// WriteTimeout is each response's write deadline. Handlers that stream
	// (the audit-log export, the dashboard's event stream) extend their own
	// deadline explicitly as they make progress.
	WriteTimeout = 30 * time.Second
	// IdleTimeout closes keep-alive connections nobody uses.
	IdleTimeout = 120 * time.Second
	// MaxHeaderBytes is the header block limit (64 KiB).
	MaxHeaderBytes = 64 << 10
)

// ConfigureServer sets the server-wide limits on hs. Every server that serves
// Voxanne's handler (serve, the tests) goes through it.
func ConfigureServer(hs *http.Server) {
	hs.ReadHeaderTimeout = ReadHeaderTimeout
	hs.ReadTimeout = ReadTimeout
	hs.WriteTimeout = WriteTimeout
	hs.IdleTimeout = IdleTimeout
	hs.MaxHeaderBytes = MaxHeaderBytes
}

// ExtendWriteDeadline gives a streaming response another WriteTimeout from
// now, so a long export that keeps making progress is not cut off while one
// whose reader stalls still is.
func ExtendWriteDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(WriteTimeout))
}

// Per-org caps on expensive requests at once.
const (
	maxExportsPerOrg  = 2
	maxSearchesPerOrg = 4
)

// orgGate caps how many requests of one kind each org runs at once, so one
// tenant's exports or searches cannot take the capacity every tenant shares.
type orgGate struct {
	max  int
	mu   sync.Mutex
	busy map[string]int
}

func newOrgGate(max int) *orgGate { return &orgGate{max: max, busy: map[string]int{}} }

// enter takes a slot for org, or answers 429 (with Retry-After) when the org
// already runs max; the returned func gives the slot back.
func (g *orgGate) enter(w http.ResponseWriter, org string) (func(), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.busy[org] >= g.max {
		w.Header().Set("Retry-After", strconv.Itoa(1))
		return nil, voxanne.ReasonErrorf(voxanne.ERATELIMIT, voxanne.ReasonRateLimited,
			"this organization already runs %d such requests; retry shortly", g.max)
	}
	g.busy[org]++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.busy[org]--; g.busy[org] <= 0 {
			delete(g.busy, org)
		}
	}, nil
}

// knownMethods are the methods metrics name; any other is "other", so made-up
// methods cannot grow the metrics without bound.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// metricLabels are the route pattern and method a request is counted under:
// only registered patterns and known methods, else "other".
func metricLabels(r *http.Request) (route, method string) {
	route, method = r.Pattern, r.Method
	if route == "" {
		route = "other"
	}
	if !knownMethods[method] {
		method = "other"
	}
	return route, method
}
