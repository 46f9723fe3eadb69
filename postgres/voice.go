package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/voxanne/voxanne"
)

// Limits of the voice lists and of editable contact fields.
const (
	voiceDefaultLimit = 50
	voiceMaxLimit     = 100
	// voiceRecentItems is how many calls and messages a contact's detail shows.
	voiceRecentItems   = 10
	contactNameMax     = 200
	contactNotesMax    = 10000
	phoneLabelMax      = 200
	phoneProviderIDMax = 200
	// statsDefaultPeriod is the period of Stats when neither end is given.
	statsDefaultPeriod = 30 * 24 * time.Hour
)

// VoiceStore implements voxanne.VoiceService: an org's calls, messages,
// contacts, stats and phone-number registry. Every query runs through InTenant
// (row-level security on) and names the org explicitly.
type VoiceStore struct {
	db *DB
}

var _ voxanne.VoiceService = (*VoiceStore)(nil)

// NewVoiceStore returns the voice-data service.
func NewVoiceStore(db *DB) *VoiceStore { return &VoiceStore{db: db} }

// keyset is a list position: the (created_at, id) of the last item returned.
// Lists are ordered by (created_at desc, id desc), so a page is everything
// strictly below its cursor: rows inserted while a client pages through a list
// are newer than any cursor it holds and neither shift nor repeat items.
type keyset struct {
	at time.Time
	id string
}

// cursorLayout keeps the microseconds PostgreSQL stores, so that no two rows
// collapse onto one position.
const cursorLayout = "2006-01-02T15:04:05.000000Z07:00"

// encodeKeyset returns the opaque cursor of a position.
func encodeKeyset(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(cursorLayout) + "|" + id))
}

// decodeKeyset parses a cursor; "" is the start of the list.
func decodeKeyset(c string) (*keyset, error) {
	if c == "" {
		return nil, nil
	}
	bad := voxanne.Errorf(voxanne.EINVALID, "cursor is not valid")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, bad
	}
	at, id, ok := strings.Cut(string(b), "|")
	if !ok {
		return nil, bad
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return nil, bad
	}
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return nil, bad
	}
	return &keyset{at: t, id: u.String()}, nil
}

// pageLimit bounds a page's size; the HTTP layer has already refused values
// out of range, so this only guards other callers.
func pageLimit(pg voxanne.Page) int {
	switch {
	case pg.Limit <= 0:
		return voiceDefaultLimit
	case pg.Limit > voiceMaxLimit:
		return voiceMaxLimit
	}
	return pg.Limit
}

// listQuery builds a tenant statement's where clause: the explicit org filter
// first, then conditions whose placeholders are numbered as they are added.
type listQuery struct {
	conds []string
	args  []any
}

func (s *VoiceStore) newQuery(p *voxanne.Principal) *listQuery {
	return &listQuery{conds: []string{"org_id = coalesce($1, org_id)"}, args: []any{s.db.org(p)}}
}

// arg adds a value and returns its placeholder.
func (q *listQuery) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *listQuery) where(cond string) { q.conds = append(q.conds, cond) }

// after limits the query to the rows below a keyset position.
func (q *listQuery) after(k *keyset) {
	if k != nil {
		q.where("(created_at, id) < (" + q.arg(k.at) + "::timestamptz, " + q.arg(k.id) + "::uuid)")
	}
}

// page orders newest first and fetches one row more than the page, which tells
// whether there is a next page.
func (q *listQuery) page(limit int) string {
	return " where " + strings.Join(q.conds, " and ") + " order by created_at desc, id desc limit " + q.arg(limit+1)
}

// trimPage cuts a fetched page to limit and returns the cursor of its last
// item when there are more.
func trimPage[T any](items []T, ats []time.Time, ids func(T) string, limit int) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, encodeKeyset(ats[limit-1], ids(items[limit-1]))
}

const callColumns = `id::text, provider_call_id, direction, status, from_number, to_number, contact_id::text,
	assistant_id, phone_number_id::text, started_at, ended_at, duration_seconds, ended_reason, cost_usd::float8,
	summary, success_evaluation, created_at, updated_at`

func callTargets(c *voxanne.Call) []any {
	return []any{&c.ID, &c.ProviderCallID, &c.Direction, &c.Status, &c.FromNumber, &c.ToNumber, &c.ContactID,
		&c.AssistantID, &c.PhoneNumberID, &c.StartedAt, &c.EndedAt, &c.DurationSeconds, &c.EndedReason, &c.CostUSD,
		&c.Summary, &c.SuccessEvaluation, &c.CreatedAt, &c.UpdatedAt}
}

func scanCall(row pgx.CollectableRow) (voxanne.Call, error) {
	var c voxanne.Call
	err := row.Scan(callTargets(&c)...)
	return c, err
}

const messageColumns = `id::text, provider_message_id, direction, from_number, to_number, body, status, media,
	contact_id::text, created_at, updated_at`

func scanMessage(row pgx.CollectableRow) (voxanne.Message, error) {
	var m voxanne.Message
	err := row.Scan(&m.ID, &m.ProviderMessageID, &m.Direction, &m.FromNumber, &m.ToNumber, &m.Body, &m.Status, &m.Media,
		&m.ContactID, &m.CreatedAt, &m.UpdatedAt)
	if m.Media == nil {
		m.Media = []voxanne.Media{}
	}
	return m, err
}

const contactColumns = `id::text, phone_number, name, email, notes, first_seen_at, last_seen_at, call_count, message_count`

func contactTargets(c *voxanne.Contact) []any {
	return []any{&c.ID, &c.PhoneNumber, &c.Name, &c.Email, &c.Notes, &c.FirstSeenAt, &c.LastSeenAt, &c.CallCount, &c.MessageCount}
}

// contactRow is a contact with the created_at its list is ordered by, which
// the API does not show.
type contactRow struct {
	voxanne.Contact
	createdAt time.Time
}

func scanContactRow(row pgx.CollectableRow) (contactRow, error) {
	var c contactRow
	err := row.Scan(append(contactTargets(&c.Contact), &c.createdAt)...)
	return c, err
}

const phoneColumns = `id::text, e164, provider, provider_id, assistant_id, label, created_at`

func scanPhone(row pgx.CollectableRow) (voxanne.PhoneNumber, error) {
	var n voxanne.PhoneNumber
	err := row.Scan(&n.ID, &n.E164, &n.Provider, &n.ProviderID, &n.AssistantID, &n.Label, &n.CreatedAt)
	return n, err
}

// ListCalls lists the org's calls, newest first, narrowed by f: status exactly,
// created_at within [From, To] (both inclusive), and Q as a web-search-style
// full-text query over summary and transcript.
func (s *VoiceStore) ListCalls(ctx context.Context, p *voxanne.Principal, f voxanne.CallFilter, pg voxanne.Page) ([]voxanne.Call, string, error) {
	k, err := decodeKeyset(pg.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := pageLimit(pg)
	q := s.newQuery(p)
	if f.Status != "" {
		q.where("status = " + q.arg(f.Status))
	}
	if f.From != nil {
		q.where("created_at >= " + q.arg(*f.From))
	}
	if f.To != nil {
		q.where("created_at <= " + q.arg(*f.To))
	}
	if strings.TrimSpace(f.Q) != "" {
		// Matches the generated column of the (org_id, search) GIN index.
		q.where("search @@ websearch_to_tsquery('english', " + q.arg(f.Q) + ")")
	}
	q.after(k)
	var calls []voxanne.Call
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `select `+callColumns+` from calls`+q.page(limit), q.args...)
		if err != nil {
			return err
		}
		calls, err = pgx.CollectRows(rows, scanCall)
		return err
	})
	if err != nil {
		return nil, "", mapError("list calls", err)
	}
	ats := make([]time.Time, len(calls))
	for i, c := range calls {
		ats[i] = c.CreatedAt
	}
	calls, next := trimPage(calls, ats, func(c voxanne.Call) string { return c.ID }, limit)
	return calls, next, nil
}

// Call returns one of the org's calls with its transcript and analysis, and
// records the read in the audit log in the same transaction: a transcript
// that was shown has always been audited.
func (s *VoiceStore) Call(ctx context.Context, p *voxanne.Principal, id, ip string) (*voxanne.CallDetail, error) {
	var c voxanne.CallDetail
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		targets := append(callTargets(&c.Call), &c.Transcript, &c.Messages, &c.StructuredData, &c.RecordingURL)
		err := tx.QueryRow(ctx, `select `+callColumns+`, transcript, messages, structured_data, recording_url
			from calls where org_id = coalesce($1, org_id) and id = $2`, s.db.org(p), id).Scan(targets...)
		if errors.Is(err, pgx.ErrNoRows) {
			return voxanne.Errorf(voxanne.ENOTFOUND, "no such call")
		} else if err != nil {
			return err
		}
		return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: p.OrgID, ActorID: p.UserID, Action: voxanne.AuditTranscriptRead,
			TargetType: "call", TargetID: c.ID, IP: ip})
	})
	if err != nil {
		return nil, mapError("get call", err)
	}
	return &c, nil
}

// ListMessages lists the org's SMS messages, newest first, optionally only
// those of one contact.
func (s *VoiceStore) ListMessages(ctx context.Context, p *voxanne.Principal, contactID string, pg voxanne.Page) ([]voxanne.Message, string, error) {
	k, err := decodeKeyset(pg.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := pageLimit(pg)
	q := s.newQuery(p)
	if contactID != "" {
		if _, err := uuid.Parse(contactID); err != nil {
			return nil, "", voxanne.Errorf(voxanne.EINVALID, "contact_id must be a UUID")
		}
		q.where("contact_id = " + q.arg(contactID) + "::uuid")
	}
	q.after(k)
	var msgs []voxanne.Message
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `select `+messageColumns+` from messages`+q.page(limit), q.args...)
		if err != nil {
			return err
		}
		msgs, err = pgx.CollectRows(rows, scanMessage)
		return err
	})
	if err != nil {
		return nil, "", mapError("list messages", err)
	}
	ats := make([]time.Time, len(msgs))
	for i, m := range msgs {
		ats[i] = m.CreatedAt
	}
	msgs, next := trimPage(msgs, ats, func(m voxanne.Message) string { return m.ID }, limit)
	return msgs, next, nil
}

// ListContacts lists the org's contacts, newest first by when they were
// created: an order that later activity cannot change, so paging is stable.
func (s *VoiceStore) ListContacts(ctx context.Context, p *voxanne.Principal, pg voxanne.Page) ([]voxanne.Contact, string, error) {
	return s.listContacts(ctx, p, "", pg)
}

// listContacts is ListContacts narrowed, when search is set, to contacts whose
// name, number or email contains it (SearchContacts).
func (s *VoiceStore) listContacts(ctx context.Context, p *voxanne.Principal, search string, pg voxanne.Page) ([]voxanne.Contact, string, error) {
	k, err := decodeKeyset(pg.Cursor)
	if err != nil {
		return nil, "", err
	}
	limit := pageLimit(pg)
	q := s.newQuery(p)
	q.after(k)
	if search != "" {
		pattern := q.arg("%" + likeEscaper.Replace(search) + "%")
		q.where("(coalesce(name, '') ilike " + pattern + " or phone_number ilike " + pattern + " or coalesce(email, '') ilike " + pattern + ")")
	}
	var rows []contactRow
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		r, err := tx.Query(ctx, `select `+contactColumns+`, created_at from contacts`+q.page(limit), q.args...)
		if err != nil {
			return err
		}
		rows, err = pgx.CollectRows(r, scanContactRow)
		return err
	})
	if err != nil {
		return nil, "", mapError("list contacts", err)
	}
	ats := make([]time.Time, len(rows))
	for i, c := range rows {
		ats[i] = c.createdAt
	}
	rows, next := trimPage(rows, ats, func(c contactRow) string { return c.ID }, limit)
	out := make([]voxanne.Contact, len(rows))
	for i, c := range rows {
		out[i] = c.Contact
	}
	return out, next, nil
}

// Contact returns one of the org's contacts with their latest calls and
// messages.
func (s *VoiceStore) Contact(ctx context.Context, p *voxanne.Principal, id string) (*voxanne.ContactDetail, error) {
	d := voxanne.ContactDetail{RecentCalls: []voxanne.Call{}, RecentMessages: []voxanne.Message{}}
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `select `+contactColumns+` from contacts where org_id = coalesce($1, org_id) and id = $2`,
			s.db.org(p), id).Scan(contactTargets(&d.Contact)...)
		if errors.Is(err, pgx.ErrNoRows) {
			return voxanne.Errorf(voxanne.ENOTFOUND, "no such contact")
		} else if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `select `+callColumns+` from calls where org_id = coalesce($1, org_id) and contact_id = $2
			order by created_at desc, id desc limit $3`, s.db.org(p), id, voiceRecentItems)
		if err != nil {
			return err
		}
		if d.RecentCalls, err = pgx.AppendRows(d.RecentCalls, rows, scanCall); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `select `+messageColumns+` from messages where org_id = coalesce($1, org_id) and contact_id = $2
			order by created_at desc, id desc limit $3`, s.db.org(p), id, voiceRecentItems)
		if err != nil {
			return err
		}
		d.RecentMessages, err = pgx.AppendRows(d.RecentMessages, rows, scanMessage)
		return err
	})
	if err != nil {
		return nil, mapError("get contact", err)
	}
	return &d, nil
}

// contactUpdate checks and normalizes an update: an empty name or email
// clears it; a non-empty email must be an address.
func contactUpdate(u voxanne.ContactUpdate) (voxanne.ContactUpdate, error) {
	if u.Name != nil {
		name := strings.TrimSpace(*u.Name)
		if utf8.RuneCountInString(name) > contactNameMax {
			return u, voxanne.Errorf(voxanne.EINVALID, "name must be at most %d characters", contactNameMax)
		}
		u.Name = &name
	}
	if u.Email != nil {
		email := strings.TrimSpace(*u.Email)
		if email != "" {
			var err error
			if email, err = normalizeEmail(email); err != nil {
				return u, voxanne.Errorf(voxanne.EINVALID, "email is not a valid address")
			}
		}
		u.Email = &email
	}
	if u.Notes != nil && utf8.RuneCountInString(*u.Notes) > contactNotesMax {
		return u, voxanne.Errorf(voxanne.EINVALID, "notes must be at most %d characters", contactNotesMax)
	}
	for _, v := range []*string{u.Name, u.Email, u.Notes} {
		if v != nil && (!utf8.ValidString(*v) || strings.ContainsRune(*v, 0)) {
			return u, voxanne.Errorf(voxanne.EINVALID, "text must be valid UTF-8 without NUL characters")
		}
	}
	return u, nil
}

// UpdateContact changes a contact's name, email and notes (any role); nil
// fields stay as they are.
func (s *VoiceStore) UpdateContact(ctx context.Context, p *voxanne.Principal, id string, u voxanne.ContactUpdate) (*voxanne.Contact, error) {
	u, err := contactUpdate(u)
	if err != nil {
		return nil, err
	}
	var c voxanne.Contact
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `update contacts set
				name = case when $3 then nullif($4, '') else name end,
				email = case when $5 then nullif($6, '') else email end,
				notes = case when $7 then $8 else notes end,
				updated_at = now()
			where org_id = coalesce($1, org_id) and id = $2
			returning `+contactColumns,
			s.db.org(p), id, u.Name != nil, strOrEmpty(u.Name), u.Email != nil, strOrEmpty(u.Email), u.Notes != nil, strOrEmpty(u.Notes)).
			Scan(contactTargets(&c)...)
		if errors.Is(err, pgx.ErrNoRows) {
			return voxanne.Errorf(voxanne.ENOTFOUND, "no such contact")
		}
		return err
	})
	if err != nil {
		return nil, mapError("update contact", err)
	}
	return &c, nil
}

func strOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Stats summarizes the org's calls and messages created within [from, to]
// (both inclusive). A missing end defaults to now, a missing start to 30 days
// before the end. Days are UTC days.
func (s *VoiceStore) Stats(ctx context.Context, p *voxanne.Principal, from, to *time.Time) (*voxanne.Stats, error) {
	end := time.Now().UTC()
	if to != nil {
		end = *to
	}
	start := end.Add(-statsDefaultPeriod)
	if from != nil {
		start = *from
	}
	if start.After(end) {
		return nil, voxanne.Errorf(voxanne.EINVALID, "from must not be after to")
	}
	st := voxanne.Stats{ByDay: []voxanne.DayCount{}, ByOutcome: map[string]int{}}
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		const period = `org_id = coalesce($1, org_id) and created_at >= $2 and created_at <= $3`
		org := s.db.org(p)
		if err := tx.QueryRow(ctx, `select count(*), count(*) filter (where started_at is not null),
				coalesce(avg(duration_seconds), 0)
			from calls where `+period, org, start, end).Scan(&st.Calls, &st.Answered, &st.AvgDurationSeconds); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `select to_char((created_at at time zone 'UTC')::date, 'YYYY-MM-DD') as day, count(*)::int
			from calls where `+period+` group by day order by day`, org, start, end)
		if err != nil {
			return err
		}
		if st.ByDay, err = pgx.AppendRows(st.ByDay, rows, pgx.RowToStructByPos[voxanne.DayCount]); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `select ended_reason, count(*)::int from calls
			where `+period+` and ended_reason is not null group by ended_reason`, org, start, end)
		if err != nil {
			return err
		}
		var reason string
		var n int
		if _, err := pgx.ForEachRow(rows, []any{&reason, &n}, func() error {
			st.ByOutcome[reason] = n
			return nil
		}); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `select count(*) filter (where direction = 'inbound'), count(*) filter (where direction = 'outbound')
			from messages where `+period, org, start, end).Scan(&st.MessagesIn, &st.MessagesOut)
	})
	if err != nil {
		return nil, mapError("stats", err)
	}
	return &st, nil
}

// PhoneNumbers lists the org's registered numbers, newest first (any role).
func (s *VoiceStore) PhoneNumbers(ctx context.Context, p *voxanne.Principal) ([]voxanne.PhoneNumber, error) {
	out := []voxanne.PhoneNumber{}
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `select `+phoneColumns+` from phone_numbers where org_id = coalesce($1, org_id)
			order by created_at desc, id desc`, s.db.org(p))
		if err != nil {
			return err
		}
		out, err = pgx.AppendRows(out, rows, scanPhone)
		return err
	})
	if err != nil {
		return nil, mapError("list phone numbers", err)
	}
	return out, nil
}

// optionalField trims s and returns nil when it is empty.
func optionalField(s *string, field string, max int) (*string, error) {
	if s == nil {
		return nil, nil
	}
	v := strings.TrimSpace(*s)
	if v == "" {
		return nil, nil
	}
	if utf8.RuneCountInString(v) > max || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return nil, voxanne.Errorf(voxanne.EINVALID, "%s must be at most %d characters", field, max)
	}
	return &v, nil
}

// validLabel trims a number's label and checks its length.
func validLabel(s string) (string, error) {
	label := strings.TrimSpace(s)
	if utf8.RuneCountInString(label) > phoneLabelMax || !utf8.ValidString(label) || strings.ContainsRune(label, 0) {
		return "", voxanne.Errorf(voxanne.EINVALID, "label must be at most %d characters", phoneLabelMax)
	}
	return label, nil
}

// validUUID reports whether s is a UUID.
func validUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}

// AddPhoneNumber registers a number as a label of the org's own traffic
// (admin). The number and the provider's id of it are unique within the org
// only: a registration never routes shared-endpoint events, so another org
// registering the same number gains nothing.
func (s *VoiceStore) AddPhoneNumber(ctx context.Context, p *voxanne.Principal, n voxanne.PhoneNumber) (*voxanne.PhoneNumber, error) {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return nil, err
	}
	e164, ok := voxanne.NormalizeE164(n.E164)
	if !ok {
		return nil, voxanne.Errorf(voxanne.EINVALID, "e164 is not a valid phone number")
	}
	if n.Provider != "vapi" && n.Provider != "twilio" {
		return nil, voxanne.Errorf(voxanne.EINVALID, `provider must be "vapi" or "twilio"`)
	}
	providerID, err := optionalField(n.ProviderID, "provider_id", phoneProviderIDMax)
	if err != nil {
		return nil, err
	}
	assistantID, err := optionalField(n.AssistantID, "assistant_id", phoneProviderIDMax)
	if err != nil {
		return nil, err
	}
	label, err := validLabel(n.Label)
	if err != nil {
		return nil, err
	}
	var out voxanne.PhoneNumber
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `insert into phone_numbers (org_id, e164, provider, provider_id, assistant_id, label)
			values ($1, $2, $3, $4, $5, $6) returning `+phoneColumns, p.OrgID, e164, n.Provider, providerID, assistantID, label)
		if err != nil {
			return err
		}
		out, err = pgx.CollectExactlyOneRow(rows, scanPhone)
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return nil, &voxanne.Error{Code: voxanne.ECONFLICT, Message: "this org has already registered this phone number or provider id", Err: err}
	}
	if err != nil {
		return nil, mapError("add phone number", err)
	}
	return &out, nil
}

// DeletePhoneNumber removes a number from the org's registry (admin).
func (s *VoiceStore) DeletePhoneNumber(ctx context.Context, p *voxanne.Principal, id string) error {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return err
	}
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `delete from phone_numbers where org_id = coalesce($1, org_id) and id = $2`, s.db.org(p), id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return voxanne.Errorf(voxanne.ENOTFOUND, "no such phone number")
		}
		return nil
	})
	return mapError("delete phone number", err)
}
