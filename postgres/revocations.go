package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth"
	"github.com/voxanne/voxanne/auth/token"
)

// ListenerApplicationName names the listener's connection in pg_stat_activity.
const ListenerApplicationName = "voxanne_revocation_listener"

// revocationChannel is the NOTIFY channel of auth.revocations.
const revocationChannel = "voxanne_revocations"

// CheckTokenState implements auth.StateChecker: a local token's session must be
// active, and the user's role in the token's org must be the token's role.
// Tokens of an external project have no local session; only the membership rule
// applies to them.
func (db *DB) CheckTokenState(ctx context.Context, c *token.Claims, external bool) (auth.TokenState, error) {
	var sessionActive *bool
	var role *string
	var st auth.TokenState
	err := db.auth.QueryRow(ctx, `select
		(select revoked_at is null from auth.sessions where id = $1::uuid and user_id = $2::uuid),
		(select role from memberships where user_id = $2::uuid and org_id = nullif($3, '')::uuid),
		coalesce((select require_mfa from organizations where id = nullif($3, '')::uuid), false)`,
		nullIfEmpty(c.SessionID), c.Subject, c.OrgID()).Scan(&sessionActive, &role, &st.OrgRequiresMFA)
	if err != nil {
		var ve *voxanne.Error
		if errors.As(mapError("", err), &ve) && ve.Code == voxanne.EINVALID {
			return st, auth.ErrBadToken // ids in the claims that are not UUIDs
		}
		return st, fmt.Errorf("check token state: %w", err)
	}
	if !external && (sessionActive == nil || !*sessionActive) {
		return st, auth.ErrRevoked
	}
	if c.OrgID() != "" && (role == nil || *role != c.OrgRole()) {
		return st, auth.ErrRevoked
	}
	return st, nil
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// RevocationListener follows auth.revocations: it LISTENs on a dedicated
// connection, applies every revocation, and after any break reloads those made
// meanwhile before declaring the feed live again.
type RevocationListener struct {
	DB     *DB
	Apply  func(voxanne.Revocation)
	Live   func(bool)
	Logger *slog.Logger
}

// Run listens until ctx ends, reconnecting with backoff.
func (l *RevocationListener) Run(ctx context.Context) {
	cfg := l.DB.ownerCfg.Copy().ConnConfig
	cfg.User = AuthRole
	cfg.Password = rolePassword(l.DB.ownerCfg.ConnConfig.Password, AuthRole)
	cfg.RuntimeParams = map[string]string{"application_name": ListenerApplicationName}
	var since *time.Time
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.session(ctx, cfg, &since)
		l.Live(false)
		if ctx.Err() != nil {
			return
		}
		l.Logger.Warn("revocation listener lost its connection; requests are verified against the database until it is back", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// session runs one connection's life: LISTEN, catch up, then follow.
func (l *RevocationListener) session(ctx context.Context, cfg *pgx.ConnConfig, since **time.Time) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "listen "+revocationChannel); err != nil {
		return err
	}
	var now time.Time
	if err := conn.QueryRow(ctx, "select clock_timestamp()").Scan(&now); err != nil {
		return err
	}
	if *since != nil {
		// Catch up with a margin for commits that were in flight at the break.
		rows, err := conn.Query(ctx, `select kind, coalesce(session_id::text, ''), user_id::text, coalesce(org_id::text, '')
			from auth.revocations where created_at > $1 order by id`, (*since).Add(-5*time.Second))
		if err != nil {
			return err
		}
		var r voxanne.Revocation
		if _, err := pgx.ForEachRow(rows, []any{&r.Kind, &r.SessionID, &r.UserID, &r.OrgID}, func() error {
			l.Apply(r)
			return nil
		}); err != nil {
			return err
		}
	}
	*since = &now
	l.Live(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var r struct {
			voxanne.Revocation
			At int64 `json:"at"`
		}
		if err := json.Unmarshal([]byte(n.Payload), &r); err != nil {
			l.Logger.Error("bad revocation notification", "error", err)
			continue
		}
		l.Apply(r.Revocation)
		at := time.UnixMicro(r.At)
		*since = &at
	}
}

// PruneRevocations deletes revocations older than any token can live, so the
// table stays small.
func (db *DB) PruneRevocations(ctx context.Context, olderThan time.Duration) error {
	_, err := db.auth.Exec(ctx, "delete from auth.revocations where created_at < now() - make_interval(secs => $1)", olderThan.Seconds())
	return err
}
