package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth/token"
)

// KeyInfo describes a signing key for `voxanne keys list`.
type KeyInfo struct {
	KID          string
	Algorithm    string
	Status       string
	Encrypted    bool
	CreatedAt    time.Time
	RetiredAt    *time.Time
	TrustedUntil *time.Time
}

// KeyRing holds the signing keys in memory: the current one signs, it and every
// retired key still trusted verify. Keys live in auth.signing_keys; private keys
// are sealed with the key-encryption key when one is configured.
type KeyRing struct {
	db     *DB
	kek    []byte
	jwtExp time.Duration

	mu      sync.RWMutex
	current *token.Key
	byKID   map[string]*token.Key
	jwks    []byte

	reloadMu   sync.Mutex
	lastReload time.Time
	// loadMu serializes reloads from the read to the swap, so a reload that
	// read the table before a revocation can never finish after it and
	// bring the revoked key back.
	loadMu sync.Mutex
}

// NewKeyRing returns a key ring; kekSecret may be empty (keys stored unencrypted).
// jwtExp is the access-token lifetime: a rotated key stays trusted that long.
func NewKeyRing(db *DB, kekSecret string, jwtExp time.Duration) *KeyRing {
	r := &KeyRing{db: db, jwtExp: jwtExp, byKID: map[string]*token.Key{}}
	if kekSecret != "" {
		r.kek = token.DeriveKEK(kekSecret)
	}
	return r
}

// Load makes the first key if there is none and reads every trusted key.
func (r *KeyRing) Load(ctx context.Context) error {
	if err := r.ensureCurrent(ctx); err != nil {
		return err
	}
	return r.reload(ctx)
}

func (r *KeyRing) ensureCurrent(ctx context.Context) error {
	var exists bool
	if err := r.db.auth.QueryRow(ctx, "select exists (select 1 from auth.signing_keys where status = 'current')").Scan(&exists); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	if exists {
		return nil
	}
	err := pgx.BeginFunc(ctx, r.db.auth, func(tx pgx.Tx) error { return r.insertKey(ctx, tx) })
	if voxanne.ErrorCode(mapError("", err)) == voxanne.ECONFLICT {
		return nil // another instance made it first
	}
	return err
}

func (r *KeyRing) insertKey(ctx context.Context, tx pgx.Tx) error {
	k, err := token.NewES256Key()
	if err != nil {
		return err
	}
	der, err := token.MarshalPrivate(k)
	if err != nil {
		return err
	}
	encrypted := false
	if r.kek != nil {
		if der, err = token.Seal(r.kek, der); err != nil {
			return err
		}
		encrypted = true
	}
	_, err = tx.Exec(ctx, `insert into auth.signing_keys (kid, algorithm, private_key, encrypted, public_jwk, status)
		values ($1, $2, $3, $4, $5, 'current')`, k.ID, k.Alg, der, encrypted, token.PublicJWK(k))
	return err
}

// reload reads the current and trusted keys; a key sealed without a configured
// key-encryption key stops it with a clear error.
func (r *KeyRing) reload(ctx context.Context) error {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	rows, err := r.db.auth.Query(ctx, `select kid, private_key, encrypted, status = 'current'
		from auth.signing_keys
		where status = 'current' or (status = 'trusted' and (trusted_until is null or trusted_until > now()))
		order by created_at`)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	var (
		kid       string
		der       []byte
		encrypted bool
		isCurrent bool
		current   *token.Key
		byKID     = map[string]*token.Key{}
		plain     []string
	)
	_, err = pgx.ForEachRow(rows, []any{&kid, &der, &encrypted, &isCurrent}, func() error {
		if encrypted {
			if r.kek == nil {
				return fmt.Errorf("signing key %s is encrypted: set VOXANNE_KEY_ENCRYPTION_KEY", kid)
			}
			var err error
			if der, err = token.Open(r.kek, der); err != nil {
				return fmt.Errorf("signing key %s: cannot decrypt with VOXANNE_KEY_ENCRYPTION_KEY", kid)
			}
		} else if r.kek != nil {
			plain = append(plain, kid)
		}
		k, err := token.ParsePrivate(der)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", kid, err)
		}
		k.ID = kid
		byKID[kid] = k
		if isCurrent {
			current = k
		}
		return nil
	})
	if err != nil {
		return err
	}
	if current == nil {
		return errors.New("no current signing key: run `voxanne keys rotate`")
	}
	keys := make([]*token.Key, 0, len(byKID))
	for _, k := range byKID {
		keys = append(keys, k)
	}
	jwks := token.MarshalJWKS(keys)
	r.mu.Lock()
	r.current, r.byKID, r.jwks = current, byKID, jwks
	r.mu.Unlock()
	// Keys stored before a key-encryption key was configured are sealed now.
	for _, kid := range plain {
		if err := r.seal(ctx, kid, byKID[kid]); err != nil {
			return err
		}
	}
	return nil
}

func (r *KeyRing) seal(ctx context.Context, kid string, k *token.Key) error {
	der, err := token.MarshalPrivate(k)
	if err != nil {
		return err
	}
	sealed, err := token.Seal(r.kek, der)
	if err != nil {
		return err
	}
	_, err = r.db.auth.Exec(ctx, "update auth.signing_keys set private_key = $2, encrypted = true where kid = $1 and not encrypted", kid, sealed)
	return err
}

// Current returns the signing key.
func (r *KeyRing) Current() *token.Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.current
}

// Lookup finds a trusted key by kid; it is the token.Verifier's key source.
func (r *KeyRing) Lookup(kid string) (*token.Key, bool) {
	r.mu.RLock()
	k, ok := r.byKID[kid]
	r.mu.RUnlock()
	return k, ok
}

// JWKS returns the JWK Set of the trusted keys' public halves.
func (r *KeyRing) JWKS() []byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.jwks
}

// ReloadIfStale reloads the keys when the last reload is older than minAge. A
// token with an unknown kid calls it, so a key rotated by another process is
// picked up without letting anyone force a reload per request.
func (r *KeyRing) ReloadIfStale(ctx context.Context, minAge time.Duration) (bool, error) {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	if time.Since(r.lastReload) < minAge {
		return false, nil
	}
	r.lastReload = time.Now()
	return true, r.reload(ctx)
}

// Run reloads the keys every interval until ctx ends, so every instance signs
// with the newest key and stops trusting expired ones.
func (r *KeyRing) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := r.ReloadIfStale(ctx, interval/2); err != nil && onError != nil {
				onError(err)
			}
		}
	}
}

// Rotate makes a new current key; the old one stays trusted until every token it
// may have signed has expired.
func (r *KeyRing) Rotate(ctx context.Context) (string, error) {
	err := pgx.BeginFunc(ctx, r.db.auth, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "lock table auth.signing_keys in exclusive mode"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `update auth.signing_keys set status = 'trusted', retired_at = now(),
			trusted_until = greatest(now() + make_interval(secs => $1), max_token_exp)
			where status = 'current'`, r.jwtExp.Seconds()); err != nil {
			return err
		}
		return r.insertKey(ctx, tx)
	})
	if err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	if err := r.reload(ctx); err != nil {
		return "", err
	}
	return r.Current().ID, nil
}

// Revoke stops trusting a retired key at once: tokens it signed fail from then on.
// The current key cannot be revoked; rotate first.
func (r *KeyRing) Revoke(ctx context.Context, kid string) error {
	var status string
	err := r.db.auth.QueryRow(ctx, "select status from auth.signing_keys where kid = $1", kid).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return voxanne.Errorf(voxanne.ENOTFOUND, "no signing key %q", kid)
	} else if err != nil {
		return fmt.Errorf("revoke signing key: %w", err)
	}
	if status == "current" {
		return voxanne.Errorf(voxanne.ECONFLICT, "key %s is the current signing key: rotate first, then revoke it", kid)
	}
	if _, err := r.db.auth.Exec(ctx, "update auth.signing_keys set status = 'revoked', trusted_until = now() where kid = $1", kid); err != nil {
		return fmt.Errorf("revoke signing key: %w", err)
	}
	return r.reload(ctx)
}

// List returns every key, newest first.
func (r *KeyRing) List(ctx context.Context) ([]KeyInfo, error) {
	rows, err := r.db.auth.Query(ctx, `select kid, algorithm, status, encrypted, created_at, retired_at,
		case when status = 'current' then null else trusted_until end
		from auth.signing_keys order by created_at desc`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (KeyInfo, error) {
		var k KeyInfo
		err := row.Scan(&k.KID, &k.Algorithm, &k.Status, &k.Encrypted, &k.CreatedAt, &k.RetiredAt, &k.TrustedUntil)
		return k, err
	})
}

// noteLongToken records that the current key signed a token expiring at exp, so
// that a rotation keeps the key trusted until then.
func (r *KeyRing) noteLongToken(ctx context.Context, kid string, exp time.Time) error {
	_, err := r.db.auth.Exec(ctx, `update auth.signing_keys set max_token_exp = greatest(max_token_exp, $2) where kid = $1`, kid, exp)
	return err
}
