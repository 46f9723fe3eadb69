package voxanne

import (
	"context"
	"encoding/json"
	"time"
)

// Org is an organization.
type Org struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// RequireMFA makes every tenant route answer 403 mfa_required to
	// sessions below aal2 (set by the owner).
	RequireMFA bool      `json:"require_mfa"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// OrgRef names an org and the caller's role in it.
type OrgRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// Me describes the caller: who they are, the org their token is for, and every
// org they belong to.
type Me struct {
	User struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	} `json:"user"`
	Org  OrgRef   `json:"org"`
	Role string   `json:"role"`
	Orgs []OrgRef `json:"orgs"`
}

// MarshalJSON writes org and role as null when the caller has no active org
// (they left or were removed from it, or it was deleted).
func (m Me) MarshalJSON() ([]byte, error) {
	type plain Me
	out := struct {
		plain
		Org  *OrgRef `json:"org"`
		Role *string `json:"role"`
	}{plain: plain(m)}
	if m.Org.ID != "" {
		out.Org, out.Role = &m.Org, &m.Role
	}
	return json.Marshal(out)
}

// Member is a user's membership as the org sees it.
type Member struct {
	UserID   string    `json:"user_id"`
	Email    string    `json:"email"`
	Role     string    `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

// Invitation is an invitation to join an org. AcceptURL, which carries the
// secret, is only ever filled in when the invitation is created.
type Invitation struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	AcceptURL string    `json:"accept_url,omitempty"`
}

// AuditEntry is one entry of an org's audit log.
type AuditEntry struct {
	ID         string         `json:"id"`
	Seq        int64          `json:"seq"`
	At         time.Time      `json:"at"`
	ActorID    *string        `json:"actor_id"`
	Action     string         `json:"action"`
	TargetType *string        `json:"target_type"`
	TargetID   *string        `json:"target_id"`
	IP         *string        `json:"ip"`
	Details    map[string]any `json:"details"`
	Hash       string         `json:"hash"`
}

// AuditEvent is an entry to append.
type AuditEvent struct {
	OrgID      string
	ActorID    string
	Action     string
	TargetType string
	TargetID   string
	IP         string
	Details    map[string]any
}

// Audit actions.
const (
	AuditSignIn           = "sign_in"
	AuditSignOut          = "sign_out"
	AuditOrgSwitched      = "org_switched"
	AuditOrgCreated       = "org_created"
	AuditOrgRenamed       = "org_renamed"
	AuditOrgDeleted       = "org_deleted"
	AuditMemberInvited    = "member_invited"
	AuditMemberJoined     = "member_joined"
	AuditMemberRemoved    = "member_removed"
	AuditRoleChanged      = "member_role_changed"
	AuditInviteRevoked    = "invitation_revoked"
	AuditCrossTenant      = "cross_tenant_attempt"
	AuditTranscriptRead   = "transcript_read"
	AuditMFAPolicyChanged = "mfa_policy_changed"
)

// roleRank orders roles by power.
var roleRank = map[string]int{RoleMember: 1, RoleAdmin: 2, RoleOwner: 3}

// ValidRole reports whether r is a role.
func ValidRole(r string) bool { return roleRank[r] > 0 }

// AtLeast reports whether role has at least the power of min.
func AtLeast(role, min string) bool { return roleRank[role] >= roleRank[min] && roleRank[min] > 0 }

// CanManage reports whether actor may change a member holding role from into
// role to (or remove them, with to ""): admins manage members below owner,
// owners manage everyone.
func CanManage(actor, from, to string) bool {
	if !AtLeast(actor, RoleAdmin) {
		return false
	}
	if from == RoleOwner || to == RoleOwner {
		return actor == RoleOwner
	}
	return true
}

// AuditVerification is the result of checking an org's audit chain.
type AuditVerification struct {
	Valid   bool  `json:"valid"`
	Entries int64 `json:"entries"`
	// FirstInvalidSeq is the seq of the first entry that fails (0 when the
	// chain is valid, or when only the recorded head disagrees).
	FirstInvalidSeq int64 `json:"first_invalid_seq,omitempty"`
	// Reason says why the chain is invalid, in words safe to show.
	Reason string `json:"reason,omitempty"`
}

// OrgService runs organizations for the /api routes. Every method acts in the
// principal's org only.
type OrgService interface {
	Me(ctx context.Context, p *Principal) (*Me, error)
	Validate(ctx context.Context, p *Principal, orgID string) (*Org, string, error)
	CreateOrg(ctx context.Context, p *Principal, name, ip string) (*Org, error)
	Org(ctx context.Context, p *Principal) (*Org, error)
	RenameOrg(ctx context.Context, p *Principal, name, ip string) (*Org, error)
	Members(ctx context.Context, p *Principal) ([]Member, error)
	ChangeRole(ctx context.Context, p *Principal, userID, role, ip string) (*Member, error)
	RemoveMember(ctx context.Context, p *Principal, userID, ip string) error
	Invite(ctx context.Context, p *Principal, email, role, ip string) (*Invitation, error)
	Invitations(ctx context.Context, p *Principal) ([]Invitation, error)
	RevokeInvitation(ctx context.Context, p *Principal, id, ip string) error
	AcceptInvitation(ctx context.Context, p *Principal, token, ip string) (*Org, error)
	AuditLog(ctx context.Context, p *Principal, limit int, before int64, action string) ([]AuditEntry, error)
	ExportAuditLog(ctx context.Context, p *Principal, emit func(AuditEntry) error) error
	VerifyAuditLog(ctx context.Context, p *Principal) (bool, int64, error)
	// VerifyAuditChain is VerifyAuditLog naming the first entry that fails.
	VerifyAuditChain(ctx context.Context, p *Principal) (*AuditVerification, error)
	Audit(ctx context.Context, ev AuditEvent) error
	SwitchOrg(ctx context.Context, p *Principal, orgID string, ci ClientInfo) (*Session, error)
	// DeleteOrg deletes the principal's org and all its data (owner); confirm
	// must be the org's id.
	DeleteOrg(ctx context.Context, p *Principal, confirm, ip string) error
}
