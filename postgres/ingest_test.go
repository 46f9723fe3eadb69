package postgres_test

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/jobs"
	"github.com/voxanne/voxanne/postgres"
)

// jobRecorder stands in for River's client: it records the jobs enqueued.
type jobRecorder struct{ args []voxanne.ProcessEventArgs }

func (j *jobRecorder) InsertMany(_ context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	var out []*rivertype.JobInsertResult
	for _, p := range params {
		j.args = append(j.args, p.Args.(voxanne.ProcessEventArgs))
		out = append(out, &rivertype.JobInsertResult{Job: &rivertype.JobRow{ID: int64(len(j.args))}})
	}
	return out, nil
}

func (j *jobRecorder) JobDeleteMany(context.Context, *river.JobDeleteManyParams) (*river.JobDeleteManyResult, error) {
	return &river.JobDeleteManyResult{}, nil
}

// A bad event in a batch is set aside alone: the good ones commit, the bad one
// records its attempt and error and gets a job of its own to retry it. Both
// events were stored without a decoded event (as before ingestion kept one),
// so processing decodes their payloads.
func TestBatchSetsABadEventAside(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	_, org := signUp(t, db, "ingest@example.com")
	if _, err := postgres.OwnerPool(db).Exec(ctx, `insert into phone_numbers (org_id, e164, provider) values ($1, '+14155550199', 'twilio')`, org); err != nil {
		t.Fatal(err)
	}
	queue := &jobRecorder{}
	s := &jobs.Processor{Store: postgres.NewEventStore(db), Queue: queue}
	good := url.Values{"MessageSid": {"SMgood"}, "From": {"+14155551234"}, "To": {"+14155550199"}, "Body": {"hi"}}
	goodJSON, _ := jsonOf(good)
	var goodID, badID int64
	if err := postgres.OwnerPool(db).QueryRow(ctx, `insert into webhook_events (provider, event_type, dedup_key, org_id, payload)
		values ('twilio', 'sms', 'bad', $1, '"not a form"') returning id`, org).Scan(&badID); err != nil {
		t.Fatal(err)
	}
	if err := postgres.OwnerPool(db).QueryRow(ctx, `insert into webhook_events (provider, event_type, dedup_key, org_id, payload)
		values ('twilio', 'sms', 'good', $1, $2) returning id`, org, goodJSON).Scan(&goodID); err != nil {
		t.Fatal(err)
	}
	// The good event's job takes the bad one along in its batch.
	if err := s.ProcessEvent(ctx, voxanne.ProcessEventArgs{EventID: goodID, OrgID: org}); err != nil {
		t.Fatalf("the good event's job failed: %v", err)
	}
	var goodStatus, badStatus string
	var attempts int
	var lastErr *string
	if err := postgres.OwnerPool(db).QueryRow(ctx, `select (select status from webhook_events where id = $1),
		status, attempts, last_error from webhook_events where id = $2`, goodID, badID).Scan(&goodStatus, &badStatus, &attempts, &lastErr); err != nil {
		t.Fatal(err)
	}
	if goodStatus != "processed" || badStatus != "pending" || attempts != 1 || lastErr == nil {
		t.Fatalf("good %s, bad %s attempts %d error %v", goodStatus, badStatus, attempts, lastErr)
	}
	if len(queue.args) != 1 || queue.args[0].EventID != badID {
		t.Fatalf("requeued %+v, want a job for the bad event", queue.args)
	}
	var n int
	if err := postgres.OwnerPool(db).QueryRow(ctx, `select count(*) from messages where provider_message_id = 'SMgood'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("good message stored %d times (%v)", n, err)
	}
	// Its own job then fails, for River to retry with backoff.
	if err := s.ProcessEvent(ctx, voxanne.ProcessEventArgs{EventID: badID, OrgID: org}); err == nil {
		t.Fatal("the bad event's own job succeeded")
	}
}

func jsonOf(v any) ([]byte, error) { return json.Marshal(v) }

// Processing reads the event decoded at ingestion, not the raw payload: an
// event whose payload could not be decoded again is processed all the same.
func TestProcessingReadsTheDecodedEvent(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	_, org := signUp(t, db, "decoded@example.com")
	ev, err := json.Marshal(voxanne.Event{Message: &voxanne.MessageEvent{Kind: "sms", ProviderMessageID: "SMdecoded",
		From: "(415) 555-1234", To: "+14155550199", Body: "hello", Status: "received", StatusRank: 7, Media: []voxanne.Media{}}})
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := postgres.OwnerPool(db).QueryRow(ctx, `insert into webhook_events (provider, event_type, dedup_key, org_id, payload, event)
		values ('twilio', 'sms', 'decoded', $1, '"not a form"', $2) returning id`, org, ev).Scan(&id); err != nil {
		t.Fatal(err)
	}
	p := &jobs.Processor{Store: postgres.NewEventStore(db), Queue: &jobRecorder{}}
	if err := p.ProcessEvent(ctx, voxanne.ProcessEventArgs{EventID: id, OrgID: org}); err != nil {
		t.Fatal(err)
	}
	var body, contact string
	if err := postgres.OwnerPool(db).QueryRow(ctx, `select m.body, c.phone_number from messages m join contacts c on c.id = m.contact_id
		where m.provider_message_id = 'SMdecoded'`).Scan(&body, &contact); err != nil {
		t.Fatal(err)
	}
	if body != "hello" || contact != "+14155551234" {
		t.Fatalf("message %q from contact %q", body, contact)
	}
}

// River runs on its own role: it owns nothing, reaches no tenant or auth
// table, and works jobs (fetch, complete, leadership) with River's tables only.
func TestRiverRunsOnItsOwnRole(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	var owned int
	var super, tenant, auth, job, seq bool
	if err := postgres.OwnerPool(db).QueryRow(ctx, `select
			(select count(*) from pg_class c join pg_roles r on r.oid = c.relowner where r.rolname = $1),
			(select rolsuper or rolbypassrls from pg_roles where rolname = $1),
			has_table_privilege($1, 'calls', 'select'), has_table_privilege($1, 'auth.users', 'select'),
			has_table_privilege($1, 'river_job', 'insert'), has_sequence_privilege($1, 'river_job_id_seq', 'usage')`,
		postgres.RiverRole).Scan(&owned, &super, &tenant, &auth, &job, &seq); err != nil {
		t.Fatal(err)
	}
	if owned != 0 || super || tenant || auth || !job || !seq {
		t.Fatalf("river role: owns %d, super %v, calls %v, auth.users %v, river_job %v, sequence %v", owned, super, tenant, auth, job, seq)
	}
	done := make(chan voxanne.ProcessEventArgs, 1)
	runner, err := jobs.New(db.RiverDriver(), processorFunc(func(_ context.Context, job voxanne.ProcessEventArgs) error {
		done <- job
		return nil
	}), jobs.Config{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- runner.Run(runCtx) }()
	defer func() { stop(); <-stopped }()
	if _, err := runner.Insert(ctx, voxanne.ProcessEventArgs{EventID: 42}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case job := <-done:
		if job.EventID != 42 {
			t.Fatalf("worked %+v", job)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the job was not worked")
	}
	var n int
	if err := postgres.OwnerPool(db).QueryRow(ctx, `select count(*) from pg_stat_activity where usename = $1 and datname = current_database()`,
		postgres.RiverRole).Scan(&n); err != nil || n == 0 {
		t.Fatalf("%d connections of the river role (%v)", n, err)
	}
}

type processorFunc func(ctx context.Context, job voxanne.ProcessEventArgs) error

func (f processorFunc) ProcessEvent(ctx context.Context, job voxanne.ProcessEventArgs) error {
	return f(ctx, job)
}
