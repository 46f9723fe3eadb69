package web_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/web/webtest"
)

// BenchmarkPages measures each page's server time with 8 users at once in an
// org of 1,000 calls, through the real router and database, and reports the
// p50 and p99 latencies (the budget is p99 ≤ 20 ms; reported, not asserted).
// Each sub-benchmark is named after its page (account is the trivial one:
// sign-in check and header only, the yardstick of a noisy machine).
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
	// A running server's tables have statistics (autovacuum analyzes them
	// after such a load); without them the planner guesses a handful of rows
	// and reads all 1,000 calls for every page.
	if _, err := e.Exec(ctx, "analyze"); err != nil {
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
	pages := []struct{ name, path string }{{"overview", "/overview"}, {"calls", "/calls"}, {"search", "/calls?q=number"},
		{"call", "/calls/" + callID}, {"messages", "/messages"}, {"contacts", "/contacts"}, {"contact", "/contacts/" + contactID},
		{"team", "/team"}, {"settings", "/settings"}, {"audit", "/audit"}, {"account", "/account"}}
	cpu := newCPUMeter(b, e)
	// Warm up: every user opens every page once, so that the pools hold
	// their connections and each server process has its caches: what is
	// measured is a running server, not its first minute.
	var warm sync.WaitGroup
	for _, c := range clients {
		warm.Go(func() {
			for _, p := range pages {
				if r := c.Get(p.path); r.Status != http.StatusOK {
					b.Errorf("%s: %d", p.path, r.Status)
				}
			}
		})
	}
	warm.Wait()
	for _, pg := range pages {
		p := pg.path
		b.Run(pg.name, func(b *testing.B) {
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
			self0, db0, cpuOK := cpu.read()
			for i := 0; i < b.N; i++ {
				next <- struct{}{}
			}
			close(next)
			wg.Wait()
			if self1, db1, ok := cpu.read(); ok && cpuOK {
				// CPU time per page load, which a busy machine changes far
				// less than it changes latencies.
				b.ReportMetric(float64(self1-self0)/float64(time.Millisecond)/float64(b.N), "go-cpu-ms/op")
				b.ReportMetric(float64(db1-db0)/float64(time.Millisecond)/float64(b.N), "db-cpu-ms/op")
			}
			slices.Sort(lat)
			pct := func(q float64) float64 {
				return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}

// cpuMeter reads from /proc (Linux) the CPU time used by this process (the
// server and the benchmark's clients) and by the database server: its
// postmaster, the postmaster's children, and the children it has reaped.
type cpuMeter struct{ postmaster int }

func newCPUMeter(b *testing.B, e *testenv.Env) *cpuMeter {
	var backend int
	if err := e.QueryRow(context.Background(), "select pg_backend_pid()").Scan(&backend); err != nil {
		b.Fatal(err)
	}
	f, ok := procStat(backend)
	if !ok {
		return &cpuMeter{}
	}
	pp, _ := strconv.Atoi(f[1])
	return &cpuMeter{postmaster: pp}
}

// procStat returns the fields of /proc/<pid>/stat after the command name:
// state, ppid, ... (utime is [11], stime [12], cutime [13], cstime [14]).
func procStat(pid int) ([]string, bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return nil, false
	}
	f := strings.Fields(string(raw[i+1:]))
	return f, len(f) > 14
}

// ticks sums fields of a stat line, in clock ticks (USER_HZ, 100 a second).
func ticks(f []string, idx ...int) time.Duration {
	var n int64
	for _, i := range idx {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		n += v
	}
	return time.Duration(n) * 10 * time.Millisecond
}

func (m *cpuMeter) read() (self, db time.Duration, ok bool) {
	if m.postmaster == 0 {
		return 0, 0, false
	}
	f, ok := procStat(os.Getpid())
	if !ok {
		return 0, 0, false
	}
	self = ticks(f, 11, 12)
	if f, ok = procStat(m.postmaster); !ok {
		return 0, 0, false
	}
	db = ticks(f, 11, 12, 13, 14)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, false
	}
	want := strconv.Itoa(m.postmaster)
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if f, ok := procStat(pid); ok && f[1] == want {
			db += ticks(f, 11, 12)
		}
	}
	return self, db, true
}
