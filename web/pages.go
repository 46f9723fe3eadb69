package web

import (
	"encoding/json"
	"html/template"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/voxanne/voxanne"
)

// pageSize is the number of rows per list page.
const pageSize = 50

// validID returns the canonical form of a UUID path value, or a not-found
// error: an id that is not a UUID names nothing.
func validID(v string) (string, error) {
	u, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		return "", voxanne.Errorf(voxanne.ENOTFOUND, "no such item")
	}
	return u.String(), nil
}

// pager links to the next page of a list with the same filters.
type pager struct {
	Next  string
	First string
}

func newPager(r *http.Request, next string) pager {
	var p pager
	q := r.URL.Query()
	if q.Get("cursor") != "" {
		q.Del("cursor")
		p.First = r.URL.Path
		if e := q.Encode(); e != "" {
			p.First += "?" + e
		}
	}
	if next != "" {
		q.Set("cursor", next)
		p.Next = r.URL.Path + "?" + q.Encode()
	}
	return p
}

// dateParam reads a YYYY-MM-DD filter; end dates cover their whole day.
func dateParam(v string, end bool) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return nil, voxanne.Errorf(voxanne.EINVALID, "dates are YYYY-MM-DD")
	}
	if end {
		t = t.AddDate(0, 0, 1).Add(-time.Microsecond)
	}
	return &t, nil
}

// Overview.

type overviewData struct {
	Days      int
	Today     *voxanne.Stats
	Period    *voxanne.Stats
	DayChart  chart
	Outcomes  []outcome
	Recent    template.HTML
	PeriodOps []int
}

type outcome struct {
	Reason string
	Count  int
	Width  int
}

func (h *Handler) overview(q *req) error {
	days := 7
	switch q.r.URL.Query().Get("days") {
	case "30":
		days = 30
	case "90":
		days = 90
	}
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	from := today.AddDate(0, 0, -(days - 1))
	st, td, recent, names, err := h.overviewData(q, days, from, today, now)
	if err != nil {
		return err
	}
	d := overviewData{Days: days, Today: td, Period: st, PeriodOps: []int{7, 30, 90}}
	if d.Recent, err = renderRows(h.pages, q.p.OrgID, "overview", "recentrow", callRows(recent, names)); err != nil {
		return err
	}
	d.DayChart = dayChart(st.ByDay, from, days)
	maxN := 0
	for reason, n := range st.ByOutcome {
		d.Outcomes = append(d.Outcomes, outcome{Reason: reason, Count: n})
		maxN = max(maxN, n)
	}
	sort.Slice(d.Outcomes, func(i, j int) bool {
		if d.Outcomes[i].Count != d.Outcomes[j].Count {
			return d.Outcomes[i].Count > d.Outcomes[j].Count
		}
		return d.Outcomes[i].Reason < d.Outcomes[j].Reason
	})
	for i := range d.Outcomes {
		d.Outcomes[i].Width = max(2, 100*d.Outcomes[i].Count/max(1, maxN))
	}
	return q.page(h, http.StatusOK, "overview", "Overview", "overview", d)
}

// overviewData reads the overview's figures, or takes those kept of the
// org's data as it is now (see figures), and its latest calls.
func (h *Handler) overviewData(q *req, days int, from, today, now time.Time) (period, day *voxanne.Stats, recent []voxanne.Call, names map[string]string, err error) {
	ctx, hub := q.r.Context(), h.cfg.Events
	if hub == nil {
		return h.cfg.Voice.Overview(ctx, q.p, from, today, now, latestCalls)
	}
	key := figuresKey{org: q.p.OrgID, days: days, from: from, today: today}
	version := hub.version(q.p.OrgID)
	if period, day, ok := h.figures.get(key, version, now); ok {
		recent, names, _, err = h.cfg.Voice.ListCallsNamed(ctx, q.p, voxanne.CallFilter{}, voxanne.Page{Limit: latestCalls})
		return period, day, recent, names, err
	}
	period, day, recent, names, err = h.cfg.Voice.Overview(ctx, q.p, from, today, now, latestCalls)
	// Kept only if no change was announced while they were read.
	if err == nil && hub.version(q.p.OrgID) == version {
		h.figures.put(key, version, now, period, day)
	}
	return period, day, recent, names, err
}

// latestCalls is how many calls the overview lists.
const latestCalls = 5

// Calls.

type callsData struct {
	// Calls are the rendered rows.
	Calls  template.HTML
	Q      string
	Status string
	From   string
	To     string
	Pager  pager
	Error  string
	// Filtered tells an empty page "no match" from "no calls yet".
	Filtered bool
	Statuses []string
}

var callStatuses = []string{"queued", "ringing", "in-progress", "forwarding", "ended"}

func (h *Handler) calls(q *req) error {
	v := q.r.URL.Query()
	d := callsData{Q: v.Get("q"), Status: v.Get("status"), From: v.Get("from"), To: v.Get("to"), Statuses: callStatuses}
	d.Filtered = d.Q != "" || d.Status != "" || d.From != "" || d.To != ""
	f := voxanne.CallFilter{Q: d.Q, Status: d.Status}
	var err error
	if f.From, err = dateParam(d.From, false); err == nil {
		f.To, err = dateParam(d.To, true)
	}
	if err == nil && len(d.Q) > 256 {
		err = voxanne.Errorf(voxanne.EINVALID, "the search is longer than 256 characters")
	}
	status := http.StatusOK
	if err == nil {
		var next string
		var calls []voxanne.Call
		var names map[string]string
		calls, names, next, err = h.cfg.Voice.ListCallsNamed(q.r.Context(), q.p, f, voxanne.Page{Limit: pageSize, Cursor: v.Get("cursor")})
		d.Pager = newPager(q.r, next)
		if err == nil {
			d.Calls, err = renderRows(h.pages, q.p.OrgID, "calls", "callrow", callRows(calls, names))
		}
	}
	if err != nil {
		if voxanne.ErrorCode(err) != voxanne.EINVALID {
			return err
		}
		d.Error, status = message(err), http.StatusBadRequest
	}
	return q.page(h, status, "calls", "Calls", "calls", d)
}

// turn is one line of a transcript.
type turn struct {
	Speaker string
	// Bot is true for the assistant's turns.
	Bot  bool
	Text string
}

type callData struct {
	Heading    string
	Call       *voxanne.CallDetail
	Turns      []turn
	Structured string
	Contact    *voxanne.ContactDetail
	Others     []voxanne.Call
}

func (h *Handler) call(q *req) error {
	id, err := validID(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	c, ct, err := h.cfg.Voice.CallWithContact(q.r.Context(), q.p, id, h.clientIP(q.r))
	if err != nil {
		return err
	}
	d := callData{Call: c, Contact: ct, Turns: transcriptTurns(c), Structured: prettyJSON(c.StructuredData)}
	if ct != nil {
		for _, o := range ct.RecentCalls {
			if o.ID != c.ID {
				d.Others = append(d.Others, o)
			}
		}
	}
	d.Heading = "Call"
	switch {
	case d.Contact != nil && d.Contact.Name != nil && *d.Contact.Name != "":
		d.Heading = "Call from " + *d.Contact.Name
	case c.FromNumber != nil:
		d.Heading = "Call from " + *c.FromNumber
	}
	return q.page(h, http.StatusOK, "call", d.Heading, "calls", d)
}

var speakerRE = regexp.MustCompile(`(?m)(?:^|\s)(AI|Assistant|Bot|User|Customer|Caller):\s`)

// transcriptTurns splits a call into speaker turns: from the provider's
// message list when it has one, else from "AI: ... User: ..." text.
func transcriptTurns(c *voxanne.CallDetail) []turn {
	var msgs []struct {
		Role    string `json:"role"`
		Message string `json:"message"`
		Content string `json:"content"`
	}
	if len(c.Messages) > 0 && json.Unmarshal(c.Messages, &msgs) == nil {
		var out []turn
		for _, m := range msgs {
			text := m.Message
			if text == "" {
				text = m.Content
			}
			if text == "" || m.Role == "system" || m.Role == "tool" || m.Role == "tool_calls" {
				continue
			}
			bot := m.Role == "assistant" || m.Role == "bot"
			speaker := "Caller"
			if bot {
				speaker = "Assistant"
			}
			out = append(out, turn{Speaker: speaker, Bot: bot, Text: text})
		}
		if len(out) > 0 {
			return out
		}
	}
	if c.Transcript == nil || strings.TrimSpace(*c.Transcript) == "" {
		return nil
	}
	t := *c.Transcript
	locs := speakerRE.FindAllStringSubmatchIndex(t, -1)
	if len(locs) == 0 {
		return []turn{{Speaker: "Transcript", Text: strings.TrimSpace(t)}}
	}
	var out []turn
	if pre := strings.TrimSpace(t[:locs[0][0]]); pre != "" {
		out = append(out, turn{Speaker: "Transcript", Text: pre})
	}
	for i, l := range locs {
		end := len(t)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		who := t[l[2]:l[3]]
		bot := who == "AI" || who == "Assistant" || who == "Bot"
		speaker := "Caller"
		if bot {
			speaker = "Assistant"
		}
		if text := strings.TrimSpace(t[l[1]:end]); text != "" {
			out = append(out, turn{Speaker: speaker, Bot: bot, Text: text})
		}
	}
	return out
}

// Messages.

type messagesData struct {
	// Messages are the rendered rows.
	Messages  template.HTML
	ContactID string
	Pager     pager
	Error     string
}

func (h *Handler) messages(q *req) error {
	d := messagesData{ContactID: q.r.URL.Query().Get("contact_id")}
	status := http.StatusOK
	var err error
	if d.ContactID != "" {
		if d.ContactID, err = validID(d.ContactID); err != nil {
			err = voxanne.Errorf(voxanne.EINVALID, "the contact filter is not a contact id")
		}
	}
	if err == nil {
		var next string
		var msgs []voxanne.Message
		var names map[string]string
		msgs, names, next, err = h.cfg.Voice.ListMessagesNamed(q.r.Context(), q.p, d.ContactID, voxanne.Page{Limit: pageSize, Cursor: q.r.URL.Query().Get("cursor")})
		d.Pager = newPager(q.r, next)
		if err == nil {
			d.Messages, err = renderRows(h.pages, q.p.OrgID, "messages", "messagerow", messageRows(msgs, names))
		}
	}
	if err != nil {
		if voxanne.ErrorCode(err) != voxanne.EINVALID {
			return err
		}
		d.Error, status = message(err), http.StatusBadRequest
	}
	return q.page(h, status, "messages", "Messages", "messages", d)
}

// Contacts.

type contactsData struct {
	// Contacts are the rendered rows.
	Contacts template.HTML
	Pager    pager
	Error    string
	Q        string
}

func (h *Handler) contacts(q *req) error {
	d := contactsData{Q: strings.TrimSpace(q.r.URL.Query().Get("q"))}
	status := http.StatusOK
	var next string
	var err error
	pg := voxanne.Page{Limit: pageSize, Cursor: q.r.URL.Query().Get("cursor")}
	var list []voxanne.Contact
	if d.Q != "" {
		list, next, err = h.cfg.Voice.SearchContacts(q.r.Context(), q.p, d.Q, pg)
	} else {
		list, next, err = h.cfg.Voice.ListContacts(q.r.Context(), q.p, pg)
	}
	if err == nil {
		d.Contacts, err = renderRows(h.pages, q.p.OrgID, "contacts", "contactrow", contactRows(list))
	}
	if err != nil {
		if voxanne.ErrorCode(err) != voxanne.EINVALID {
			return err
		}
		d.Error, status = message(err), http.StatusBadRequest
	}
	d.Pager = newPager(q.r, next)
	return q.page(h, status, "contacts", "Contacts", "contacts", d)
}

// timelineItem is a call or a text in a contact's timeline.
type timelineItem struct {
	At      time.Time
	Call    *voxanne.Call
	Message *voxanne.Message
}

type contactData struct {
	Contact  *voxanne.ContactDetail
	Timeline []timelineItem
	Saved    bool
	Error    string
	Name     string
	Email    string
	Notes    string
}

func (h *Handler) contact(q *req) error {
	id, err := validID(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	c, err := h.cfg.Voice.Contact(q.r.Context(), q.p, id)
	if err != nil {
		return err
	}
	d := contactData{Contact: c, Saved: q.r.URL.Query().Get("saved") == "1", Name: deref(c.Name), Email: deref(c.Email), Notes: c.Notes}
	d.Timeline = timeline(c)
	return q.page(h, http.StatusOK, "contact", contactTitle(&c.Contact), "contacts", d)
}

func contactTitle(c *voxanne.Contact) string {
	if c.Name != nil && *c.Name != "" {
		return *c.Name
	}
	return c.PhoneNumber
}

func timeline(c *voxanne.ContactDetail) []timelineItem {
	var out []timelineItem
	for i := range c.RecentCalls {
		cl := &c.RecentCalls[i]
		at := cl.CreatedAt
		if cl.StartedAt != nil {
			at = *cl.StartedAt
		}
		out = append(out, timelineItem{At: at, Call: cl})
	}
	for i := range c.RecentMessages {
		m := &c.RecentMessages[i]
		out = append(out, timelineItem{At: m.CreatedAt, Message: m})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out
}

func (h *Handler) contactPost(q *req) error {
	id, err := validID(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	name, email, notes := strings.TrimSpace(q.r.PostFormValue("name")), strings.TrimSpace(q.r.PostFormValue("email")), q.r.PostFormValue("notes")
	_, err = h.cfg.Voice.UpdateContact(q.r.Context(), q.p, id, voxanne.ContactUpdate{Name: &name, Email: &email, Notes: &notes})
	if voxanne.ErrorCode(err) == voxanne.EINVALID {
		c, cerr := h.cfg.Voice.Contact(q.r.Context(), q.p, id)
		if cerr != nil {
			return cerr
		}
		d := contactData{Contact: c, Timeline: timeline(c), Error: message(err), Name: name, Email: email, Notes: notes}
		return q.page(h, http.StatusBadRequest, "contact", contactTitle(&c.Contact), "contacts", d)
	}
	if err != nil {
		return err
	}
	http.Redirect(q.w, q.r, "/contacts/"+id+"?saved=1", http.StatusSeeOther)
	return nil
}

// Team.

type teamData struct {
	Members     []voxanne.Member
	Invitations []voxanne.Invitation
	Roles       []string
	Notice      string
	Error       string
	AcceptURL   string
	Self        string
}

func (h *Handler) teamData(q *req) (*teamData, error) {
	members, invitations, err := h.cfg.Orgs.Team(q.r.Context(), q.p)
	if err != nil {
		return nil, err
	}
	d := &teamData{Members: members, Invitations: invitations, Self: q.p.UserID, Roles: []string{voxanne.RoleMember, voxanne.RoleAdmin}}
	if q.p.OrgRole == voxanne.RoleOwner {
		d.Roles = append(d.Roles, voxanne.RoleOwner)
	}
	return d, nil
}

func (h *Handler) team(q *req) error {
	d, err := h.teamData(q)
	if err != nil {
		return err
	}
	switch q.r.URL.Query().Get("done") {
	case "role":
		d.Notice = "The role was changed."
	case "removed":
		d.Notice = "The member was removed."
	case "revoked":
		d.Notice = "The invitation was revoked."
	}
	return q.page(h, http.StatusOK, "team", "Team", "team", d)
}

// teamResult renders the team page after an action that failed or must show
// something once (the accept link).
func (h *Handler) teamResult(q *req, status int, notice, errMsg, acceptURL string) error {
	d, err := h.teamData(q)
	if err != nil {
		return err
	}
	d.Notice, d.Error, d.AcceptURL = notice, errMsg, acceptURL
	return q.page(h, status, "team", "Team", "team", d)
}

// actionError turns an expected refusal into a message on the page.
func (h *Handler) actionError(err error) (int, string, bool) {
	switch voxanne.ErrorCode(err) {
	case voxanne.EINVALID:
		return http.StatusBadRequest, message(err), true
	case voxanne.EFORBIDDEN:
		return http.StatusForbidden, "Your role does not allow this.", true
	case voxanne.ECONFLICT:
		return http.StatusConflict, message(err), true
	case voxanne.ENOTFOUND:
		return http.StatusNotFound, "There is no such member or invitation in this organization.", true
	}
	return 0, "", false
}

func (h *Handler) teamInvite(q *req) error {
	email, role := strings.TrimSpace(q.r.PostFormValue("email")), q.r.PostFormValue("role")
	inv, err := h.cfg.Orgs.Invite(q.r.Context(), q.p, email, role, h.clientIP(q.r))
	if err != nil {
		if status, msg, ok := h.actionError(err); ok {
			return h.teamResult(q, status, "", msg, "")
		}
		return err
	}
	return h.teamResult(q, http.StatusOK, "Invitation sent to "+inv.Email+". The link below works once, for 7 days.", "", inv.AcceptURL)
}

func (h *Handler) teamRole(q *req) error {
	id, err := validID(q.r.PathValue("userId"))
	if err != nil {
		return err
	}
	if _, err := h.cfg.Orgs.ChangeRole(q.r.Context(), q.p, id, q.r.PostFormValue("role"), h.clientIP(q.r)); err != nil {
		if status, msg, ok := h.actionError(err); ok {
			return h.teamResult(q, status, "", msg, "")
		}
		return err
	}
	if id == q.p.UserID {
		// The user changed their own role, here: they go on with a token of
		// the new role (a change made elsewhere signs them out instead). A
		// refresh that fails leaves the revoked token, and the next page
		// signs out.
		_ = h.refresh(q.w, q.r, q.s)
	}
	http.Redirect(q.w, q.r, "/team?done=role", http.StatusSeeOther)
	return nil
}

func (h *Handler) teamRemove(q *req) error {
	id, err := validID(q.r.PathValue("userId"))
	if err != nil {
		return err
	}
	if err := h.cfg.Orgs.RemoveMember(q.r.Context(), q.p, id, h.clientIP(q.r)); err != nil {
		if status, msg, ok := h.actionError(err); ok {
			return h.teamResult(q, status, "", msg, "")
		}
		return err
	}
	if id == q.p.UserID {
		// Left the org: the next page shows where to go from here.
		http.Redirect(q.w, q.r, "/calls", http.StatusSeeOther)
		return nil
	}
	http.Redirect(q.w, q.r, "/team?done=removed", http.StatusSeeOther)
	return nil
}

func (h *Handler) teamRevoke(q *req) error {
	id, err := validID(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := h.cfg.Orgs.RevokeInvitation(q.r.Context(), q.p, id, h.clientIP(q.r)); err != nil {
		if status, msg, ok := h.actionError(err); ok {
			return h.teamResult(q, status, "", msg, "")
		}
		return err
	}
	http.Redirect(q.w, q.r, "/team?done=revoked", http.StatusSeeOther)
	return nil
}

// Settings.

type settingsData struct {
	Org       *voxanne.Org
	Numbers   []voxanne.PhoneNumber
	Webhooks  []webhookURL
	Endpoints []endpointView
	// HasEndpoints tells whether the org's own endpoints can be managed.
	HasEndpoints bool
	// NewSecret is a Vapi secret just made, shown once.
	NewSecret string
	Notice    string
	Error     string
}

type webhookURL struct {
	Provider, What, URL string
}

// endpointView is one of the org's own endpoints with the URLs to paste.
type endpointView struct {
	voxanne.WebhookEndpoint
	URLs []webhookURL
}

func (h *Handler) settingsData(q *req) (*settingsData, error) {
	org, err := h.cfg.Orgs.Org(q.r.Context(), q.p)
	if err != nil {
		return nil, err
	}
	nums, err := h.cfg.Voice.PhoneNumbers(q.r.Context(), q.p)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(h.cfg.PublicURL, "/")
	d := &settingsData{Org: org, Numbers: nums, Webhooks: []webhookURL{
		{"Vapi", "Server URL (assistant or phone number settings)", base + "/api/webhooks/vapi"},
		{"Twilio", "Messaging webhook (A message comes in, HTTP POST)", base + "/api/webhooks/twilio/sms"},
		{"Twilio", "Status callback URL", base + "/api/webhooks/twilio/status"},
	}}
	if h.cfg.Endpoints != nil && voxanne.AtLeast(q.p.OrgRole, voxanne.RoleAdmin) {
		list, err := h.cfg.Endpoints.Endpoints(q.r.Context(), q.p)
		if err != nil {
			return nil, err
		}
		d.HasEndpoints = true
		for _, e := range list {
			v := endpointView{WebhookEndpoint: e}
			if e.Provider == "vapi" {
				v.URLs = []webhookURL{{"Vapi", "Server URL", base + "/api/webhooks/vapi/" + e.ID}}
			} else {
				v.URLs = []webhookURL{{"Twilio", "Messaging webhook", base + "/api/webhooks/twilio/" + e.ID + "/sms"},
					{"Twilio", "Status callback URL", base + "/api/webhooks/twilio/" + e.ID + "/status"}}
			}
			d.Endpoints = append(d.Endpoints, v)
		}
	}
	return d, nil
}

// endpointsOn refuses the endpoint actions when the server has none.
func (h *Handler) endpointsOn() error {
	if h.cfg.Endpoints == nil {
		return voxanne.Errorf(voxanne.ENOTFOUND, "webhook endpoints are not available")
	}
	return nil
}

func (h *Handler) settingsAddEndpoint(q *req) error {
	if err := h.endpointsOn(); err != nil {
		return err
	}
	e, err := h.cfg.Endpoints.CreateEndpoint(q.r.Context(), q.p, q.r.PostFormValue("provider"), q.r.PostFormValue("auth_token"), h.clientIP(q.r))
	if err != nil {
		if status, msg, ok := h.actionError(err); ok {
			return h.settingsResult(q, status, msg)
		}
		return err
	}
	return h.settingsSecret(q, e, "The endpoint was created.")
}

func (h *Handler) settingsRotateEndpoint(q *req) error {
	if err := h.endpointsOn(); err != nil {
		return err
	}
	id, err := validID(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	e, err := h.cfg.Endpoints.RotateEndpoint(q.r.Context(), q.p, id, q.r.PostFormValue("auth_token"), h.clientIP(q.r))
	if err != nil {
		if status, msg, ok := h.actionError(err); ok {
			return h.settingsResult(q, status, msg)
		}
		return err
	}
	return h.settingsSecret(q, e, "The secret was rotated; the previous one still works for 24 hours.")
}

// settingsSecret renders the settings page after an endpoint change, with a
// new Vapi secret shown this once (the page is not cached).
func (h *Handler) settingsSecret(q *req, e *voxanne.WebhookEndpoint, notice string) error {
	d, err := h.settingsData(q)
	if err != nil {
		return err
	}
	d.Notice, d.NewSecret = notice, e.Secret
	return q.page(h, http.StatusOK, "settings", "Settings", "settings", d)
}

func (h *Handler) settingsDeleteEndpoint(q *req) error {
	if err := h.endpointsOn(); err != nil {
		return err
	}
	id, err := validID(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := h.cfg.Endpoints.DeleteEndpoint(q.r.Context(), q.p, id, h.clientIP(q.r)); err != nil {
		if status, msg, ok := h.actionError(err); ok {
			return h.settingsResult(q, status, msg)
		}
		return err
	}
	http.Redirect(q.w, q.r, "/settings?done=endpoint", http.StatusSeeOther)
	return nil
}

func (h *Handler) settings(q *req) error {
	d, err := h.settingsData(q)
	if err != nil {
		return err
	}
	switch q.r.URL.Query().Get("done") {
	case "org":
		d.Notice = "The organization was renamed."
	case "number":
		d.Notice = "The phone number was added."
	case "deleted":
		d.Notice = "The phone number was deleted."
	case "endpoint":
		d.Notice = "The endpoint was deleted."
	case "mfa":
		d.Notice = "The two-factor requirement was changed."
	}
	return q.page(h, http.StatusOK, "settings", "Settings", "settings", d)
}

func (h *Handler) settingsResult(q *req, status int, errMsg string) error {
	d, err := h.settingsData(q)
	if err != nil {
		return err
	}
	d.Error = errMsg
	return q.page(h, status, "settings", "Settings", "settings", d)
}

func (h *Handler) settingsOrg(q *req) error {
	if _, err := h.cfg.Orgs.RenameOrg(q.r.Context(), q.p, q.r.PostFormValue("name"), h.clientIP(q.r)); err != nil {
		if status, msg, ok := h.actionError(err); ok {
			return h.settingsResult(q, status, msg)
		}
		return err
	}
	http.Redirect(q.w, q.r, "/settings?done=org", http.StatusSeeOther)
	return nil
}

func (h *Handler) settingsAddNumber(q *req) error {
	f := q.r.PostFormValue
	n := voxanne.PhoneNumber{E164: strings.TrimSpace(f("e164")), Provider: f("provider"), Label: strings.TrimSpace(f("label"))}
	if v := strings.TrimSpace(f("provider_id")); v != "" {
		n.ProviderID = &v
	}
	if v := strings.TrimSpace(f("assistant_id")); v != "" {
		n.AssistantID = &v
	}
	if _, err := h.cfg.Voice.AddPhoneNumber(q.r.Context(), q.p, n); err != nil {
		if status, msg, ok := h.actionError(err); ok {
			return h.settingsResult(q, status, msg)
		}
		return err
	}
	http.Redirect(q.w, q.r, "/settings?done=number", http.StatusSeeOther)
	return nil
}

func (h *Handler) settingsDeleteNumber(q *req) error {
	id, err := validID(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := h.cfg.Voice.DeletePhoneNumber(q.r.Context(), q.p, id); err != nil {
		if status, msg, ok := h.actionError(err); ok {
			return h.settingsResult(q, status, msg)
		}
		return err
	}
	http.Redirect(q.w, q.r, "/settings?done=deleted", http.StatusSeeOther)
	return nil
}

// Audit log.

var auditActions = []string{voxanne.AuditSignIn, voxanne.AuditSignOut, voxanne.AuditOrgSwitched, voxanne.AuditOrgCreated,
	voxanne.AuditOrgRenamed, voxanne.AuditMemberInvited, voxanne.AuditMemberJoined, voxanne.AuditMemberRemoved,
	voxanne.AuditRoleChanged, voxanne.AuditInviteRevoked, voxanne.AuditCrossTenant, voxanne.AuditTranscriptRead}

type auditData struct {
	// Entries are the rendered rows.
	Entries  template.HTML
	Action   string
	Actions  []string
	Pager    pager
	Checked  bool
	Verified bool
	Count    int64
	Error    string
}

func (h *Handler) audit(q *req) error {
	v := q.r.URL.Query()
	d := auditData{Action: v.Get("action"), Actions: auditActions}
	if !voxanne.AtLeast(q.p.OrgRole, voxanne.RoleAdmin) {
		return voxanne.Errorf(voxanne.EFORBIDDEN, "the audit log is for admins")
	}
	if d.Action != "" && !containsStr(auditActions, d.Action) {
		d.Error = "Unknown action filter."
		return q.page(h, http.StatusBadRequest, "audit", "Audit log", "audit", d)
	}
	var before int64
	if c := v.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 1 {
			d.Error = "The page position is not valid."
			return q.page(h, http.StatusBadRequest, "audit", "Audit log", "audit", d)
		}
		before = n
	}
	entries, members, err := h.cfg.Orgs.AuditPage(q.r.Context(), q.p, pageSize+1, before, d.Action)
	if err != nil {
		return err
	}
	next := ""
	if len(entries) > pageSize {
		entries = entries[:pageSize]
		next = strconv.FormatInt(entries[pageSize-1].Seq, 10)
	}
	actors := map[string]string{}
	for _, m := range members {
		actors[m.UserID] = m.Email
	}
	d.Pager = newPager(q.r, next)
	if d.Entries, err = renderRows(h.pages, q.p.OrgID, "audit", "auditrow", auditRows(entries, actors)); err != nil {
		return err
	}
	if v.Get("verify") == "1" {
		ok, n, err := h.cfg.Orgs.VerifyAuditLog(q.r.Context(), q.p)
		if err != nil {
			return err
		}
		d.Checked, d.Verified, d.Count = true, ok, n
	}
	return q.page(h, http.StatusOK, "audit", "Audit log", "audit", d)
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (h *Handler) auditExport(q *req) error {
	if !voxanne.AtLeast(q.p.OrgRole, voxanne.RoleAdmin) {
		return voxanne.Errorf(voxanne.EFORBIDDEN, "the audit log is for admins")
	}
	started := false
	enc := json.NewEncoder(q.w)
	err := h.cfg.Orgs.ExportAuditLog(q.r.Context(), q.p, func(e voxanne.AuditEntry) error {
		if !started {
			started = true
			q.w.Header().Set("Content-Type", "application/x-ndjson")
			q.w.Header().Set("Content-Disposition", `attachment; filename="audit-log.jsonl"`)
		}
		return enc.Encode(e)
	})
	if err != nil && !started {
		return err
	}
	if !started {
		q.w.Header().Set("Content-Type", "application/x-ndjson")
		q.w.Header().Set("Content-Disposition", `attachment; filename="audit-log.jsonl"`)
		q.w.WriteHeader(http.StatusOK)
	}
	return nil
}

// Account.

type accountData struct {
	Notice string
	Error  string
}

func (h *Handler) account(q *req) error {
	var d accountData
	if q.r.URL.Query().Get("done") == "password" {
		d.Notice = "Your password was changed. Your other sessions were signed out."
	}
	return q.page(h, http.StatusOK, "account", "Account", "account", d)
}

func (h *Handler) accountPassword(q *req) error {
	pw := q.r.PostFormValue("password")
	if pw != q.r.PostFormValue("password2") {
		return q.page(h, http.StatusBadRequest, "account", "Account", "account", accountData{Error: "The two passwords differ."})
	}
	if _, err := h.cfg.Auth.UpdateUser(q.r.Context(), q.p, voxanne.UserUpdate{Password: &pw}); err != nil {
		if voxanne.ErrorCode(err) == voxanne.EINVALID {
			return q.page(h, http.StatusBadRequest, "account", "Account", "account", accountData{Error: signupMessage(err)})
		}
		return err
	}
	http.Redirect(q.w, q.r, "/account?done=password", http.StatusSeeOther)
	return nil
}

func (h *Handler) accountLogoutAll(q *req) error {
	if err := h.cfg.Auth.Logout(q.r.Context(), q.p, voxanne.ScopeGlobal); err != nil {
		return err
	}
	h.clearSession(q.w)
	http.Redirect(q.w, q.r, "/login", http.StatusSeeOther)
	return nil
}

// Orgs.

// switchOrg starts a session for another org the user belongs to and ends the
// one it replaces.
func (h *Handler) switchOrg(q *req) error {
	id, err := validID(q.r.PostFormValue("org"))
	if err != nil {
		return voxanne.Errorf(voxanne.EINVALID, "choose an organization")
	}
	sess, err := h.cfg.Orgs.SwitchOrg(q.r.Context(), q.p, id, h.clientInfo(q.r))
	if err != nil {
		if voxanne.ErrorCode(err) == voxanne.EFORBIDDEN {
			return voxanne.Errorf(voxanne.EFORBIDDEN, "you are not a member of that organization")
		}
		return err
	}
	_ = h.cfg.Auth.Logout(q.r.Context(), q.p, voxanne.ScopeLocal)
	if err := h.startSession(q.w, sess, id); err != nil {
		return err
	}
	http.Redirect(q.w, q.r, "/calls", http.StatusSeeOther)
	return nil
}

func (h *Handler) createOrg(q *req) error {
	org, err := h.cfg.Orgs.CreateOrg(q.r.Context(), q.p, q.r.PostFormValue("name"), h.clientIP(q.r))
	if err != nil {
		return err
	}
	sess, err := h.cfg.Orgs.SwitchOrg(q.r.Context(), q.p, org.ID, h.clientInfo(q.r))
	if err != nil {
		return err
	}
	_ = h.cfg.Auth.Logout(q.r.Context(), q.p, voxanne.ScopeLocal)
	if err := h.startSession(q.w, sess, org.ID); err != nil {
		return err
	}
	http.Redirect(q.w, q.r, "/settings", http.StatusSeeOther)
	return nil
}
