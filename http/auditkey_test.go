package http_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/voxanne/voxanne/internal/testenv"
)

// rewriteChainInPlainSHA256 is what an insider with database access but not the
// audit key can do: edit an entry, then recompute every hash from there on and
// the head, in plain SHA-256.
func rewriteChainInPlainSHA256(t *testing.T, e *testenv.Env, org string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.Exec(ctx, `update audit_log set details = '{"forged": true}' where org_id = $1 and seq = 2`, org); err != nil {
		t.Fatal(err)
	}
	_, err := e.Exec(ctx, fmt.Sprintf(`do $$
		declare r audit_log; prev bytea := '\x'; h bytea;
		begin
		  for r in select * from audit_log where org_id = '%s' order by seq loop
		    h := sha256(prev || audit_canonical(r));
		    update audit_log set prev_hash = prev, hash = h, keyed = false where org_id = r.org_id and id = r.id;
		    prev := h;
		  end loop;
		  update audit_heads set hash = prev where org_id = '%s';
		end $$`, org, org))
	if err != nil {
		t.Fatal(err)
	}
}

func auditVerify(t *testing.T, e *testenv.Env, s *testenv.Session) map[string]any {
	t.Helper()
	r := e.Do("GET", "/api/org/audit-log/verify", nil, testenv.Bearer(s.AccessToken)...)
	if r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)
}

// makeEntries gives the org a few audit entries.
func makeEntries(t *testing.T, e *testenv.Env, s *testenv.Session) {
	t.Helper()
	for _, name := range []string{"One", "Two", "Three"} {
		if r := e.Do("PATCH", "/api/org", map[string]any{"name": "Clinic " + name}, testenv.Bearer(s.AccessToken)...); r.Status != 200 {
			t.Fatalf("rename: %d %s", r.Status, r.Body)
		}
	}
}

// With an audit key, an insider who edits an entry and recomputes the chain in
// plain SHA-256 is caught, and verify names the first bad entry. (Without a
// key the same rewrite verifies: that is what the key is for.)
func TestAuditKeyCatchesARecomputedChain(t *testing.T) {
	t.Parallel()
	keyed := testenv.New(t, testenv.Options{AuditKey: "audit-key-for-tests-0123456789"})
	s := keyed.SignUp("keyed@example.com")
	makeEntries(t, keyed, s)
	if v := auditVerify(t, keyed, s); v["valid"] != true {
		t.Fatalf("fresh keyed chain: %v", v)
	}
	var allKeyed bool
	if err := keyed.QueryRow(context.Background(), `select bool_and(keyed) from audit_log where org_id = $1`, s.OrgID()).Scan(&allKeyed); err != nil || !allKeyed {
		t.Fatalf("entries keyed: %v %v", allKeyed, err)
	}
	rewriteChainInPlainSHA256(t, keyed, s.OrgID())
	v := auditVerify(t, keyed, s)
	if v["valid"] != false || v["first_invalid_seq"] == nil || v["reason"] == "" {
		t.Fatalf("rewritten keyed chain: %v", v)
	}

	plain := testenv.New(t, testenv.Options{})
	p := plain.SignUp("plain@example.com")
	makeEntries(t, plain, p)
	rewriteChainInPlainSHA256(t, plain, p.OrgID())
	if v := auditVerify(t, plain, p); v["valid"] != true {
		t.Fatalf("without a key the rewrite should verify (the threat this closes): %v", v)
	}
}

// Verify names the first entry that was edited.
func TestAuditVerifyNamesFirstBadEntry(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{AuditKey: "audit-key-for-tests-0123456789"})
	s := e.SignUp("named@example.com")
	makeEntries(t, e, s)
	if _, err := e.Exec(context.Background(), `update audit_log set action = 'org.nothing_happened' where org_id = $1 and seq = 3`, s.OrgID()); err != nil {
		t.Fatal(err)
	}
	v := auditVerify(t, e, s)
	if v["valid"] != false || v["first_invalid_seq"] != float64(3) {
		t.Fatalf("verify: %v", v)
	}
}

// The SQL HMAC is RFC 2104 HMAC-SHA256, as Go computes it, for short and long
// keys.
func TestAuditHMACMatchesGo(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	for _, key := range [][]byte{[]byte("k"), []byte("a key of exactly thirty-two byte"), make([]byte, 100)} {
		msg := []byte("prev-hash||canonical entry")
		var got []byte
		if err := e.QueryRow(context.Background(), `select audit_hmac($1, $2)`, key, msg).Scan(&got); err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		if want := m.Sum(nil); !hmac.Equal(got, want) {
			t.Fatalf("key of %d bytes: %x, want %x", len(key), got, want)
		}
	}
}

// Configuring a key on an existing install: each chain gets a keyed
// "audit.chain_keyed" entry, the plain prefix still verifies, and a rewrite in
// plain SHA-256 no longer does.
func TestSealAuditChainsWhenAKeyIsConfigured(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	s := e.SignUp("sealed@example.com")
	makeEntries(t, e, s)
	e.DB.SetAuditKey([]byte("a key configured later, 32 bytes"))
	n, err := e.DB.SealAuditChains(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("sealed %d orgs: %v", n, err)
	}
	if n, err := e.DB.SealAuditChains(context.Background()); err != nil || n != 0 {
		t.Fatalf("second seal: %d %v", n, err)
	}
	if v := auditVerify(t, e, s); v["valid"] != true {
		t.Fatalf("sealed chain: %v", v)
	}
	rewriteChainInPlainSHA256(t, e, s.OrgID())
	if v := auditVerify(t, e, s); v["valid"] != false {
		t.Fatalf("rewritten sealed chain: %v", v)
	}
}
