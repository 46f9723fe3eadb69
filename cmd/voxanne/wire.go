package main

import (
	"context"
	"log/slog"
	"net/url"
	"time"

	"github.com/voxanne/voxanne/auth"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/auth/token"
	"github.com/voxanne/voxanne/mailer"
	"github.com/voxanne/voxanne/postgres"
)

// authStack is the auth service, the key ring behind it and the /api token
// authenticator.
type authStack struct {
	svc      *postgres.AuthService
	keys     *postgres.KeyRing
	authn    *auth.Authenticator
	external *auth.RemoteJWKS
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
	st := &authStack{keys: keys}
	if cfg.ExternalJWKSURL != "" {
		st.external = auth.NewRemoteJWKS(cfg.ExternalJWKSURL)
		if _, err := st.external.Refresh(ctx); err != nil {
			// Not fatal: local tokens work, and an unknown kid retries the fetch.
			log.Warn("external JWKS not loaded", "error", err)
		}
		v.External, v.ExternalIssuer = st.external.Lookup, cfg.ExternalIssuer
	}
	st.authn = auth.New(auth.Config{Verifier: v, State: db, RefreshKeys: func(ctx context.Context) bool {
		reloaded, err := keys.ReloadIfStale(ctx, time.Second)
		if err != nil {
			log.Error("reload signing keys", "error", err)
		}
		if st.external != nil {
			fetched, err := st.external.Refresh(ctx)
			if err != nil {
				log.Warn("refresh external JWKS", "error", err)
			}
			reloaded = reloaded || (fetched && err == nil)
		}
		return reloaded
	}})
	st.svc = postgres.NewAuthService(db, keys, postgres.AuthConfig{
		Issuer: issuer, PublicURL: cfg.PublicURL, JWTExp: cfg.JWTExp,
		Autoconfirm: cfg.MailerAutoconfirm, DisableSignup: cfg.DisableSignup,
		Mailer: m, Logger: log, Verifier: v, Revoked: st.authn.Apply,
	})
	return st, nil
}
