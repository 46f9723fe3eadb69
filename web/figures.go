package web

import (
	"sync"
	"time"

	"github.com/voxanne/voxanne"
)

// The overview's figures come from a pass over the period's calls and texts,
// the costliest read of any page; they are kept per org and period until the
// org's next change announcement (Hub), so that a team watching the overview
// costs one pass per change rather than one per page load. Only with live
// updates on (a hub fed by the database's announcements), and never longer
// than figuresTTL: a change that no announcement reached (made straight in
// the database) shows within that.

// figuresTTL bounds how long kept figures are shown.
const figuresTTL = 30 * time.Second

// maxFigures bounds the kept figures; past it, the expired are dropped, and
// all of them if none has expired.
const maxFigures = 10_000

type figuresKey struct {
	org         string
	days        int
	from, today time.Time
}

type figuresEntry struct {
	period, today *voxanne.Stats
	version       uint64
	at            time.Time
}

// figures keeps the overview's figures of each org and period.
type figures struct {
	mu      sync.Mutex
	entries map[figuresKey]figuresEntry
}

func newFigures() *figures { return &figures{entries: map[figuresKey]figuresEntry{}} }

// get returns the kept figures of k, if they are of the data's version now.
func (f *figures) get(k figuresKey, version uint64, now time.Time) (period, today *voxanne.Stats, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.entries[k]
	if !ok || e.version != version || now.Sub(e.at) >= figuresTTL {
		return nil, nil, false
	}
	return e.period, e.today, true
}

// put keeps figures read from data of version, at now.
func (f *figures) put(k figuresKey, version uint64, now time.Time, period, today *voxanne.Stats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.entries) >= maxFigures {
		for key, e := range f.entries {
			if now.Sub(e.at) >= figuresTTL {
				delete(f.entries, key)
			}
		}
		if len(f.entries) >= maxFigures {
			clear(f.entries)
		}
	}
	f.entries[k] = figuresEntry{period: period, today: today, version: version, at: now}
}
