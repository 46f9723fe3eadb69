package postgres

import (
	"strings"
	"testing"
)

// The statement that sets a service role's login carries a verifier, never the
// password, so server logs of it reveal nothing usable.
func TestRoleLoginSQLHidesPassword(t *testing.T) {
	sql := roleLoginSQL(TenantRole, "the-derived-Password-1")
	if strings.Contains(sql, "the-derived-Password-1") || !strings.Contains(sql, "'SCRAM-SHA-256$4096:") {
		t.Fatalf("%s", sql)
	}
	// Two calls, two random salts.
	if first, second := SCRAMVerifier("x"), SCRAMVerifier("x"); first == second {
		t.Fatal("verifiers of one password share a salt")
	}
}
