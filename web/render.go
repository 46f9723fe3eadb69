package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/voxanne/voxanne"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages are the parsed templates, one set per page (the layout plus the page).
type pages struct {
	byName map[string]*template.Template
	assets map[string]asset
	// rows memoizes the markup of list rows (renderRows).
	rows *rowMemo
}

type asset struct {
	body  []byte
	etag  string
	ctype string
}

func loadPages() *pages {
	p := &pages{byName: map[string]*template.Template{}, assets: map[string]asset{}, rows: newRowMemo()}
	files, err := fs.Glob(staticFS, "static/*")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		b, err := staticFS.ReadFile(f)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		name := path.Base(f)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		p.assets[name] = asset{body: b, etag: hex.EncodeToString(sum[:8]), ctype: ct}
	}
	funcs := template.FuncMap{
		"asset": func(name string) string {
			if a, ok := p.assets[name]; ok {
				return "/static/" + name + "?v=" + a.etag
			}
			return "/static/" + name
		},
		"when":        when,
		"day":         func(t time.Time) string { return t.UTC().Format("Jan 2, 2006") },
		"str":         deref,
		"dur":         duration,
		"usd":         usd,
		"num":         func(f float64) string { return fmt.Sprintf("%.0f", f) },
		"pct":         pct,
		"title":       titleWord,
		"prettyJS":    prettyJSON,
		"short":       func(s string) string { return shortID(s) },
		"statusClass": statusClass,
		"roleAtLeast": voxanne.AtLeast,
		"canManage":   voxanne.CanManage,
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
		p.byName[strings.TrimSuffix(base, ".html")] = t
	}
	return p
}

// view is what every template gets.
type view struct {
	Title string
	// Nav names the active navigation entry.
	Nav  string
	CSRF string
	// User is nil on the signed-out pages.
	User *userView
	Data any
	// Live pages refresh their #live region when the org's calls or
	// messages change.
	Live bool
}

// userView is the signed-in user as the header shows them.
type userView struct {
	Email   string
	Role    string
	OrgID   string
	OrgName string
	Orgs    []voxanne.OrgRef
	IsAdmin bool
	IsOwner bool
}

func (q *req) user() *userView {
	u := &userView{Email: q.p.Email, Role: q.p.OrgRole, OrgID: q.p.OrgID,
		IsAdmin: voxanne.AtLeast(q.p.OrgRole, voxanne.RoleAdmin), IsOwner: q.p.OrgRole == voxanne.RoleOwner}
	if q.me != nil {
		u.Orgs = q.me.Orgs
		u.OrgName = q.me.Org.Name
	}
	return u
}

// render writes a page with status.
func (h *Handler) render(w http.ResponseWriter, status int, name string, v *view) {
	t, ok := h.pages.byName[name]
	if !ok {
		panic("web: no template " + name)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		h.cfg.Logger.Error("render", "template", name, "error", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// page renders a signed-in page.
func (q *req) page(h *Handler, status int, name, title, nav string, data any) error {
	live := h.cfg.Events != nil && (name == "calls" || name == "messages" || name == "overview")
	h.render(q.w, status, name, &view{Title: title, Nav: nav, CSRF: q.csrf, User: q.user(), Data: data, Live: live})
	return nil
}

type errorData struct {
	Heading, Text string
	Status        int
}

func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, status int, heading, text string) {
	h.renderErrorFor(w, r, nil, status, heading, text)
}

// renderErrorFor renders the error page, inside the app's chrome when the
// user is signed in.
func (h *Handler) renderErrorFor(w http.ResponseWriter, r *http.Request, q *req, status int, heading, text string) {
	w.Header().Set("Cache-Control", "no-store")
	v := &view{Title: heading, Data: errorData{Heading: heading, Text: text, Status: status}}
	if q != nil {
		v.User, v.CSRF = q.user(), q.csrf
	}
	h.render(w, status, "error", v)
}

// orgError is the page of a user whose active org is gone or who was removed
// from it: what happened, their other orgs, a create-org form and sign-out.
func (h *Handler) orgError(q *req) {
	u := q.user()
	u.OrgName = ""
	q.w.Header().Set("Cache-Control", "no-store")
	h.render(q.w, http.StatusForbidden, "orgerror", &view{Title: "No access to this organization", CSRF: q.csrf, User: u,
		Data: struct{ Orgs []voxanne.OrgRef }{q.me.Orgs}})
}

func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	a, ok := h.pages.assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	etag := `"` + a.etag + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", a.ctype)
	if r.URL.Query().Get("v") == a.etag {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=300")
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(a.body)
}

// Template helpers.

func when(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return "—"
		}
		t = *x
	default:
		return "—"
	}
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("Jan 2, 15:04")
}

func deref(v any) string {
	switch x := v.(type) {
	case *string:
		if x == nil {
			return ""
		}
		return *x
	case string:
		return x
	}
	return ""
}

func duration(v *float64) string {
	if v == nil {
		return "—"
	}
	s := int(math.Round(*v))
	if s < 60 {
		return strconv.Itoa(s) + "s"
	}
	sec := strconv.Itoa(s % 60)
	if len(sec) < 2 {
		sec = "0" + sec
	}
	return strconv.Itoa(s/60) + "m " + sec + "s"
}

func usd(v *float64) string {
	if v == nil {
		return "—"
	}
	return "$" + strconv.FormatFloat(*v, 'f', 2, 64)
}

func pct(a, b int) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(a)/float64(b))
}

func titleWord(s string) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c == '-' || c == '_' {
			b[i] = ' '
		}
	}
	if 'a' <= b[0] && b[0] <= 'z' {
		b[0] -= 'a' - 'A'
	}
	return string(b)
}

func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" || string(raw) == "{}" {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

func shortID(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
