// Package postgres implements Voxanne's storage with pgx on PostgreSQL. It keeps
// four pools, one per database role: the owner (migrations and set-up), the auth
// service's role, the tenant role, which owns nothing, cannot bypass row-level
// security and is reachable only through InTenant, and River's role (RiverDriver).
package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/voxanne/voxanne"
)

// Database roles created by the migrations.
const (
	AuthRole   = "voxanne_auth"
	TenantRole = "voxanne_tenant"
	// RiverRole is the job runner's (River's) role: River's tables and
	// nothing else. It owns nothing; River's migrations run as the owner.
	RiverRole = "voxanne_river"
)

// ConnectTimeout bounds making one database connection, unless the URL's
// connect_timeout says otherwise; with the requests' deadlines it bounds
// every wait for a pooled connection.
const ConnectTimeout = 5 * time.Second

// Options tune Open.
type Options struct {
	// Migrate applies pending migrations and refreshes the service roles' logins
	// under an advisory lock before the role pools are opened.
	Migrate bool
	// MaxConns bounds each pool (0: pgxpool's default).
	MaxConns int32
	// KnockOutOrgFilter and KnockOutRLS switch one isolation layer off, so that
	// tests can prove the other holds alone: the first drops the explicit
	// org_id filter from tenant queries, the second runs tenant transactions as
	// the owner, which bypasses row-level security. Nothing but tests sets them.
	KnockOutOrgFilter bool
	KnockOutRLS       bool
}

// DB is Voxanne's database: one pool per role.
type DB struct {
	owner  *pgxpool.Pool
	auth   *pgxpool.Pool
	tenant *pgxpool.Pool
	// river is the job runner's pool (RiverDriver).
	river *pgxpool.Pool

	ownerCfg   *pgxpool.Config
	opts       Options
	sizedByURL bool
	// auditKeyVal is the audit chain's key (SetAuditKey).
	auditKeyVal atomic.Pointer[[]byte]
}

// Open connects to the database at url as its owner and opens the auth and tenant
// pools, whose logins are derived from the owner's credentials.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may echo the URL, password included: keep it out.
		return nil, voxanne.Errorf(voxanne.EINVALID, "DATABASE_URL is not a valid PostgreSQL connection URL")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A server that takes the connection but never answers (hung, stopped)
		// must not hold a pool slot, and the goroutine making the connection,
		// for ever: pgxpool makes connections apart from the caller's context.
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	db := &DB{ownerCfg: cfg, opts: opts, sizedByURL: strings.Contains(url, "pool_max_conns")}
	if opts.MaxConns == 0 && !db.sizedByURL {
		// Migrations and set-up (River has its own role and pool).
		cfg.MaxConns = 10
	}
	cfg.AfterConnect = db.afterConnect
	if db.owner, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open owner pool: %w", err)
	}
	if opts.Migrate {
		if _, err := db.MigrateUp(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	if db.auth, err = db.rolePool(ctx, AuthRole); err != nil {
		db.Close()
		return nil, err
	}
	if db.tenant, err = db.rolePool(ctx, TenantRole); err != nil {
		db.Close()
		return nil, err
	}
	if db.river, err = db.rolePool(ctx, RiverRole); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// utcTimes makes timestamptz values scan in UTC, whatever the process's time
// zone: the API speaks RFC 3339 in UTC.
func utcTimes(ctx context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC}})
	return nil
}

// rolePassword derives a service role's password from the owner's, so every
// instance computes the same one and no extra secret has to be configured: whoever
// knows the owner's password can do anything these roles can anyway.
func rolePassword(ownerPassword, role string) string {
	m := hmac.New(sha256.New, []byte(ownerPassword))
	m.Write([]byte("voxanne role login\x00" + role))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// defaultPoolSize is each role pool's size unless Options.MaxConns or the URL's
// pool_max_conns says otherwise: the tenant pool serves requests and job
// workers at once, more than pgxpool's default of max(4, CPUs).
const defaultPoolSize = 20

// riverPoolSize is the River pool's size by default, what the owner pool had
// when River ran on it.
const riverPoolSize = 10

func (db *DB) rolePool(ctx context.Context, role string) (*pgxpool.Pool, error) {
	cfg := db.ownerCfg.Copy()
	if db.opts.MaxConns == 0 && !db.sizedByURL {
		cfg.MaxConns = defaultPoolSize
		if role == RiverRole {
			// River's own statements (fetch, complete, leadership, LISTEN):
			// the jobs' work runs on the other pools.
			cfg.MaxConns = riverPoolSize
		}
	}
	cfg.ConnConfig.User = role
	cfg.ConnConfig.Password = rolePassword(db.ownerCfg.ConnConfig.Password, role)
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s pool: %w", role, err)
	}
	return p, nil
}

// setupRoleLogins lets the service roles log in with their derived passwords.
// The statement carries a SCRAM verifier, never the password itself, so a
// server log of it (log_statement, or an error) reveals nothing usable.
func setupRoleLogins(ctx context.Context, conn *pgx.Conn, ownerPassword string) error {
	for _, role := range []string{AuthRole, TenantRole, RiverRole} {
		// DDL takes no parameters; the verifier is base64 and '$:', so it needs
		// no escaping.
		if _, err := conn.Exec(ctx, roleLoginSQL(role, rolePassword(ownerPassword, role))); err != nil {
			return fmt.Errorf("set up login of %s (the DATABASE_URL user needs CREATEROLE): %w", role, err)
		}
	}
	return nil
}

func roleLoginSQL(role, password string) string {
	return fmt.Sprintf("alter role %s login password '%s'", pgx.Identifier{role}.Sanitize(), SCRAMVerifier(password))
}

// SCRAMVerifier computes PostgreSQL's stored form of a SCRAM-SHA-256 password
// (RFC 5802/7677): iterations, salt, StoredKey and ServerKey.
func SCRAMVerifier(password string) string {
	const iterations = 4096
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		panic(err) // only for invalid parameters, which these are not
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	storedKey := sha256.Sum256(mac(salted, "Client Key"))
	serverKey := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey))
}

// Close closes every pool.
func (db *DB) Close() {
	for _, p := range []*pgxpool.Pool{db.river, db.tenant, db.auth, db.owner} {
		if p != nil {
			p.Close()
		}
	}
}

// Ping checks that the database answers, returning how long it took.
func (db *DB) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	var one int
	err := db.tenant.QueryRow(ctx, "select 1").Scan(&one)
	return time.Since(start), err
}

// claimsJSON is what RLS policies read through auth.jwt(): the same shape as the
// access token's claims, limited to what policies and helpers use.
func claimsJSON(p voxanne.Principal) ([]byte, error) {
	role := p.Role
	if role == "" {
		role = "authenticated"
	}
	return json.Marshal(map[string]any{
		"sub":        p.UserID,
		"role":       role,
		"email":      p.Email,
		"session_id": p.SessionID,
		"app_metadata": map[string]string{
			"org_id":   p.OrgID,
			"org_role": p.OrgRole,
		},
	})
}

// InTenant runs fn in a transaction of the tenant role with p's claims set
// transaction-locally before anything else, so row-level security confines every
// statement of fn to p's organization. It is the only way to touch tenant tables.
func (db *DB) InTenant(ctx context.Context, p voxanne.Principal, fn func(pgx.Tx) error) error {
	if p.OrgID == "" {
		return voxanne.Errorf(voxanne.EFORBIDDEN, "no active organization")
	}
	claims, err := claimsJSON(p)
	if err != nil {
		return fmt.Errorf("tenant claims: %w", err)
	}
	pool := db.tenant
	if db.opts.KnockOutRLS {
		pool = db.owner
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "select set_config('request.jwt.claims', $1, true)", string(claims)); err != nil {
			return fmt.Errorf("set tenant claims: %w", err)
		}
		return fn(tx)
	})
}

// Conn is the connection InService and InOwner hand to their callback: a role's
// pool, to run statements on directly or to begin a transaction with
// (pgx.BeginFunc(ctx, c, ...)). It must not outlive the callback.
type Conn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

// InService is the one door to data across organizations: webhook routing and
// event bookkeeping, the endpoint and number registries, the organizations a
// user belongs to, invitations, organization deletion and audit sealing. fn runs
// as the service role (AuthRole), which row-level security still binds: its
// policies name exactly what it may read and write. reason says what the work
// is; every call passes a string literal, and docs/architecture.md lists them
// all (internal/archtest checks both), so the doors can be audited with grep.
// Tenant data goes through InTenant and the auth tables through AuthService
// and KeyRing instead.
func (db *DB) InService(ctx context.Context, reason string, fn func(c Conn) error) error {
	if reason == "" {
		return errors.New("postgres: InService without a reason")
	}
	return fn(db.auth)
}

// InOwner runs fn as the database owner, which owns every table: maintenance
// (migrations, audit re-sealing) and test fixtures only, never a request.
// reason follows InService's rules.
func (db *DB) InOwner(ctx context.Context, reason string, fn func(c Conn) error) error {
	if reason == "" {
		return errors.New("postgres: InOwner without a reason")
	}
	return fn(db.owner)
}

// org is the value for the explicit org_id filter of tenant queries, written
// as `org_id = coalesce($n, org_id)`: the principal's org, or nil when the
// filter is knocked out for a test.
func (db *DB) org(p *voxanne.Principal) any {
	if db.opts.KnockOutOrgFilter {
		return nil
	}
	return p.OrgID
}

// mapError turns database errors that callers can act on into Voxanne errors,
// naming the operation once.
func mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ve *voxanne.Error
	if errors.As(err, &ve) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &voxanne.Error{Code: voxanne.ENOTFOUND, Message: "not found", Err: err}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return &voxanne.Error{Code: voxanne.ECONFLICT, Message: "already exists", Err: err}
		case "22P02", "23514", "22001":
			return &voxanne.Error{Code: voxanne.EINVALID, Message: "invalid value", Err: err}
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// TenantStat returns the tenant pool's statistics, for /health.
func (db *DB) TenantStat() voxanne.PoolStat { return poolStat(db.tenant.Stat()) }

// PoolStats returns each pool's statistics by role name, for /metrics.
func (db *DB) PoolStats() map[string]voxanne.PoolStat {
	return map[string]voxanne.PoolStat{"owner": poolStat(db.owner.Stat()),
		"auth": poolStat(db.auth.Stat()), "tenant": poolStat(db.tenant.Stat()), "river": poolStat(db.river.Stat())}
}

func poolStat(s *pgxpool.Stat) voxanne.PoolStat {
	return voxanne.PoolStat{Total: s.TotalConns(), Idle: s.IdleConns(), Acquired: s.AcquiredConns(),
		Acquires: s.AcquireCount(), EmptyAcquires: s.EmptyAcquireCount(), AcquireWait: s.AcquireDuration()}
}
