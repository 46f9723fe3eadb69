// Package token issues and verifies Voxanne's access tokens: GoTrue-compatible
// JWTs signed with ES256, plus the Supabase legacy HS256 secret and the keys of
// an external Supabase project when those are configured.
//
// The package is pure: it holds the claim and key types, the JWK and JWKS
// encodings, the at-rest encryption of private keys and the signing and
// verification functions. Storage, caching and revocation live elsewhere, so
// everything here can be tested without a database.
package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Roles a token may carry in its role claim. PostgreSQL policies and the
// admin API read them, so they follow Supabase's names exactly.
const (
	// RoleAuthenticated is the role of every signed-in user.
	RoleAuthenticated = "authenticated"
	// RoleServiceRole is the role of operator tokens that may call the admin API.
	RoleServiceRole = "service_role"
)

// AMREntry is one authentication method reference, as GoTrue writes it: the
// method used (for example "password") and when it was used, in Unix seconds.
type AMREntry struct {
	Method    string `json:"method"`
	Timestamp int64  `json:"timestamp"`
}

// AppMetadata is the server-controlled part of a user's metadata that travels
// in the token. OrgID and OrgRole are the tenant isolation anchor: the
// organization of an API request comes from here and nothing else.
type AppMetadata struct {
	Provider  string   `json:"provider,omitempty"`
	Providers []string `json:"providers,omitempty"`
	OrgID     string   `json:"org_id,omitempty"`
	OrgRole   string   `json:"org_role,omitempty"`
}

// Claims is the payload of a Voxanne access token, shaped like GoTrue's so that
// @supabase/auth-js and PostgreSQL helpers such as auth.uid() read it unchanged.
// Times are Unix seconds; zero means absent.
//
// Claims has no unexported fields on purpose, so that callers can compare and
// copy it freely (for example with go-cmp in tests).
type Claims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	// ExpiresAt is required by Verify; a token without it never verifies.
	ExpiresAt    int64          `json:"exp"`
	IssuedAt     int64          `json:"iat"`
	NotBefore    int64          `json:"nbf,omitempty"`
	Email        string         `json:"email"`
	Phone        string         `json:"phone"`
	Role         string         `json:"role"`
	AAL          string         `json:"aal"`
	AMR          []AMREntry     `json:"amr"`
	SessionID    string         `json:"session_id"`
	IsAnonymous  bool           `json:"is_anonymous"`
	UserMetadata map[string]any `json:"user_metadata"`
	AppMetadata  AppMetadata    `json:"app_metadata"`
	// KeyID is the kid of the key Verify checked the signature with ("" for
	// HS256); it is not a claim and is never read from the payload.
	KeyID string `json:"-"`
}

// The jwt.Claims methods exist so that Claims can be handed to code written
// against golang-jwt; Verify itself does not rely on that library's validator.
var _ jwt.Claims = (*Claims)(nil)

// OrgID returns the active organization carried in app_metadata, or "" when the
// token has none (for example a service_role token).
func (c *Claims) OrgID() string {
	if c == nil {
		return ""
	}
	return c.AppMetadata.OrgID
}

// OrgRole returns the caller's role in OrgID ("owner", "admin" or "member"), or
// "" when the token carries no organization.
func (c *Claims) OrgRole() string {
	if c == nil {
		return ""
	}
	return c.AppMetadata.OrgRole
}

// GetExpirationTime implements jwt.Claims.
func (c *Claims) GetExpirationTime() (*jwt.NumericDate, error) {
	return numericDate(c.ExpiresAt), nil
}

// GetIssuedAt implements jwt.Claims.
func (c *Claims) GetIssuedAt() (*jwt.NumericDate, error) {
	return numericDate(c.IssuedAt), nil
}

// GetNotBefore implements jwt.Claims.
func (c *Claims) GetNotBefore() (*jwt.NumericDate, error) {
	return numericDate(c.NotBefore), nil
}

// GetIssuer implements jwt.Claims.
func (c *Claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *Claims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *Claims) GetAudience() (jwt.ClaimStrings, error) {
	if c.Audience == "" {
		return nil, nil
	}
	return jwt.ClaimStrings{c.Audience}, nil
}

// numericDate maps the zero value to nil because golang-jwt treats a nil date
// as an absent claim, which is what zero means in Claims.
func numericDate(sec int64) *jwt.NumericDate {
	if sec == 0 {
		return nil
	}
	return &jwt.NumericDate{Time: unixTime(sec)}
}

// claimsAlias has Claims' fields but none of its methods, so the custom
// marshalers below can delegate to encoding/json without recursing.
type claimsAlias Claims

// MarshalJSON writes empty user_metadata and amr as {} and [] rather than null,
// as GoTrue does, because clients and SQL policies index into them.
func (c Claims) MarshalJSON() ([]byte, error) {
	return marshalClaims(&c)
}

// marshalClaims is MarshalJSON without the re-validation encoding/json applies
// to a MarshalJSON result, which Sign has no need to pay for.
func marshalClaims(c *Claims) ([]byte, error) {
	a := (*claimsAlias)(c)
	if a.UserMetadata == nil || a.AMR == nil {
		cp := *a
		a = &cp
	}
	if a.UserMetadata == nil {
		a.UserMetadata = map[string]any{}
	}
	if a.AMR == nil {
		a.AMR = []AMREntry{}
	}
	return json.Marshal(a)
}

// UnmarshalJSON accepts the encodings other issuers may use: aud as a string or
// an array of strings (Audience then holds the first element; Verify checks the
// whole array instead) and exp, iat and nbf as fractional NumericDates (rounded
// down).
func (c *Claims) UnmarshalJSON(data []byte) error {
	var (
		auds audienceList
		w    wireClaims
	)
	if err := decodeClaims(data, c, &auds, &w); err != nil {
		return err
	}
	if len(auds.list) > 0 {
		c.Audience = auds.list[0]
	} else {
		c.Audience = auds.one
	}
	return nil
}

// wireClaims decodes a payload in a single pass: the outer fields shadow the
// embedded ones with the same JSON names, so the flexible encodings of aud and
// the dates are handled without decoding the payload twice.
type wireClaims struct {
	*claimsAlias
	Aud *audienceList `json:"aud"`
	Exp *unixSeconds  `json:"exp"`
	Iat *unixSeconds  `json:"iat"`
	Nbf *unixSeconds  `json:"nbf"`
}

// decodeClaims fills c from data and records the raw audience in auds. The
// caller provides w so that Verify can allocate it together with c.
func decodeClaims(data []byte, c *Claims, auds *audienceList, w *wireClaims) error {
	*c = Claims{}
	*w = wireClaims{
		claimsAlias: (*claimsAlias)(c),
		Aud:         auds,
		Exp:         (*unixSeconds)(&c.ExpiresAt),
		Iat:         (*unixSeconds)(&c.IssuedAt),
		Nbf:         (*unixSeconds)(&c.NotBefore),
	}
	return json.Unmarshal(data, w)
}

// audienceList holds aud in either of its RFC 7519 forms.
type audienceList struct {
	one  string
	list []string
}

// UnmarshalJSON accepts a string, an array of strings or null.
func (a *audienceList) UnmarshalJSON(b []byte) error {
	a.one, a.list = "", nil
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, &a.list)
	}
	if string(b) == "null" {
		return nil
	}
	// Fast path for the usual "authenticated": encoding/json has already
	// validated the literal, so a quoted run without escapes and with valid
	// UTF-8 is exactly the string's content. This spares a nested decoder on
	// every verification.
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' &&
		bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
		a.one = string(b[1 : n-1])
		return nil
	}
	return json.Unmarshal(b, &a.one)
}

// contains reports whether want is one of the audiences.
func (a *audienceList) contains(want string) bool {
	if a.list == nil {
		return a.one == want
	}
	for _, s := range a.list {
		if s == want {
			return true
		}
	}
	return false
}

// unixSeconds is an int64 NumericDate that also accepts fractional seconds,
// which RFC 7519 allows even though GoTrue never writes them.
type unixSeconds int64

var errBadDate = errors.New("token: date claim is not a number")

// UnmarshalJSON parses integers without allocating, because every verification
// goes through here, and falls back to strconv for fractional or exponent forms.
func (u *unixSeconds) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*u = 0
		return nil
	}
	if n, ok := parseInt(b); ok {
		*u = unixSeconds(n)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	// 2^62 keeps the later leeway arithmetic far from overflow while still
	// being billions of years away.
	if err != nil || math.IsNaN(f) || math.Abs(f) > 1<<62 {
		return errBadDate
	}
	*u = unixSeconds(math.Floor(f))
	return nil
}

// parseInt parses an optionally negative decimal integer of at most 18 digits,
// which cannot overflow int64.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
