package web_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/web/webtest"
)

// BenchmarkPages measures each page's server time with 8 users at once in an
// org of 1,000 calls, through the real router and database, and reports the
// p50 and p99 latencies (the budget is p99 ≤ 20 ms; reported, not asserted).
//
//	go test -run '^$' -bench Pages -benchtime 400x ./web/
func BenchmarkPages(b *testing.B) {
	e := testenv.New(b, testenv.Options{})
	s := e.SignUp("bench@example.com")
	org := s.OrgID()
	ctx := context.Background()
	if _, err := e.Exec(ctx, `insert into contacts (org_id, phone_number, name, call_count, message_count)
		select $1, '+1202555' || lpad(i::text, 4, '0'), 'Caller ' || i, 10, 2 from generate_series(1, 100) i`, org); err != nil {
		b.Fatal(err)
	}
	if _, err := e.Exec(ctx, `insert into calls (org_id, provider_call_id, status, from_number, contact_id, summary, transcript,
			started_at, created_at, duration_seconds, ended_reason, cost_usd)
		select $1, 'bench-' || i, 'ended', c.phone_number, c.id, 'Summary of call ' || i, 'AI: Hello. User: Call number ' || i,
			now() - i * interval '7 minutes', now() - i * interval '7 minutes', 30 + i % 200, 'customer-ended-call', 0.05
		from generate_series(1, 1000) i join contacts c on c.org_id = $1 and c.phone_number = '+1202555' || lpad((1 + i % 100)::text, 4, '0')`, org); err != nil {
		b.Fatal(err)
	}
	if _, err := e.Exec(ctx, `insert into messages (org_id, provider_message_id, direction, from_number, body, created_at)
		select $1, 'SMbench' || i, 'inbound', '+12025550001', 'Text ' || i, now() - i * interval '11 minutes' from generate_series(1, 200) i`, org); err != nil {
		b.Fatal(err)
	}
	var callID, contactID string
	if err := e.QueryRow(ctx, `select id::text, contact_id::text from calls where org_id = $1 limit 1`, org).Scan(&callID, &contactID); err != nil {
		b.Fatal(err)
	}
	const users = 8
	clients := make([]*webtest.Client, users)
	for i := range clients {
		clients[i] = webtest.NewClient(b, e.URL)
		clients[i].Login("bench@example.com", testenv.Password)
	}
	for _, p := range []string{"/overview", "/calls", "/calls?q=number", "/calls/" + callID, "/messages", "/contacts", "/contacts/" + contactID, "/team", "/settings", "/audit", "/account"} {
		b.Run(p, func(b *testing.B) {
			var mu sync.Mutex
			var lat []time.Duration
			next := make(chan struct{})
			var wg sync.WaitGroup
			for _, c := range clients {
				wg.Go(func() {
					for range next {
						start := time.Now()
						r := c.Get(p)
						d := time.Since(start)
						if r.Status != http.StatusOK {
							b.Errorf("%s: %d", p, r.Status)
						}
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				})
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				next <- struct{}{}
			}
			close(next)
			wg.Wait()
			slices.Sort(lat)
			pct := func(q float64) float64 {
				return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}
