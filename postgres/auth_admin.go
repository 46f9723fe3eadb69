package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth/password"
)

// serverOwnedAppMetadata are app_metadata keys only Voxanne itself writes: the
// org a token is for comes from memberships, never from an admin's say-so.
var serverOwnedAppMetadata = []string{"org_id", "org_role", "provider", "providers"}

func checkAdminAppMetadata(m map[string]any) error {
	for _, k := range serverOwnedAppMetadata {
		if _, ok := m[k]; ok {
			return authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "app_metadata."+k+" is managed by Voxanne and cannot be set")
		}
	}
	return nil
}

// ListUsers returns a page of users, newest first, and the total count.
func (s *AuthService) ListUsers(ctx context.Context, page, perPage int) ([]*voxanne.User, int, error) {
	if page < 1 {
		page = 1
	}
	if perPage < 1 {
		perPage = 50
	}
	var total int
	if err := s.db.auth.QueryRow(ctx, "select count(*) from auth.users").Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	rows, err := s.db.auth.Query(ctx, "select "+userColumns+" from auth.users order by created_at desc, id limit $1 offset $2",
		perPage, (page-1)*perPage)
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*voxanne.User, error) {
		u, err := scanUser(r)
		if err != nil {
			return nil, err
		}
		return &u.User, nil
	})
	return users, total, err
}

func (s *AuthService) adminHash(in voxanne.AdminUserInput) (string, error) {
	if in.Password == nil {
		return "", nil
	}
	if err := s.checkPassword(*in.Password); err != nil {
		return "", err
	}
	return password.Hash(*in.Password)
}

// CreateUser creates a user as an operator; the trigger creates their org.
func (s *AuthService) CreateUser(ctx context.Context, in voxanne.AdminUserInput) (*voxanne.User, error) {
	if in.Email == nil {
		return nil, authErr(voxanne.EINVALID, voxanne.ReasonValidationFailed, "email is required")
	}
	email, err := normalizeEmail(*in.Email)
	if err != nil {
		return nil, err
	}
	if err := checkAdminAppMetadata(in.AppMetadata); err != nil {
		return nil, err
	}
	hash, err := s.adminHash(in)
	if err != nil {
		return nil, err
	}
	confirm := in.EmailConfirm != nil && *in.EmailConfirm
	app := map[string]any{"provider": "email", "providers": []string{"email"}}
	for k, v := range in.AppMetadata {
		app[k] = v
	}
	meta := in.UserMetadata
	if meta == nil {
		meta = map[string]any{}
	}
	if err := checkUserMetadata(meta); err != nil {
		return nil, err
	}
	u, err := scanUser(s.db.auth.QueryRow(ctx, `insert into auth.users (email, encrypted_password, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
		values ($1, $2, case when $3 then now() end, $4, $5) returning `+userColumns, email, hash, confirm, app, meta))
	if err != nil {
		if voxanne.ErrorCode(mapError("", err)) == voxanne.ECONFLICT {
			return nil, authErr(voxanne.EINVALID, voxanne.ReasonEmailExists, "A user with this email address has already been registered")
		}
		return nil, fmt.Errorf("create user: %w", err)
	}
	s.security(ctx, "admin_user_created", slog.String("user_id", u.ID))
	return &u.User, nil
}

// UpdateUserByID changes a user as an operator. A new password or email ends the
// user's sessions.
func (s *AuthService) UpdateUserByID(ctx context.Context, id string, in voxanne.AdminUserInput) (*voxanne.User, error) {
	if err := checkAdminAppMetadata(in.AppMetadata); err != nil {
		return nil, err
	}
	var email string
	if in.Email != nil {
		var err error
		if email, err = normalizeEmail(*in.Email); err != nil {
			return nil, err
		}
	}
	hash, err := s.adminHash(in)
	if err != nil {
		return nil, err
	}
	var confirm *bool = in.EmailConfirm
	var u *userRow
	var revoked []voxanne.Revocation
	err = pgx.BeginFunc(ctx, s.db.auth, func(tx pgx.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `update auth.users set
			email = coalesce(nullif($2, ''), email),
			encrypted_password = coalesce(nullif($3, ''), encrypted_password),
			email_confirmed_at = case when $4::bool is null then email_confirmed_at
				when $4 then coalesce(email_confirmed_at, now()) else null end,
			raw_user_meta_data = case when $5::jsonb is null then raw_user_meta_data else jsonb_strip_nulls(raw_user_meta_data || $5::jsonb) end,
			raw_app_meta_data = case when $6::jsonb is null then raw_app_meta_data else jsonb_strip_nulls(raw_app_meta_data || $6::jsonb) end,
			updated_at = now()
			where id = $1 returning `+userColumns, id, email, hash, confirm, in.UserMetadata, in.AppMetadata))
		if errors.Is(err, pgx.ErrNoRows) {
			return authErr(voxanne.ENOTFOUND, voxanne.ReasonUserNotFound, "User not found")
		} else if err != nil {
			if voxanne.ErrorCode(mapError("", err)) == voxanne.ECONFLICT {
				return authErr(voxanne.EINVALID, voxanne.ReasonEmailExists, "A user with this email address has already been registered")
			}
			return err
		}
		if err := checkUserMetadata(u.UserMetadata); err != nil {
			return err
		}
		if hash != "" || email != "" {
			if err := spendMailTokens(ctx, tx, id); err != nil {
				return err
			}
			revoked, err = revokeSessions(ctx, tx, "user_id = $1", "credentials_changed", id)
		}
		return err
	})
	if err != nil {
		return nil, mapError("update user", err)
	}
	s.announce(revoked)
	s.security(ctx, "admin_user_updated", slog.String("user_id", id))
	return &u.User, nil
}
