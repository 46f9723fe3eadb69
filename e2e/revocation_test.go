package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
	"github.com/voxanne/voxanne/postgres/pglocal"
)

func call(t *testing.T, method, url, tok string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

type session struct {
	AccessToken string `json:"access_token"`
	User        struct {
		ID string `json:"id"`
	} `json:"user"`
}

func signUp(t *testing.T, base, email string) session {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"email": email, "password": "Vx-correct-horse-battery-9"})
	resp, err := http.Post(base+"/auth/v1/signup", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s session
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign up: %d %v", resp.StatusCode, err)
	}
	return s
}

// rejectedWithin polls url with tok until it answers 401 session_revoked.
func rejectedWithin(t *testing.T, url, tok string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		code, body := call(t, "GET", url+"/api/session", tok, nil)
		if code == 401 && body["code"] == "session_revoked" {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("token still accepted by %s after %s", url, d)
	return 0
}

// Two `voxanne serve` processes on one database: a revocation made through
// one, or in the database, stops the token on the other within a second, also
// across a broken listener connection.
func TestRevocationAcrossInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster, err := pglocal.Start(ctx, pglocal.Options{Dir: testdb.ServerDir(t), Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop(ctx) //nolint:errcheck
	dbURL := cluster.SuperuserURL("postgres")
	env := []string{"DATABASE_URL=" + dbURL, "VOXANNE_PUBLIC_URL=http://voxanne.test"}
	a := startServer(t, env...)
	b := startServer(t, env...)
	admin, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	warm := func(s session) {
		t.Helper()
		for _, srv := range []*server{a, b} {
			for i := 0; i < 2; i++ {
				if code, body := call(t, "GET", srv.URL+"/api/session", s.AccessToken, nil); code != 200 {
					t.Fatalf("warm %s: %d %v", srv.URL, code, body)
				}
			}
		}
	}

	t.Run("logout through one instance", func(t *testing.T) {
		s := signUp(t, a.URL, "logout@example.com")
		warm(s)
		if code, _ := call(t, "POST", a.URL+"/auth/v1/logout", s.AccessToken, nil); code != 204 {
			t.Fatalf("logout: %d", code)
		}
		t.Logf("rejected by the other instance after %s", rejectedWithin(t, b.URL, s.AccessToken, time.Second))
		rejectedWithin(t, a.URL, s.AccessToken, 10*time.Millisecond)
	})
	// An owner on instance A changes a member's role, or removes them, through
	// the organizations API; the member's token stops working on instance B.
	owner := signUp(t, a.URL, "owner@example.com")
	join := func(email string) session {
		t.Helper()
		code, inv := call(t, "POST", a.URL+"/api/org/invitations", owner.AccessToken, map[string]any{"email": email, "role": "member"})
		if code != 201 {
			t.Fatalf("invite: %d %v", code, inv)
		}
		_, secret, _ := strings.Cut(inv["accept_url"].(string), "token=")
		m := signUp(t, a.URL, email)
		if code, body := call(t, "POST", a.URL+"/api/invitations/accept", m.AccessToken, map[string]any{"token": secret}); code != 200 {
			t.Fatalf("accept: %d %v", code, body)
		}
		org := body(t, a.URL, owner.AccessToken)["org"].(map[string]any)["id"].(string)
		code, sw := call(t, "POST", a.URL+"/api/orgs/"+org+"/switch", m.AccessToken, nil)
		if code != 200 {
			t.Fatalf("switch: %d %v", code, sw)
		}
		m.AccessToken = sw["access_token"].(string)
		return m
	}
	for name, change := range map[string]func(m session) (string, string, any){
		"role change through the API": func(m session) (string, string, any) {
			return "PATCH", "/api/org/members/" + m.User.ID, map[string]any{"role": "admin"}
		},
		"removal through the API": func(m session) (string, string, any) {
			return "DELETE", "/api/org/members/" + m.User.ID, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			m := join(strings.ReplaceAll(name, " ", "-") + "@example.com")
			warm(m)
			method, path, req := change(m)
			if code, body := call(t, method, a.URL+path, owner.AccessToken, req); code != 200 && code != 204 {
				t.Fatalf("%s %s: %d %v", method, path, code, body)
			}
			t.Logf("rejected by the other instance after %s", rejectedWithin(t, b.URL, m.AccessToken, time.Second))
			rejectedWithin(t, a.URL, m.AccessToken, 10*time.Millisecond)
		})
	}
	// The same through the database directly (another tool, a migration):
	// the triggers announce it too.
	for name, sql := range map[string]string{
		"role change in the database":      "update memberships set role = 'member' where user_id = $1",
		"removal from org in the database": "delete from memberships where user_id = $1",
	} {
		t.Run(name, func(t *testing.T) {
			s := signUp(t, a.URL, strings.ReplaceAll(name, " ", "-")+"@example.com")
			warm(s)
			if _, err := admin.Exec(ctx, sql, s.User.ID); err != nil {
				t.Fatal(err)
			}
			t.Logf("rejected after %s", rejectedWithin(t, b.URL, s.AccessToken, time.Second))
			rejectedWithin(t, a.URL, s.AccessToken, time.Second)
		})
	}
	t.Run("listener killed during a revocation", func(t *testing.T) {
		s := signUp(t, a.URL, "killed@example.com")
		warm(s)
		var killed int
		if err := admin.QueryRow(ctx, `select count(pg_terminate_backend(pid)) from pg_stat_activity
			where application_name = $1`, postgres.ListenerApplicationName).Scan(&killed); err != nil || killed != 2 {
			t.Fatalf("terminated %d listeners (%v)", killed, err)
		}
		if code, _ := call(t, "POST", a.URL+"/auth/v1/logout", s.AccessToken, nil); code != 204 {
			t.Fatalf("logout: %d", code)
		}
		rejectedWithin(t, b.URL, s.AccessToken, time.Second)
		// Wait for both listeners to be back, then check again: the revocation
		// made while they were down is still honoured.
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int
			if err := admin.QueryRow(ctx, "select count(*) from pg_stat_activity where application_name = $1", postgres.ListenerApplicationName).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("listeners did not reconnect (%d)", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		for _, srv := range []*server{a, b} {
			if code, body := call(t, "GET", srv.URL+"/api/session", s.AccessToken, nil); code != 401 || body["code"] != "session_revoked" {
				t.Fatalf("%s after reconnect: %d %v", srv.URL, code, body)
			}
		}
		// And the cache is trusted again: a fresh token is served from it.
		fresh := signUp(t, b.URL, "fresh@example.com")
		for i := 0; i < 3; i++ {
			if code, _ := call(t, "GET", b.URL+"/api/session", fresh.AccessToken, nil); code != 200 {
				t.Fatal(code)
			}
		}
	})
}

// body GETs /api/me with tok and returns the decoded answer.
func body(t *testing.T, base, tok string) map[string]any {
	t.Helper()
	code, m := call(t, "GET", base+"/api/me", tok, nil)
	if code != 200 {
		t.Fatalf("GET /api/me: %d %v", code, m)
	}
	return m
}
