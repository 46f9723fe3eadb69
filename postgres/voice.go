package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
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

// page orders table's rows newest first and fetches one row more than the
// page, which tells whether there is a next page. The order names the table's
// columns: the lists select id::text, and an unqualified "id" would order by
// that text, which no index serves (every row of the org was read and sorted)
// and which is not the uuid order of the keyset condition.
func (q *listQuery) page(table string, limit int) string {
	return " where " + strings.Join(q.conds, " and ") + " order by " + table + ".created_at desc, " + table + ".id desc limit " + q.arg(limit+1)
}

// trimPage cuts a fetched page to limit and returns the cursor of its last
// item (its position: created_at and id) when there are more.
func trimPage[T any](items []T, position func(T) (time.Time, string), limit int) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, encodeKeyset(position(items[limit-1]))
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

func messageTargets(m *voxanne.Message) []any {
	return []any{&m.ID, &m.ProviderMessageID, &m.Direction, &m.FromNumber, &m.ToNumber, &m.Body, &m.Status, &m.Media,
		&m.ContactID, &m.CreatedAt, &m.UpdatedAt}
}

func scanMessage(row pgx.CollectableRow) (voxanne.Message, error) {
	var m voxanne.Message
	err := row.Scan(messageTargets(&m)...)
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
	calls, _, next, err := s.listCalls(ctx, p, f, pg, apiCalls)
	return calls, next, err
}

// rowRefs are the last columns of a list page that namedPage wraps: the
// row's org and contact.
const rowRefs = `, org_id as row_org, contact_id as row_contact`

// namedPage wraps the statement of a list page (its columns ending with
// rowRefs) so that each row ends with its contact's name: the contact of the
// row's own org (row-level security confines it too), read once the page is
// cut, so for its rows only whatever plan finds them. The page's columns are
// ordered as the page is.
func namedPage(page string) string {
	return `select l.*, ct.name from (` + page + `) l left join contacts ct on ct.org_id = l.row_org and ct.id = l.row_contact
		order by l.created_at desc, l.id desc`
}

// namedRow is a list row with its contact's name.
type namedRow[T any] struct {
	item T
	name *string
}

// unname returns the items of rows.
func unname[T any](rows []namedRow[T]) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = r.item
	}
	return out
}

// namesOf maps the contact ids of rows to their contacts' names (named rows
// only; contacts without a name are left out).
func namesOf[T any](rows []namedRow[T], contact func(T) *string) map[string]string {
	out := map[string]string{}
	for _, r := range rows {
		if id := contact(r.item); id != nil && r.name != nil && *r.name != "" {
			out[*id] = *r.name
		}
	}
	return out
}

// callShape is what a calls list reads of each call: its columns, whether
// the rows are named (namedPage), and where they are scanned to.
type callShape struct {
	columns string
	named   bool
	targets func(c *namedRow[voxanne.Call]) []any
}

// apiCalls are the calls as the API lists them: every column of a Call.
var apiCalls = callShape{columns: callColumns, targets: func(c *namedRow[voxanne.Call]) []any { return callTargets(&c.item) }}

// callsQuery is the statement of one page of a calls list (see ListCalls).
func (s *VoiceStore) callsQuery(p *voxanne.Principal, f voxanne.CallFilter, k *keyset, limit int, shape callShape) (string, []any) {
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
	if shape.named {
		return namedPage(`select ` + shape.columns + rowRefs + ` from calls` + q.page("calls", limit)), q.args
	}
	return `select ` + shape.columns + ` from calls` + q.page("calls", limit), q.args
}

// scan scans a row of callsQuery.
func (shape callShape) scan(row pgx.CollectableRow) (namedRow[voxanne.Call], error) {
	var c namedRow[voxanne.Call]
	return c, row.Scan(shape.targets(&c)...)
}

// listCalls is ListCalls with the columns of shape, and the names of the
// calls' contacts when shape reads them.
func (s *VoiceStore) listCalls(ctx context.Context, p *voxanne.Principal, f voxanne.CallFilter, pg voxanne.Page, shape callShape) ([]voxanne.Call, map[string]string, string, error) {
	k, err := decodeKeyset(pg.Cursor)
	if err != nil {
		return nil, nil, "", err
	}
	limit := pageLimit(pg)
	sql, args := s.callsQuery(p, f, k, limit, shape)
	var rows []namedRow[voxanne.Call]
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		r, err := tx.Query(ctx, sql, args...)
		if err == nil {
			rows, err = pgx.CollectRows(r, shape.scan)
		}
		return err
	})
	if err != nil {
		return nil, nil, "", mapError("list calls", err)
	}
	rows, next := trimPage(rows, func(r namedRow[voxanne.Call]) (time.Time, string) { return r.item.CreatedAt, r.item.ID }, limit)
	return unname(rows), namesOf(rows, func(c voxanne.Call) *string { return c.ContactID }), next, nil
}

// callDetailSQL reads one of the org's calls ($1 the org filter, $2 its id)
// with its transcript and analysis.
const callDetailSQL = `select ` + callColumns + `, transcript, messages, structured_data, recording_url
	from calls where org_id = coalesce($1, org_id) and id = $2`

func callDetailTargets(c *voxanne.CallDetail) []any {
	return append(callTargets(&c.Call), &c.Transcript, &c.Messages, &c.StructuredData, &c.RecordingURL)
}

// Call returns one of the org's calls with its transcript and analysis, and
// records the read in the audit log in the same transaction: a transcript
// that was shown has always been audited.
func (s *VoiceStore) Call(ctx context.Context, p *voxanne.Principal, id, ip string) (*voxanne.CallDetail, error) {
	var c voxanne.CallDetail
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, callDetailSQL, s.db.org(p), id).Scan(callDetailTargets(&c)...)
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
	msgs, _, next, err := s.listMessages(ctx, p, contactID, pg, false)
	return msgs, next, err
}

// listMessages is ListMessages, and with named also the names of the
// messages' contacts, read by the same statement.
func (s *VoiceStore) listMessages(ctx context.Context, p *voxanne.Principal, contactID string, pg voxanne.Page, named bool) ([]voxanne.Message, map[string]string, string, error) {
	k, err := decodeKeyset(pg.Cursor)
	if err != nil {
		return nil, nil, "", err
	}
	limit := pageLimit(pg)
	q := s.newQuery(p)
	if contactID != "" {
		if _, err := uuid.Parse(contactID); err != nil {
			return nil, nil, "", voxanne.Errorf(voxanne.EINVALID, "contact_id must be a UUID")
		}
		q.where("contact_id = " + q.arg(contactID) + "::uuid")
	}
	q.after(k)
	page := q.page("messages", limit)
	sql := `select ` + messageColumns + ` from messages` + page
	if named {
		sql = namedPage(`select ` + messageColumns + rowRefs + ` from messages` + page)
	}
	var rows []namedRow[voxanne.Message]
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		r, err := tx.Query(ctx, sql, q.args...)
		if err != nil {
			return err
		}
		rows, err = pgx.CollectRows(r, func(row pgx.CollectableRow) (namedRow[voxanne.Message], error) {
			var m namedRow[voxanne.Message]
			targets := messageTargets(&m.item)
			if named {
				targets = append(targets, nil, nil, &m.name)
			}
			err := row.Scan(targets...)
			if m.item.Media == nil {
				m.item.Media = []voxanne.Media{}
			}
			return m, err
		})
		return err
	})
	if err != nil {
		return nil, nil, "", mapError("list messages", err)
	}
	rows, next := trimPage(rows, func(r namedRow[voxanne.Message]) (time.Time, string) { return r.item.CreatedAt, r.item.ID }, limit)
	return unname(rows), namesOf(rows, func(m voxanne.Message) *string { return m.ContactID }), next, nil
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
		r, err := tx.Query(ctx, `select `+contactColumns+`, created_at from contacts`+q.page("contacts", limit), q.args...)
		if err != nil {
			return err
		}
		rows, err = pgx.CollectRows(r, scanContactRow)
		return err
	})
	if err != nil {
		return nil, "", mapError("list contacts", err)
	}
	rows, next := trimPage(rows, func(c contactRow) (time.Time, string) { return c.createdAt, c.ID }, limit)
	out := make([]voxanne.Contact, len(rows))
	for i, c := range rows {
		out[i] = c.Contact
	}
	return out, next, nil
}

// Contact returns one of the org's contacts with their latest calls and
// messages.
func (s *VoiceStore) Contact(ctx context.Context, p *voxanne.Principal, id string) (*voxanne.ContactDetail, error) {
	var d *voxanne.ContactDetail
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		s.queueContact(b, p, "$2", id)
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		var err error
		if d, err = readContact(br); err != nil {
			return err
		}
		if d == nil {
			return voxanne.Errorf(voxanne.ENOTFOUND, "no such contact")
		}
		return br.Close()
	})
	if err != nil {
		return nil, mapError("get contact", err)
	}
	return d, nil
}

// queueContact queues the reads of a contact's detail: the contact whose id
// the SQL expression idExpr gives ($1 is the org filter, $2 the one argument
// idExpr may use), then their latest calls and messages.
func (s *VoiceStore) queueContact(b *pgx.Batch, p *voxanne.Principal, idExpr string, arg any) {
	org := s.db.org(p)
	b.Queue(`select `+contactColumns+` from contacts where org_id = coalesce($1, org_id) and id = `+idExpr, org, arg)
	b.Queue(`select `+callColumns+` from calls where org_id = coalesce($1, org_id) and contact_id = `+idExpr+`
		order by calls.created_at desc, calls.id desc limit $3`, org, arg, voiceRecentItems)
	b.Queue(`select `+messageColumns+` from messages where org_id = coalesce($1, org_id) and contact_id = `+idExpr+`
		order by messages.created_at desc, messages.id desc limit $3`, org, arg, voiceRecentItems)
}

// readContact reads the three results of queueContact; the detail is nil
// when there is no such contact.
func readContact(br pgx.BatchResults) (*voxanne.ContactDetail, error) {
	c := voxanne.ContactDetail{RecentCalls: []voxanne.Call{}, RecentMessages: []voxanne.Message{}}
	err := br.QueryRow().Scan(contactTargets(&c.Contact)...)
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	// The other two are read either way: the batch's next results follow.
	if c.RecentCalls, err = batchRows(br, scanCall); err != nil {
		return nil, err
	}
	if c.RecentMessages, err = batchRows(br, scanMessage); err != nil {
		return nil, err
	}
	if !found {
		return nil, nil
	}
	return &c, nil
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
	var st *voxanne.Stats
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		s.queueStats(b, p, start, end)
		br := tx.SendBatch(ctx, b)
		days, err := readStats(br)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		st = days.since(time.Time{})
		return err
	})
	if err != nil {
		return nil, mapError("stats", err)
	}
	return st, nil
}

// statDays are an org's calls and messages of a period counted per UTC day
// (and per call outcome): one pass over each table answers the period's
// figures and those of any day range within it.
type statDays struct {
	calls    []callDay
	messages []messageDay
}

type callDay struct {
	day      time.Time
	outcome  *string
	calls    int
	answered int
	// seconds sums the durations of the timed calls.
	seconds float64
	timed   int
}

type messageDay struct {
	day     time.Time
	in, out int
}

// queueStats queues the two statements of statDays for [start, end].
func (s *VoiceStore) queueStats(b *pgx.Batch, p *voxanne.Principal, start, end time.Time) {
	const period = ` where org_id = coalesce($1, org_id) and created_at >= $2 and created_at <= $3 group by 1`
	org := s.db.org(p)
	b.Queue(`select (created_at at time zone 'UTC')::date, ended_reason, count(*)::int, count(started_at)::int,
			coalesce(sum(duration_seconds), 0)::float8, count(duration_seconds)::int
		from calls`+period+`, 2`, org, start, end)
	b.Queue(`select (created_at at time zone 'UTC')::date, count(*) filter (where direction = 'inbound')::int,
			count(*) filter (where direction = 'outbound')::int
		from messages`+period, org, start, end)
}

// readStats reads the results of queueStats.
func readStats(br pgx.BatchResults) (statDays, error) {
	var d statDays
	rows, err := br.Query()
	if err != nil {
		return d, err
	}
	var c callDay
	if _, err := pgx.ForEachRow(rows, []any{&c.day, &c.outcome, &c.calls, &c.answered, &c.seconds, &c.timed}, func() error {
		d.calls = append(d.calls, c)
		return nil
	}); err != nil {
		return d, err
	}
	if rows, err = br.Query(); err != nil {
		return d, err
	}
	var m messageDay
	_, err = pgx.ForEachRow(rows, []any{&m.day, &m.in, &m.out}, func() error {
		d.messages = append(d.messages, m)
		return nil
	})
	return d, err
}

// since returns the figures of the days from the UTC day of t on (all of them
// for the zero time).
func (d statDays) since(t time.Time) *voxanne.Stats {
	first := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	st := &voxanne.Stats{ByDay: []voxanne.DayCount{}, ByOutcome: map[string]int{}}
	perDay := map[time.Time]int{}
	var seconds float64
	var timed int
	for _, c := range d.calls {
		if c.day.Before(first) {
			continue
		}
		st.Calls += c.calls
		st.Answered += c.answered
		seconds += c.seconds
		timed += c.timed
		perDay[c.day] += c.calls
		if c.outcome != nil {
			st.ByOutcome[*c.outcome] += c.calls
		}
	}
	if timed > 0 {
		st.AvgDurationSeconds = seconds / float64(timed)
	}
	for day, n := range perDay {
		st.ByDay = append(st.ByDay, voxanne.DayCount{Date: day.Format(time.DateOnly), Calls: n})
	}
	slices.SortFunc(st.ByDay, func(a, b voxanne.DayCount) int { return strings.Compare(a.Date, b.Date) })
	for _, m := range d.messages {
		if !m.day.Before(first) {
			st.MessagesIn += m.in
			st.MessagesOut += m.out
		}
	}
	return st
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
