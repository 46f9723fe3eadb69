package voxanne

import (
	"context"
	"encoding/json"
	"math"
	"time"
)

// Event is a provider webhook event decoded into Voxanne's terms: exactly one
// of Call and Message is set. The webhook package decodes it once, at
// ingestion; it is stored (as JSON) next to the raw payload, which stays the
// durable record, and processing reads it back instead of the payload.
type Event struct {
	Call    *CallEvent    `json:"call,omitempty"`
	Message *MessageEvent `json:"message,omitempty"`
}

// CallEvent is what a Vapi status-update, end-of-call-report or hang says
// about a call. Empty strings, zero times and nil numbers mean the event does
// not say.
type CallEvent struct {
	// Type is the provider's message type ("status-update", ...).
	Type           string `json:"type"`
	ProviderCallID string `json:"provider_call_id"`
	// Status is the status the event moves the call to ("" for none); see
	// CallStatusRank.
	Status    string `json:"status,omitempty"`
	Direction string `json:"direction,omitempty"` // inbound, outbound or web
	// At is when the provider produced the event.
	At time.Time `json:"at,omitzero"`
	// CustomerNumber and CustomerName describe the other party, as the
	// provider sent them (not normalized).
	CustomerNumber string `json:"customer_number,omitempty"`
	CustomerName   string `json:"customer_name,omitempty"`
	// From and To are the call's numbers, by its direction.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// AssistantID and ProviderPhoneNumberID are the provider's ids of the
	// assistant and of the number the call came through.
	AssistantID           string          `json:"assistant_id,omitempty"`
	ProviderPhoneNumberID string          `json:"provider_phone_number_id,omitempty"`
	StartedAt             time.Time       `json:"started_at,omitzero"`
	EndedAt               time.Time       `json:"ended_at,omitzero"`
	DurationSeconds       *float64        `json:"duration_seconds,omitempty"`
	EndedReason           string          `json:"ended_reason,omitempty"`
	CostUSD               *float64        `json:"cost_usd,omitempty"`
	Summary               string          `json:"summary,omitempty"`
	SuccessEvaluation     string          `json:"success_evaluation,omitempty"`
	Transcript            string          `json:"transcript,omitempty"`
	Messages              json.RawMessage `json:"messages,omitempty"`
	StructuredData        json.RawMessage `json:"structured_data,omitempty"`
	RecordingURL          string          `json:"recording_url,omitempty"`
	// CreatedAt is when the provider created the call.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Limits of a call's numbers in storage. A value outside them, or a time
// outside years 1 to 9999, is dropped by Clamp: stored as unknown (NULL)
// while the raw event keeps what the provider sent.
const (
	// MaxCostUSD is the largest cost calls.cost_usd (numeric(12, 4)) holds.
	MaxCostUSD = 99999999.9999
	// MaxDurationSeconds is the longest call duration kept: ten years.
	MaxDurationSeconds = 10 * 365 * 24 * 3600
)

// Clamp drops the event's numbers and times that storage cannot hold or that
// cannot be true (a negative duration, a cost of a hundred million dollars, a
// time past year 9999), so that an event once acknowledged can always be
// processed: the call is kept with those fields unknown.
func (c *CallEvent) Clamp() {
	for _, t := range []*time.Time{&c.At, &c.StartedAt, &c.EndedAt, &c.CreatedAt} {
		if y := t.Year(); y < 1 || y > 9999 {
			*t = time.Time{}
		}
	}
	// The negated comparisons also drop NaN.
	if c.CostUSD != nil && !(math.Abs(*c.CostUSD) <= MaxCostUSD) {
		c.CostUSD = nil
	}
	if c.DurationSeconds != nil && !(*c.DurationSeconds >= 0 && *c.DurationSeconds <= MaxDurationSeconds) {
		c.DurationSeconds = nil
	}
}

// MessageEvent is an inbound SMS (Kind "sms") or a status callback about a
// message (Kind "status").
type MessageEvent struct {
	Kind              string `json:"kind"`
	ProviderMessageID string `json:"provider_message_id"`
	// From and To are as the provider sent them (not normalized).
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Body   string `json:"body,omitempty"`
	Status string `json:"status,omitempty"`
	// StatusRank orders the provider's statuses: a message's status only
	// moves to a strictly higher rank.
	StatusRank int     `json:"status_rank"`
	Media      []Media `json:"media"`
}

// StoredEvent is a stored webhook event waiting to be processed.
type StoredEvent struct {
	ID       int64
	Provider string
	Type     string
	// Event is the decoded event; nil for an event stored before events were
	// decoded at ingestion, whose Payload is then set.
	Event   *Event
	Payload json.RawMessage
}

// CallWrite is the upsert of a call that processing makes of a CallEvent:
// the status only moves forward and fields fill in from whichever event
// carries them.
type CallWrite struct {
	CallEvent
	// StatusRank is CallStatusRank of Status.
	StatusRank int
	// ContactNumber is the E.164 number of the call's contact (noted in the
	// same batch), or "" for none.
	ContactNumber string
}

// MessageWrite is a message that processing inserts once.
type MessageWrite struct {
	ProviderMessageID string
	Direction         string
	From, To          string
	Body              string
	Status            string
	StatusRank        int
	Media             []Media
	// ContactNumber is the E.164 number of the message's contact (noted in the
	// same batch), or "" for none.
	ContactNumber string
}

// EventWrites collects the writes of a batch of one org's events; storage
// sends them in one pipeline, contacts first.
type EventWrites interface {
	// Contact notes that the contact with the E.164 number e164 was seen at
	// at; it is upserted once per batch and its call and message counts are
	// recounted after the batch's other writes.
	Contact(e164, name string, at time.Time)
	UpsertCall(c CallWrite)
	// InsertMessage inserts a message unless its provider id is known.
	InsertMessage(m MessageWrite)
	// AdvanceMessage moves a known message to status if rank is higher than
	// its current status's.
	AdvanceMessage(providerMessageID, status string, rank int)
}

// BatchResult is what a batch of events left to do for the job queue.
type BatchResult struct {
	// Err is the failure of the job's own event (nil when it was processed).
	Err error
	// Retry are other events of the batch that failed: each needs a job.
	Retry []int64
	// Redundant are the jobs of other events the batch processed.
	Redundant []int64
}

// EventApplier turns one stored event into writes.
type EventApplier func(ctx context.Context, w EventWrites, e StoredEvent) error
