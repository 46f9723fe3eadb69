package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/webhook"
)

// JobInserter enqueues a job inside a caller's transaction (a River client).
type JobInserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// IngestStore stores verified webhook events and processes them into calls,
// messages and contacts. Storing and routing use the service role (an event has
// no org until it is routed); processing runs in the event's org through
// InTenant, under row-level security.
type IngestStore struct {
	db   *DB
	jobs JobInserter
}

var _ voxanne.WebhookService = (*IngestStore)(nil)

// NewIngestStore returns the ingest store; jobs enqueues the processing jobs.
func NewIngestStore(db *DB, jobs JobInserter) *IngestStore { return &IngestStore{db: db, jobs: jobs} }

// SetJobs sets the job inserter (the River client is made after the store, as
// its workers call the store).
func (s *IngestStore) SetJobs(j JobInserter) { s.jobs = j }

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Route finds the org of an event through the phone-number registry (or, for a
// Twilio status callback, the message it is about).
func (s *IngestStore) Route(ctx context.Context, provider string, r voxanne.Route) (voxanne.Routed, error) {
	var out voxanne.Routed
	if r.MessageSid != "" {
		err := s.db.Auth.QueryRow(ctx, `select org_id::text from messages where provider_message_id = $1 limit 1`, r.MessageSid).Scan(&out.OrgID)
		if err == nil {
			return out, nil
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return out, fmt.Errorf("route message: %w", err)
		}
	}
	var assistant *string
	err := s.db.Auth.QueryRow(ctx, `select org_id::text, phone_number_id::text, assistant_id from route_phone_number($1, $2, $3, $4)`,
		provider, nullable(r.ProviderNumberID), nullable(r.AssistantID), nullable(r.E164)).Scan(&out.OrgID, &out.PhoneNumberID, &assistant)
	if errors.Is(err, pgx.ErrNoRows) {
		return voxanne.Routed{}, nil
	} else if err != nil {
		return out, fmt.Errorf("route: %w", err)
	}
	if assistant != nil {
		out.AssistantID = *assistant
	}
	return out, nil
}

// Store routes and stores an event once, enqueuing its job in the same
// transaction; an unroutable event is kept, marked so, and attached to no org.
func (s *IngestStore) Store(ctx context.Context, ev voxanne.InboundEvent) (voxanne.Routed, bool, error) {
	routed, err := s.Route(ctx, ev.Provider, ev.Route)
	if err != nil {
		return routed, false, err
	}
	status := "pending"
	if routed.OrgID == "" {
		status = "unroutable"
	}
	duplicate := false
	err = pgx.BeginFunc(ctx, s.db.Auth, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `insert into webhook_events (provider, event_type, dedup_key, org_id, payload, status)
			values ($1, $2, $3, nullif($4, '')::uuid, $5, $6) on conflict (dedup_key) do nothing returning id`,
			ev.Provider, ev.EventType, ev.DedupKey, routed.OrgID, ev.Payload, status).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			duplicate = true
			return nil
		} else if err != nil {
			return err
		}
		if status != "pending" {
			return nil
		}
		_, err = s.jobs.InsertTx(ctx, tx, voxanne.ProcessEventArgs{EventID: id}, nil)
		return err
	})
	if err != nil {
		return routed, false, fmt.Errorf("store event: %w", err)
	}
	return routed, duplicate, nil
}

// upsertContact finds or creates the contact of number in the org, returning its
// id ("" when the number is not a valid E.164 number).
func (s *IngestStore) upsertContact(ctx context.Context, tx pgx.Tx, p *voxanne.Principal, number, name string, at time.Time) (string, error) {
	e164, ok := webhook.NormalizeE164(number)
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

// ProcessEvent turns a stored event into calls, messages and contacts, in the
// event's org. It is idempotent: a processed event is skipped, and everything it
// writes commits together with marking it processed.
func (s *IngestStore) ProcessEvent(ctx context.Context, id int64) error {
	var (
		provider, typ, status string
		org                   *string
		payload               []byte
	)
	err := s.db.Auth.QueryRow(ctx, `select provider, event_type, status, org_id::text, payload from webhook_events where id = $1`, id).
		Scan(&provider, &typ, &status, &org, &payload)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (status != "pending" || org == nil)) {
		return nil // gone, done already, or never routed
	} else if err != nil {
		return fmt.Errorf("load event %d: %w", id, err)
	}
	p := voxanne.Principal{OrgID: *org, Role: "service_role"}
	return s.db.InTenant(ctx, p, func(tx pgx.Tx) error {
		// Lock the event row through the service role's view of it: a concurrent
		// duplicate job waits, then sees it processed.
		var still string
		if err := tx.QueryRow(ctx, `select status from webhook_events where id = $1 for update`, id).Scan(&still); err != nil {
			return fmt.Errorf("lock event %d: %w", id, err)
		}
		if still != "pending" {
			return nil
		}
		var err error
		switch provider {
		case "vapi":
			err = s.processVapi(ctx, tx, &p, payload)
		case "twilio":
			err = s.processTwilio(ctx, tx, &p, typ, payload)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `update webhook_events set status = 'processed', processed_at = now() where id = $1`, id)
		return err
	})
}

func (s *IngestStore) processVapi(ctx context.Context, tx pgx.Tx, p *voxanne.Principal, payload []byte) error {
	m, err := webhook.ParseVapi(payload)
	if err != nil {
		return fmt.Errorf("decode stored vapi event: %w", err)
	}
	status, rank := "", 0
	switch m.Type {
	case "status-update":
		status = m.Status
		rank = voxanne.CallStatusRank[status]
	case "end-of-call-report":
		status, rank = "ended", voxanne.CallStatusRank["ended"]
	}
	at := m.Timestamp
	if at.IsZero() {
		at = time.Now()
	}
	customer := m.Customer
	if customer.Number == "" {
		customer = m.Call.Customer
	}
	contactID, err := s.upsertContact(ctx, tx, p, customer.Number, customer.Name, at)
	if err != nil {
		return err
	}
	ours := m.PhoneNumber.Number
	from, to := customer.Number, ours
	if m.Direction() == "outbound" {
		from, to = ours, customer.Number
	}
	phoneNumberID, _ := s.numberID(ctx, tx, p, m.PhoneNumberID())
	startedAt, endedAt := m.StartedAt, m.EndedAt
	if startedAt.IsZero() {
		startedAt = m.Call.StartedAt
	}
	if endedAt.IsZero() {
		endedAt = m.Call.EndedAt
	}
	cost := m.Cost
	if cost == nil {
		cost = m.Call.Cost
	}
	var inserted bool
	// A call is created when the provider created it (call.createdAt), so lists
	// and stats follow the calls' own times.
	createdAt := m.Call.CreatedAt
	if createdAt.IsZero() || createdAt.After(time.Now()) {
		createdAt = time.Now()
	}
	err = tx.QueryRow(ctx, `insert into calls (org_id, provider_call_id, direction, status, status_rank, from_number, to_number,
			contact_id, assistant_id, phone_number_id, started_at, ended_at, duration_seconds, ended_reason, cost_usd,
			summary, success_evaluation, transcript, messages, structured_data, recording_url, created_at)
		values ($1, $2, $3, coalesce(nullif($4, ''), 'queued'), $5, $6, $7, nullif($8, '')::uuid, $9, nullif($10, '')::uuid,
			$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
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
			updated_at = now()
		returning (xmax = 0)`,
		p.OrgID, m.CallID(), nullable(m.Direction()), status, rank, nullable(from), nullable(to), contactID,
		nullable(m.AssistantID()), phoneNumberID, timeOrNil(startedAt), timeOrNil(endedAt), m.DurationSeconds(),
		nullable(m.EndedReason), cost, nullable(m.Analysis.Summary), nullable(m.Analysis.SuccessEvaluation),
		nullable(m.Artifact.Transcript), jsonOrNil(m.Artifact.Messages), jsonOrNil(m.Analysis.StructuredData),
		nullable(m.Artifact.RecordingURL), createdAt).Scan(&inserted)
	if err != nil {
		return fmt.Errorf("upsert call: %w", err)
	}
	if inserted && contactID != "" {
		_, err = tx.Exec(ctx, `update contacts set call_count = call_count + 1 where org_id = coalesce($1, org_id) and id = $2`, s.db.org(p), contactID)
	}
	return err
}

// numberID maps a provider's phone-number id to the registry's id in the org.
func (s *IngestStore) numberID(ctx context.Context, tx pgx.Tx, p *voxanne.Principal, providerID string) (string, error) {
	if providerID == "" {
		return "", nil
	}
	var id string
	err := tx.QueryRow(ctx, `select id::text from phone_numbers where org_id = coalesce($1, org_id) and provider_id = $2`, s.db.org(p), providerID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
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

func (s *IngestStore) processTwilio(ctx context.Context, tx pgx.Tx, p *voxanne.Principal, typ string, payload []byte) error {
	var form url.Values
	if err := json.Unmarshal(payload, &form); err != nil {
		return fmt.Errorf("decode stored twilio event: %w", err)
	}
	sms, err := webhook.ParseTwilioSMS(form)
	if err != nil {
		return fmt.Errorf("decode stored twilio event: %w", err)
	}
	now := time.Now()
	if typ == "sms" {
		contactID, err := s.upsertContact(ctx, tx, p, sms.From, "", now)
		if err != nil {
			return err
		}
		media := make([]voxanne.Media, 0, len(sms.Media))
		for _, m := range sms.Media {
			media = append(media, voxanne.Media{URL: m.URL, ContentType: m.ContentType})
		}
		st := sms.MessageStatus
		if st == "" {
			st = "received"
		}
		var inserted bool
		err = tx.QueryRow(ctx, `insert into messages (org_id, provider_message_id, direction, from_number, to_number, body,
				status, status_rank, media, contact_id)
			values ($1, $2, 'inbound', $3, $4, $5, $6, $7, $8, nullif($9, '')::uuid)
			on conflict (org_id, provider_message_id) do nothing returning true`,
			p.OrgID, sms.MessageSid, nullable(sms.From), nullable(sms.To), sms.Body, st, webhook.StatusRank(st), media, contactID).Scan(&inserted)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return fmt.Errorf("insert message: %w", err)
		}
		if contactID != "" {
			_, err = tx.Exec(ctx, `update contacts set message_count = message_count + 1 where org_id = coalesce($1, org_id) and id = $2`, s.db.org(p), contactID)
		}
		return err
	}
	// A status callback: move the message forward only. A message we have not
	// seen (sent by another system) is recorded as outbound.
	rank := webhook.StatusRank(sms.MessageStatus)
	tag, err := tx.Exec(ctx, `update messages set status = $3, status_rank = $4, updated_at = now()
		where org_id = coalesce($1, org_id) and provider_message_id = $2 and status_rank < $4`,
		s.db.org(p), sms.MessageSid, sms.MessageStatus, rank)
	if err != nil || tag.RowsAffected() > 0 {
		return err
	}
	contactID, err := s.upsertContact(ctx, tx, p, sms.To, "", now)
	if err != nil {
		return err
	}
	var inserted bool
	err = tx.QueryRow(ctx, `insert into messages (org_id, provider_message_id, direction, from_number, to_number, body, status, status_rank, contact_id)
		values ($1, $2, 'outbound', $3, $4, $5, $6, $7, nullif($8, '')::uuid)
		on conflict (org_id, provider_message_id) do nothing returning true`,
		p.OrgID, sms.MessageSid, nullable(sms.From), nullable(sms.To), sms.Body, sms.MessageStatus, rank, contactID).Scan(&inserted)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	} else if err != nil {
		return fmt.Errorf("insert message: %w", err)
	}
	if contactID != "" {
		_, err = tx.Exec(ctx, `update contacts set message_count = message_count + 1 where org_id = coalesce($1, org_id) and id = $2`, s.db.org(p), contactID)
	}
	return err
}

// JobCounts counts background jobs by state.
func (s *IngestStore) JobCounts(ctx context.Context) (voxanne.JobCounts, error) {
	var c voxanne.JobCounts
	err := s.db.Auth.QueryRow(ctx, `select
		count(*) filter (where state in ('available', 'scheduled', 'pending')),
		count(*) filter (where state = 'running'),
		count(*) filter (where state = 'retryable'),
		count(*) filter (where state = 'discarded')
		from river_job`).Scan(&c.Queued, &c.Running, &c.Retrying, &c.Discarded)
	return c, err
}

// UnroutableCount counts events that matched no org.
func (s *IngestStore) UnroutableCount(ctx context.Context) (int, error) {
	var n int
	err := s.db.Auth.QueryRow(ctx, `select count(*) from webhook_events where status = 'unroutable'`).Scan(&n)
	return n, err
}
