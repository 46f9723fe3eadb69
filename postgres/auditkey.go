package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
)

// DeriveAuditKey returns the key of the audit hash chain: the configured audit
// key, or one derived from the key-encryption key, or nil when neither is set
// (the chain is then plain SHA-256).
func DeriveAuditKey(auditKey, kek string) []byte {
	switch {
	case auditKey != "":
		sum := sha256.Sum256([]byte("voxanne audit key\x00" + auditKey))
		return sum[:]
	case kek != "":
		m := hmac.New(sha256.New, []byte(kek))
		m.Write([]byte("voxanne audit chain"))
		return m.Sum(nil)
	}
	return nil
}

// SetAuditKey makes every connection of db set voxanne.audit_key, so that the
// audit trigger keys new entries with it, and VerifyAuditChain checks keyed
// entries with it. The key lives only in the process: it is never stored in
// the database. The pools are reset so every connection from now on has it.
func (db *DB) SetAuditKey(key []byte) {
	k := append([]byte(nil), key...)
	db.auditKeyVal.Store(&k)
	for _, p := range []interface{ Reset() }{db.owner, db.auth, db.tenant} {
		if p != nil {
			p.Reset()
		}
	}
}

// auditKey returns the audit key, nil when none is set.
func (db *DB) auditKey() []byte {
	if k := db.auditKeyVal.Load(); k != nil && len(*k) > 0 {
		return *k
	}
	return nil
}

// afterConnect prepares each new connection: times scan in UTC, and the audit
// key, when there is one, is set for the session.
func (db *DB) afterConnect(ctx context.Context, conn *pgx.Conn) error {
	if err := utcTimes(ctx, conn); err != nil {
		return err
	}
	if k := db.auditKey(); k != nil {
		if _, err := conn.Exec(ctx, "select set_config('voxanne.audit_key', $1, false)", hex.EncodeToString(k)); err != nil {
			return fmt.Errorf("set audit key: %w", err)
		}
	}
	return nil
}

// SealAuditChains appends an "audit.chain_keyed" entry to every org whose
// newest entry is not keyed, once an audit key is set: from then on a chain
// must end in a keyed entry, so nobody without the key can rewrite it all in
// plain SHA-256. It returns how many orgs it sealed; running it again (or on
// several instances) only adds entries where needed.
func (db *DB) SealAuditChains(ctx context.Context) (int, error) {
	if db.auditKey() == nil {
		return 0, nil
	}
	var orgs []string
	err := db.InService(ctx, "find audit chains to seal", func(c Conn) error {
		rows, err := c.Query(ctx, `select o.id::text from organizations o
			where exists (select 1 from audit_log a where a.org_id = o.id)
			  and not (select a.keyed from audit_log a where a.org_id = o.id order by a.seq desc limit 1)`)
		if err == nil {
			orgs, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("seal audit chains: %w", err)
	}
	for _, org := range orgs {
		err := db.InService(ctx, "seal an audit chain", func(c Conn) error {
			return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: org, Action: "audit.chain_keyed",
					Details: map[string]any{"note": "entries from here on are keyed with the audit key"}})
			})
		})
		if err != nil {
			return 0, fmt.Errorf("seal audit chain of %s: %w", org, err)
		}
	}
	return len(orgs), nil
}
