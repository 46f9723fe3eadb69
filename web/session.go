package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/voxanne/voxanne/auth/token"
)

// Cookie names. The session cookie is sealed (AES-GCM) and opaque to the
// browser; the CSRF cookie is a random value that form tokens are derived from.
const (
	sessionCookie = "vx_session"
	csrfCookie    = "vx_csrf"
	csrfField     = "csrf"
)

// sessionLifetime bounds how long the browser keeps the session cookie; the
// auth session behind it may end earlier (logout, revocation).
const sessionLifetime = 30 * 24 * time.Hour

// KeySource supplies the keys that seal session cookies. Every instance must
// see the same keys, so that any of them opens a cookie another one sealed.
type KeySource interface {
	// Current returns the key id and the 32-byte key new cookies are sealed with.
	Current() (id string, key []byte)
	// Lookup returns the key of id, if it is still trusted.
	Lookup(id string) ([]byte, bool)
}

// SigningKeys derives cookie-sealing keys from the auth signing keys, which all
// instances already share through the database: a cookie sealed under a key
// opens as long as that signing key is trusted, and rotating the signing keys
// rotates the cookie keys with them.
func SigningKeys(current func() *token.Key, lookup func(kid string) (*token.Key, bool)) KeySource {
	return signingKeys{current: current, lookup: lookup}
}

type signingKeys struct {
	current func() *token.Key
	lookup  func(string) (*token.Key, bool)
}

func deriveCookieKey(k *token.Key) []byte {
	if k == nil || k.Private == nil {
		return nil
	}
	// The raw scalar (32 bytes for P-256, as D.FillBytes wrote it before).
	d, err := k.Private.Bytes()
	if err != nil {
		return nil
	}
	m := hmac.New(sha256.New, d)
	m.Write([]byte("voxanne dashboard session cookie v1"))
	return m.Sum(nil)
}

func (s signingKeys) Current() (string, []byte) {
	k := s.current()
	if k == nil {
		return "", nil
	}
	return k.ID, deriveCookieKey(k)
}

func (s signingKeys) Lookup(id string) ([]byte, bool) {
	k, ok := s.lookup(id)
	if !ok {
		return nil, false
	}
	key := deriveCookieKey(k)
	return key, key != nil
}

// session is what the sealed cookie holds: the auth session's tokens, kept by
// the server on the browser's behalf, and the org the user chose.
type session struct {
	Access    string `json:"a"`
	Refresh   string `json:"r"`
	IssuedAt  int64  `json:"i"`
	ExpiresAt int64  `json:"x"`
	// Org is the org the user works in; a token for another org (after a
	// removal) shows the org error page instead of silently switching.
	Org string `json:"o"`
}

// needsRefresh reports whether the access token is in the last quarter of its
// life (or past it), when it is refreshed before use.
func (s *session) needsRefresh(now time.Time) bool {
	life := s.ExpiresAt - s.IssuedAt
	if life <= 0 {
		return true
	}
	return now.Unix() >= s.ExpiresAt-life/4
}

var errBadCookie = errors.New("web: bad session cookie")

// seal encrypts s under the current key: kid "." base64(nonce|ciphertext).
func seal(keys KeySource, s *session) (string, error) {
	kid, key := keys.Current()
	if len(key) != 32 {
		return "", errors.New("web: no session key")
	}
	plain, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := aead.Seal(nonce, nonce, plain, []byte(sessionCookie+"|"+kid))
	return base64.RawURLEncoding.EncodeToString([]byte(kid)) + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// open decrypts a cookie value sealed by seal.
func open(keys KeySource, v string) (*session, error) {
	k64, c64, ok := strings.Cut(v, ".")
	if !ok {
		return nil, errBadCookie
	}
	kidb, err := base64.RawURLEncoding.DecodeString(k64)
	if err != nil {
		return nil, errBadCookie
	}
	key, ok := keys.Lookup(string(kidb))
	if !ok {
		return nil, errBadCookie
	}
	box, err := base64.RawURLEncoding.DecodeString(c64)
	if err != nil {
		return nil, errBadCookie
	}
	aead, err := newAEAD(key)
	if err != nil || len(box) < aead.NonceSize() {
		return nil, errBadCookie
	}
	plain, err := aead.Open(nil, box[:aead.NonceSize()], box[aead.NonceSize():], []byte(sessionCookie+"|"+string(kidb)))
	if err != nil {
		return nil, errBadCookie
	}
	var s session
	if err := json.Unmarshal(plain, &s); err != nil || s.Refresh == "" {
		return nil, errBadCookie
	}
	return &s, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// setSession writes the sealed session cookie.
func (h *Handler) setSession(w http.ResponseWriter, s *session) error {
	v, err := seal(h.cfg.Keys, s)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/", HttpOnly: true,
		Secure: h.secure, SameSite: http.SameSiteLaxMode, MaxAge: int(sessionLifetime.Seconds())})
	return nil
}

// clearSession deletes the session cookie.
func (h *Handler) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		Secure: h.secure, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// readSession returns the request's session, nil when it has none (or one no
// key opens).
func (h *Handler) readSession(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	s, err := open(h.cfg.Keys, c.Value)
	if err != nil {
		return nil
	}
	return s
}

// csrfSecret returns the request's CSRF cookie value, setting a new one when
// it has none.
func (h *Handler) csrfSecret(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true,
		Secure: h.secure, SameSite: http.SameSiteLaxMode})
	// Later reads in this request see the new value.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	return v
}

// csrfToken is the form token: an HMAC of the auth session id under the CSRF
// cookie, so that it is worthless without the cookie and in another session.
func csrfToken(secret, sessionID string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("voxanne-csrf|" + sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies a state-changing request: an Origin, when sent, must be
// this site's, and the form token must match the CSRF cookie and session.
func (h *Handler) checkCSRF(r *http.Request, sessionID string) bool {
	if o := r.Header.Get("Origin"); o != "" && !h.sameOrigin(r, o) {
		return false
	}
	if sf := r.Header.Get("Sec-Fetch-Site"); sf == "cross-site" {
		return false
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	got := r.PostFormValue(csrfField)
	want := csrfToken(c.Value, sessionID)
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (h *Handler) sameOrigin(r *http.Request, origin string) bool {
	if origin == h.origin {
		return true
	}
	scheme := "http"
	if r.TLS != nil || h.secure {
		scheme = "https"
	}
	return origin == scheme+"://"+r.Host
}
