package main

import (
	"context"
	"log/slog"
	"net/url"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth/token"
	"github.com/voxanne/voxanne/mailer"
	"github.com/voxanne/voxanne/postgres"
)

// authStack is the auth service and the key ring behind it.
type authStack struct {
	svc  *postgres.AuthService
	keys *postgres.KeyRing
}

// newAuth loads the signing keys (making the first one if needed) and builds the
// auth service.
func newAuth(ctx context.Context, cfg *Config, db *postgres.DB, log *slog.Logger) (*authStack, error) {
	keys := postgres.NewKeyRing(db, cfg.KeyEncryptionKey, cfg.JWTExp)
	if err := keys.Load(ctx); err != nil {
		return nil, err
	}
	issuer := cfg.PublicURL + "/auth/v1"
	v := &token.Verifier{Issuer: issuer, Keys: keys.Lookup}
	if cfg.JWTSecret != "" {
		v.HS256Secret = []byte(cfg.JWTSecret)
	}
	var m voxanne.Mailer = mailer.Log{Logger: log}
	if cfg.SMTPURL != "" {
		host := "localhost"
		if u, err := url.Parse(cfg.PublicURL); err == nil {
			host = u.Hostname()
		}
		s, err := mailer.NewSMTP(cfg.SMTPURL, "Voxanne <noreply@"+host+">")
		if err != nil {
			return nil, err
		}
		m = s
	}
	svc := postgres.NewAuthService(db, keys, postgres.AuthConfig{
		Issuer: issuer, PublicURL: cfg.PublicURL, JWTExp: cfg.JWTExp,
		Autoconfirm: cfg.MailerAutoconfirm, DisableSignup: cfg.DisableSignup,
		Mailer: m, Logger: log, Verifier: v,
	})
	return &authStack{svc: svc, keys: keys}, nil
}
