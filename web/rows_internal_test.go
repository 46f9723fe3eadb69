package web

import (
	"strings"
	"testing"
)

func TestRowMemoKeepsOrgsApart(t *testing.T) {
	p := loadPages()
	calls, names := sampleCalls(1)
	rows := callRows(calls, names)
	a, err := renderRows(p, "org-a", "calls", "callrow", rows)
	if err != nil {
		t.Fatal(err)
	}
	b, err := renderRows(p, "org-b", "calls", "callrow", rows)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || !strings.Contains(string(a), "/calls/"+calls[0].ID) || !strings.Contains(string(a), "Caller 0") {
		t.Fatalf("the rows differ or lack the call: %q %q", a, b)
	}
	orgs := map[string]bool{}
	for k := range p.rows.cache.Keys() {
		org, _, _ := strings.Cut(k, "\x00")
		orgs[org] = true
	}
	if len(orgs) != 2 || !orgs["org-a"] || !orgs["org-b"] {
		t.Errorf("memo entries by org: %v, want one for each org", orgs)
	}
}

func TestRowsEscapeTheirValues(t *testing.T) {
	p := loadPages()
	calls, names := sampleCalls(1)
	hostile := `"><img src=x onerror=alert(1)><script>alert(2)</script>`
	calls[0].Summary = &hostile
	names[*calls[0].ContactID] = hostile
	html, err := renderRows(p, "org", "calls", "callrow", callRows(calls, names))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(html), "<img") || strings.Contains(string(html), "<script") {
		t.Fatalf("a row shows its values unescaped: %s", html)
	}
	if !strings.Contains(string(html), "&lt;script&gt;") {
		t.Fatalf("a row lost its escaped value: %s", html)
	}
}
