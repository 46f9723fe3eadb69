package http_test

import (
	"context"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testenv"
	"github.com/voxanne/voxanne/jobs"
	"github.com/voxanne/voxanne/postgres"
)

// requeued stands in for River's client in processing run by a test: a batch
// that sets another event aside asks it for a job, which the test fails on.
type requeued struct{ ids []int64 }

func (q *requeued) InsertMany(_ context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	for _, p := range params {
		q.ids = append(q.ids, p.Args.(voxanne.ProcessEventArgs).EventID)
	}
	return make([]*rivertype.JobInsertResult, len(params)), nil
}

func (q *requeued) JobDeleteMany(context.Context, *river.JobDeleteManyParams) (*river.JobDeleteManyResult, error) {
	return &river.JobDeleteManyResult{}, nil
}

// ingestWorld is an org with its own Vapi endpoint, whose stored events a
// test processes itself (no job workers run).
type ingestWorld struct {
	e            *testenv.Env
	org          string
	path, secret string
	proc         *jobs.Processor
	queue        *requeued
}

func newIngestWorld(tb testing.TB) *ingestWorld {
	e := testenv.New(tb, testenv.Options{NoJobWorkers: true})
	owner := e.SignUp("ingest@example.com")
	r := e.DoFor(tb, "POST", "/api/org/webhook-endpoints", map[string]any{"provider": "vapi"}, testenv.Bearer(owner.AccessToken)...)
	if r.Status != 201 {
		tb.Fatalf("create endpoint: %d %s", r.Status, r.Body)
	}
	ep := r.JSON(tb)
	u, err := url.Parse(ep["url"].(string))
	if err != nil {
		tb.Fatal(err)
	}
	q := &requeued{}
	return &ingestWorld{e: e, org: owner.OrgID(), path: u.Path, secret: ep["secret"].(string),
		proc: &jobs.Processor{Store: postgres.NewEventStore(e.DB), Queue: q}, queue: q}
}

// deliver posts a signed Vapi body to the org's endpoint and returns the status.
func (w *ingestWorld) deliver(t *testing.T, body []byte) *testenv.Response {
	t.Helper()
	return w.e.DoFor(t, "POST", w.path, body, "X-Vapi-Secret", w.secret, "Content-Type", "application/json")
}

// processPending processes every pending event of the org, each on its
// first attempt, and fails the test on any that does not end processed.
func (w *ingestWorld) processPending(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	rows, err := w.e.Query(ctx, `select id from webhook_events where org_id = $1 and status = 'pending' order by id`, w.org)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range pending {
		if err := w.proc.ProcessEvent(ctx, voxanne.ProcessEventArgs{EventID: id, OrgID: w.org}); err != nil {
			t.Fatalf("acknowledged event %d failed processing: %v", id, err)
		}
		var status string
		if err := w.e.QueryRow(ctx, `select status from webhook_events where id = $1`, id).Scan(&status); err != nil || status != "processed" {
			t.Fatalf("event %d is %q after processing (%v)", id, status, err)
		}
	}
	if len(w.queue.ids) > 0 {
		t.Fatalf("processing set events %v aside", w.queue.ids)
	}
}

// Every acknowledged event can be processed: a generated Vapi body, signed
// with an org endpoint's secret (so every stored event belongs to the org),
// is either refused at ingestion with a 4xx, or acknowledged and then
// processed on its first attempt. Regression cases live in
// testdata/fuzz/FuzzVapiIngestAndProcess (a cost of 1e8 once failed every
// attempt with numeric field overflow); go test replays them. Fuzz with
//
//	go test -run '^$' -fuzz FuzzVapiIngestAndProcess -fuzzminimizetime 10x -parallel 1 ./http/
//
// (each worker runs its own PostgreSQL; minimizing every new input for the
// default 60 s restarts workers and leaves little time to fuzz: 38,766 inputs
// in 2 minutes with 10x, a handful without). A worker ended by the fuzzer
// leaves its cluster running: stop the postgres processes whose data directory
// is /tmp/voxanne-test-*.
func FuzzVapiIngestAndProcess(f *testing.F) {
	for _, name := range []string{"../webhook/testdata/vapi-end-of-call-report.json", "../webhook/testdata/vapi-status-update.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	w := newIngestWorld(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := w.deliver(t, body)
		if r.Status >= 400 && r.Status < 500 {
			return // refused at ingestion: the sender is told, nothing is stored
		}
		if r.Status != 200 {
			t.Fatalf("ingestion answered %d: %s", r.Status, r.Body)
		}
		w.processPending(t)
	})
}

// Values the columns cannot hold are stored as unknown and the call appears;
// the raw event keeps them. A number jsonb cannot hold is refused with a 400.
func TestOutOfRangeValuesAreStoredAsUnknown(t *testing.T) {
	t.Parallel()
	w := newIngestWorld(t)
	body := []byte(`{"message":{"type":"end-of-call-report","call":{"id":"call-overflow"},"cost":100000000,
		"startedAt":"0001-01-01T00:00:00Z","endedAt":"9999-12-31T23:59:59Z","timestamp":9e15}}`)
	if r := w.deliver(t, body); r.Status != 200 {
		t.Fatalf("delivery: %d %s", r.Status, r.Body)
	}
	w.processPending(t)
	var cost, duration *float64
	var status, rawCost string
	if err := w.e.QueryRow(context.Background(), `select c.cost_usd::float8, c.duration_seconds, c.status, e.payload->'message'->>'cost'
		from calls c, webhook_events e where c.provider_call_id = 'call-overflow' and e.org_id = c.org_id`).Scan(&cost, &duration, &status, &rawCost); err != nil {
		t.Fatal(err)
	}
	if cost != nil || duration != nil || status != "ended" || rawCost != "100000000" {
		t.Fatalf("cost %v, duration %v, status %s, raw cost %s", cost, duration, status, rawCost)
	}
	r := w.deliver(t, []byte(`{"message":{"type":"end-of-call-report","call":{"id":"call-huge"},"analysis":{"structuredData":{"n":1e200000}}}}`))
	if r.Status != 400 {
		t.Fatalf("unstorable number: %d %s", r.Status, r.Body)
	}
}
