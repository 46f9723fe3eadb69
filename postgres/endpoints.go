package postgres

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth/token"
)

// Twilio auth tokens (and anything an org pastes as one) must be this long.
const (
	endpointSecretMin = 16
	endpointSecretMax = 256
)

// EndpointStore manages orgs' own webhook endpoints and the operator's number
// assignments. Endpoint secrets are sealed with the key-encryption key when one
// is configured; the API never returns a stored one, and only the service role
// looks them up by endpoint id, to verify a delivery.
type EndpointStore struct {
	db  *DB
	kek []byte // nil: secrets are stored as they are (encrypted = false)
	now func() time.Time
}

var _ voxanne.WebhookEndpointService = (*EndpointStore)(nil)

// NewEndpointStore returns the endpoint store; kekSecret is
// VOXANNE_KEY_ENCRYPTION_KEY ("": secrets are stored unencrypted).
func NewEndpointStore(db *DB, kekSecret string) *EndpointStore {
	s := &EndpointStore{db: db, now: time.Now}
	if kekSecret != "" {
		s.kek = token.DeriveKEK(kekSecret)
	}
	return s
}

func (s *EndpointStore) seal(secret string) ([]byte, bool, error) {
	if s.kek == nil {
		return []byte(secret), false, nil
	}
	sealed, err := token.Seal(s.kek, []byte(secret))
	return sealed, true, err
}

func (s *EndpointStore) open(b []byte, encrypted bool) (string, error) {
	if !encrypted {
		return string(b), nil
	}
	if s.kek == nil {
		return "", errors.New("endpoint secret is encrypted but no key-encryption key is configured")
	}
	plain, err := token.Open(s.kek, b)
	return string(plain), err
}

// newEndpointSecret is 32 random bytes, base64url: 43 characters.
func newEndpointSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// endpointSecret returns the secret to store for provider: generated for Vapi,
// the caller's auth token for Twilio.
func endpointSecret(provider, authToken string) (string, error) {
	switch provider {
	case "vapi":
		if authToken != "" {
			return "", voxanne.Errorf(voxanne.EINVALID, "auth_token is only for twilio endpoints: a vapi secret is generated")
		}
		return newEndpointSecret(), nil
	case "twilio":
		t := strings.TrimSpace(authToken)
		if n := utf8.RuneCountInString(t); n < endpointSecretMin || n > endpointSecretMax {
			return "", voxanne.Errorf(voxanne.EINVALID, "auth_token must be %d to %d characters", endpointSecretMin, endpointSecretMax)
		}
		for _, r := range t {
			if !unicode.IsPrint(r) || unicode.IsSpace(r) {
				return "", voxanne.Errorf(voxanne.EINVALID, "auth_token must be printable characters without spaces")
			}
		}
		return t, nil
	default:
		return "", voxanne.Errorf(voxanne.EINVALID, `provider must be "vapi" or "twilio"`)
	}
}

const endpointColumns = `id::text, provider, previous_valid_until, created_at, rotated_at`

func scanEndpoint(row pgx.CollectableRow) (voxanne.WebhookEndpoint, error) {
	var e voxanne.WebhookEndpoint
	err := row.Scan(&e.ID, &e.Provider, &e.PreviousValidUntil, &e.CreatedAt, &e.RotatedAt)
	return e, err
}

// audit records an endpoint change in the org's log, in the same transaction.
func endpointAudit(ctx context.Context, tx pgx.Tx, p *voxanne.Principal, action, id, provider, ip string) error {
	return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: p.OrgID, ActorID: p.UserID, Action: action,
		TargetType: "webhook_endpoint", TargetID: id, IP: ip, Details: map[string]any{"provider": provider}})
}

// CreateEndpoint makes an endpoint for the caller's org (admin).
func (s *EndpointStore) CreateEndpoint(ctx context.Context, p *voxanne.Principal, provider, authToken, ip string) (*voxanne.WebhookEndpoint, error) {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return nil, err
	}
	secret, err := endpointSecret(provider, authToken)
	if err != nil {
		return nil, err
	}
	sealed, encrypted, err := s.seal(secret)
	if err != nil {
		return nil, fmt.Errorf("create endpoint: %w", err)
	}
	var out voxanne.WebhookEndpoint
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `insert into webhook_endpoints (org_id, provider, secret, encrypted)
			values ($1, $2, $3, $4) returning `+endpointColumns, p.OrgID, provider, sealed, encrypted)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectExactlyOneRow(rows, scanEndpoint); err != nil {
			return err
		}
		return endpointAudit(ctx, tx, p, "webhook_endpoint.created", out.ID, provider, ip)
	})
	if err != nil {
		return nil, mapError("create endpoint", err)
	}
	if provider == "vapi" {
		out.Secret = secret
	}
	return &out, nil
}

// Endpoints lists the org's endpoints, newest first, without secrets (admin).
func (s *EndpointStore) Endpoints(ctx context.Context, p *voxanne.Principal) ([]voxanne.WebhookEndpoint, error) {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return nil, err
	}
	out := []voxanne.WebhookEndpoint{}
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `select `+endpointColumns+` from webhook_endpoints
			where org_id = coalesce($1, org_id) order by created_at desc, id desc`, s.db.org(p))
		if err != nil {
			return err
		}
		out, err = pgx.AppendRows(out, rows, scanEndpoint)
		return err
	})
	if err != nil {
		return nil, mapError("list endpoints", err)
	}
	return out, nil
}

// RotateEndpoint replaces an endpoint's secret; the one it replaces is
// accepted for voxanne.EndpointGracePeriod more (admin). Rotating again within
// the grace period drops the oldest secret at once.
func (s *EndpointStore) RotateEndpoint(ctx context.Context, p *voxanne.Principal, id, authToken, ip string) (*voxanne.WebhookEndpoint, error) {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return nil, err
	}
	var out voxanne.WebhookEndpoint
	var secret string
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		var provider string
		err := tx.QueryRow(ctx, `select provider from webhook_endpoints where org_id = coalesce($1, org_id) and id = $2 for update`,
			s.db.org(p), id).Scan(&provider)
		if errors.Is(err, pgx.ErrNoRows) {
			return voxanne.Errorf(voxanne.ENOTFOUND, "no such webhook endpoint")
		} else if err != nil {
			return err
		}
		if secret, err = endpointSecret(provider, authToken); err != nil {
			return err
		}
		sealed, encrypted, err := s.seal(secret)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `update webhook_endpoints set previous_secret = secret, previous_encrypted = encrypted,
			previous_valid_until = $3, secret = $4, encrypted = $5, rotated_at = $6
			where org_id = coalesce($1, org_id) and id = $2 returning `+endpointColumns,
			s.db.org(p), id, s.now().Add(voxanne.EndpointGracePeriod), sealed, encrypted, s.now())
		if err != nil {
			return err
		}
		if out, err = pgx.CollectExactlyOneRow(rows, scanEndpoint); err != nil {
			return err
		}
		return endpointAudit(ctx, tx, p, "webhook_endpoint.rotated", id, provider, ip)
	})
	if err != nil {
		return nil, mapError("rotate endpoint", err)
	}
	if out.Provider == "vapi" {
		out.Secret = secret
	}
	return &out, nil
}

// DeleteEndpoint removes an endpoint (admin): deliveries to it are refused
// from then on.
func (s *EndpointStore) DeleteEndpoint(ctx context.Context, p *voxanne.Principal, id, ip string) error {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return err
	}
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		var provider string
		err := tx.QueryRow(ctx, `delete from webhook_endpoints where org_id = coalesce($1, org_id) and id = $2 returning provider`,
			s.db.org(p), id).Scan(&provider)
		if errors.Is(err, pgx.ErrNoRows) {
			return voxanne.Errorf(voxanne.ENOTFOUND, "no such webhook endpoint")
		} else if err != nil {
			return err
		}
		return endpointAudit(ctx, tx, p, "webhook_endpoint.deleted", id, provider, ip)
	})
	return mapError("delete endpoint", err)
}

// EndpointCredentials looks an endpoint up by id through the service role (a
// delivery names no org until it is verified).
func (s *EndpointStore) EndpointCredentials(ctx context.Context, provider, id string) (*voxanne.EndpointCredentials, error) {
	var (
		c             voxanne.EndpointCredentials
		secret, prev  []byte
		encrypted     bool
		prevEncrypted *bool
		prevUntil     *time.Time
	)
	err := s.db.InService(ctx, "look up a webhook endpoint", func(q Conn) error {
		return q.QueryRow(ctx, `select org_id::text, provider, secret, encrypted, previous_secret, previous_encrypted,
			previous_valid_until from webhook_endpoints where id = $1 and provider = $2`, id, provider).
			Scan(&c.OrgID, &c.Provider, &secret, &encrypted, &prev, &prevEncrypted, &prevUntil)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, voxanne.Errorf(voxanne.ENOTFOUND, "no such webhook endpoint")
	} else if err != nil {
		return nil, fmt.Errorf("endpoint credentials: %w", err)
	}
	cur, err := s.open(secret, encrypted)
	if err != nil {
		return nil, fmt.Errorf("endpoint credentials: %w", err)
	}
	c.Secrets = []string{cur}
	if prev != nil && prevUntil != nil && s.now().Before(*prevUntil) {
		old, err := s.open(prev, prevEncrypted != nil && *prevEncrypted)
		if err != nil {
			return nil, fmt.Errorf("endpoint credentials: %w", err)
		}
		c.Secrets = append(c.Secrets, old)
	}
	return &c, nil
}

const assignmentColumns = `id::text, org_id::text, e164, provider, provider_id, assistant_id, label, created_at`

func scanAssignment(row pgx.CollectableRow) (voxanne.PhoneAssignment, error) {
	var a voxanne.PhoneAssignment
	err := row.Scan(&a.ID, &a.OrgID, &a.E164, &a.Provider, &a.ProviderID, &a.AssistantID, &a.Label, &a.CreatedAt)
	return a, err
}

// Assign records an operator assignment and notes it in the org's audit log.
func (s *EndpointStore) Assign(ctx context.Context, a voxanne.PhoneAssignment) (*voxanne.PhoneAssignment, error) {
	if !validUUID(a.OrgID) {
		return nil, voxanne.Errorf(voxanne.EINVALID, "org_id must be a UUID")
	}
	if a.Provider != "vapi" && a.Provider != "twilio" {
		return nil, voxanne.Errorf(voxanne.EINVALID, `provider must be "vapi" or "twilio"`)
	}
	var e164 *string
	if a.E164 != nil && strings.TrimSpace(*a.E164) != "" {
		n, ok := voxanne.NormalizeE164(*a.E164)
		if !ok {
			return nil, voxanne.Errorf(voxanne.EINVALID, "e164 is not a valid phone number")
		}
		e164 = &n
	}
	providerID, err := optionalField(a.ProviderID, "provider_id", phoneProviderIDMax)
	if err != nil {
		return nil, err
	}
	assistantID, err := optionalField(a.AssistantID, "assistant_id", phoneProviderIDMax)
	if err != nil {
		return nil, err
	}
	if e164 == nil && providerID == nil && assistantID == nil {
		return nil, voxanne.Errorf(voxanne.EINVALID, "one of e164, provider_id and assistant_id is required")
	}
	label, err := validLabel(a.Label)
	if err != nil {
		return nil, err
	}
	var out voxanne.PhoneAssignment
	err = s.db.InService(ctx, "assign a phone number", func(c Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			var exists bool
			if err := tx.QueryRow(ctx, `select exists (select 1 from organizations where id = $1)`, a.OrgID).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return voxanne.Errorf(voxanne.ENOTFOUND, "no such organization")
			}
			rows, err := tx.Query(ctx, `insert into phone_number_assignments (org_id, e164, provider, provider_id, assistant_id, label)
			values ($1, $2, $3, $4, $5, $6) returning `+assignmentColumns, a.OrgID, e164, a.Provider, providerID, assistantID, label)
			if err != nil {
				return err
			}
			if out, err = pgx.CollectExactlyOneRow(rows, scanAssignment); err != nil {
				return err
			}
			return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: a.OrgID, Action: "phone_number.assigned",
				TargetType: "phone_assignment", TargetID: out.ID, Details: map[string]any{"provider": a.Provider}})
		})
	})
	if voxanne.ErrorCode(mapError("", err)) == voxanne.ECONFLICT {
		return nil, &voxanne.Error{Code: voxanne.ECONFLICT, Message: "this number, provider id or assistant id is already assigned", Err: err}
	}
	if err != nil {
		return nil, mapError("assign phone number", err)
	}
	return &out, nil
}

// Assignments lists operator assignments, newest first; of one org when orgID
// is set.
func (s *EndpointStore) Assignments(ctx context.Context, orgID string) ([]voxanne.PhoneAssignment, error) {
	if orgID != "" && !validUUID(orgID) {
		return nil, voxanne.Errorf(voxanne.EINVALID, "org_id must be a UUID")
	}
	out := []voxanne.PhoneAssignment{}
	err := s.db.InService(ctx, "list phone number assignments", func(c Conn) error {
		rows, err := c.Query(ctx, `select `+assignmentColumns+` from phone_number_assignments
			where $1::uuid is null or org_id = $1::uuid order by created_at desc, id desc`, nullable(orgID))
		if err == nil {
			out, err = pgx.AppendRows(out, rows, scanAssignment)
		}
		return err
	})
	if err != nil {
		return nil, mapError("list assignments", err)
	}
	return out, nil
}

// Unassign removes an operator assignment: the shared endpoints stop routing
// its events to the org.
func (s *EndpointStore) Unassign(ctx context.Context, id string) error {
	err := s.db.InService(ctx, "unassign a phone number", func(c Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			var org string
			err := tx.QueryRow(ctx, `delete from phone_number_assignments where id = $1 returning org_id::text`, id).Scan(&org)
			if errors.Is(err, pgx.ErrNoRows) {
				return voxanne.Errorf(voxanne.ENOTFOUND, "no such assignment")
			} else if err != nil {
				return err
			}
			return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: org, Action: "phone_number.unassigned",
				TargetType: "phone_assignment", TargetID: id})
		})
	})
	return mapError("unassign phone number", err)
}
