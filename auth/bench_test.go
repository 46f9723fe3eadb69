package auth_test

import (
	"context"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
)

// BenchmarkAuthenticateCached is the hot path of every /api request: a token
// already verified, served from the cache without touching the database.
func BenchmarkAuthenticateCached(b *testing.B) {
	e := testenv.New(b, testenv.Options{})
	s := e.SignUp("bench@example.com")
	ctx := context.Background()
	if _, err := e.Authn.Authenticate(ctx, s.AccessToken); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Authn.Authenticate(ctx, s.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
	if st := e.Authn.Stats(); st.Misses != 1 {
		b.Fatalf("the loop missed the cache: %+v", st)
	}
}

// BenchmarkAuthenticateUncached is a token seen for the first time: ES256
// verification plus the session and membership check in PostgreSQL.
func BenchmarkAuthenticateUncached(b *testing.B) {
	e := testenv.New(b, testenv.Options{})
	s := e.SignUp("bench@example.com")
	ctx := context.Background()
	e.Authn.SetTrusted(false) // nothing is cached: every call takes the full path
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Authn.Authenticate(ctx, s.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefresh is one refresh-token rotation through the real router:
// row lock, successor insert, org resolution and an ES256 signature.
func BenchmarkRefresh(b *testing.B) {
	e := testenv.New(b, testenv.Options{})
	s := e.SignUp("refresh@example.com")
	tok := s.RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		r := e.Do("POST", "/auth/v1/token?grant_type=refresh_token", map[string]any{"refresh_token": tok})
		if r.Status != 200 {
			b.Fatalf("%d %s", r.Status, r.Body)
		}
		var next testenv.Session
		r.Decode(b, &next)
		tok = next.RefreshToken
	}
}

// BenchmarkGetUser is GET /auth/v1/user through the real router: token
// verification, the session check and the user read.
func BenchmarkGetUser(b *testing.B) {
	e := testenv.New(b, testenv.Options{})
	s := e.SignUp("getuser@example.com")
	h := testenv.Bearer(s.AccessToken)
	b.ReportAllocs()
	for b.Loop() {
		if r := e.Do("GET", "/auth/v1/user", nil, h...); r.Status != 200 {
			b.Fatalf("%d %s", r.Status, r.Body)
		}
	}
}
