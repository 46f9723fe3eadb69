package voxanne

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Call statuses move forward only; CallStatusRank orders them so that an event
// arriving late never takes a call back to an earlier state.
var CallStatusRank = map[string]int{
	"scheduled": 1, "queued": 2, "ringing": 3, "in-progress": 4, "forwarding": 5, "ended": 9,
}

// InboundEvent is a verified webhook delivery to store and process later.
type InboundEvent struct {
	Provider  string // "vapi" or "twilio"
	EventType string
	DedupKey  string
	// Payload is the raw payload (a Twilio form as a JSON object of value
	// lists): the durable record.
	Payload json.RawMessage
	// Event is the payload decoded once, at ingestion; processing reads it.
	Event *Event
	// Route names what the org is found by: the org's own endpoint, or on the
	// shared endpoints a provider's number id, an assistant id or an E.164
	// number assigned by the operator; and for Twilio status callbacks, the
	// message sid.
	Route Route
}

// Route is what identifies the org of an event.
type Route struct {
	// OrgID is set when the event arrived on an org's own webhook endpoint: the
	// event belongs to that org whatever numbers it names, and the other
	// fields only label it within the org.
	OrgID            string
	ProviderNumberID string
	AssistantID      string
	E164             string
	MessageSid       string
}

// Routed is the org (and number) an event belongs to; OrgID is "" when none.
type Routed struct {
	OrgID         string
	PhoneNumberID string
	AssistantID   string
}

// ToolResult is the answer to one Vapi tool call.
type ToolResult struct {
	ToolCallID string `json:"toolCallId"`
	Name       string `json:"name,omitempty"`
	Result     string `json:"result,omitempty"`
	Error      string `json:"error,omitempty"`
}

// WebhookService stores provider events durably and answers the synchronous
// ones.
type WebhookService interface {
	// Store routes ev, stores it once (a repeated dedup key changes nothing) and
	// enqueues its processing job in the same transaction. duplicate is true
	// when the event was already stored.
	Store(ctx context.Context, ev InboundEvent) (routed Routed, duplicate bool, err error)
	// Route finds the org of an event without storing anything.
	Route(ctx context.Context, provider string, r Route) (Routed, error)
	// TakeMessage stores a note on the contact of callerNumber in org.
	TakeMessage(ctx context.Context, org Routed, callerNumber, name, message string) error
}

// PhoneNumber is a number an org registered to label its own traffic. It never
// routes events from the shared webhook endpoints: only operator assignments
// (PhoneAssignment) do.
type PhoneNumber struct {
	ID          string    `json:"id"`
	E164        string    `json:"e164"`
	Provider    string    `json:"provider"`
	ProviderID  *string   `json:"provider_id"`
	AssistantID *string   `json:"assistant_id"`
	Label       string    `json:"label"`
	CreatedAt   time.Time `json:"created_at"`
}

// Call is a phone or web call handled by the assistant.
type Call struct {
	ID                string     `json:"id"`
	ProviderCallID    string     `json:"provider_call_id"`
	Direction         *string    `json:"direction"`
	Status            string     `json:"status"`
	FromNumber        *string    `json:"from_number"`
	ToNumber          *string    `json:"to_number"`
	ContactID         *string    `json:"contact_id"`
	AssistantID       *string    `json:"assistant_id"`
	PhoneNumberID     *string    `json:"phone_number_id"`
	StartedAt         *time.Time `json:"started_at"`
	EndedAt           *time.Time `json:"ended_at"`
	DurationSeconds   *float64   `json:"duration_seconds"`
	EndedReason       *string    `json:"ended_reason"`
	CostUSD           *float64   `json:"cost_usd"`
	Summary           *string    `json:"summary"`
	SuccessEvaluation *string    `json:"success_evaluation"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

// CallDetail is a call with its transcript and analysis.
type CallDetail struct {
	Call
	Transcript     *string         `json:"transcript"`
	Messages       json.RawMessage `json:"messages"`
	StructuredData json.RawMessage `json:"structured_data"`
	RecordingURL   *string         `json:"recording_url"`
}

// Media is an attachment of an SMS.
type Media struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
}

// Message is an SMS.
type Message struct {
	ID                string    `json:"id"`
	ProviderMessageID string    `json:"provider_message_id"`
	Direction         string    `json:"direction"`
	FromNumber        *string   `json:"from_number"`
	ToNumber          *string   `json:"to_number"`
	Body              string    `json:"body"`
	Status            string    `json:"status"`
	Media             []Media   `json:"media"`
	ContactID         *string   `json:"contact_id"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// Contact is a caller or texter, one per E.164 number per org.
type Contact struct {
	ID           string    `json:"id"`
	PhoneNumber  string    `json:"phone_number"`
	Name         *string   `json:"name"`
	Email        *string   `json:"email"`
	Notes        string    `json:"notes"`
	FirstSeenAt  time.Time `json:"first_seen_at"`
	LastSeenAt   time.Time `json:"last_seen_at"`
	CallCount    int       `json:"call_count"`
	MessageCount int       `json:"message_count"`
}

// ContactDetail is a contact with their recent calls and messages.
type ContactDetail struct {
	Contact
	RecentCalls    []Call    `json:"recent_calls"`
	RecentMessages []Message `json:"recent_messages"`
}

// ContactUpdate changes a contact; nil fields are unchanged.
type ContactUpdate struct {
	Name  *string
	Email *string
	Notes *string
}

// Page is a list position: at most Limit items after the opaque Cursor.
type Page struct {
	Limit  int
	Cursor string
}

// CallFilter narrows a call list.
type CallFilter struct {
	Status string
	From   *time.Time
	To     *time.Time
	Q      string
}

// Stats summarizes an org's activity over a period.
type Stats struct {
	Calls              int            `json:"calls"`
	Answered           int            `json:"answered"`
	AvgDurationSeconds float64        `json:"avg_duration_seconds"`
	ByDay              []DayCount     `json:"by_day"`
	ByOutcome          map[string]int `json:"by_outcome"`
	MessagesIn         int            `json:"messages_in"`
	MessagesOut        int            `json:"messages_out"`
}

// DayCount is the number of calls on one day (UTC).
type DayCount struct {
	Date  string `json:"date"`
	Calls int    `json:"calls"`
}

// VoiceService serves an org's calls, messages, contacts, stats and phone
// numbers. Lists return the next cursor, "" at the end.
type VoiceService interface {
	ListCalls(ctx context.Context, p *Principal, f CallFilter, pg Page) ([]Call, string, error)
	// Call returns a call with its transcript; each read is audited.
	Call(ctx context.Context, p *Principal, id, ip string) (*CallDetail, error)
	ListMessages(ctx context.Context, p *Principal, contactID string, pg Page) ([]Message, string, error)
	ListContacts(ctx context.Context, p *Principal, pg Page) ([]Contact, string, error)
	Contact(ctx context.Context, p *Principal, id string) (*ContactDetail, error)
	UpdateContact(ctx context.Context, p *Principal, id string, u ContactUpdate) (*Contact, error)
	Stats(ctx context.Context, p *Principal, from, to *time.Time) (*Stats, error)
	PhoneNumbers(ctx context.Context, p *Principal) ([]PhoneNumber, error)
	AddPhoneNumber(ctx context.Context, p *Principal, n PhoneNumber) (*PhoneNumber, error)
	DeletePhoneNumber(ctx context.Context, p *Principal, id string) error
}

// PhoneAssignment is the platform operator's assignment of a number, a
// provider's number id or an assistant id to an org: the only thing that routes
// events arriving on the shared webhook endpoints. Each of E164, ProviderID
// and AssistantID is unique among assignments.
type PhoneAssignment struct {
	ID          string    `json:"id"`
	OrgID       string    `json:"org_id"`
	E164        *string   `json:"e164"`
	Provider    string    `json:"provider"`
	ProviderID  *string   `json:"provider_id"`
	AssistantID *string   `json:"assistant_id"`
	Label       string    `json:"label"`
	CreatedAt   time.Time `json:"created_at"`
}

// WebhookEndpoint is an org's own webhook endpoint: events delivered to it,
// authenticated with its secret, belong to that org.
type WebhookEndpoint struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
	// Secret is the Vapi secret, set only in the answer that created or rotated
	// it. A Twilio endpoint's auth token is never returned.
	Secret string `json:"secret,omitempty"`
	// PreviousValidUntil is when the secret before the last rotation stops
	// being accepted.
	PreviousValidUntil *time.Time `json:"previous_valid_until"`
	CreatedAt          time.Time  `json:"created_at"`
	RotatedAt          *time.Time `json:"rotated_at"`
}

// EndpointCredentials are what a delivery to an org's endpoint is verified
// with: the secrets currently accepted (the current one first).
type EndpointCredentials struct {
	OrgID    string
	Provider string
	Secrets  []string
}

// WebhookEndpointService manages orgs' own webhook endpoints (admin) and the
// operator's number assignments (service_role), and looks up an endpoint's
// credentials for verification.
type WebhookEndpointService interface {
	// CreateEndpoint makes an endpoint for provider ("vapi": a secret is
	// generated and returned once; "twilio": authToken is the org's own
	// Twilio auth token, stored encrypted).
	CreateEndpoint(ctx context.Context, p *Principal, provider, authToken, ip string) (*WebhookEndpoint, error)
	Endpoints(ctx context.Context, p *Principal) ([]WebhookEndpoint, error)
	// RotateEndpoint replaces the secret (a new generated one for Vapi,
	// authToken for Twilio); the previous one is accepted for a grace period.
	RotateEndpoint(ctx context.Context, p *Principal, id, authToken, ip string) (*WebhookEndpoint, error)
	DeleteEndpoint(ctx context.Context, p *Principal, id, ip string) error
	// EndpointCredentials returns the accepted secrets of endpoint id of
	// provider; ENOTFOUND when there is none.
	EndpointCredentials(ctx context.Context, provider, id string) (*EndpointCredentials, error)

	// Assign records an operator assignment (ECONFLICT when the number, the
	// provider id or the assistant id is already assigned).
	Assign(ctx context.Context, a PhoneAssignment) (*PhoneAssignment, error)
	// Assignments lists assignments, of one org when orgID is not "".
	Assignments(ctx context.Context, orgID string) ([]PhoneAssignment, error)
	Unassign(ctx context.Context, id string) error
}

// EndpointGracePeriod is how long a rotated-out endpoint secret stays valid.
const EndpointGracePeriod = 24 * time.Hour

// ProcessEventArgs is the background job that turns a stored webhook event into
// calls, messages and contacts. Its Kind method makes it a River job.
type ProcessEventArgs struct {
	EventID int64  `json:"event_id"`
	OrgID   string `json:"org_id"`
}

// Kind names the job.
func (ProcessEventArgs) Kind() string { return "process_webhook_event" }

// JobCounts are the background jobs by state, for /health and /metrics.
type JobCounts struct {
	Queued    int `json:"queued"`
	Running   int `json:"running"`
	Retrying  int `json:"retrying"`
	Discarded int `json:"discarded"`
	// OldestQueued is how long the oldest job ready to run has waited for a
	// worker (zero when none waits): a backlog that grows old means the
	// workers are stuck or too few.
	OldestQueued time.Duration `json:"-"`
}

// ErrBusy tells a background job that its work is being done elsewhere right
// now (another batch holds the org): it should run again shortly without
// counting an attempt.
var ErrBusy = errors.New("busy: another batch of this org is running")
