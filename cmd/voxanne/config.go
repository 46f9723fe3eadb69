package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	voxhttp "github.com/voxanne/voxanne/http"
)

// Config is every setting of API.md §1. Each comes from its environment variable
// and can be overridden by the serve flag of the same name.
type Config struct {
	Addr              string
	PublicURL         string
	DataDir           string
	DatabaseURL       string
	JWTExp            time.Duration
	JWTSecret         string
	ExternalJWKSURL   string
	ExternalIssuer    string
	KeyEncryptionKey  string
	AuditKey          string
	VapiSecret        string
	VapiSecretPrev    string
	TwilioToken       string
	TwilioTokenPrev   string
	CORSOrigins       []string
	RateLimitHeader   string
	TrustedProxies    voxhttp.TrustedProxies
	SMTPURL           string
	MailerAutoconfirm bool
	DisableSignup     bool
	SentryDSN         string
	LogFormat         string
	RateLimits        voxhttp.RateLimits
	Workers           int
	Demo              bool
}

// setting describes one configuration entry: its variable, flag and default.
type setting struct {
	env, flag, def, help string
	secret               bool
	value                *string
}

// rawSettings holds the unparsed string of each setting.
type rawSettings struct {
	list []*setting
}

func (rs *rawSettings) add(env, flagName, def, help string, secret bool) *string {
	v := new(string)
	rs.list = append(rs.list, &setting{env: env, flag: flagName, def: def, help: help, secret: secret, value: v})
	return v
}

// loadConfig reads the environment, lets flags on fs override it and validates
// everything; a bad value yields one line naming the setting.
func loadConfig(fs *flag.FlagSet, args []string) (*Config, error) {
	rs := &rawSettings{}
	addr := rs.add("VOXANNE_ADDR", "addr", "127.0.0.1:8080", "listen address", false)
	public := rs.add("VOXANNE_PUBLIC_URL", "public-url", "", "external base URL (default http://<addr>)", false)
	dataDir := rs.add("VOXANNE_DATA_DIR", "data-dir", "./.voxanne", "directory of the managed PostgreSQL cluster", false)
	dbURL := rs.add("DATABASE_URL", "database-url", "", "external PostgreSQL URL (unset: managed local cluster)", true)
	jwtExp := rs.add("VOXANNE_JWT_EXP", "jwt-exp", "3600", "access-token lifetime in seconds", false)
	jwtSecret := rs.add("VOXANNE_JWT_SECRET", "jwt-secret", "", "also accept HS256 tokens signed with this secret", true)
	extJWKS := rs.add("VOXANNE_EXTERNAL_JWKS_URL", "external-jwks-url", "", "JWKS URL of an external Supabase project", false)
	extIss := rs.add("VOXANNE_EXTERNAL_ISSUER", "external-issuer", "", "issuer of the external Supabase project", false)
	kek := rs.add("VOXANNE_KEY_ENCRYPTION_KEY", "key-encryption-key", "", "encrypt signing keys at rest with this secret", true)
	auditKey := rs.add("VOXANNE_AUDIT_KEY", "audit-key", "", "secret that keys the audit hash chain (default: derived from the key-encryption key)", true)
	vapi := rs.add("VOXANNE_VAPI_SECRET", "vapi-secret", "", "Vapi server-URL secret", true)
	vapiPrev := rs.add("VOXANNE_VAPI_SECRET_PREVIOUS", "vapi-secret-previous", "", "previous Vapi secret, accepted during rotation", true)
	twilio := rs.add("VOXANNE_TWILIO_AUTH_TOKEN", "twilio-auth-token", "", "Twilio auth token", true)
	twilioPrev := rs.add("VOXANNE_TWILIO_AUTH_TOKEN_PREVIOUS", "twilio-auth-token-previous", "", "previous Twilio auth token", true)
	cors := rs.add("VOXANNE_CORS_ORIGINS", "cors-origins", "", "comma-separated allowed origins", false)
	rlHeader := rs.add("VOXANNE_RATE_LIMIT_HEADER", "rate-limit-header", "", "client-IP header set by your proxy (default X-Forwarded-For when trusted proxies are set)", false)
	proxies := rs.add("VOXANNE_TRUSTED_PROXIES", "trusted-proxies", "", "number of trusted proxy hops, or comma-separated proxy CIDRs; the client is the right-most untrusted X-Forwarded-For address", false)
	smtp := rs.add("VOXANNE_SMTP_URL", "smtp-url", "", "smtp://user:pass@host:port (unset: mails go to the log)", true)
	autoconfirm := rs.add("VOXANNE_MAILER_AUTOCONFIRM", "mailer-autoconfirm", "true", "confirm sign-ups at once", false)
	disableSignup := rs.add("VOXANNE_DISABLE_SIGNUP", "disable-signup", "false", "refuse new sign-ups", false)
	sentry := rs.add("VOXANNE_SENTRY_DSN", "sentry-dsn", "", "report unexpected errors to Sentry", true)
	rlSignIn := rs.add("VOXANNE_RATE_LIMIT_SIGN_IN", "rate-limit-sign-in", "30/5m", "per client IP on /signup and password sign-in (N/duration or off)", false)
	rlRefresh := rs.add("VOXANNE_RATE_LIMIT_TOKEN_REFRESH", "rate-limit-token-refresh", "150/5m", "per client IP on refresh-token grants", false)
	rlVerify := rs.add("VOXANNE_RATE_LIMIT_VERIFY", "rate-limit-verify", "30/5m", "per client IP on /verify", false)
	rlRecover := rs.add("VOXANNE_RATE_LIMIT_RECOVER", "rate-limit-recover", "30/5m", "per client IP on /recover", false)
	rlEmail := rs.add("VOXANNE_RATE_LIMIT_EMAIL", "rate-limit-email", "10/5m", "failed password sign-ins per email address and client IP", false)
	rlEmailGlobal := rs.add("VOXANNE_RATE_LIMIT_EMAIL_GLOBAL", "rate-limit-email-global", "100/5m", "failed password sign-ins per email address over all client IPs", false)
	rlRecoverEmail := rs.add("VOXANNE_RATE_LIMIT_RECOVER_EMAIL", "rate-limit-recover-email", "5/1h", "per email address on /recover", false)
	rlPassword := rs.add("VOXANNE_RATE_LIMIT_PASSWORD_CHANGE", "rate-limit-password-change", "10/1h", "password changes (PUT /auth/v1/user) per user", false)
	rlSwitch := rs.add("VOXANNE_RATE_LIMIT_ORG_SWITCH", "rate-limit-org-switch", "60/5m", "org switches (POST /api/orgs/{id}/switch) per user", false)
	workers := rs.add("VOXANNE_WORKERS", "workers", "20", "background jobs run at once", false)
	logFormat := rs.add("VOXANNE_LOG_FORMAT", "log-format", "", "text or json (default: text on a terminal, else json)", false)

	for _, s := range rs.list {
		help := s.help + " [" + s.env + "]"
		if s.secret {
			// Flags show up in ps and shell history; secrets belong in the environment.
			help += " (a secret: prefer the environment variable)"
		}
		// The default shown by --help is the built-in one, never the environment's
		// value, which may be a secret.
		fs.StringVar(s.value, s.flag, s.def, help)
	}
	demo := fs.Bool("demo", false, "seed a demo organization and print its login")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return nil, usageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, s := range rs.list {
		if v, ok := os.LookupEnv(s.env); ok && !set[s.flag] {
			*s.value = v
		}
	}

	c := &Config{
		Addr: *addr, DataDir: *dataDir, DatabaseURL: *dbURL, JWTSecret: *jwtSecret,
		ExternalJWKSURL: *extJWKS, ExternalIssuer: *extIss, KeyEncryptionKey: *kek, AuditKey: *auditKey,
		VapiSecret: *vapi, VapiSecretPrev: *vapiPrev, TwilioToken: *twilio, TwilioTokenPrev: *twilioPrev,
		RateLimitHeader: strings.TrimSpace(*rlHeader), SMTPURL: *smtp, SentryDSN: *sentry, Demo: *demo,
	}
	bad := func(env, why string) error { return fmt.Errorf("invalid %s: %s", env, why) }

	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		return nil, bad("VOXANNE_ADDR", "want host:port, e.g. 127.0.0.1:8080")
	}
	c.PublicURL = strings.TrimRight(*public, "/")
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, bad("VOXANNE_PUBLIC_URL", "want an http(s) base URL such as https://voxanne.example.com")
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		return nil, bad("VOXANNE_DATA_DIR", "empty (needed when DATABASE_URL is unset)")
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			// Never echo the value: it carries a password.
			return nil, bad("DATABASE_URL", "want postgres://user:password@host:port/database")
		}
	}
	secs, err := strconv.Atoi(*jwtExp)
	if err != nil || secs < 30 || secs > 7*24*3600 {
		return nil, bad("VOXANNE_JWT_EXP", "want whole seconds between 30 and 604800")
	}
	c.JWTExp = time.Duration(secs) * time.Second
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		return nil, bad("VOXANNE_JWT_SECRET", "shorter than 32 characters")
	}
	if (c.ExternalJWKSURL == "") != (c.ExternalIssuer == "") {
		return nil, bad("VOXANNE_EXTERNAL_JWKS_URL", "set it together with VOXANNE_EXTERNAL_ISSUER")
	}
	if c.ExternalJWKSURL != "" {
		// Whoever can answer this URL can mint tokens here: https only, but for a
		// server on this machine.
		u, err := url.Parse(c.ExternalJWKSURL)
		loopback := err == nil && (u.Hostname() == "localhost" || net.ParseIP(u.Hostname()).IsLoopback())
		if err != nil || u.Host == "" || !(u.Scheme == "https" || (u.Scheme == "http" && loopback)) {
			return nil, bad("VOXANNE_EXTERNAL_JWKS_URL", "want an https URL (http only on loopback)")
		}
	}
	if c.KeyEncryptionKey != "" && len(c.KeyEncryptionKey) < 16 {
		return nil, bad("VOXANNE_KEY_ENCRYPTION_KEY", "shorter than 16 characters")
	}
	if c.AuditKey != "" && len(c.AuditKey) < 16 {
		return nil, bad("VOXANNE_AUDIT_KEY", "shorter than 16 characters")
	}
	// A short webhook secret can be guessed: anyone who does can write into
	// every org the shared endpoints route to.
	for _, w := range []struct{ env, val string }{
		{"VOXANNE_VAPI_SECRET", c.VapiSecret}, {"VOXANNE_VAPI_SECRET_PREVIOUS", c.VapiSecretPrev},
		{"VOXANNE_TWILIO_AUTH_TOKEN", c.TwilioToken}, {"VOXANNE_TWILIO_AUTH_TOKEN_PREVIOUS", c.TwilioTokenPrev},
	} {
		if w.val != "" && len(w.val) < 16 {
			return nil, bad(w.env, "shorter than 16 characters")
		}
	}
	for _, o := range strings.Split(*cors, ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "") {
			return nil, bad("VOXANNE_CORS_ORIGINS", fmt.Sprintf("%q is not an origin such as https://app.example.com", o))
		}
		c.CORSOrigins = append(c.CORSOrigins, o)
	}
	if c.SMTPURL != "" {
		u, err := url.Parse(c.SMTPURL)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" || u.Port() == "" {
			return nil, bad("VOXANNE_SMTP_URL", "want smtp://user:pass@host:port")
		}
	}
	if c.TrustedProxies, err = voxhttp.ParseTrustedProxies(*proxies); err != nil {
		return nil, bad("VOXANNE_TRUSTED_PROXIES", err.Error())
	}
	if c.MailerAutoconfirm, err = strconv.ParseBool(*autoconfirm); err != nil {
		return nil, bad("VOXANNE_MAILER_AUTOCONFIRM", "want true or false")
	}
	if c.DisableSignup, err = strconv.ParseBool(*disableSignup); err != nil {
		return nil, bad("VOXANNE_DISABLE_SIGNUP", "want true or false")
	}
	for _, r := range []struct {
		env string
		raw *string
		dst *voxhttp.Rate
	}{
		{"VOXANNE_RATE_LIMIT_SIGN_IN", rlSignIn, &c.RateLimits.SignIn},
		{"VOXANNE_RATE_LIMIT_TOKEN_REFRESH", rlRefresh, &c.RateLimits.Refresh},
		{"VOXANNE_RATE_LIMIT_VERIFY", rlVerify, &c.RateLimits.Verify},
		{"VOXANNE_RATE_LIMIT_RECOVER", rlRecover, &c.RateLimits.Recover},
		{"VOXANNE_RATE_LIMIT_EMAIL", rlEmail, &c.RateLimits.Email},
		{"VOXANNE_RATE_LIMIT_EMAIL_GLOBAL", rlEmailGlobal, &c.RateLimits.EmailGlobal},
		{"VOXANNE_RATE_LIMIT_RECOVER_EMAIL", rlRecoverEmail, &c.RateLimits.RecoverEmail},
		{"VOXANNE_RATE_LIMIT_PASSWORD_CHANGE", rlPassword, &c.RateLimits.PasswordChange},
		{"VOXANNE_RATE_LIMIT_ORG_SWITCH", rlSwitch, &c.RateLimits.OrgSwitch},
	} {
		if *r.dst, err = voxhttp.ParseRate(*r.raw); err != nil {
			return nil, bad(r.env, err.Error())
		}
	}
	if c.Workers, err = strconv.Atoi(*workers); err != nil || c.Workers < 1 || c.Workers > 1000 {
		return nil, bad("VOXANNE_WORKERS", "want a whole number from 1 to 1000")
	}
	switch *logFormat {
	case "":
		c.LogFormat = "json"
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			c.LogFormat = "text"
		}
	case "text", "json":
		c.LogFormat = *logFormat
	default:
		return nil, bad("VOXANNE_LOG_FORMAT", "want text or json")
	}
	return c, nil
}
