package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/voxanne/voxanne"
)

// Hub fans the instance's announcements of changed orgs out to the open
// dashboard streams of each org. An announcement names the org only; each
// stream re-reads what changed through the tenant path, so that it can never
// carry another org's data. Publish never blocks: announcements that arrive
// while a stream is busy coalesce into one.
//
// The hub also versions each org's data for what the dashboard keeps between
// requests (the overview's figures): an announcement makes a new version.
type Hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
	// seq counts announcements; changed holds the seq of each org's last
	// one and reset that of the last announcement for every org.
	seq, reset uint64
	changed    map[string]uint64
}

// maxVersioned bounds the orgs whose versions the hub keeps; past it they
// are all forgotten at once, which only counts as a change of every org.
const maxVersioned = 100_000

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{subs: map[string]map[chan struct{}]struct{}{}, changed: map[string]uint64{}}
}

// Publish tells org's streams, and no other, that its data changed. An empty
// org means every org: changes may have gone unannounced (the listener's
// connection was down), so every stream looks again and nothing kept stays.
func (hb *Hub) Publish(orgID string) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	hb.seq++
	if orgID == "" || len(hb.changed) >= maxVersioned {
		hb.reset, hb.changed = hb.seq, map[string]uint64{}
	} else {
		hb.changed[orgID] = hb.seq
	}
	for org, subs := range hb.subs {
		if orgID != "" && org != orgID {
			continue
		}
		for ch := range subs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// version returns the version of org's data: it changes with every
// announcement of the org.
func (hb *Hub) version(orgID string) uint64 {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return max(hb.changed[orgID], hb.reset)
}

// subscribe returns a channel of org's announcements and the func that ends it.
func (hb *Hub) subscribe(orgID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	hb.mu.Lock()
	if hb.subs[orgID] == nil {
		hb.subs[orgID] = map[chan struct{}]struct{}{}
	}
	hb.subs[orgID][ch] = struct{}{}
	hb.mu.Unlock()
	return ch, func() {
		hb.mu.Lock()
		delete(hb.subs[orgID], ch)
		if len(hb.subs[orgID]) == 0 {
			delete(hb.subs, orgID)
		}
		hb.mu.Unlock()
	}
}

// Subscribers returns the number of open streams of org.
func (hb *Hub) Subscribers(orgID string) int {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return len(hb.subs[orgID])
}

// streamCheck is how often an open stream checks that its session is still
// valid; a revoked session's stream ends within it.
const streamCheck = 5 * time.Second

// liveWindow is how many of the newest calls and messages a stream re-reads
// on each announcement.
const liveWindow = 20

// changes remembers what a stream has reported, to report each new or
// updated row once.
type changes struct {
	seen     map[string]time.Time
	baseline time.Time
}

// scan re-reads the newest calls and messages through the tenant path and
// returns the events of those new or updated since the last scan.
func (h *Handler) scan(ctx context.Context, p *voxanne.Principal, c *changes) ([][2]string, error) {
	calls, _, err := h.cfg.Voice.ListCalls(ctx, p, voxanne.CallFilter{}, voxanne.Page{Limit: liveWindow})
	if err != nil {
		return nil, err
	}
	msgs, _, err := h.cfg.Voice.ListMessages(ctx, p, "", voxanne.Page{Limit: liveWindow})
	if err != nil {
		return nil, err
	}
	var out [][2]string
	note := func(kind, id string, updated time.Time) {
		prev, ok := c.seen[id]
		if (ok && updated.After(prev)) || (!ok && updated.After(c.baseline)) {
			out = append(out, [2]string{kind, id})
		}
		c.seen[id] = updated
	}
	for _, cl := range calls {
		note("call", cl.ID, cl.UpdatedAt)
	}
	for _, m := range msgs {
		note("message", m.ID, m.UpdatedAt)
	}
	return out, nil
}

// events streams the signed-in org's new and updated calls and messages as
// Server-Sent Events (event: call or message, data: {"id": ...}). The stream
// ends when the session is revoked (event: end), the user loses the org, or
// the access token expires (the browser then reconnects, which refreshes the
// session).
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if h.cfg.Events == nil {
		http.Error(w, "live updates are not available", http.StatusNotFound)
		return
	}
	q, err := h.signedIn(w, r)
	if errors.Is(err, errNoSession) {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	if err != nil {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	if q.p.OrgID == "" || q.p.OrgID != q.s.Org {
		http.Error(w, "no access to this organization", http.StatusForbidden)
		return
	}
	ch, stop := h.cfg.Events.subscribe(q.p.OrgID)
	defer stop()
	// What exists now is the page's; only later changes are events.
	c := &changes{seen: map[string]time.Time{}, baseline: time.Now().Add(-2 * time.Second)}
	if _, err := h.scan(r.Context(), q.p, c); err != nil {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	if err := rc.Flush(); err != nil {
		return
	}
	tick := time.NewTicker(streamCheck)
	defer tick.Stop()
	expires := time.Unix(q.s.ExpiresAt, 0)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ch:
			evs, err := h.scan(r.Context(), q.p, c)
			if err != nil {
				if voxanne.ErrorCode(err) == voxanne.EINTERNAL {
					h.cfg.Logger.Error("dashboard events", "error", err)
				}
				return
			}
			for _, ev := range evs {
				data, _ := json.Marshal(map[string]string{"id": ev[1]})
				fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev[0], data)
			}
		case <-tick.C:
			p, err := h.cfg.Authenticator.Authenticate(r.Context(), q.s.Access)
			if voxanne.ErrorCode(err) == voxanne.EUNAUTHORIZED && time.Now().Before(expires) {
				fmt.Fprint(w, "event: end\ndata: {}\n\n")
				_ = rc.Flush()
				return
			}
			if err != nil || p.OrgID != q.p.OrgID || time.Now().After(expires) {
				return // the browser reconnects with a refreshed session
			}
			fmt.Fprint(w, ": ping\n\n")
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
