package web

import (
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/voxanne/voxanne"
)

// sampleCalls returns n calls of one org as a list page shows them, and the
// names of their contacts.
func sampleCalls(n int) ([]voxanne.Call, map[string]string) {
	names := map[string]string{}
	calls := make([]voxanne.Call, n)
	start := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for i := range calls {
		contact, from, summary, reason := fmt.Sprintf("00000000-0000-4000-8000-%012d", i%20), fmt.Sprintf("+1202555%04d", i), fmt.Sprintf("Summary of call %d", i), "customer-ended-call"
		at, dur, cost := start.Add(-time.Duration(i)*7*time.Minute), float64(30+i), 0.05
		names[contact] = fmt.Sprintf("Caller %d", i%20)
		calls[i] = voxanne.Call{ID: fmt.Sprintf("10000000-0000-4000-8000-%012d", i), Status: "ended", FromNumber: &from,
			ContactID: &contact, StartedAt: &at, DurationSeconds: &dur, EndedReason: &reason, CostUSD: &cost, Summary: &summary, CreatedAt: at}
	}
	return calls, names
}

// BenchmarkRender measures the Go side of rendering the list pages, 50 rows
// each, without the database: what html/template costs per page, with the
// row memo empty (every row rendered) and full (every row seen before).
//
//	go test -run '^$' -bench Render -benchmem ./web/
func BenchmarkRender(b *testing.B) {
	h := New(Config{})
	user := &userView{Email: "bench@example.com", Role: "owner", OrgID: "org", OrgName: "Bench Clinic", IsAdmin: true, IsOwner: true}
	calls, names := sampleCalls(pageSize)
	msgs := make([]voxanne.Message, pageSize)
	entries := make([]voxanne.AuditEntry, pageSize)
	actors := map[string]string{}
	for i := range msgs {
		c := calls[i]
		body, ip, target := fmt.Sprintf("Text %d: running late", i), "127.0.0.1", "call"
		msgs[i] = voxanne.Message{ID: c.ID, Direction: "inbound", FromNumber: c.FromNumber, ToNumber: c.FromNumber, Body: body,
			ContactID: c.ContactID, CreatedAt: c.CreatedAt, Media: []voxanne.Media{}}
		entries[i] = voxanne.AuditEntry{Seq: int64(pageSize - i), At: c.CreatedAt, ActorID: c.ContactID, Action: voxanne.AuditTranscriptRead,
			TargetType: &target, TargetID: &c.ID, IP: &ip}
		actors[*c.ContactID] = "staff@example.com"
	}
	pages := []struct {
		name string
		data func() (any, error)
	}{
		{"calls", func() (any, error) {
			rows, err := renderRows(h.pages, "org", "calls", "callrow", callRows(calls, names))
			return callsData{Calls: rows, Statuses: callStatuses}, err
		}},
		{"messages", func() (any, error) {
			rows, err := renderRows(h.pages, "org", "messages", "messagerow", messageRows(msgs, names))
			return messagesData{Messages: rows}, err
		}},
		{"audit", func() (any, error) {
			rows, err := renderRows(h.pages, "org", "audit", "auditrow", auditRows(entries, actors))
			return auditData{Entries: rows, Actions: auditActions}, err
		}},
	}
	for _, memo := range []string{"cold", "warm"} {
		for _, p := range pages {
			b.Run(p.name+"-"+memo, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if memo == "cold" {
						h.pages.rows.cache.InvalidateAll()
					}
					data, err := p.data()
					if err != nil {
						b.Fatal(err)
					}
					h.render(discard{httptest.NewRecorder()}, 200, p.name, &view{Title: p.name, Nav: p.name, CSRF: "token", User: user, Data: data, Live: true})
				}
			})
		}
	}
}

// discard is a ResponseWriter that keeps nothing of the body.
type discard struct{ *httptest.ResponseRecorder }

func (d discard) Write(b []byte) (int, error) { return io.Discard.Write(b) }
