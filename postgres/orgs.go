package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
)

// invitationLifetime is how long an invitation can be accepted.
const invitationLifetime = 7 * 24 * time.Hour

// OrgStore implements voxanne.OrgService. Work inside one org goes through
// InTenant (row-level security on, explicit org_id filter); the few cross-org
// steps (listing the caller's orgs, creating an org, accepting an invitation,
// switching) use the auth role.
type OrgStore struct {
	db   *DB
	auth *AuthService
}

var _ voxanne.OrgService = (*OrgStore)(nil)

// NewOrgStore returns the org service; auth issues sessions for org switches and
// sends invitation mails.
func NewOrgStore(db *DB, auth *AuthService) *OrgStore { return &OrgStore{db: db, auth: auth} }

// orgColumns are an Org's columns, in its field order.
const orgColumns = `id, name, require_mfa, created_at, updated_at`

func forbidden(msg string) error { return voxanne.Errorf(voxanne.EFORBIDDEN, "%s", msg) }

// requireRole checks the principal's role in its org as the token says it; the
// authenticator has already checked that it matches the membership.
func requireRole(p *voxanne.Principal, min string) error {
	if !voxanne.AtLeast(p.OrgRole, min) {
		return forbidden("this action needs the " + min + " role")
	}
	return nil
}

// appendAudit adds an entry; the table's trigger sets seq and the hash chain.
func appendAudit(ctx context.Context, tx pgx.Tx, ev voxanne.AuditEvent) error {
	details := ev.Details
	if details == nil {
		details = map[string]any{}
	}
	_, err := tx.Exec(ctx, `insert into audit_log (org_id, actor_id, action, target_type, target_id, ip, details, prev_hash, hash)
		values ($1, nullif($2, '')::uuid, $3, nullif($4, ''), nullif($5, ''), nullif($6, ''), $7, '', '')`,
		ev.OrgID, ev.ActorID, ev.Action, ev.TargetType, ev.TargetID, ev.IP, details)
	if err != nil {
		return fmt.Errorf("audit %s: %w", ev.Action, err)
	}
	return nil
}

// Audit appends an event to its org's log (through the auth role, as events such
// as sign-in have no tenant transaction around them).
func (s *OrgStore) Audit(ctx context.Context, ev voxanne.AuditEvent) error {
	return s.db.InService(ctx, "append to an audit chain", func(c Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return appendAudit(ctx, tx, ev) })
	})
}

func (s *OrgStore) orgRow(ctx context.Context, tx pgx.Tx, p *voxanne.Principal) (*voxanne.Org, error) {
	var o voxanne.Org
	err := tx.QueryRow(ctx, `select `+orgColumns+` from organizations where id = coalesce($1, id)`,
		s.db.org(p)).Scan(&o.ID, &o.Name, &o.RequireMFA, &o.CreatedAt, &o.UpdatedAt)
	if err != nil {
		return nil, mapError("get org", err)
	}
	return &o, nil
}

// Me describes the caller and lists every org they belong to.
func (s *OrgStore) Me(ctx context.Context, p *voxanne.Principal) (*voxanne.Me, error) {
	me := &voxanne.Me{Role: p.OrgRole}
	me.User.ID, me.User.Email = p.UserID, p.Email
	err := s.db.InService(ctx, "list a user's organizations", func(c Conn) error {
		rows, err := c.Query(ctx, `select o.id::text, o.name, m.role from memberships m
			join organizations o on o.id = m.org_id where m.user_id = $1 order by m.created_at, o.id`, p.UserID)
		if err == nil {
			me.Orgs, err = pgx.CollectRows(rows, pgx.RowToStructByPos[voxanne.OrgRef])
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("me: %w", err)
	}
	for _, o := range me.Orgs {
		if o.ID == p.OrgID {
			me.Org = o
		}
	}
	return me, nil
}

// Validate reports the org and role when the caller's token is for orgID and
// the membership exists; any other org is forbidden, existing or not.
func (s *OrgStore) Validate(ctx context.Context, p *voxanne.Principal, orgID string) (*voxanne.Org, string, error) {
	if orgID != p.OrgID {
		return nil, "", forbidden("not a member of this organization")
	}
	var o *voxanne.Org
	var role string
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		var err error
		if o, err = s.orgRow(ctx, tx, p); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `select role from memberships where org_id = coalesce($1, org_id) and user_id = $2`,
			s.db.org(p), p.UserID).Scan(&role)
	})
	if err != nil {
		if voxanne.ErrorCode(err) == voxanne.ENOTFOUND || errors.Is(err, pgx.ErrNoRows) {
			return nil, "", forbidden("not a member of this organization")
		}
		return nil, "", err
	}
	return o, role, nil
}

func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 200 {
		return "", voxanne.Errorf(voxanne.EINVALID, "name must be 1 to 200 characters")
	}
	return name, nil
}

// CreateOrg creates an org with the caller as its owner.
func (s *OrgStore) CreateOrg(ctx context.Context, p *voxanne.Principal, name, ip string) (*voxanne.Org, error) {
	name, err := validName(name)
	if err != nil {
		return nil, err
	}
	var o voxanne.Org
	err = s.db.InService(ctx, "create an organization", func(c Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, `insert into organizations (name) values ($1) returning id, name, created_at, updated_at`, name).
				Scan(&o.ID, &o.Name, &o.CreatedAt, &o.UpdatedAt); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `insert into memberships (org_id, user_id, role) values ($1, $2, 'owner')`, o.ID, p.UserID); err != nil {
				return err
			}
			return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: o.ID, ActorID: p.UserID, Action: voxanne.AuditOrgCreated,
				TargetType: "org", TargetID: o.ID, IP: ip, Details: map[string]any{"name": name}})
		})
	})
	if err != nil {
		return nil, mapError("create org", err)
	}
	return &o, nil
}

// Org returns the caller's org.
func (s *OrgStore) Org(ctx context.Context, p *voxanne.Principal) (*voxanne.Org, error) {
	var o *voxanne.Org
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		var err error
		o, err = s.orgRow(ctx, tx, p)
		return err
	})
	return o, err
}

// RenameOrg renames the caller's org (admin).
func (s *OrgStore) RenameOrg(ctx context.Context, p *voxanne.Principal, name, ip string) (*voxanne.Org, error) {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return nil, err
	}
	name, err := validName(name)
	if err != nil {
		return nil, err
	}
	var o voxanne.Org
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		var old string
		if err := tx.QueryRow(ctx, `select name from organizations where id = coalesce($1, id) for update`, s.db.org(p)).Scan(&old); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `update organizations set name = $2, updated_at = now() where id = coalesce($1, id)
			returning `+orgColumns, s.db.org(p), name).Scan(&o.ID, &o.Name, &o.RequireMFA, &o.CreatedAt, &o.UpdatedAt); err != nil {
			return err
		}
		return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: p.OrgID, ActorID: p.UserID, Action: voxanne.AuditOrgRenamed,
			TargetType: "org", TargetID: p.OrgID, IP: ip, Details: map[string]any{"from": old, "to": name}})
	})
	if err != nil {
		return nil, mapError("rename org", err)
	}
	return &o, nil
}

const memberSelect = `select m.user_id::text, coalesce(e.email, ''), m.role, m.created_at
	from memberships m left join org_member_emails() e on e.user_id = m.user_id
	where m.org_id = coalesce($1, m.org_id)`

// Members lists the org's members.
func (s *OrgStore) Members(ctx context.Context, p *voxanne.Principal) ([]voxanne.Member, error) {
	var out []voxanne.Member
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, memberSelect+memberOrder, s.db.org(p))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[voxanne.Member])
		return err
	})
	if err != nil {
		return nil, mapError("list members", err)
	}
	return out, nil
}

// lockMember reads a member's role with the org's owner rows locked, so that
// concurrent changes cannot together remove the last owner.
func (s *OrgStore) lockMember(ctx context.Context, tx pgx.Tx, p *voxanne.Principal, userID string) (role string, owners int, err error) {
	if err := tx.QueryRow(ctx, `select count(*) from (select 1 from memberships
		where org_id = coalesce($1, org_id) and role = 'owner' for update) o`, s.db.org(p)).Scan(&owners); err != nil {
		return "", 0, err
	}
	err = tx.QueryRow(ctx, `select role from memberships where org_id = coalesce($1, org_id) and user_id = $2 for update`,
		s.db.org(p), userID).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, voxanne.Errorf(voxanne.ENOTFOUND, "no such member")
	}
	return role, owners, err
}

// ChangeRole changes a member's role under the role rules; the last owner cannot
// be demoted. The member's tokens stop working on their next request.
func (s *OrgStore) ChangeRole(ctx context.Context, p *voxanne.Principal, userID, role, ip string) (*voxanne.Member, error) {
	if !voxanne.ValidRole(role) {
		return nil, voxanne.Errorf(voxanne.EINVALID, "role must be owner, admin or member")
	}
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return nil, err
	}
	var m voxanne.Member
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		from, owners, err := s.lockMember(ctx, tx, p, userID)
		if err != nil {
			return err
		}
		if !voxanne.CanManage(p.OrgRole, from, role) {
			return forbidden("your role cannot make this change")
		}
		if from == voxanne.RoleOwner && role != voxanne.RoleOwner && owners <= 1 {
			return voxanne.Errorf(voxanne.ECONFLICT, "the last owner cannot be demoted")
		}
		if from != role {
			if _, err := tx.Exec(ctx, `update memberships set role = $3, updated_at = now()
				where org_id = coalesce($1, org_id) and user_id = $2`, s.db.org(p), userID, role); err != nil {
				return err
			}
			if err := appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: p.OrgID, ActorID: p.UserID, Action: voxanne.AuditRoleChanged,
				TargetType: "user", TargetID: userID, IP: ip, Details: map[string]any{"from": from, "to": role}}); err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, memberSelect+" and m.user_id = $2", s.db.org(p), userID).Scan(&m.UserID, &m.Email, &m.Role, &m.JoinedAt)
	})
	if err != nil {
		return nil, mapError("change role", err)
	}
	s.auth.announce([]voxanne.Revocation{{Kind: voxanne.RevokeMembership, UserID: userID, OrgID: p.OrgID}})
	return &m, nil
}

// RemoveMember removes a member (admin, or the member themself to leave); the
// last owner cannot leave or be removed.
func (s *OrgStore) RemoveMember(ctx context.Context, p *voxanne.Principal, userID, ip string) error {
	self := userID == p.UserID
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		role, owners, err := s.lockMember(ctx, tx, p, userID)
		if err != nil {
			return err
		}
		if !self && !voxanne.CanManage(p.OrgRole, role, "") {
			return forbidden("your role cannot remove this member")
		}
		if role == voxanne.RoleOwner && owners <= 1 {
			return voxanne.Errorf(voxanne.ECONFLICT, "the last owner cannot be removed")
		}
		if _, err := tx.Exec(ctx, `delete from memberships where org_id = coalesce($1, org_id) and user_id = $2`, s.db.org(p), userID); err != nil {
			return err
		}
		return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: p.OrgID, ActorID: p.UserID, Action: voxanne.AuditMemberRemoved,
			TargetType: "user", TargetID: userID, IP: ip, Details: map[string]any{"role": role, "left": self}})
	})
	if err != nil {
		return mapError("remove member", err)
	}
	s.auth.announce([]voxanne.Revocation{{Kind: voxanne.RevokeMembership, UserID: userID, OrgID: p.OrgID}})
	return nil
}

// Invite invites an address (admin; owners may invite owners), replacing any
// open invitation of the same address, and mails the secret link.
func (s *OrgStore) Invite(ctx context.Context, p *voxanne.Principal, emailIn, role, ip string) (*voxanne.Invitation, error) {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return nil, err
	}
	email, err := normalizeEmail(emailIn)
	if err != nil {
		return nil, voxanne.Errorf(voxanne.EINVALID, "email is not a valid address")
	}
	if !voxanne.ValidRole(role) {
		return nil, voxanne.Errorf(voxanne.EINVALID, "role must be owner, admin or member")
	}
	if !voxanne.CanManage(p.OrgRole, voxanne.RoleMember, role) {
		return nil, forbidden("only owners can invite owners")
	}
	secret := randomToken()
	inv := voxanne.Invitation{Email: email, Role: role}
	var orgName string
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `select name from organizations where id = coalesce($1, id)`, s.db.org(p)).Scan(&orgName); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `delete from invitations where org_id = coalesce($1, org_id) and email = $2 and accepted_at is null`,
			s.db.org(p), email); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `insert into invitations (org_id, email, role, token_hash, invited_by, expires_at)
			values ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) returning id, created_at, expires_at`,
			p.OrgID, email, role, hashToken(secret), p.UserID, invitationLifetime.Seconds()).Scan(&inv.ID, &inv.CreatedAt, &inv.ExpiresAt); err != nil {
			return err
		}
		return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: p.OrgID, ActorID: p.UserID, Action: voxanne.AuditMemberInvited,
			TargetType: "invitation", TargetID: inv.ID, IP: ip, Details: map[string]any{"email": email, "role": role}})
	})
	if err != nil {
		return nil, mapError("invite", err)
	}
	inv.AcceptURL = s.auth.cfg.PublicURL + "/invitations/accept?token=" + secret
	s.auth.sendMail(ctx, email, "You are invited to "+orgName+" on Voxanne",
		"You were invited to join "+orgName+" as "+role+". Sign in (or sign up with this address) and accept:\n\n"+
			inv.AcceptURL+"\n\nThe invitation expires in 7 days and works once.")
	return &inv, nil
}

// Invitations lists the org's open invitations (admin).
func (s *OrgStore) Invitations(ctx context.Context, p *voxanne.Principal) ([]voxanne.Invitation, error) {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return nil, err
	}
	var out []voxanne.Invitation
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, invitationSelect, s.db.org(p))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[voxanne.Invitation])
		return err
	})
	if err != nil {
		return nil, mapError("list invitations", err)
	}
	return out, nil
}

// RevokeInvitation deletes an open invitation (admin).
func (s *OrgStore) RevokeInvitation(ctx context.Context, p *voxanne.Principal, id, ip string) error {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return err
	}
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `delete from invitations where org_id = coalesce($1, org_id) and id = $2 and accepted_at is null`, s.db.org(p), id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return voxanne.Errorf(voxanne.ENOTFOUND, "no such invitation")
		}
		return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: p.OrgID, ActorID: p.UserID, Action: voxanne.AuditInviteRevoked,
			TargetType: "invitation", TargetID: id, IP: ip})
	})
	return mapError("revoke invitation", err)
}

// AcceptInvitation makes the caller a member of the inviting org, once, before
// the invitation expires, and only if their confirmed email is the invited one.
func (s *OrgStore) AcceptInvitation(ctx context.Context, p *voxanne.Principal, secret, ip string) (*voxanne.Org, error) {
	if secret == "" {
		return nil, voxanne.Errorf(voxanne.EINVALID, "token is required")
	}
	var o voxanne.Org
	err := s.db.InService(ctx, "accept an invitation", func(c Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			var invID, orgID, email, role string
			err := tx.QueryRow(ctx, `select id::text, org_id::text, email, role from invitations
			where token_hash = $1 and accepted_at is null and expires_at > now() for update`, hashToken(secret)).Scan(&invID, &orgID, &email, &role)
			if errors.Is(err, pgx.ErrNoRows) {
				return voxanne.Errorf(voxanne.ENOTFOUND, "invitation not found, already used or expired")
			} else if err != nil {
				return err
			}
			var confirmed bool
			var userEmail string
			if err := tx.QueryRow(ctx, `select email, email_confirmed_at is not null from auth.users where id = $1`, p.UserID).Scan(&userEmail, &confirmed); err != nil {
				return err
			}
			if !confirmed || userEmail != email {
				return forbidden("this invitation is for another email address")
			}
			tag, err := tx.Exec(ctx, `insert into memberships (org_id, user_id, role) values ($1, $2, $3) on conflict do nothing`, orgID, p.UserID, role)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return voxanne.Errorf(voxanne.ECONFLICT, "already a member of this organization")
			}
			if _, err := tx.Exec(ctx, `update invitations set accepted_at = now(), accepted_by = $2 where id = $1`, invID, p.UserID); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `select `+orgColumns+` from organizations where id = $1`, orgID).
				Scan(&o.ID, &o.Name, &o.RequireMFA, &o.CreatedAt, &o.UpdatedAt); err != nil {
				return err
			}
			return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: orgID, ActorID: p.UserID, Action: voxanne.AuditMemberJoined,
				TargetType: "user", TargetID: p.UserID, IP: ip, Details: map[string]any{"role": role, "invitation_id": invID}})
		})
	})
	if err != nil {
		return nil, mapError("accept invitation", err)
	}
	return &o, nil
}

// SwitchOrg starts a session for another org the caller belongs to, without a
// new sign-in.
func (s *OrgStore) SwitchOrg(ctx context.Context, p *voxanne.Principal, orgID string, ci voxanne.ClientInfo) (*voxanne.Session, error) {
	var sess *voxanne.Session
	err := s.db.InService(ctx, "switch organization", func(c Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			var member bool
			if err := tx.QueryRow(ctx, `select exists (select 1 from memberships where org_id = $1 and user_id = $2)`, orgID, p.UserID).Scan(&member); err != nil {
				return err
			}
			if !member {
				return forbidden("not a member of this organization")
			}
			u, err := s.auth.userByID(ctx, tx, p.UserID)
			if err != nil {
				return err
			}
			if sess, err = s.auth.newSessionLike(ctx, tx, u, orgID, ci, p.SessionID); err != nil {
				return err
			}
			return appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: orgID, ActorID: p.UserID, Action: voxanne.AuditOrgSwitched,
				TargetType: "org", TargetID: orgID, IP: ci.IP, Details: map[string]any{"from": p.OrgID}})
		})
	})
	if err != nil {
		return nil, mapError("switch org", err)
	}
	return sess, nil
}

const auditColumns = `id::text, seq, at, actor_id::text, action, target_type, target_id, ip, details, hash`

func scanAudit(row pgx.CollectableRow) (voxanne.AuditEntry, error) {
	var e voxanne.AuditEntry
	var hash []byte
	err := row.Scan(&e.ID, &e.Seq, &e.At, &e.ActorID, &e.Action, &e.TargetType, &e.TargetID, &e.IP, &e.Details, &hash)
	e.Hash = hex.EncodeToString(hash)
	return e, err
}

// AuditLog returns up to limit entries, newest first, with seq below before (0:
// from the newest), optionally of one action (admin).
func (s *OrgStore) AuditLog(ctx context.Context, p *voxanne.Principal, limit int, before int64, action string) ([]voxanne.AuditEntry, error) {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return nil, err
	}
	var out []voxanne.AuditEntry
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, auditPageSQL, s.db.org(p), before, action, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanAudit)
		return err
	})
	if err != nil {
		return nil, mapError("audit log", err)
	}
	return out, nil
}

// exportPage is how many entries one export transaction reads.
const exportPage = 500

// ExportAuditLog streams every entry, oldest first (admin). It reads pages of
// exportPage entries by seq, each in its own short transaction, and emits a
// page only after its transaction has ended: however slowly the caller's
// client reads, no database connection waits on it.
func (s *OrgStore) ExportAuditLog(ctx context.Context, p *voxanne.Principal, emit func(voxanne.AuditEntry) error) error {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return err
	}
	var after int64
	for {
		var page []voxanne.AuditEntry
		err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `select `+auditColumns+` from audit_log where org_id = coalesce($1, org_id) and seq > $2
				order by seq limit $3`, s.db.org(p), after, exportPage)
			if err != nil {
				return err
			}
			page, err = pgx.CollectRows(rows, scanAudit)
			return err
		})
		if err != nil {
			return mapError("export audit log", err)
		}
		for _, e := range page {
			if err := emit(e); err != nil {
				return err
			}
		}
		if len(page) < exportPage {
			return nil
		}
		after = page[len(page)-1].Seq
	}
}

// VerifyAuditLog recomputes the chain: seq must run 1..n without gaps, each
// entry must name its predecessor's hash, each hash must match the entry's
// current content, and the last must be the org's recorded head.
func (s *OrgStore) VerifyAuditLog(ctx context.Context, p *voxanne.Principal) (bool, int64, error) {
	v, err := s.VerifyAuditChain(ctx, p)
	if err != nil {
		return false, 0, err
	}
	return v.Valid, v.Entries, nil
}

// VerifyAuditChain checks the chain as VerifyAuditLog does and names the first
// entry that fails. A keyed entry's hash is an HMAC under the audit key (see
// DB.SetAuditKey): it checks only with that key. Once an entry is keyed every
// later one must be, and with a key configured the newest entry must be keyed,
// so a chain rewritten without the key in plain SHA-256 fails too.
func (s *OrgStore) VerifyAuditChain(ctx context.Context, p *voxanne.Principal) (*voxanne.AuditVerification, error) {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return nil, err
	}
	v := &voxanne.AuditVerification{Valid: true}
	fail := func(seq int64, reason string) {
		if v.Valid {
			v.Valid, v.FirstInvalidSeq, v.Reason = false, seq, reason
		}
	}
	key := s.db.auditKey()
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `select a.seq, a.prev_hash, a.hash, a.keyed,
				case when a.keyed then $2::bytea is not null and audit_hmac($2::bytea, a.prev_hash || audit_canonical(a)) = a.hash
				else sha256(a.prev_hash || audit_canonical(a)) = a.hash end
			from audit_log a where a.org_id = coalesce($1, a.org_id) order by a.seq`, s.db.org(p), key)
		if err != nil {
			return err
		}
		var seq int64
		var prev, hash, last []byte
		var keyed, matches, sawKeyed, lastKeyed bool
		last = []byte{}
		if _, err := pgx.ForEachRow(rows, []any{&seq, &prev, &hash, &keyed, &matches}, func() error {
			v.Entries++
			switch {
			case seq != v.Entries:
				fail(v.Entries, "an entry is missing or out of order")
			case string(prev) != string(last):
				fail(seq, "the entry does not follow its predecessor")
			case keyed && key == nil:
				fail(seq, "the entry is keyed but no audit key is configured")
			case !matches:
				fail(seq, "the entry's content does not match its hash")
			case sawKeyed && !keyed:
				fail(seq, "an unkeyed entry follows a keyed one")
			}
			sawKeyed = sawKeyed || keyed
			lastKeyed = keyed
			last = append([]byte(nil), hash...)
			return nil
		}); err != nil {
			return err
		}
		if key != nil && v.Entries > 0 && !lastKeyed {
			fail(v.Entries, "the newest entry is not keyed although an audit key is configured")
		}
		var headSeq int64
		var headHash []byte
		err = tx.QueryRow(ctx, `select seq, hash from audit_heads where org_id = coalesce($1, org_id)`, s.db.org(p)).Scan(&headSeq, &headHash)
		if errors.Is(err, pgx.ErrNoRows) {
			headSeq, headHash = 0, []byte{}
		} else if err != nil {
			return err
		}
		if headSeq != v.Entries || string(headHash) != string(last) {
			fail(0, "the chain does not end at the recorded head: entries were added or removed")
		}
		return nil
	})
	if err != nil {
		return nil, mapError("verify audit log", err)
	}
	return v, nil
}
