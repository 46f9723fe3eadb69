package web

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// rotatingKeys is a KeySource with a current key and older trusted ones.
type rotatingKeys struct {
	current string
	keys    map[string][]byte
}

func (k rotatingKeys) Current() (string, []byte) { return k.current, k.keys[k.current] }
func (k rotatingKeys) Lookup(id string) ([]byte, bool) {
	v, ok := k.keys[id]
	return v, ok
}

func TestSealedSessionCookie(t *testing.T) {
	keys := rotatingKeys{current: "k1", keys: map[string][]byte{"k1": bytes.Repeat([]byte{1}, 32)}}
	s := &session{Access: "eyJaccess", Refresh: "refresh-secret", IssuedAt: 100, ExpiresAt: 200, Org: "org"}
	v, err := seal(keys, s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "refresh-secret") || strings.Contains(v, "eyJ") {
		t.Fatalf("the cookie shows its tokens: %s", v)
	}
	got, err := open(keys, v)
	if err != nil || *got != *s {
		t.Fatalf("open: %+v %v", got, err)
	}
	// Any change to the value is refused.
	kid, box, _ := strings.Cut(v, ".")
	for name, bad := range map[string]string{
		"flipped":   kid + "." + flip(box),
		"truncated": kid + "." + box[:len(box)-4],
		"no key id": box,
		"other kid": "azI." + box,
		"empty":     "",
	} {
		if _, err := open(keys, bad); err == nil {
			t.Errorf("%s cookie opened", name)
		}
	}
	// After a rotation the old cookie opens while its key is trusted, and new
	// cookies use the new key; once the old key goes, so do its cookies.
	keys.keys["k2"] = bytes.Repeat([]byte{2}, 32)
	keys.current = "k2"
	if _, err := open(keys, v); err != nil {
		t.Errorf("cookie of a trusted older key: %v", err)
	}
	v2, _ := seal(keys, s)
	if !strings.HasPrefix(v2, "azI.") {
		t.Errorf("new cookie not sealed with the current key: %s", v2)
	}
	delete(keys.keys, "k1")
	if _, err := open(keys, v); err == nil {
		t.Error("cookie of a retired key opened")
	}
}

func flip(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestNeedsRefreshInTheLastQuarter(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		issued, expires int64
		want            bool
	}{
		{1000, 1400, false}, {800, 1200, false}, {700, 1100, true}, {600, 1000, true}, {1000, 1000, true}, {0, 0, true}, {200, 1100, true},
	} {
		s := &session{IssuedAt: tc.issued, ExpiresAt: tc.expires}
		if got := s.needsRefresh(now); got != tc.want {
			t.Errorf("issued %d expires %d: %v", tc.issued, tc.expires, got)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/calls?q=a":          "/calls?q=a",
		"/contacts/x":         "/contacts/x",
		"//evil.example":      "/calls",
		"/\\evil.example":     "/calls",
		"https://evil":        "/calls",
		"/%2F%2Fevil.example": "/calls",
		"/api/me":             "/calls",
		"/static/app.css":     "/calls",
		"/logout":             "/calls",
		"":                    "/calls",
		"/calls\n":            "/calls",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
