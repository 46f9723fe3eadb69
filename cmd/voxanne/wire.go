package main

import (
	"context"
	"log/slog"

	"github.com/voxanne/voxanne/internal/app"
)

// appConfig is the assembly's configuration from the command's.
func appConfig(cfg *Config, log *slog.Logger, reportError func(ctx context.Context, requestID string, err error)) app.Config {
	return app.Config{
		PublicURL: cfg.PublicURL, Version: version, Logger: log,
		JWTExp: cfg.JWTExp, JWTSecret: cfg.JWTSecret,
		ExternalJWKSURL: cfg.ExternalJWKSURL, ExternalIssuer: cfg.ExternalIssuer,
		KeyEncryptionKey: cfg.KeyEncryptionKey, AuditKey: cfg.AuditKey,
		VapiSecret: cfg.VapiSecret, VapiSecretPrev: cfg.VapiSecretPrev,
		TwilioToken: cfg.TwilioToken, TwilioTokenPrev: cfg.TwilioTokenPrev,
		Autoconfirm: cfg.MailerAutoconfirm, DisableSignup: cfg.DisableSignup, SMTPURL: cfg.SMTPURL,
		PasswordMinLength: cfg.PasswordMinLength,
		RateLimits:        &cfg.RateLimits, RateLimitHeader: cfg.RateLimitHeader, TrustedProxies: cfg.TrustedProxies,
		CORSOrigins: cfg.CORSOrigins, Workers: cfg.Workers, ReportError: reportError, RequestTimeout: cfg.RequestTimeout,
		SeparateMetrics: cfg.MetricsAddr != "",
	}
}
