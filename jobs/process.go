package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/webhook"
)

// EventStore is the storage processing works on (postgres.EventStore): it
// loads an org's pending events in batches, runs them in one transaction and
// writes what Processor makes of them.
type EventStore interface {
	// EventOrg returns the org of a stored event, "" when none.
	EventOrg(ctx context.Context, id int64) (string, error)
	// EventPending reports whether the event still waits to be processed.
	EventPending(ctx context.Context, id int64) (bool, error)
	// ProcessBatch processes the event with other pending events of the org,
	// each turned into writes by apply; voxanne.ErrBusy when the org's batch
	// is taken.
	ProcessBatch(ctx context.Context, orgID string, eventID int64, apply voxanne.EventApplier) (voxanne.BatchResult, error)
}

// Queue is what processing asks of the job queue (River's client): a job for
// each event a batch set aside as failing, and dropping the jobs a batch made
// redundant.
type Queue interface {
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	JobDeleteMany(ctx context.Context, params *river.JobDeleteManyParams) (*river.JobDeleteManyResult, error)
}

// Processor turns stored webhook events into calls, messages and contacts:
// the one place that decides what a status-update, end-of-call-report or
// hang (Vapi) and an SMS or status callback (Twilio) do. It is the event
// worker's EventProcessor.
type Processor struct {
	Store EventStore
	// Queue is the job queue; unset, it is the River client running the job.
	Queue Queue
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// ProcessEvent processes a stored event together with other pending events
// of its org (see EventStore.ProcessBatch). Processing is idempotent: a
// processed event is skipped, and an event is marked processed in the same
// transaction as what it wrote. A failing event of the batch other than the
// job's own gets a job of its own, retried with River's backoff.
func (p *Processor) ProcessEvent(ctx context.Context, job voxanne.ProcessEventArgs) error {
	if job.OrgID == "" {
		// Jobs enqueued before the org travelled with them.
		org, err := p.Store.EventOrg(ctx, job.EventID)
		if err != nil || org == "" {
			return err
		}
		job.OrgID = org
	}
	if pending, err := p.Store.EventPending(ctx, job.EventID); err != nil || !pending {
		return err
	}
	res, err := p.Store.ProcessBatch(ctx, job.OrgID, job.EventID, p.apply)
	if err != nil {
		return err
	}
	q := p.Queue
	if q == nil && (len(res.Retry) > 0 || len(res.Redundant) > 0) {
		c, err := river.ClientFromContextSafely[pgx.Tx](ctx)
		if err != nil {
			return fmt.Errorf("process event %d: no job queue: %w", job.EventID, err)
		}
		q = c
	}
	if len(res.Retry) > 0 {
		// The failing events' own jobs may have finished already (as no-ops while
		// the batch held them): make sure each has one that retries it.
		params := make([]river.InsertManyParams, 0, len(res.Retry))
		for _, id := range res.Retry {
			params = append(params, river.InsertManyParams{Args: voxanne.ProcessEventArgs{EventID: id, OrgID: job.OrgID}})
		}
		if _, err := q.InsertMany(ctx, params); err != nil {
			return fmt.Errorf("requeue failing events: %w", err)
		}
	}
	if len(res.Redundant) > 0 {
		// The other events' jobs have nothing left to do: drop those not yet
		// started, so the queue does not churn through no-ops. Best effort: a job
		// left behind finds its event processed and ends at once.
		_, _ = q.JobDeleteMany(ctx, river.NewJobDeleteManyParams().IDs(res.Redundant...).First(len(res.Redundant)).
			States(rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStateRetryable))
	}
	return res.Err
}

func (p *Processor) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// apply turns one stored event into writes. An event stored before ingestion
// kept the decoded event is decoded from its payload here.
func (p *Processor) apply(_ context.Context, w voxanne.EventWrites, e voxanne.StoredEvent) error {
	ev := e.Event
	if ev == nil {
		var err error
		if ev, err = webhook.DecodeStored(e.Provider, e.Type, e.Payload); err != nil {
			return err
		}
	}
	switch {
	case ev.Call != nil:
		p.applyCall(w, ev.Call)
	case ev.Message != nil:
		p.applyMessage(w, ev.Message)
	}
	return nil
}

// contact notes the contact of number (as the provider sent it) and returns
// its E.164 form, "" when it is not a valid number: no contact.
func contact(w voxanne.EventWrites, number, name string, at time.Time) string {
	e164, ok := voxanne.NormalizeE164(number)
	if !ok {
		return ""
	}
	w.Contact(e164, name, at)
	return e164
}

// applyCall upserts the call by its provider id, and its caller's contact.
// The status only moves forward (CallStatusRank), so an end-of-call-report
// that arrives before the last status-update still leaves the call ended;
// fields fill in from whichever event carries them.
func (p *Processor) applyCall(w voxanne.EventWrites, c *voxanne.CallEvent) {
	now := p.now()
	cw := voxanne.CallWrite{CallEvent: *c, StatusRank: voxanne.CallStatusRank[c.Status]}
	// Events decoded before ingestion clamped them may still carry values
	// the columns cannot hold: without this they would fail every attempt.
	cw.Clamp()
	at := cw.At
	if at.IsZero() {
		at = now
	}
	cw.ContactNumber = contact(w, c.CustomerNumber, c.CustomerName, at)
	// A call is created when the provider created it, so lists and stats
	// follow the calls' own times.
	if cw.CreatedAt.IsZero() || cw.CreatedAt.After(now) {
		cw.CreatedAt = now
	}
	w.UpsertCall(cw)
}

// applyMessage inserts an inbound SMS once, or moves a message's status
// forward only; a status callback for a message not seen before (sent by
// another system) records it as outbound.
func (p *Processor) applyMessage(w voxanne.EventWrites, m *voxanne.MessageEvent) {
	now := p.now()
	if m.Kind == "sms" {
		w.InsertMessage(voxanne.MessageWrite{ProviderMessageID: m.ProviderMessageID, Direction: "inbound",
			From: m.From, To: m.To, Body: m.Body, Status: m.Status, StatusRank: m.StatusRank, Media: m.Media,
			ContactNumber: contact(w, m.From, "", now)})
		return
	}
	w.AdvanceMessage(m.ProviderMessageID, m.Status, m.StatusRank)
	w.InsertMessage(voxanne.MessageWrite{ProviderMessageID: m.ProviderMessageID, Direction: "outbound",
		From: m.From, To: m.To, Body: m.Body, Status: m.Status, StatusRank: m.StatusRank, Media: []voxanne.Media{},
		ContactNumber: contact(w, m.To, "", now)})
}
