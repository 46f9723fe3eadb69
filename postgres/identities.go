package postgres

import (
	"github.com/google/uuid"

	"github.com/voxanne/voxanne"
)

// identityNamespace derives stable identity ids from user ids: Voxanne keeps
// no identity table (each user has exactly one identity, by email or by
// phone), yet GoTrue's clients expect an identity_id that does not change.
var identityNamespace = uuid.MustParse("8d7ad3a0-5b0e-4f2c-9a55-6f1d1c2b7e31")

// identities returns the user's identity as GoTrue lists it: "email" for
// users with an address, else "phone".
func identities(u *voxanne.User) []voxanne.Identity {
	provider, data := "email", map[string]any{
		"sub": u.ID, "email": u.Email, "email_verified": u.EmailConfirmedAt != nil, "phone_verified": false,
	}
	if u.Email == "" {
		provider = "phone"
		data = map[string]any{"sub": u.ID, "phone": u.Phone, "phone_verified": u.PhoneConfirmedAt != nil, "email_verified": false}
	}
	return []voxanne.Identity{{
		IdentityID:   uuid.NewSHA1(identityNamespace, []byte(provider+":"+u.ID)).String(),
		ID:           u.ID,
		UserID:       u.ID,
		IdentityData: data,
		Provider:     provider,
		LastSignInAt: u.LastSignInAt,
		CreatedAt:    u.CreatedAt,
		UpdatedAt:    u.UpdatedAt,
		Email:        u.Email,
	}}
}
