package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/voxanne/voxanne"
)

// Event is a change the dashboard's live pages hear of: a call or a message
// of an org was created or updated. It carries ids only.
type Event struct {
	Kind string // "call" or "message"
	ID   string
}

// Hub fans the instance's one stream of changes out to the open dashboard
// streams of each org. Publish never blocks: a stream too slow to keep up
// misses events (the next one, or a reload, shows the rows anyway).
type Hub struct {
	mu   sync.Mutex
	subs map[string]map[chan Event]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[string]map[chan Event]struct{}{}} }

// Publish passes a change of org to that org's streams, and to no other.
func (hb *Hub) Publish(orgID, kind, id string) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	for ch := range hb.subs[orgID] {
		select {
		case ch <- Event{Kind: kind, ID: id}:
		default:
		}
	}
}

// subscribe returns a channel of org's changes and the func that ends it.
func (hb *Hub) subscribe(orgID string) (<-chan Event, func()) {
	ch := make(chan Event, 64)
	hb.mu.Lock()
	if hb.subs[orgID] == nil {
		hb.subs[orgID] = map[chan Event]struct{}{}
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

// Subscribers returns the number of open streams of org (for tests).
func (hb *Hub) Subscribers(orgID string) int {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	return len(hb.subs[orgID])
}

// streamCheck is how often an open stream checks that its session is still
// valid; a revoked session's stream ends within it.
const streamCheck = 5 * time.Second

// events streams the signed-in org's new and updated calls and messages as
// Server-Sent Events (ids only). The stream ends when the session is revoked,
// the user loses the org, or the access token expires (the browser then
// reconnects, which refreshes the session).
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
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	ch, stop := h.cfg.Events.subscribe(q.p.OrgID)
	defer stop()
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
		case ev := <-ch:
			data, _ := json.Marshal(map[string]string{"id": ev.ID})
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Kind, data)
		case <-tick.C:
			p, err := h.cfg.Authenticator.Authenticate(r.Context(), q.s.Access)
			if time.Now().After(expires) || (err == nil && p.OrgID != q.p.OrgID) {
				return // the browser reconnects with a refreshed session
			}
			if voxanne.ErrorCode(err) == voxanne.EUNAUTHORIZED {
				fmt.Fprint(w, "event: end\ndata: {}\n\n")
				_ = rc.Flush()
				return
			}
			fmt.Fprint(w, ": ping\n\n")
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
