package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/voxanne/voxanne"
)

// SQLSTATEs the sign-up trigger raises for an invitation_token it cannot
// honour (migration 0014).
const (
	sqlstateInvitationNotFound = "VX404"
	sqlstateInvitationEmail    = "VX403"
)

// invitationError maps the sign-up trigger's invitation failures to the
// caller's errors; nil for any other error.
func invitationError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return nil
	}
	switch pe.Code {
	case sqlstateInvitationNotFound:
		return authErr(voxanne.ENOTFOUND, voxanne.ReasonInviteNotFound, "Invitation not found, already used or expired")
	case sqlstateInvitationEmail:
		return authErr(voxanne.EFORBIDDEN, voxanne.ReasonForbidden, "This invitation is for another email address")
	}
	return nil
}
