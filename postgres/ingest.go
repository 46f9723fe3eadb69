package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
)

// EnqueueFunc enqueues the processing job of a stored event inside the
// transaction that stored it, returning the job's id (the job runner's
// EnqueueTx).
type EnqueueFunc func(ctx context.Context, tx pgx.Tx, job voxanne.ProcessEventArgs) (jobID int64, err error)

// IngestStore stores verified webhook events, each with its processing job,
// routes them and answers the synchronous requests. Storing and routing use
// the service role (an event has no org until it is routed). Processing the
// stored events is the jobs package's, on EventStore.
type IngestStore struct {
	db      *DB
	enqueue EnqueueFunc
}

var _ voxanne.WebhookService = (*IngestStore)(nil)

// NewIngestStore returns the ingest store; enqueue enqueues the processing
// jobs.
func NewIngestStore(db *DB, enqueue EnqueueFunc) *IngestStore {
	return &IngestStore{db: db, enqueue: enqueue}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Route finds the org of an event. On an org's own endpoint (r.OrgID) that org
// is the answer, and the org's own registered numbers say which number and
// assistant the event is about. On the shared endpoints only operator
// assignments route, or for a Twilio status callback the message it is about
// when exactly one org has a message with that sid.
func (s *IngestStore) Route(ctx context.Context, provider string, r voxanne.Route) (voxanne.Routed, error) {
	if r.OrgID != "" {
		return s.routeInOrg(ctx, provider, r)
	}
	var out voxanne.Routed
	if r.MessageSid != "" {
		var orgs []string
		err := s.db.InService(ctx, "route a message status by its sid", func(c Conn) error {
			rows, err := c.Query(ctx, `select distinct org_id::text from messages where provider_message_id = $1 limit 2`, r.MessageSid)
			if err == nil {
				orgs, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			return err
		})
		if err != nil {
			return out, fmt.Errorf("route message: %w", err)
		}
		if len(orgs) == 1 {
			out.OrgID = orgs[0]
			return out, nil
		}
	}
	var assistant, number *string
	err := s.db.InService(ctx, "route a webhook event by number", func(c Conn) error {
		return c.QueryRow(ctx, `select org_id::text, phone_number_id::text, assistant_id from route_phone_number($1, $2, $3, $4)`,
			provider, nullable(r.ProviderNumberID), nullable(r.AssistantID), nullable(r.E164)).Scan(&out.OrgID, &number, &assistant)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return voxanne.Routed{}, nil
	} else if err != nil {
		return out, fmt.Errorf("route: %w", err)
	}
	if assistant != nil {
		out.AssistantID = *assistant
	}
	if number != nil {
		out.PhoneNumberID = *number
	}
	return out, nil
}

// routeInOrg labels an event that arrived on an org's own endpoint with the
// org's registered number that matches it, in that org only.
func (s *IngestStore) routeInOrg(ctx context.Context, provider string, r voxanne.Route) (voxanne.Routed, error) {
	out := voxanne.Routed{OrgID: r.OrgID}
	p := voxanne.Principal{OrgID: r.OrgID, Role: "service_role"}
	err := s.db.InTenant(ctx, p, func(tx pgx.Tx) error {
		var number string
		var assistant *string
		err := tx.QueryRow(ctx, `select id::text, assistant_id from phone_numbers
			where org_id = coalesce($1, org_id) and provider = $2
			  and ((provider_id is not null and provider_id = $3) or e164 = $4 or (assistant_id is not null and assistant_id = $5))
			order by (provider_id is not distinct from $3) desc, (e164 = $4) desc, created_at limit 1`,
			s.db.org(&p), provider, nullable(r.ProviderNumberID), nullable(r.E164), nullable(r.AssistantID)).Scan(&number, &assistant)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		out.PhoneNumberID = number
		if assistant != nil {
			out.AssistantID = *assistant
		} else {
			out.AssistantID = r.AssistantID
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("route in org: %w", err)
	}
	return out, nil
}

// Store routes and stores an event once, enqueuing its job in the same
// transaction; an unroutable event is kept, marked so, and attached to no org.
func (s *IngestStore) Store(ctx context.Context, ev voxanne.InboundEvent) (voxanne.Routed, bool, error) {
	var routed voxanne.Routed
	if ev.Route.OrgID != "" {
		// An org's own endpoint: the event is that org's, whatever it names.
		routed.OrgID = ev.Route.OrgID
	} else if ev.Route.MessageSid != "" {
		// Status callbacks follow their message, which needs its own lookup.
		var err error
		if routed, err = s.Route(ctx, ev.Provider, ev.Route); err != nil {
			return routed, false, err
		}
	}
	var event []byte
	if ev.Event != nil {
		var err error
		if event, err = json.Marshal(ev.Event); err != nil {
			return voxanne.Routed{}, false, fmt.Errorf("store event: %w", err)
		}
	}
	duplicate := false
	err := s.db.InService(ctx, "store a webhook event", func(c Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			var id int64
			var org *string
			// Routing happens inside the insert (one round trip fewer per event).
			err := tx.QueryRow(ctx, `insert into webhook_events (provider, event_type, dedup_key, org_id, payload, event, status)
			select $1, $2, $3, o.org_id, $4, $9, case when o.org_id is null then 'unroutable' else 'pending' end
			from (select coalesce(nullif($5, '')::uuid, (select org_id from route_phone_number($1, $6, $7, $8))) as org_id) o
			on conflict (dedup_key) do nothing returning id, org_id::text`,
				ev.Provider, ev.EventType, ev.DedupKey, ev.Payload, routed.OrgID,
				nullable(ev.Route.ProviderNumberID), nullable(ev.Route.AssistantID), nullable(ev.Route.E164), event).Scan(&id, &org)
			if errors.Is(err, pgx.ErrNoRows) {
				duplicate = true
				return nil
			} else if err != nil {
				return err
			}
			if org == nil {
				return nil // unroutable: kept, attached to no org, never processed
			}
			routed.OrgID = *org
			jobID, err := s.enqueue(ctx, tx, voxanne.ProcessEventArgs{EventID: id, OrgID: routed.OrgID})
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `update webhook_events set job_id = $2 where id = $1`, id, jobID)
			return err
		})
	})
	if err != nil {
		return voxanne.Routed{}, false, fmt.Errorf("store event: %w", err)
	}
	if duplicate {
		// Report the org the stored copy was routed to.
		var org *string
		err := s.db.InService(ctx, "find a duplicate event's organization", func(c Conn) error {
			return c.QueryRow(ctx, `select org_id::text from webhook_events where dedup_key = $1`, ev.DedupKey).Scan(&org)
		})
		if err == nil && org != nil {
			routed.OrgID = *org
		}
	}
	return routed, duplicate, nil
}

// upsertContact finds or creates the contact of number in the org, returning its
// id ("" when the number is not a valid E.164 number).
func (s *IngestStore) upsertContact(ctx context.Context, tx pgx.Tx, p *voxanne.Principal, number, name string, at time.Time) (string, error) {
	e164, ok := voxanne.NormalizeE164(number)
	if !ok {
		return "", nil
	}
	var id string
	err := tx.QueryRow(ctx, `insert into contacts (org_id, phone_number, name, first_seen_at, last_seen_at)
		values ($1, $2, nullif($3, ''), $4, $4)
		on conflict (org_id, phone_number) do update set
			name = coalesce(contacts.name, excluded.name),
			first_seen_at = least(contacts.first_seen_at, excluded.first_seen_at),
			last_seen_at = greatest(contacts.last_seen_at, excluded.last_seen_at),
			updated_at = now()
		returning id::text`, p.OrgID, e164, name, at).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("upsert contact: %w", err)
	}
	return id, nil
}

// TakeMessage appends a caller's message to their contact's notes.
func (s *IngestStore) TakeMessage(ctx context.Context, org voxanne.Routed, callerNumber, name, message string) error {
	p := voxanne.Principal{OrgID: org.OrgID, Role: "service_role"}
	return s.db.InTenant(ctx, p, func(tx pgx.Tx) error {
		id, err := s.upsertContact(ctx, tx, &p, callerNumber, name, time.Now())
		if err != nil {
			return err
		}
		if id == "" {
			return voxanne.Errorf(voxanne.EINVALID, "no valid caller phone number")
		}
		note := fmt.Sprintf("[%s] %s", time.Now().UTC().Format(time.RFC3339), strings.TrimSpace(message))
		if name != "" {
			note = fmt.Sprintf("[%s] %s: %s", time.Now().UTC().Format(time.RFC3339), name, strings.TrimSpace(message))
		}
		_, err = tx.Exec(ctx, `update contacts set notes = case when notes = '' then $3 else notes || E'\n' || $3 end,
			updated_at = now() where org_id = coalesce($1, org_id) and id = $2`, s.db.org(&p), id, note)
		return err
	})
}

// batchSize bounds how many pending events of one org a batch takes along.
const batchSize = 200

// EventStore is the storage side of event processing: it loads an org's
// pending events in batches and writes what processing makes of them, in the
// org through InTenant, under row-level security. What an event does to calls,
// messages and contacts is decided by its caller (the jobs package).
type EventStore struct{ db *DB }

// NewEventStore returns the event store.
func NewEventStore(db *DB) *EventStore { return &EventStore{db: db} }

// EventOrg returns the org of a stored event ("" when it has none or does not
// exist): for jobs enqueued before the org travelled with them.
func (s *EventStore) EventOrg(ctx context.Context, id int64) (string, error) {
	var org *string
	err := s.db.InService(ctx, "find a stored event's organization", func(c Conn) error {
		return c.QueryRow(ctx, `select org_id::text from webhook_events where id = $1`, id).Scan(&org)
	})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && org == nil) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("load event %d: %w", id, err)
	}
	return *org, nil
}

// EventPending reports whether a stored event still waits to be processed.
// Under load most jobs find their event already done by an earlier batch: a
// single read answers that without a transaction or the org's lock.
func (s *EventStore) EventPending(ctx context.Context, id int64) (bool, error) {
	var pending bool
	err := s.db.InService(ctx, "check whether an event is pending", func(c Conn) error {
		return c.QueryRow(ctx, `select status = 'pending' from webhook_events where id = $1`, id).Scan(&pending)
	})
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		return false, fmt.Errorf("load event %d: %w", id, err)
	}
	return pending, nil
}

// ProcessBatch processes event eventID of org together with up to
// batchSize-1 other pending events of that org, in one transaction whose
// statements are sent in one pipeline: under load, many small transactions
// become few large ones. apply turns each event into writes. If the batch
// fails, each event is retried alone in a savepoint, so a bad one is rolled
// back by itself, counted (attempts, last_error) and left pending; the result
// names the failing events and the jobs made redundant, for the job queue.
// Each event is marked processed in the same transaction as what it wrote. It
// returns voxanne.ErrBusy when another batch of the org is running.
func (s *EventStore) ProcessBatch(ctx context.Context, orgID string, eventID int64, apply voxanne.EventApplier) (voxanne.BatchResult, error) {
	p := voxanne.Principal{OrgID: orgID, Role: "service_role"}
	var res voxanne.BatchResult
	err := s.db.InTenant(ctx, p, func(tx pgx.Tx) error {
		// One batch per org at a time: batches of one org touch the same contacts
		// and calls, and taking their row locks in event order would deadlock.
		// Jobs of other orgs run in parallel; a job that found the org busy comes
		// back shortly and usually finds its event processed by that batch.
		var locked bool
		if err := tx.QueryRow(ctx, `select pg_try_advisory_xact_lock(hashtextextended($1, 7))`, orgID).Scan(&locked); err != nil {
			return err
		}
		if !locked {
			// Waiting here would hold a connection idle: let the job come back.
			return voxanne.ErrBusy
		}
		// This commit need not wait for its WAL flush: River records the job done
		// only afterwards, in a synchronous commit whose flush covers this one
		// (WAL is flushed in order). A crash before that reruns the job, and
		// processing is idempotent. The events themselves were stored with a
		// synchronous commit before they were acknowledged.
		if _, err := tx.Exec(ctx, `set local synchronous_commit = off`); err != nil {
			return err
		}
		// The raw payload is read only for events stored without their decoded
		// event (before it was kept).
		rows, err := tx.Query(ctx, `select id, provider, event_type, event, case when event is null then payload end,
				coalesce(job_id, 0) from webhook_events
			where org_id = coalesce($1, org_id) and status = 'pending' and (id = $2 or attempts = 0)
			order by id limit $3`, s.db.org(&p), eventID, batchSize)
		if err != nil {
			return err
		}
		events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pendingEvent, error) {
			var e pendingEvent
			var event []byte
			err := r.Scan(&e.ID, &e.Provider, &e.Type, &event, &e.Payload, &e.jobID)
			if err == nil && event != nil {
				e.Event = new(voxanne.Event)
				if jerr := json.Unmarshal(event, e.Event); jerr != nil {
					// Left to apply, which decodes the payload instead.
					e.Event = nil
					e.Payload = nil
				}
			}
			return e, err
		})
		if err != nil || len(events) == 0 {
			return err
		}
		// Fast path: the whole batch in one pipeline.
		if err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { return s.runEvents(ctx, sp, &p, events, apply) }); err == nil {
			for _, e := range events {
				if e.ID != eventID && e.jobID != 0 {
					res.Redundant = append(res.Redundant, e.jobID)
				}
			}
			return nil
		}
		// Slow path: one savepoint per event, to find and set aside the bad ones.
		for _, e := range events {
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { return s.runEvents(ctx, sp, &p, []pendingEvent{e}, apply) })
			if err == nil {
				continue
			}
			if _, uerr := tx.Exec(ctx, `update webhook_events set attempts = attempts + 1, last_error = left($3, 2000)
				where org_id = coalesce($1, org_id) and id = $2`, s.db.org(&p), e.ID, err.Error()); uerr != nil {
				return uerr
			}
			if e.ID == eventID {
				res.Err = fmt.Errorf("process event %d: %w", e.ID, err)
			} else {
				res.Retry = append(res.Retry, e.ID)
			}
		}
		return nil
	})
	if err != nil {
		return voxanne.BatchResult{}, err
	}
	return res, nil
}

// pendingEvent is a stored event waiting to be processed, with its job.
type pendingEvent struct {
	voxanne.StoredEvent
	jobID int64
}

// eventBatch collects the statements of a batch of events (the
// voxanne.EventWrites processing fills). Contacts are upserted once per batch,
// before the statements that refer to them, and in number order; their call
// and message counts are recounted once at the end.
type eventBatch struct {
	db       *DB
	p        *voxanne.Principal
	stmts    pgx.Batch
	contacts map[string]*batchContact
}

var _ voxanne.EventWrites = (*eventBatch)(nil)

type batchContact struct {
	name        string
	first, last time.Time
}

// Contact notes the contact of the E.164 number e164.
func (b *eventBatch) Contact(e164, name string, at time.Time) {
	c := b.contacts[e164]
	if c == nil {
		c = &batchContact{first: at, last: at}
		b.contacts[e164] = c
	}
	if c.name == "" {
		c.name = name
	}
	if at.Before(c.first) {
		c.first = at
	}
	if at.After(c.last) {
		c.last = at
	}
}

// runEvents applies events, sends every statement they made, and marks them
// processed, in one pipeline.
func (s *EventStore) runEvents(ctx context.Context, tx pgx.Tx, p *voxanne.Principal, events []pendingEvent, apply voxanne.EventApplier) error {
	b := &eventBatch{db: s.db, p: p, contacts: map[string]*batchContact{}}
	ids := make([]int64, 0, len(events))
	for _, e := range events {
		if err := apply(ctx, b, e.StoredEvent); err != nil {
			return fmt.Errorf("event %d: %w", e.ID, err)
		}
		ids = append(ids, e.ID)
	}
	numbers := make([]string, 0, len(b.contacts))
	for n := range b.contacts {
		numbers = append(numbers, n)
	}
	sort.Strings(numbers)
	all := &pgx.Batch{}
	for _, n := range numbers {
		c := b.contacts[n]
		all.Queue(`insert into contacts (org_id, phone_number, name, first_seen_at, last_seen_at)
			values ($1, $2, nullif($3, ''), $4, $5)
			on conflict (org_id, phone_number) do update set
				name = coalesce(contacts.name, excluded.name),
				first_seen_at = least(contacts.first_seen_at, excluded.first_seen_at),
				last_seen_at = greatest(contacts.last_seen_at, excluded.last_seen_at),
				updated_at = now()`, p.OrgID, n, c.name, c.first, c.last)
	}
	all.QueuedQueries = append(all.QueuedQueries, b.stmts.QueuedQueries...)
	if len(numbers) > 0 {
		// Counting rather than incrementing keeps the counts right whatever
		// happened before, for one statement per batch.
		all.Queue(`update contacts c set
				call_count = (select count(*) from calls where org_id = c.org_id and contact_id = c.id),
				message_count = (select count(*) from messages where org_id = c.org_id and contact_id = c.id)
			where c.org_id = coalesce($1, c.org_id) and c.phone_number = any($2)`, s.db.org(p), numbers)
	}
	all.Queue(`update webhook_events set status = 'processed', processed_at = now()
		where org_id = coalesce($1, org_id) and id = any($2)`, s.db.org(p), ids)
	return tx.SendBatch(ctx, all).Close()
}

// contactOf finds a contact by number inside a statement (contacts are
// upserted first in a batch).
const contactOf = `(select id from contacts where org_id = coalesce($1, org_id) and phone_number = $%d)`

// UpsertCall queues the upsert of a call; it never moves the call back to an
// earlier status.
func (b *eventBatch) UpsertCall(c voxanne.CallWrite) {
	b.stmts.Queue(fmt.Sprintf(`insert into calls (org_id, provider_call_id, direction, status, status_rank, from_number, to_number,
			contact_id, assistant_id, phone_number_id, started_at, ended_at, duration_seconds, ended_reason, cost_usd,
			summary, success_evaluation, transcript, messages, structured_data, recording_url, created_at)
		values ($2, $3, $4, coalesce(nullif($5, ''), 'queued'), $6, $7, $8, `+contactOf+`, $10,
			(select id from phone_numbers where org_id = coalesce($1, org_id) and provider_id = $11),
			$12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
		on conflict (org_id, provider_call_id) do update set
			status = case when excluded.status_rank > calls.status_rank then excluded.status else calls.status end,
			status_rank = greatest(calls.status_rank, excluded.status_rank),
			direction = coalesce(calls.direction, excluded.direction),
			from_number = coalesce(calls.from_number, excluded.from_number),
			to_number = coalesce(calls.to_number, excluded.to_number),
			contact_id = coalesce(calls.contact_id, excluded.contact_id),
			assistant_id = coalesce(calls.assistant_id, excluded.assistant_id),
			phone_number_id = coalesce(calls.phone_number_id, excluded.phone_number_id),
			started_at = least(calls.started_at, excluded.started_at),
			ended_at = greatest(calls.ended_at, excluded.ended_at),
			duration_seconds = coalesce(excluded.duration_seconds, calls.duration_seconds),
			ended_reason = coalesce(excluded.ended_reason, calls.ended_reason),
			cost_usd = coalesce(excluded.cost_usd, calls.cost_usd),
			summary = coalesce(excluded.summary, calls.summary),
			success_evaluation = coalesce(excluded.success_evaluation, calls.success_evaluation),
			transcript = coalesce(excluded.transcript, calls.transcript),
			messages = coalesce(excluded.messages, calls.messages),
			structured_data = coalesce(excluded.structured_data, calls.structured_data),
			recording_url = coalesce(excluded.recording_url, calls.recording_url),
			updated_at = now()`, 9),
		b.db.org(b.p), b.p.OrgID, c.ProviderCallID, nullable(c.Direction), c.Status, c.StatusRank, nullable(c.From), nullable(c.To),
		c.ContactNumber, nullable(c.AssistantID), c.ProviderPhoneNumberID, timeOrNil(c.StartedAt), timeOrNil(c.EndedAt),
		c.DurationSeconds, nullable(c.EndedReason), c.CostUSD, nullable(c.Summary), nullable(c.SuccessEvaluation),
		nullable(c.Transcript), jsonOrNil(c.Messages), jsonOrNil(c.StructuredData),
		nullable(c.RecordingURL), c.CreatedAt)
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func jsonOrNil(b json.RawMessage) any {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	return b
}

// insertMessage inserts a message once; $1 is the org filter, $2 the org, $3
// the sid, $4 direction, $5 from, $6 to, $7 body, $8 status, $9 its rank, $10
// media, $11 the contact's number.
const insertMessage = `insert into messages (org_id, provider_message_id, direction, from_number, to_number, body,
		status, status_rank, media, contact_id)
	values ($2, $3, $4, $5, $6, $7, $8, $9, $10,
		(select id from contacts where org_id = coalesce($1, org_id) and phone_number = $11))
	on conflict (org_id, provider_message_id) do nothing`

// InsertMessage queues the insert of a message unless its id is known.
func (b *eventBatch) InsertMessage(m voxanne.MessageWrite) {
	media := m.Media
	if media == nil {
		media = []voxanne.Media{}
	}
	b.stmts.Queue(insertMessage, b.db.org(b.p), b.p.OrgID, m.ProviderMessageID, m.Direction, nullable(m.From), nullable(m.To),
		m.Body, m.Status, m.StatusRank, media, m.ContactNumber)
}

// AdvanceMessage queues moving a message forward to status.
func (b *eventBatch) AdvanceMessage(sid, status string, rank int) {
	b.stmts.Queue(`update messages set status = $3, status_rank = $4, updated_at = now()
		where org_id = coalesce($1, org_id) and provider_message_id = $2 and status_rank < $4`,
		b.db.org(b.p), sid, status, rank)
}

// JobCounts counts background jobs by state.
func (s *IngestStore) JobCounts(ctx context.Context) (voxanne.JobCounts, error) {
	var c voxanne.JobCounts
	var oldest float64
	err := s.db.InService(ctx, "count jobs", func(q Conn) error {
		return q.QueryRow(ctx, `select
		count(*) filter (where state in ('available', 'scheduled', 'pending')),
		count(*) filter (where state = 'running'),
		count(*) filter (where state = 'retryable'),
		count(*) filter (where state = 'discarded'),
		coalesce(extract(epoch from now() - min(scheduled_at) filter (where state = 'available')), 0)::float8
		from river_job`).Scan(&c.Queued, &c.Running, &c.Retrying, &c.Discarded, &oldest)
	})
	c.OldestQueued = time.Duration(max(oldest, 0) * float64(time.Second))
	return c, err
}

// UnroutableCount counts events that matched no org.
func (s *IngestStore) UnroutableCount(ctx context.Context) (int, error) {
	var n int
	err := s.db.InService(ctx, "count unroutable events", func(c Conn) error {
		return c.QueryRow(ctx, `select count(*) from webhook_events where status = 'unroutable'`).Scan(&n)
	})
	return n, err
}
