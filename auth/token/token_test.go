package token_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/voxanne/voxanne/auth/token"
)

const (
	testIssuer = "https://voxanne.test/auth/v1"
	extIssuer  = "https://ext-project.supabase.co/auth/v1"
	testOrg    = "0b7e6f0c-3a4d-4c1e-9a53-2f9d8e1c7a10"
	otherOrg   = "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"
	testUser   = "5a3f9c1e-7d2b-4e8a-9c6f-1b0d2e3f4a5b"
	testSess   = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
)

// testNow is the fixed clock of every verifier in these tests.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fixture holds the keys shared by the tests; generating RSA keys is slow, so
// it is built once.
type fixture struct {
	local    *token.Key // ES256 signing key in the local ring
	retired  *token.Key // verify-only local key, as after a rotation
	retPriv  *ecdsa.PrivateKey
	extPriv  *rsa.PrivateKey // external project's RS256 key
	extKID   string
	extES    *ecdsa.PrivateKey // external project's ES256 key
	extESKID string
	attacker *ecdsa.PrivateKey
	secret   []byte
	external func(string) (*token.Key, bool)
}

var getFixture = sync.OnceValue(func() *fixture {
	local, err := token.NewES256Key()
	must(err)
	old, err := token.NewES256Key()
	must(err)
	extPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	extES, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	attacker, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	f := &fixture{
		local:    local,
		retired:  &token.Key{ID: old.ID, Public: old.Public, Alg: token.AlgES256},
		retPriv:  old.Private,
		extPriv:  extPriv,
		extKID:   "ext-rsa-1",
		extES:    extES,
		extESKID: "ext-ec-1",
		attacker: attacker,
		secret:   []byte("super-secret-jwt-token-with-at-least-32-characters-long"),
	}
	// The external ring goes through a JWKS document, as it would in production.
	doc := token.MarshalJWKS([]*token.Key{
		{ID: f.extKID, Public: &extPriv.PublicKey, Alg: token.AlgRS256},
		{ID: f.extESKID, Public: &extES.PublicKey, Alg: token.AlgES256},
	})
	keys, err := token.ParseJWKS(doc)
	must(err)
	if len(keys) != 2 {
		panic(fmt.Sprintf("external JWKS has %d keys, want 2", len(keys)))
	}
	f.external = token.Lookup(keys)
	return f
})

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func newVerifier(f *fixture) *token.Verifier {
	return &token.Verifier{
		Issuer:         testIssuer,
		Audience:       "authenticated",
		Leeway:         30 * time.Second,
		MaxTokenSize:   16 << 10,
		Keys:           token.Lookup([]*token.Key{f.local, f.retired}),
		External:       f.external,
		ExternalIssuer: extIssuer,
		Now:            func() time.Time { return testNow },
	}
}

// claims returns realistic GoTrue-shaped claims valid at testNow, changed by mod.
func claims(mod func(c *token.Claims)) *token.Claims {
	c := &token.Claims{
		Issuer:       testIssuer,
		Subject:      testUser,
		Audience:     "authenticated",
		ExpiresAt:    testNow.Add(time.Hour).Unix(),
		IssuedAt:     testNow.Unix(),
		Email:        "ada@example.com",
		Phone:        "",
		Role:         token.RoleAuthenticated,
		AAL:          "aal1",
		AMR:          []token.AMREntry{{Method: "password", Timestamp: testNow.Unix()}},
		SessionID:    testSess,
		UserMetadata: map[string]any{"full_name": "Ada Lovelace"},
		AppMetadata: token.AppMetadata{
			Provider:  "email",
			Providers: []string{"email"},
			OrgID:     testOrg,
			OrgRole:   "owner",
		},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// claimsMap is claims as a generic JSON object, for tokens whose payload the
// Claims type cannot express (aud arrays, missing members).
func claimsMap(mod func(m map[string]any)) map[string]any {
	raw, err := json.Marshal(claims(nil))
	must(err)
	var m map[string]any
	must(json.Unmarshal(raw, &m))
	if mod != nil {
		mod(m)
	}
	return m
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// craft builds a token with an arbitrary header and payload; payload may be a
// value to marshal or raw bytes used as they are.
func craft(hdr map[string]any, payload any, sign func(input string) []byte) string {
	h, err := json.Marshal(hdr)
	must(err)
	p, ok := payload.([]byte)
	if !ok {
		p, err = json.Marshal(payload)
		must(err)
	}
	input := enc(h) + "." + enc(p)
	return input + "." + enc(sign(input))
}

func signWith(m jwt.SigningMethod, key any) func(string) []byte {
	return func(input string) []byte {
		sig, err := m.Sign(input, key)
		must(err)
		return sig
	}
}

func noSignature(string) []byte { return nil }

func hdr(alg, kid string, extra ...any) map[string]any {
	h := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		h["kid"] = kid
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i].(string)] = extra[i+1]
	}
	return h
}

func signLocal(f *fixture, c *token.Claims) string {
	tok, err := token.Sign(f.local, c)
	must(err)
	return tok
}

// publicJWKMap is the attacker key as a JWK header member.
func publicJWKMap(k *ecdsa.PrivateKey, kid string) map[string]any {
	jwk := token.PublicJWK(&token.Key{ID: kid, Public: &k.PublicKey, Alg: token.AlgES256})
	raw, err := json.Marshal(jwk)
	must(err)
	var m map[string]any
	must(json.Unmarshal(raw, &m))
	return m
}

func TestSignVerifyRoundTrip(t *testing.T) {
	f := getFixture()
	v := newVerifier(f)
	want := claims(nil)
	tok, err := token.Sign(f.local, want)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("Sign returned %d parts, want 3", len(parts))
	}
	rawHdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(rawHdr, &h); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"alg": "ES256", "typ": "JWT", "kid": f.local.ID}, h); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}

	got, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// Verify also reports which key it checked the signature with.
	want.KeyID = f.local.ID
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if got.OrgID() != testOrg || got.OrgRole() != "owner" {
		t.Errorf("OrgID, OrgRole = %q, %q; want %q, owner", got.OrgID(), got.OrgRole(), testOrg)
	}
}

// TestVerify is the table of every accepted and rejected shape of token.
func TestVerify(t *testing.T) {
	f := getFixture()
	local := f.local
	valid := signLocal(f, claims(nil))
	validParts := strings.Split(valid, ".")

	pubDER, err := x509.MarshalPKIXPublicKey(local.Public)
	must(err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	jwkJSON, err := json.Marshal(token.PublicJWK(local))
	must(err)

	withSecret := func(v *token.Verifier) { v.HS256Secret = f.secret }
	extClaims := func(mod func(m map[string]any)) map[string]any {
		return claimsMap(func(m map[string]any) {
			m["iss"] = extIssuer
			if mod != nil {
				mod(m)
			}
		})
	}
	at := func(d time.Duration) int64 { return testNow.Add(d).Unix() }

	tests := []struct {
		name   string
		token  string
		config func(v *token.Verifier)
		want   error // nil: must verify
	}{
		{name: "valid ES256", token: valid},
		{
			name:  "valid ES256 by retired verify-only key",
			token: craft(hdr("ES256", f.retired.ID), claims(nil), signWith(jwt.SigningMethodES256, f.retPriv)),
		},

		// Algorithm confusion.
		{
			name:  "alg none with valid kid and no signature",
			token: craft(hdr("none", local.ID), claims(nil), noSignature),
			want:  token.ErrAlgorithm,
		},
		{
			name:  "alg none without kid",
			token: craft(hdr("none", ""), claims(nil), noSignature),
			want:  token.ErrAlgorithm,
		},
		{
			name:  "alg None capitalised",
			token: craft(hdr("None", local.ID), claims(nil), noSignature),
			want:  token.ErrAlgorithm,
		},
		{
			name:   "alg none even with HS256 secret configured",
			token:  craft(hdr("none", local.ID), claims(nil), noSignature),
			config: withSecret,
			want:   token.ErrAlgorithm,
		},
		{
			name:  "alg none keeping a real signature",
			token: craft(hdr("none", local.ID), claims(nil), func(string) []byte { b, _ := base64.RawURLEncoding.DecodeString(validParts[2]); return b }),
			want:  token.ErrAlgorithm,
		},
		{
			name:  "HS256 keyed with public key PEM, no secret configured",
			token: craft(hdr("HS256", local.ID), claims(nil), signWith(jwt.SigningMethodHS256, pubPEM)),
			want:  token.ErrAlgorithm,
		},
		{
			name:  "HS256 keyed with public key DER, no secret configured",
			token: craft(hdr("HS256", local.ID), claims(nil), signWith(jwt.SigningMethodHS256, pubDER)),
			want:  token.ErrAlgorithm,
		},
		{
			name:  "HS256 keyed with public JWK JSON, no secret configured",
			token: craft(hdr("HS256", local.ID), claims(nil), signWith(jwt.SigningMethodHS256, jwkJSON)),
			want:  token.ErrAlgorithm,
		},
		{
			name:   "HS256 keyed with public key PEM, secret configured",
			token:  craft(hdr("HS256", local.ID), claims(nil), signWith(jwt.SigningMethodHS256, pubPEM)),
			config: withSecret,
			want:   token.ErrSignature,
		},
		{
			name:   "HS256 with the configured secret",
			token:  craft(hdr("HS256", ""), claims(nil), signWith(jwt.SigningMethodHS256, f.secret)),
			config: withSecret,
		},
		{
			name:   "HS256 with the configured secret and a ring kid",
			token:  craft(hdr("HS256", local.ID), claims(nil), signWith(jwt.SigningMethodHS256, f.secret)),
			config: withSecret,
		},
		{
			name:   "HS256 with a wrong secret",
			token:  craft(hdr("HS256", ""), claims(nil), signWith(jwt.SigningMethodHS256, []byte("not-the-secret-but-just-as-long-as-it-is-really"))),
			config: withSecret,
			want:   token.ErrSignature,
		},
		{
			name:  "HS256 with the right secret but HS256 not enabled",
			token: craft(hdr("HS256", ""), claims(nil), signWith(jwt.SigningMethodHS256, f.secret)),
			want:  token.ErrAlgorithm,
		},
		{
			name:   "HS256 with the secret but external issuer",
			token:  craft(hdr("HS256", ""), claims(func(c *token.Claims) { c.Issuer = extIssuer }), signWith(jwt.SigningMethodHS256, f.secret)),
			config: withSecret,
			want:   token.ErrIssuer,
		},
		{
			name:  "RS256 header on an ES256 kid",
			token: craft(hdr("RS256", local.ID), claims(nil), signWith(jwt.SigningMethodRS256, f.extPriv)),
			want:  token.ErrAlgorithm,
		},
		{
			name:  "ES256 header on an RS256 kid",
			token: craft(hdr("ES256", f.extKID), extClaims(nil), signWith(jwt.SigningMethodES256, f.attacker)),
			want:  token.ErrAlgorithm,
		},
		{
			name:  "ES384 is never accepted",
			token: craft(hdr("ES384", local.ID), claims(nil), noSignature),
			want:  token.ErrAlgorithm,
		},
		{
			name:  "PS256 is never accepted",
			token: craft(hdr("PS256", f.extKID), extClaims(nil), signWith(jwt.SigningMethodPS256, f.extPriv)),
			want:  token.ErrAlgorithm,
		},

		// Signature.
		{
			name:  "tampered payload keeps the original signature",
			token: validParts[0] + "." + enc(mustJSON(claims(func(c *token.Claims) { c.AppMetadata.OrgID = otherOrg }))) + "." + validParts[2],
			want:  token.ErrSignature,
		},
		{
			name:  "tampered header kid to the retired key",
			token: craft(hdr("ES256", f.retired.ID), claims(nil), func(string) []byte { b, _ := base64.RawURLEncoding.DecodeString(validParts[2]); return b }),
			want:  token.ErrSignature,
		},
		{
			name:  "empty signature",
			token: validParts[0] + "." + validParts[1] + ".",
			want:  token.ErrSignature,
		},
		{
			name:  "truncated signature",
			token: validParts[0] + "." + validParts[1] + "." + enc(mustDecode(validParts[2])[:63]),
			want:  token.ErrSignature,
		},
		{
			name:  "unknown kid",
			token: craft(hdr("ES256", "no-such-kid"), claims(nil), signWith(jwt.SigningMethodES256, f.attacker)),
			want:  token.ErrUnknownKey,
		},

		// Header-borne keys are ignored.
		{
			name:  "jwk header with attacker kid, signed by the attacker",
			token: craft(hdr("ES256", "attacker", "jwk", publicJWKMap(f.attacker, "attacker")), claims(nil), signWith(jwt.SigningMethodES256, f.attacker)),
			want:  token.ErrUnknownKey,
		},
		{
			name:  "jwk header with ring kid, signed by the attacker",
			token: craft(hdr("ES256", local.ID, "jwk", publicJWKMap(f.attacker, local.ID)), claims(nil), signWith(jwt.SigningMethodES256, f.attacker)),
			want:  token.ErrSignature,
		},
		{
			name:  "x5u header with ring kid, signed by the attacker",
			token: craft(hdr("ES256", local.ID, "x5u", "https://attacker.example/cert.pem"), claims(nil), signWith(jwt.SigningMethodES256, f.attacker)),
			want:  token.ErrSignature,
		},
		{
			name:  "crit header",
			token: craft(hdr("ES256", local.ID, "crit", []string{"exp"}), claims(nil), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrMalformed,
		},
		{
			name:  "ES256 without kid",
			token: craft(hdr("ES256", ""), claims(nil), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrMalformed,
		},

		// Time.
		{
			name:  "expired beyond leeway",
			token: signLocal(f, claims(func(c *token.Claims) { c.ExpiresAt = at(-31 * time.Second) })),
			want:  token.ErrExpired,
		},
		{
			name:  "expired exactly at leeway",
			token: signLocal(f, claims(func(c *token.Claims) { c.ExpiresAt = at(-30 * time.Second) })),
			want:  token.ErrExpired,
		},
		{
			name:  "expired within leeway",
			token: signLocal(f, claims(func(c *token.Claims) { c.ExpiresAt = at(-29 * time.Second) })),
		},
		{
			name:   "expired with leeway disabled",
			token:  signLocal(f, claims(func(c *token.Claims) { c.ExpiresAt = at(-time.Second) })),
			config: func(v *token.Verifier) { v.Leeway = -1 },
			want:   token.ErrExpired,
		},
		{
			name:  "no exp",
			token: craft(hdr("ES256", local.ID), claimsMap(func(m map[string]any) { delete(m, "exp") }), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrExpired,
		},
		{
			name:  "exp null",
			token: craft(hdr("ES256", local.ID), claimsMap(func(m map[string]any) { m["exp"] = nil }), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrExpired,
		},
		{
			name:  "exp as string",
			token: craft(hdr("ES256", local.ID), claimsMap(func(m map[string]any) { m["exp"] = strconv.FormatInt(at(time.Hour), 10) }), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrMalformed,
		},
		{
			name:  "exp fractional",
			token: craft(hdr("ES256", local.ID), claimsMap(func(m map[string]any) { m["exp"] = float64(at(time.Hour)) + 0.5 }), signWith(jwt.SigningMethodES256, local.Private)),
		},
		{
			name:  "exp near the int64 limit",
			token: craft(hdr("ES256", local.ID), []byte(`{"iss":"`+testIssuer+`","aud":"authenticated","exp":999999999999999999}`), signWith(jwt.SigningMethodES256, local.Private)),
		},
		{
			name:  "exp far in the past",
			token: craft(hdr("ES256", local.ID), []byte(`{"iss":"`+testIssuer+`","aud":"authenticated","exp":-999999999999999999}`), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrExpired,
		},
		{
			name:  "nbf in the future",
			token: signLocal(f, claims(func(c *token.Claims) { c.NotBefore = at(time.Minute) })),
			want:  token.ErrNotYetValid,
		},
		{
			name:  "nbf in the future within leeway",
			token: signLocal(f, claims(func(c *token.Claims) { c.NotBefore = at(20 * time.Second) })),
		},
		{
			name:  "iat in the future",
			token: signLocal(f, claims(func(c *token.Claims) { c.IssuedAt = at(time.Minute) })),
			want:  token.ErrNotYetValid,
		},
		{
			name:  "iat in the future within leeway",
			token: signLocal(f, claims(func(c *token.Claims) { c.IssuedAt = at(30 * time.Second) })),
		},

		// Issuer and audience.
		{
			name:  "wrong iss",
			token: signLocal(f, claims(func(c *token.Claims) { c.Issuer = "https://evil.example/auth/v1" })),
			want:  token.ErrIssuer,
		},
		{
			name:  "iss differing only by a trailing slash",
			token: signLocal(f, claims(func(c *token.Claims) { c.Issuer = testIssuer + "/" })),
			want:  token.ErrIssuer,
		},
		{
			name:  "empty iss with empty configured issuer",
			token: signLocal(f, claims(func(c *token.Claims) { c.Issuer = "" })),
			config: func(v *token.Verifier) {
				v.Issuer = ""
			},
			want: token.ErrIssuer,
		},
		{
			name:  "wrong aud",
			token: signLocal(f, claims(func(c *token.Claims) { c.Audience = "anon" })),
			want:  token.ErrAudience,
		},
		{
			name:  "missing aud",
			token: craft(hdr("ES256", local.ID), claimsMap(func(m map[string]any) { delete(m, "aud") }), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrAudience,
		},
		{
			name:  "aud array containing the audience",
			token: craft(hdr("ES256", local.ID), claimsMap(func(m map[string]any) { m["aud"] = []string{"other", "authenticated"} }), signWith(jwt.SigningMethodES256, local.Private)),
		},
		{
			name:  "aud array without the audience",
			token: craft(hdr("ES256", local.ID), claimsMap(func(m map[string]any) { m["aud"] = []string{"other", "anon"} }), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrAudience,
		},
		{
			name:  "aud empty array",
			token: craft(hdr("ES256", local.ID), claimsMap(func(m map[string]any) { m["aud"] = []string{} }), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrAudience,
		},
		{
			name:  "aud number",
			token: craft(hdr("ES256", local.ID), claimsMap(func(m map[string]any) { m["aud"] = 1 }), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrMalformed,
		},

		// External project.
		{
			name:  "external RS256 with external issuer",
			token: craft(hdr("RS256", f.extKID), extClaims(nil), signWith(jwt.SigningMethodRS256, f.extPriv)),
		},
		{
			name:  "external ES256 with external issuer and aud array",
			token: craft(hdr("ES256", f.extESKID), extClaims(func(m map[string]any) { m["aud"] = []string{"authenticated"} }), signWith(jwt.SigningMethodES256, f.extES)),
		},
		{
			name:  "external key with local issuer",
			token: craft(hdr("RS256", f.extKID), claimsMap(nil), signWith(jwt.SigningMethodRS256, f.extPriv)),
			want:  token.ErrIssuer,
		},
		{
			name:  "local key with external issuer",
			token: signLocal(f, claims(func(c *token.Claims) { c.Issuer = extIssuer })),
			want:  token.ErrIssuer,
		},
		{
			name:   "external key when no external issuer is configured",
			token:  craft(hdr("RS256", f.extKID), claimsMap(func(m map[string]any) { m["iss"] = "" }), signWith(jwt.SigningMethodRS256, f.extPriv)),
			config: func(v *token.Verifier) { v.ExternalIssuer = "" },
			want:   token.ErrIssuer,
		},
		{
			name:   "external kid when External is not configured",
			token:  craft(hdr("RS256", f.extKID), extClaims(nil), signWith(jwt.SigningMethodRS256, f.extPriv)),
			config: func(v *token.Verifier) { v.External = nil },
			want:   token.ErrUnknownKey,
		},

		// Size and shape.
		{
			name:  "oversized garbage",
			token: strings.Repeat("a", 16<<10+1),
			want:  token.ErrTooLarge,
		},
		{
			name:  "oversized but validly signed",
			token: signLocal(f, claims(func(c *token.Claims) { c.UserMetadata = map[string]any{"blob": strings.Repeat("x", 16<<10)} })),
			want:  token.ErrTooLarge,
		},
		{
			name:   "large token within a raised limit",
			token:  signLocal(f, claims(func(c *token.Claims) { c.UserMetadata = map[string]any{"blob": strings.Repeat("x", 16<<10)} })),
			config: func(v *token.Verifier) { v.MaxTokenSize = 64 << 10 },
		},
		{name: "empty", token: "", want: token.ErrMalformed},
		{name: "one dot", token: ".", want: token.ErrMalformed},
		{name: "two dots", token: "..", want: token.ErrMalformed},
		{name: "two parts", token: validParts[0] + "." + validParts[1], want: token.ErrMalformed},
		{name: "four parts", token: valid + ".x", want: token.ErrMalformed},
		{name: "words", token: "not a token", want: token.ErrMalformed},
		{name: "bearer prefix", token: "Bearer " + valid, want: token.ErrMalformed},
		{name: "padding", token: valid + "==", want: token.ErrMalformed},
		{name: "newline in signature", token: valid[:len(valid)-10] + "\n" + valid[len(valid)-10:], want: token.ErrMalformed},
		// '+' belongs to standard base64, not base64url (a fixed position: a random
		// token need not contain any '-' to replace).
		{name: "standard base64 alphabet", token: validParts[0] + "." + validParts[1] + ".+" + validParts[2][1:], want: token.ErrMalformed},
		{name: "header not JSON", token: enc([]byte("alg=ES256")) + "." + validParts[1] + "." + validParts[2], want: token.ErrMalformed},
		{name: "header JSON array", token: enc([]byte(`["ES256"]`)) + "." + validParts[1] + "." + validParts[2], want: token.ErrMalformed},
		{name: "header alg not a string", token: enc([]byte(`{"alg":1}`)) + "." + validParts[1] + "." + validParts[2], want: token.ErrMalformed},
		{name: "impossible base64 length", token: "eyJhbGciOiJFUzI1NiJ9a.e30.AAAA", want: token.ErrMalformed},
		{name: "non-canonical base64 trailing bits", token: validParts[0][:len(validParts[0])-1] + nonCanonical(validParts[0]) + "." + validParts[1] + "." + validParts[2], want: token.ErrMalformed},
		{
			name:  "signed payload that is not JSON",
			token: craft(hdr("ES256", local.ID), []byte("hello"), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrMalformed,
		},
		{
			name:  "signed payload that is a JSON array",
			token: craft(hdr("ES256", local.ID), []byte("[1,2]"), signWith(jwt.SigningMethodES256, local.Private)),
			want:  token.ErrMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(f)
			if tt.config != nil {
				tt.config(v)
			}
			got, err := v.Verify(tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want success", err)
				}
				if got == nil || got.Audience != "authenticated" {
					t.Fatalf("Verify returned claims %+v", got)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, token.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if got != nil {
				t.Errorf("Verify returned claims with error %v", err)
			}
		})
	}
}

// nonCanonical returns the last character of s with its unused low bits set:
// it decodes to the same bytes under a lenient decoder, so it must be refused.
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	switch len(s) % 4 {
	case 2: // 4 unused bits
		return string(alphabet[last|0x0f])
	case 3: // 2 unused bits
		return string(alphabet[last|0x03])
	}
	// No unused bits: make the part's length impossible instead.
	return s[len(s)-1:] + "A"
}

func mustDecode(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	must(err)
	return b
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	must(err)
	return b
}

// TestVerifyIgnoresJKU shows that a jku header is never fetched: the server it
// names counts requests, and verification is decided by the ring alone.
func TestVerifyIgnoresJKU(t *testing.T) {
	f := getFixture()
	var hits atomic.Int32
	attackerJWKS := token.MarshalJWKS([]*token.Key{{ID: "attacker", Public: &f.attacker.PublicKey, Alg: token.AlgES256}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(attackerJWKS)
	}))
	defer srv.Close()
	jku := srv.URL + "/jwks.json"

	v := newVerifier(f)
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{
			name:  "signed by the ring key: jku ignored, token valid",
			token: craft(hdr("ES256", f.local.ID, "jku", jku), claims(nil), signWith(jwt.SigningMethodES256, f.local.Private)),
		},
		{
			name:  "signed by the attacker with the attacker's kid",
			token: craft(hdr("ES256", "attacker", "jku", jku), claims(nil), signWith(jwt.SigningMethodES256, f.attacker)),
			want:  token.ErrUnknownKey,
		},
		{
			name:  "signed by the attacker with the ring kid",
			token: craft(hdr("ES256", f.local.ID, "jku", jku), claims(nil), signWith(jwt.SigningMethodES256, f.attacker)),
			want:  token.ErrSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.token)
			if tt.want == nil && err != nil {
				t.Fatalf("Verify: %v, want success", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("jku URL was fetched %d times, want 0", n)
	}
}

func TestVerifierDefaults(t *testing.T) {
	f := getFixture()
	v := &token.Verifier{Issuer: testIssuer, Keys: token.Lookup([]*token.Key{f.local}), Now: func() time.Time { return testNow }}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"default audience accepts authenticated", signLocal(f, claims(nil)), nil},
		{"default leeway is 30s", signLocal(f, claims(func(c *token.Claims) { c.ExpiresAt = testNow.Add(-29 * time.Second).Unix() })), nil},
		{"default leeway ends at 30s", signLocal(f, claims(func(c *token.Claims) { c.ExpiresAt = testNow.Add(-30 * time.Second).Unix() })), token.ErrExpired},
		{"default size limit is 16 KiB", strings.Repeat("a", token.DefaultMaxTokenSize+1), token.ErrTooLarge},
		{"no external lookup", craft(hdr("RS256", f.extKID), claims(nil), signWith(jwt.SigningMethodRS256, f.extPriv)), token.ErrUnknownKey},
		{"no HS256 secret", craft(hdr("HS256", ""), claims(nil), signWith(jwt.SigningMethodHS256, f.secret)), token.ErrAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.token)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}
	// A zero Verifier must reject everything rather than panic.
	if _, err := (&token.Verifier{}).Verify(signLocal(f, claims(nil))); !errors.Is(err, token.ErrUnknownKey) {
		t.Errorf("zero Verifier: error = %v, want ErrUnknownKey", err)
	}
}

func TestSignErrors(t *testing.T) {
	f := getFixture()
	rsaKey := &token.Key{ID: "r", Public: &f.extPriv.PublicKey, Alg: token.AlgRS256}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	tests := []struct {
		name string
		key  *token.Key
		c    *token.Claims
	}{
		{"nil key", nil, claims(nil)},
		{"verify-only key", f.retired, claims(nil)},
		{"RSA key", rsaKey, claims(nil)},
		{"P-384 key", &token.Key{ID: "p384", Private: p384, Alg: token.AlgES256}, claims(nil)},
		{"key without ID", &token.Key{Private: f.local.Private, Alg: token.AlgES256}, claims(nil)},
		{"key with wrong Alg", &token.Key{ID: "x", Private: f.local.Private, Alg: token.AlgHS256}, claims(nil)},
		{"nil claims", f.local, nil},
		{"claims without exp", f.local, claims(func(c *token.Claims) { c.ExpiresAt = 0 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := token.Sign(tt.key, tt.c); err == nil {
				t.Fatalf("Sign succeeded with %q", tok)
			}
		})
	}
}

func TestClaimsJSON(t *testing.T) {
	c := claims(func(c *token.Claims) { c.UserMetadata, c.AMR = nil, nil })
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	want := []string{"aal", "amr", "app_metadata", "aud", "email", "exp", "iat", "is_anonymous", "iss", "phone", "role", "session_id", "sub", "user_metadata"}
	slices.Sort(keys)
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("claim names (-want +got):\n%s", diff)
	}
	if string(m["user_metadata"]) != "{}" || string(m["amr"]) != "[]" {
		t.Errorf("user_metadata, amr = %s, %s; want {}, []", m["user_metadata"], m["amr"])
	}
	if got := string(m["app_metadata"]); got != `{"provider":"email","providers":["email"],"org_id":"`+testOrg+`","org_role":"owner"}` {
		t.Errorf("app_metadata = %s", got)
	}

	withNBF := claims(func(c *token.Claims) { c.NotBefore = testNow.Unix() })
	if raw := mustJSON(withNBF); !bytes.Contains(raw, []byte(`"nbf":`)) {
		t.Errorf("nbf missing from %s", raw)
	}

	// Foreign encodings decode into the same struct.
	var foreign token.Claims
	in := `{"iss":"x","aud":["authenticated","other"],"exp":1700000000.9,"iat":1.6e9,"app_metadata":{"org_id":"o","org_role":"member","custom":1}}`
	if err := json.Unmarshal([]byte(in), &foreign); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if foreign.Audience != "authenticated" || foreign.ExpiresAt != 1700000000 || foreign.IssuedAt != 1600000000 {
		t.Errorf("decoded aud, exp, iat = %q, %d, %d", foreign.Audience, foreign.ExpiresAt, foreign.IssuedAt)
	}
	if foreign.OrgID() != "o" || foreign.OrgRole() != "member" {
		t.Errorf("OrgID, OrgRole = %q, %q", foreign.OrgID(), foreign.OrgRole())
	}
	var nilClaims *token.Claims
	if nilClaims.OrgID() != "" || nilClaims.OrgRole() != "" {
		t.Error("nil Claims must have no org")
	}
	for _, bad := range []string{`{"exp":"1"}`, `{"exp":true}`, `{"exp":1e300}`, `{"aud":{}}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), new(token.Claims)); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
}

// TestGolangJWTCompatibility shows that Claims works as a jwt.Claims with
// golang-jwt's own parser, for code that prefers it.
func TestGolangJWTCompatibility(t *testing.T) {
	f := getFixture()
	tok := signLocal(f, claims(nil))
	var c token.Claims
	_, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return f.local.Public, nil },
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithTimeFunc(func() time.Time { return testNow }),
		jwt.WithIssuer(testIssuer),
		jwt.WithAudience("authenticated"),
		jwt.WithExpirationRequired(),
	)
	if err != nil {
		t.Fatalf("ParseWithClaims: %v", err)
	}
	if c.OrgID() != testOrg {
		t.Errorf("OrgID = %q", c.OrgID())
	}
	expired := signLocal(f, claims(func(c *token.Claims) { c.ExpiresAt = testNow.Add(-time.Hour).Unix() }))
	_, err = jwt.ParseWithClaims(expired, &token.Claims{}, func(*jwt.Token) (any, error) { return f.local.Public, nil },
		jwt.WithTimeFunc(func() time.Time { return testNow }))
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("expired token: error = %v, want jwt.ErrTokenExpired", err)
	}
}

func TestJWKS(t *testing.T) {
	f := getFixture()
	// A key whose X coordinate has a leading zero byte checks the fixed-width
	// encoding; about one key in 256 has one.
	var short *ecdsa.PrivateKey
	for short == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		if k.X.BitLen() <= 248 {
			short = k
		}
	}
	shortKey := &token.Key{ID: "short-x", Private: short, Alg: token.AlgES256}
	rsaKey := &token.Key{ID: "rsa", Public: &f.extPriv.PublicKey, Alg: token.AlgRS256}

	doc := token.MarshalJWKS([]*token.Key{f.local, f.retired, shortKey, rsaKey, nil, {ID: "broken", Alg: token.AlgES256}})
	var generic struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &generic); err != nil {
		t.Fatalf("JWKS is not JSON: %v\n%s", err, doc)
	}
	if len(generic.Keys) != 4 {
		t.Fatalf("JWKS has %d keys, want 4:\n%s", len(generic.Keys), doc)
	}
	for _, k := range generic.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS key %v has private member %q", k["kid"], private)
			}
		}
		if k["use"] != "sig" || !cmp.Equal(k["key_ops"], []any{"verify"}) {
			t.Errorf("key %v: use %v, key_ops %v", k["kid"], k["use"], k["key_ops"])
		}
	}
	want := map[string]any{"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": f.local.ID, "use": "sig", "key_ops": []any{"verify"}}
	got := generic.Keys[0]
	for name, value := range want {
		if !cmp.Equal(got[name], value) {
			t.Errorf("local JWK %s = %v, want %v", name, got[name], value)
		}
	}
	for _, k := range generic.Keys[:3] {
		for _, coord := range []string{"x", "y"} {
			b, err := base64.RawURLEncoding.DecodeString(k[coord].(string))
			if err != nil || len(b) != 32 {
				t.Errorf("key %v: %s decodes to %d bytes (%v), want 32", k["kid"], coord, len(b), err)
			}
		}
	}
	if bytes.Contains(doc, []byte(`"d"`)) {
		t.Errorf("JWKS contains a d member:\n%s", doc)
	}

	parsed, err := token.ParseJWKS(doc)
	if err != nil {
		t.Fatalf("ParseJWKS: %v", err)
	}
	if len(parsed) != 4 {
		t.Fatalf("ParseJWKS returned %d keys, want 4", len(parsed))
	}
	for _, k := range parsed {
		if k.Private != nil {
			t.Errorf("parsed key %s has a private key", k.ID)
		}
	}
	// Keys from the document verify tokens signed by the originals.
	v := newVerifier(f)
	v.Keys = token.Lookup(parsed)
	v.External = nil
	for _, tok := range []string{
		signLocal(f, claims(nil)),
		craft(hdr("ES256", f.retired.ID), claims(nil), signWith(jwt.SigningMethodES256, f.retPriv)),
		craft(hdr("ES256", "short-x"), claims(nil), signWith(jwt.SigningMethodES256, short)),
		craft(hdr("RS256", "rsa"), claims(nil), signWith(jwt.SigningMethodRS256, f.extPriv)),
	} {
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("Verify with parsed JWKS: %v", err)
		}
	}
	if empty := token.MarshalJWKS(nil); string(empty) != `{"keys":[]}` {
		t.Errorf("empty JWKS = %s", empty)
	}
}

func TestParseJWKS(t *testing.T) {
	f := getFixture()
	ec := token.PublicJWK(f.local)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	smallJWK := token.PublicJWK(&token.Key{ID: "small", Public: &small.PublicKey, Alg: token.AlgRS256})
	bigJWK := token.PublicJWK(&token.Key{ID: "big", Public: &f.extPriv.PublicKey, Alg: token.AlgRS256})
	keyJSON := func(mod func(m map[string]any)) string {
		var m map[string]any
		must(json.Unmarshal(mustJSON(ec), &m))
		mod(m)
		return string(mustJSON(m))
	}
	oct := `{"kty":"oct","kid":"hmac","alg":"HS256","k":"c2VjcmV0"}`
	okp := `{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`

	tests := []struct {
		name    string
		doc     string
		wantIDs []string
		wantErr bool
	}{
		{name: "EC key", doc: `{"keys":[` + keyJSON(func(map[string]any) {}) + `]}`, wantIDs: []string{f.local.ID}},
		{name: "oct key is never accepted", doc: `{"keys":[` + oct + `]}`, wantIDs: []string{}},
		{name: "oct key beside an EC key", doc: `{"keys":[` + oct + `,` + keyJSON(func(map[string]any) {}) + `]}`, wantIDs: []string{f.local.ID}},
		{name: "unknown kty skipped", doc: `{"keys":[` + okp + `]}`, wantIDs: []string{}},
		{name: "private d member ignored", doc: `{"keys":[` + keyJSON(func(m map[string]any) { m["d"] = "AAAA" }) + `]}`, wantIDs: []string{f.local.ID}},
		{name: "no kid skipped", doc: `{"keys":[` + keyJSON(func(m map[string]any) { delete(m, "kid") }) + `]}`, wantIDs: []string{}},
		{name: "encryption key skipped", doc: `{"keys":[` + keyJSON(func(m map[string]any) { m["use"] = "enc" }) + `]}`, wantIDs: []string{}},
		{name: "key_ops without verify skipped", doc: `{"keys":[` + keyJSON(func(m map[string]any) { m["key_ops"] = []string{"encrypt"} }) + `]}`, wantIDs: []string{}},
		{name: "no alg means ES256", doc: `{"keys":[` + keyJSON(func(m map[string]any) { delete(m, "alg") }) + `]}`, wantIDs: []string{f.local.ID}},
		{name: "other EC curve skipped", doc: `{"keys":[` + keyJSON(func(m map[string]any) { m["crv"] = "P-384" }) + `]}`, wantIDs: []string{}},
		{name: "EC key declared RS256 skipped", doc: `{"keys":[` + keyJSON(func(m map[string]any) { m["alg"] = "RS256" }) + `]}`, wantIDs: []string{}},
		{name: "point off the curve", doc: `{"keys":[` + keyJSON(func(m map[string]any) { m["y"] = m["x"] }) + `]}`, wantErr: true},
		{name: "short coordinate", doc: `{"keys":[` + keyJSON(func(m map[string]any) { m["x"] = "AAAA" }) + `]}`, wantErr: true},
		{name: "padded coordinate", doc: `{"keys":[` + keyJSON(func(m map[string]any) { m["x"] = m["x"].(string) + "=" }) + `]}`, wantErr: true},
		{name: "duplicate kid", doc: `{"keys":[` + keyJSON(func(map[string]any) {}) + `,` + keyJSON(func(map[string]any) {}) + `]}`, wantErr: true},
		{name: "RSA below 2048 bits", doc: `{"keys":[` + string(mustJSON(smallJWK)) + `]}`, wantErr: true},
		{name: "RSA even exponent", doc: `{"keys":[{"kty":"RSA","kid":"r","n":"` + bigJWK.N + `","e":"Ag"}]}`, wantErr: true},
		{name: "RSA 2048", doc: `{"keys":[` + string(mustJSON(bigJWK)) + `]}`, wantIDs: []string{"big"}},
		{name: "not JSON", doc: `keys`, wantErr: true},
		{name: "no keys member", doc: `{"kty":"EC"}`, wantErr: true},
		{name: "keys not an array", doc: `{"keys":{}}`, wantErr: true},
		{name: "empty set", doc: `{"keys":[]}`, wantIDs: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := token.ParseJWKS([]byte(tt.doc))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseJWKS succeeded with %d keys", len(keys))
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJWKS: %v", err)
			}
			ids := []string{}
			for _, k := range keys {
				ids = append(ids, k.ID)
				if k.Alg == token.AlgHS256 || k.Private != nil {
					t.Errorf("key %s: Alg %s, private %v", k.ID, k.Alg, k.Private != nil)
				}
			}
			if diff := cmp.Diff(tt.wantIDs, ids); diff != "" {
				t.Errorf("kids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrivateKeyStorage(t *testing.T) {
	f := getFixture()
	kek := token.DeriveKEK("operator-secret-from-the-environment")
	if len(kek) != 32 {
		t.Fatalf("DeriveKEK returned %d bytes", len(kek))
	}
	der, err := token.MarshalPrivate(f.local)
	if err != nil {
		t.Fatalf("MarshalPrivate: %v", err)
	}
	sealed, err := token.Seal(kek, der)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if bytes.Contains(sealed, der[len(der)-32:]) {
		t.Fatal("sealed output contains plaintext")
	}
	again, err := token.Seal(kek, der)
	must(err)
	if bytes.Equal(sealed, again) {
		t.Error("two seals of the same plaintext are identical: nonce is not random")
	}
	opened, err := token.Open(kek, sealed)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	k, err := token.ParsePrivate(opened)
	if err != nil {
		t.Fatalf("ParsePrivate: %v", err)
	}
	if k.Alg != token.AlgES256 || k.ID != "" || !k.Private.Equal(f.local.Private) {
		t.Fatalf("ParsePrivate returned Alg %q, ID %q, same key %v", k.Alg, k.ID, k.Private.Equal(f.local.Private))
	}
	k.ID = f.local.ID
	tok, err := token.Sign(k, claims(nil))
	if err != nil {
		t.Fatalf("Sign with the restored key: %v", err)
	}
	if _, err := newVerifier(f).Verify(tok); err != nil {
		t.Errorf("token from the restored key: %v", err)
	}

	// Every single-bit change anywhere in the sealed value is detected.
	for i := range sealed {
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x01
		if _, err := token.Open(kek, tampered); err == nil {
			t.Fatalf("Open accepted a change at byte %d", i)
		}
	}
	failures := []struct {
		name   string
		kek    []byte
		sealed []byte
	}{
		{"wrong kek", token.DeriveKEK("another-secret"), sealed},
		{"short kek", kek[:16], sealed},
		{"truncated", kek, sealed[:len(sealed)-1]},
		{"only a nonce", kek, sealed[:12]},
		{"empty", kek, nil},
	}
	for _, tt := range failures {
		if _, err := token.Open(tt.kek, tt.sealed); err == nil {
			t.Errorf("Open with %s succeeded", tt.name)
		}
	}
	if _, err := token.Seal(kek[:24], der); err == nil {
		t.Error("Seal accepted a 24-byte kek")
	}

	rsaDER, err := x509.MarshalPKCS8PrivateKey(f.extPriv)
	must(err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	p384DER, err := x509.MarshalPKCS8PrivateKey(p384)
	must(err)
	for name, der := range map[string][]byte{"RSA": rsaDER, "P-384": p384DER, "garbage": []byte("not DER")} {
		if _, err := token.ParsePrivate(der); err == nil {
			t.Errorf("ParsePrivate accepted a %s key", name)
		}
	}
	if _, err := token.MarshalPrivate(f.retired); err == nil {
		t.Error("MarshalPrivate accepted a verify-only key")
	}
}

func TestNewES256Key(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		k, err := token.NewES256Key()
		if err != nil {
			t.Fatal(err)
		}
		if k.Alg != token.AlgES256 || k.Private == nil || k.Private.Curve != elliptic.P256() || k.Public == nil {
			t.Fatalf("NewES256Key returned %+v", k)
		}
		if len(k.ID) < 16 || seen[k.ID] {
			t.Fatalf("kid %q is short or repeated", k.ID)
		}
		seen[k.ID] = true
	}
}

// fuzzKeyDER is a fixed P-256 test key (PKCS #8, base64) so that the seed
// corpus under testdata/ holds tokens that really verify, letting the fuzzer
// mutate its way past the signature check.
const fuzzKeyDER = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3fJSOUQfK6tWxi7hC+jx9v4bIBd9nUgTGm6tI+o2HaOhRANCAAQCO/bRxwsJob/3/uEX/k6eF0SFb+LOxyuvZGwDq2hrg1iM3Bo8ut7tEKceigXnmBHo3jS2Bhyuje5rzw1VKfEw"

const (
	fuzzKID    = "fuzz-key-1"
	fuzzSecret = "fuzz-legacy-secret-fuzz-legacy-secret"
)

func fuzzKey() *token.Key {
	der, err := base64.StdEncoding.DecodeString(fuzzKeyDER)
	must(err)
	k, err := token.ParsePrivate(der)
	must(err)
	k.ID = fuzzKID
	return k
}

// fuzzSeeds are tokens covering each branch of Verify, valid at testNow.
func fuzzSeeds() map[string]string {
	k := fuzzKey()
	es := signWith(jwt.SigningMethodES256, k.Private)
	hs := signWith(jwt.SigningMethodHS256, []byte(fuzzSecret))
	valid, err := token.Sign(k, claims(nil))
	must(err)
	return map[string]string{
		"valid_es256":    valid,
		"valid_hs256":    craft(hdr("HS256", ""), claims(nil), hs),
		"aud_array":      craft(hdr("ES256", fuzzKID), claimsMap(func(m map[string]any) { m["aud"] = []string{"x", "authenticated"} }), es),
		"fractional_exp": craft(hdr("ES256", fuzzKID), claimsMap(func(m map[string]any) { m["exp"] = 1.7489e9 + 0.25 }), es),
		"alg_none":       craft(hdr("none", fuzzKID), claims(nil), noSignature),
		"unknown_kid":    craft(hdr("ES256", "other"), claims(nil), es),
		"jwk_header":     craft(hdr("ES256", fuzzKID, "jwk", map[string]any{"kty": "EC"}, "jku", "http://127.0.0.1:1/"), claims(nil), es),
		"crit_header":    craft(hdr("ES256", fuzzKID, "crit", []string{"b64"}, "b64", false), claims(nil), es),
		"expired":        craft(hdr("ES256", fuzzKID), claims(func(c *token.Claims) { c.ExpiresAt = 1 }), es),
		"garbage":        "eyJhbGciOiJFUzI1NiJ9.e30.",
	}
}

func fuzzVerifier() *token.Verifier {
	return &token.Verifier{
		Issuer:      testIssuer,
		Keys:        token.Lookup([]*token.Key{fuzzKey()}),
		HS256Secret: []byte(fuzzSecret),
		Now:         func() time.Time { return testNow },
	}
}

var updateCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite testdata/fuzz/FuzzVerify seed files")

// TestFuzzCorpus checks that the seed files still verify as intended and, with
// -update-fuzz-corpus, rewrites them (needed only if the claims shape changes).
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	if *updateCorpus {
		must(os.MkdirAll(dir, 0o755))
		for name, tok := range fuzzSeeds() {
			body := "go test fuzz v1\nstring(" + strconv.Quote(tok) + ")\n"
			must(os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "valid_es256"))
	if err != nil {
		t.Fatalf("seed corpus missing: %v", err)
	}
	lines := strings.Split(string(raw), "\n")
	tok, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fuzzVerifier().Verify(tok); err != nil {
		t.Errorf("seed valid_es256 no longer verifies: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	for _, tok := range fuzzSeeds() {
		f.Add(tok)
	}
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	v := fuzzVerifier()
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(raw)
		if err != nil {
			if c != nil {
				t.Fatalf("claims returned with error %v", err)
			}
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if c == nil || c.Issuer != testIssuer || c.Audience != token.DefaultAudience || c.ExpiresAt <= testNow.Unix()-30 {
			t.Fatalf("accepted claims violate the checks: %+v", c)
		}
	})
}

var benchSink *token.Claims

func BenchmarkSign(b *testing.B) {
	k := getFixture().local
	c := claims(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.Sign(k, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) {
	f := getFixture()
	v := newVerifier(f)
	tok := signLocal(f, claims(nil))
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := v.Verify(tok)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = c
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	f := getFixture()
	v := newVerifier(f)
	v.HS256Secret = f.secret
	tok := craft(hdr("HS256", ""), claims(nil), signWith(jwt.SigningMethodHS256, f.secret))
	b.ReportAllocs()
	for b.Loop() {
		c, err := v.Verify(tok)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = c
	}
}
