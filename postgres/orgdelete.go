package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
)

// orgTombstone is what is known of an org deleted in a transaction, to log
// and announce after commit.
type orgTombstone struct {
	OrgID, Name, Via, ActorID, IP string
	Members                       []voxanne.Member
	AuditSeq                      int64
	AuditHash                     []byte
}

// deleteOrg deletes an org and, by cascade, all its data, inside tx (the
// tenant's transaction or the auth role's). Before it goes it appends an
// org_deleted entry to the org's audit log and writes the record that outlives
// the org (org_deletions) with that entry's seq and hash.
func deleteOrg(ctx context.Context, tx pgx.Tx, orgID, actorID, ip, via string) (*orgTombstone, error) {
	t := &orgTombstone{OrgID: orgID, Via: via, ActorID: actorID, IP: ip}
	err := tx.QueryRow(ctx, `select name from organizations where id = $1 for update`, orgID).Scan(&t.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, voxanne.Errorf(voxanne.ENOTFOUND, "no such organization")
	} else if err != nil {
		return nil, fmt.Errorf("delete org: %w", err)
	}
	rows, err := tx.Query(ctx, `select user_id::text, '', role, created_at from memberships where org_id = $1
		order by created_at, user_id for update`, orgID)
	if err != nil {
		return nil, fmt.Errorf("delete org: members: %w", err)
	}
	if t.Members, err = pgx.CollectRows(rows, pgx.RowToStructByPos[voxanne.Member]); err != nil {
		return nil, fmt.Errorf("delete org: members: %w", err)
	}
	members := make([]map[string]string, len(t.Members))
	for i, m := range t.Members {
		members[i] = map[string]string{"user_id": m.UserID, "role": m.Role}
	}
	if err := appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: orgID, ActorID: actorID, Action: voxanne.AuditOrgDeleted,
		TargetType: "org", TargetID: orgID, IP: ip,
		Details: map[string]any{"name": t.Name, "via": via, "members": len(t.Members)}}); err != nil {
		return nil, err
	}
	if err := tx.QueryRow(ctx, `select seq, hash from audit_log where org_id = $1 order by seq desc limit 1`, orgID).
		Scan(&t.AuditSeq, &t.AuditHash); err != nil {
		return nil, fmt.Errorf("delete org: audit head: %w", err)
	}
	if _, err := tx.Exec(ctx, `insert into org_deletions (org_id, name, deleted_by, via, ip, members, audit_seq, audit_hash)
		values ($1, $2, nullif($3, '')::uuid, $4, nullif($5, ''), $6, $7, $8)`,
		orgID, t.Name, actorID, via, ip, members, t.AuditSeq, t.AuditHash); err != nil {
		return nil, fmt.Errorf("delete org: record: %w", err)
	}
	if _, err := tx.Exec(ctx, `delete from organizations where id = $1`, orgID); err != nil {
		return nil, fmt.Errorf("delete org: %w", err)
	}
	return t, nil
}

// afterOrgDeleted, run after commit, logs the deletion as a security event
// (the org's own audit log is gone; the log line and org_deletions are what
// remain) and stops the members' tokens for the org on their next request.
func (s *AuthService) afterOrgDeleted(ctx context.Context, t *orgTombstone) {
	s.security(ctx, "org_deleted", slog.String("org_id", t.OrgID), slog.String("org_name", t.Name),
		slog.String("via", t.Via), slog.String("actor_id", t.ActorID), slog.String("ip", t.IP),
		slog.Int("members", len(t.Members)), slog.Int64("audit_seq", t.AuditSeq),
		slog.String("audit_hash", hex.EncodeToString(t.AuditHash)))
	revs := make([]voxanne.Revocation, len(t.Members))
	for i, m := range t.Members {
		revs[i] = voxanne.Revocation{Kind: voxanne.RevokeMembership, UserID: m.UserID, OrgID: t.OrgID}
	}
	s.announce(revs)
}

// DeleteOrg deletes the caller's org and all its data (owner). confirm must be
// the org's id: an irreversible request names what it destroys.
func (s *OrgStore) DeleteOrg(ctx context.Context, p *voxanne.Principal, confirm, ip string) error {
	if err := requireRole(p, voxanne.RoleOwner); err != nil {
		return err
	}
	if confirm == "" {
		return voxanne.Errorf(voxanne.EINVALID, "confirm must be the organization's id: DELETE /api/org?confirm=<org id>")
	}
	if confirm != p.OrgID {
		return forbidden("confirm names another organization")
	}
	var t *orgTombstone
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		var err error
		t, err = deleteOrg(ctx, tx, p.OrgID, p.UserID, ip, "api")
		return err
	})
	if err != nil {
		return mapError("delete org", err)
	}
	s.auth.afterOrgDeleted(ctx, t)
	return nil
}

// Orphaned-org policies of DeleteUser.
const (
	OrphanedOrgsRefuse   = ""
	OrphanedOrgsDelete   = "delete"
	OrphanedOrgsTransfer = "transfer"
)

// DeleteUser deletes a user; their sessions, refresh tokens and memberships go
// with them. A user who is the last owner of orgs is refused (409 naming the
// orgs) unless orphaned says what becomes of them: "delete" deletes those orgs
// with all their data; "transfer" makes the senior remaining member of each
// (admins first, then the longest-standing) its owner, and is refused for orgs
// with no other member.
func (s *AuthService) DeleteUser(ctx context.Context, id, orphaned string) error {
	switch orphaned {
	case OrphanedOrgsRefuse, OrphanedOrgsDelete, OrphanedOrgsTransfer:
	default:
		return authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "orphaned_orgs must be delete or transfer")
	}
	var (
		tombs []*orgTombstone
		revs  []voxanne.Revocation
	)
	err := s.db.InService(ctx, "delete a user and their organizations", func(c Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			var found string
			err := tx.QueryRow(ctx, `select id::text from auth.users where id = $1 for update`, id).Scan(&found)
			if errors.Is(err, pgx.ErrNoRows) {
				return authErr(voxanne.ENOTFOUND, voxanne.ReasonUserNotFound, "User not found")
			} else if err != nil {
				return err
			}
			// Lock the owner rows of the user's orgs (as role changes do), so no
			// concurrent change makes or unmakes a last owner under us.
			if _, err := tx.Exec(ctx, `select 1 from memberships where role = 'owner'
			and org_id in (select org_id from memberships where user_id = $1) order by org_id, user_id for update`, id); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `select o.id::text, o.name, m.role from memberships m join organizations o on o.id = m.org_id
			where m.user_id = $1 and m.role = 'owner' and not exists (select 1 from memberships m2
				where m2.org_id = m.org_id and m2.role = 'owner' and m2.user_id <> $1)
			order by o.created_at, o.id`, id)
			if err != nil {
				return err
			}
			orphans, err := pgx.CollectRows(rows, pgx.RowToStructByPos[voxanne.OrgRef])
			if err != nil {
				return err
			}
			var stuck []voxanne.OrgRef
			for _, o := range orphans {
				switch orphaned {
				case OrphanedOrgsRefuse:
					stuck = append(stuck, o)
				case OrphanedOrgsDelete:
					t, err := deleteOrg(ctx, tx, o.ID, "", "", "admin_user_delete")
					if err != nil {
						return err
					}
					tombs = append(tombs, t)
				case OrphanedOrgsTransfer:
					var heir, from string
					err := tx.QueryRow(ctx, `select user_id::text, role from memberships where org_id = $1 and user_id <> $2
					order by (role = 'admin') desc, created_at, user_id limit 1 for update`, o.ID, id).Scan(&heir, &from)
					if errors.Is(err, pgx.ErrNoRows) {
						stuck = append(stuck, o)
						continue
					} else if err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, `update memberships set role = 'owner', updated_at = now() where org_id = $1 and user_id = $2`, o.ID, heir); err != nil {
						return err
					}
					if err := appendAudit(ctx, tx, voxanne.AuditEvent{OrgID: o.ID, Action: voxanne.AuditRoleChanged, TargetType: "user", TargetID: heir,
						Details: map[string]any{"from": from, "to": voxanne.RoleOwner, "reason": "last_owner_deleted", "deleted_user_id": id}}); err != nil {
						return err
					}
					revs = append(revs, voxanne.Revocation{Kind: voxanne.RevokeMembership, UserID: heir, OrgID: o.ID})
				}
			}
			if len(stuck) > 0 {
				return lastOwnerError(stuck, orphaned)
			}
			_, err = tx.Exec(ctx, "delete from auth.users where id = $1", id)
			return err
		})
	})
	if err != nil {
		return mapError("delete user", err)
	}
	for _, t := range tombs {
		s.afterOrgDeleted(ctx, t)
	}
	s.announce(append(revs, voxanne.Revocation{Kind: voxanne.RevokeUser, UserID: id}))
	s.security(ctx, "admin_user_deleted", slog.String("user_id", id), slog.String("orphaned_orgs", orphaned),
		slog.Int("orgs_deleted", len(tombs)))
	return nil
}

// lastOwnerError is the 409 naming the orgs a user cannot leave ownerless.
func lastOwnerError(orgs []voxanne.OrgRef, orphaned string) error {
	names := make([]string, len(orgs))
	list := make([]map[string]string, len(orgs))
	for i, o := range orgs {
		names[i] = fmt.Sprintf("%q (%s)", o.Name, o.ID)
		list[i] = map[string]string{"id": o.ID, "name": o.Name}
	}
	msg := "The user is the last owner of " + strings.Join(names, ", ") +
		": add another owner, or pass orphaned_orgs=transfer or orphaned_orgs=delete"
	if orphaned == OrphanedOrgsTransfer {
		msg = "No other member can take over " + strings.Join(names, ", ") + ": pass orphaned_orgs=delete to delete them"
	}
	return &voxanne.Error{Code: voxanne.ECONFLICT, Reason: voxanne.ReasonConflict, Message: msg, Details: map[string]any{"orgs": list}}
}
