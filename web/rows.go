package web

import (
	"bytes"
	"html/template"
	"strconv"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/voxanne/voxanne"
)

// The list pages' rows, with every value formatted once in Go. Each row is
// rendered by a row template of its page (html/template escapes every value
// as it would inline), and its markup is memoized: a row is a pure function
// of its template and its values, so a page of rows already seen costs a
// lookup per row instead of a dozen template actions, which were most of a
// 50-row page's server time.

// rowMemoSize bounds the memoized rows (a row is about half a kilobyte).
const rowMemoSize = 20_000

// rowMemo maps a row's key (the org, the row template and every value the
// row shows) to its markup. An entry can never go stale, since any change of
// a value is another key; the org in the key keeps equal rows of two orgs
// apart all the same.
type rowMemo struct {
	cache *otter.Cache[string, template.HTML]
}

func newRowMemo() *rowMemo {
	return &rowMemo{cache: otter.Must(&otter.Options[string, template.HTML]{MaximumSize: rowMemoSize})}
}

// row is a list row: it writes every value it shows into its key.
type row interface {
	key(b *bytes.Buffer)
}

// renderRows returns the markup of rows, each rendered by the template named
// tmpl of page or taken from the memo, as one fragment: the page places it
// with one action.
func renderRows[R row](p *pages, org, page, tmpl string, rows []R) (template.HTML, error) {
	t, ok := p.byName[page]
	if !ok {
		panic("web: no template " + page)
	}
	var out, buf, kb bytes.Buffer
	for _, r := range rows {
		kb.Reset()
		kb.WriteString(org)
		keyField(&kb, tmpl)
		r.key(&kb)
		key := kb.String()
		html, ok := p.rows.cache.GetIfPresent(key)
		if !ok {
			buf.Reset()
			if err := t.ExecuteTemplate(&buf, tmpl, r); err != nil {
				return "", err
			}
			html = template.HTML(buf.String())
			p.rows.cache.Set(key, html)
		}
		out.WriteString(string(html))
	}
	return template.HTML(out.String()), nil
}

// keyField appends one value to a row key; values are separated by a byte
// that text cannot hold (NUL is refused on the way in), so that no two rows
// share a key.
func keyField(b *bytes.Buffer, v string) {
	b.WriteByte(0)
	b.WriteString(v)
}

// stamp is a moment as the lists show it: the date and the time (UTC) in two
// parts that a narrow screen may put on two lines, and the machine-readable
// form for <time datetime>; all empty for none.
type stamp struct {
	ISO, Day, Time string
}

// stampOf returns the stamp of t.
func stampOf(t *time.Time) stamp {
	if t == nil || t.IsZero() {
		return stamp{}
	}
	u := t.UTC()
	// One string, sliced three ways.
	b := u.AppendFormat(make([]byte, 0, 40), time.RFC3339)
	iso := len(b)
	b = u.AppendFormat(b, "Jan\u00a02") // a date never breaks inside
	day := len(b)
	all := string(u.AppendFormat(b, "15:04"))
	return stamp{ISO: all[:iso], Day: all[iso:day], Time: all[day:]}
}

func (s stamp) key(b *bytes.Buffer) { keyField(b, s.ISO) }

// callRow is a call in a list.
type callRow struct {
	ID, Caller, Summary, Status, StatusClass, Outcome, Duration, Cost string
	Started                                                           stamp
}

func (r callRow) key(b *bytes.Buffer) {
	for _, v := range []string{r.ID, r.Caller, r.Summary, r.Status, r.Outcome, r.Duration, r.Cost} {
		keyField(b, v)
	}
	r.Started.key(b)
}

// callRows formats calls for a list; names are their contacts' names.
func callRows(calls []voxanne.Call, names map[string]string) []callRow {
	rows := make([]callRow, len(calls))
	for i := range calls {
		c := &calls[i]
		r := callRow{ID: c.ID, Caller: callerName(c.ContactID, c.FromNumber, names, "Unknown caller"), Summary: deref(c.Summary),
			Status: c.Status, StatusClass: statusClass(c.Status), Outcome: "—", Duration: duration(c.DurationSeconds),
			Cost: usd(c.CostUSD), Started: stampOf(c.StartedAt)}
		if c.EndedReason != nil {
			r.Outcome = titleWord(*c.EndedReason)
		}
		rows[i] = r
	}
	return rows
}

// callerName is the contact's name, else the number, else unknown.
func callerName(contact, number *string, names map[string]string, unknown string) string {
	if contact != nil {
		if n := names[*contact]; n != "" {
			return n
		}
	}
	if number != nil && *number != "" {
		return *number
	}
	return unknown
}

// statusClass is the pill style of a call or message status.
func statusClass(s string) string {
	switch s {
	case "ended":
		return "ok"
	case "in-progress", "ringing", "forwarding":
		return "live"
	case "failed", "undelivered":
		return "bad"
	}
	return "muted"
}

// messageRow is a text in a list.
type messageRow struct {
	Inbound bool
	// ContactID links the sender to their contact page ("" for none).
	ContactID, Name, From, To, Body, Status string
	Media                                   []voxanne.Media
	At                                      stamp
}

func (r messageRow) key(b *bytes.Buffer) {
	for _, v := range []string{strconv.FormatBool(r.Inbound), r.ContactID, r.Name, r.From, r.To, r.Body, r.Status} {
		keyField(b, v)
	}
	for _, m := range r.Media {
		keyField(b, m.URL)
		keyField(b, m.ContentType)
	}
	r.At.key(b)
}

// messageRows formats texts for a list; names are their contacts' names.
func messageRows(msgs []voxanne.Message, names map[string]string) []messageRow {
	rows := make([]messageRow, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		from := deref(m.FromNumber)
		r := messageRow{Inbound: m.Direction == "inbound", ContactID: deref(m.ContactID), From: from, To: deref(m.ToNumber),
			Body: m.Body, Status: m.Status, Media: m.Media, At: stampOf(&m.CreatedAt)}
		if r.ContactID != "" {
			r.Name = names[r.ContactID]
		}
		rows[i] = r
	}
	return rows
}

// contactRow is a contact in a list.
type contactRow struct {
	ID, Name, Email, Number, Calls, Texts string
	LastSeen                              stamp
}

func (r contactRow) key(b *bytes.Buffer) {
	for _, v := range []string{r.ID, r.Name, r.Email, r.Number, r.Calls, r.Texts} {
		keyField(b, v)
	}
	r.LastSeen.key(b)
}

// contactRows formats contacts for a list.
func contactRows(contacts []voxanne.Contact) []contactRow {
	rows := make([]contactRow, len(contacts))
	for i := range contacts {
		c := &contacts[i]
		rows[i] = contactRow{ID: c.ID, Name: deref(c.Name), Email: deref(c.Email), Number: c.PhoneNumber,
			Calls: strconv.Itoa(c.CallCount), Texts: strconv.Itoa(c.MessageCount), LastSeen: stampOf(&c.LastSeenAt)}
	}
	return rows
}

// auditRow is an entry of the audit log.
type auditRow struct {
	Seq int64
	At  stamp
	// Actor is the acting member's address; ActorID the short id of an
	// actor who is no longer a member.
	Action, Actor, ActorID, TargetType, TargetID, IP string
}

func (r auditRow) key(b *bytes.Buffer) {
	for _, v := range []string{strconv.FormatInt(r.Seq, 10), r.Action, r.Actor, r.ActorID, r.TargetType, r.TargetID, r.IP} {
		keyField(b, v)
	}
	r.At.key(b)
}

// auditRows formats audit entries; actors maps member ids to addresses.
func auditRows(entries []voxanne.AuditEntry, actors map[string]string) []auditRow {
	rows := make([]auditRow, len(entries))
	for i := range entries {
		e := &entries[i]
		r := auditRow{Seq: e.Seq, At: stampOf(&e.At), Action: titleWord(e.Action), TargetType: deref(e.TargetType),
			TargetID: shortID(deref(e.TargetID)), IP: deref(e.IP)}
		if e.ActorID != nil {
			if r.Actor = actors[*e.ActorID]; r.Actor == "" {
				r.ActorID = shortID(*e.ActorID)
			}
		}
		rows[i] = r
	}
	return rows
}
