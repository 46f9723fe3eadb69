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
	MetricsAddr       string
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
	// PasswordMinLength is the fewest characters of a new password.
	PasswordMinLength int
	SentryDSN         string
	LogFormat         string
	RateLimits        voxhttp.RateLimits
	Workers           int
	RequestTimeout    time.Duration
	Demo              bool

	// publicURLSet: VOXANNE_PUBLIC_URL was given, rather than derived from
	// the address (an operator command then takes the running server's).
	publicURLSet bool
}

// setting is one row of the configuration table: its variable, flag, default
// and help, and how its raw string is parsed and checked into a Config. set
// returns the reason a value is refused; loadConfig names the setting.
type setting struct {
	env, flag, def, help string
	// secret settings are never echoed and are best kept out of flags.
	secret bool
	set    func(c *Config, v string) error
}

// settings is the configuration table (API.md §1), in --help order.
var settings = []setting{
	{env: "VOXANNE_ADDR", flag: "addr", def: "127.0.0.1:8080", help: "listen address", set: func(c *Config, v string) error {
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			return errors.New("want host:port, e.g. 127.0.0.1:8080")
		}
		c.Addr = v
		return nil
	}},
	{env: "VOXANNE_METRICS_ADDR", flag: "metrics-addr", help: "serve /metrics on this separate host:port instead of the main listener", set: func(c *Config, v string) error {
		if v != "" {
			if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
				return errors.New("want host:port, e.g. 127.0.0.1:9090")
			}
		}
		c.MetricsAddr = v
		return nil
	}},
	{env: "VOXANNE_PUBLIC_URL", flag: "public-url", help: "external base URL (default http://<addr>)", set: func(c *Config, v string) error {
		c.PublicURL = strings.TrimRight(v, "/")
		if c.PublicURL == "" {
			return nil // set from the address once it is known
		}
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return errors.New("want an http(s) base URL such as https://voxanne.example.com")
		}
		return nil
	}},
	{env: "VOXANNE_DATA_DIR", flag: "data-dir", def: "./.voxanne", help: "directory of the managed PostgreSQL cluster", set: text(func(c *Config) *string { return &c.DataDir })},
	{env: "DATABASE_URL", flag: "database-url", secret: true, help: "external PostgreSQL URL (unset: managed local cluster)", set: func(c *Config, v string) error {
		if v != "" {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				// Never echo the value: it carries a password.
				return errors.New("want postgres://user:password@host:port/database")
			}
		}
		c.DatabaseURL = v
		return nil
	}},
	{env: "VOXANNE_JWT_EXP", flag: "jwt-exp", def: "3600", help: "access-token lifetime in seconds", set: func(c *Config, v string) error {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 30 || secs > 7*24*3600 {
			return errors.New("want whole seconds between 30 and 604800")
		}
		c.JWTExp = time.Duration(secs) * time.Second
		return nil
	}},
	{env: "VOXANNE_PASSWORD_MIN_LENGTH", flag: "password-min-length", def: "8", help: "fewest characters of a new password (8 to 128)", set: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 8 || n > 128 {
			return errors.New("want a whole number from 8 to 128")
		}
		c.PasswordMinLength = n
		return nil
	}},
	{env: "VOXANNE_JWT_SECRET", flag: "jwt-secret", secret: true, help: "also accept HS256 tokens signed with this secret", set: secretOf(32, func(c *Config) *string { return &c.JWTSecret })},
	{env: "VOXANNE_EXTERNAL_JWKS_URL", flag: "external-jwks-url", help: "JWKS URL of an external Supabase project", set: func(c *Config, v string) error {
		if v != "" {
			// Whoever can answer this URL can mint tokens here: https only, but
			// for a server on this machine.
			u, err := url.Parse(v)
			loopback := err == nil && (u.Hostname() == "localhost" || net.ParseIP(u.Hostname()).IsLoopback())
			if err != nil || u.Host == "" || !(u.Scheme == "https" || (u.Scheme == "http" && loopback)) {
				return errors.New("want an https URL (http only on loopback)")
			}
		}
		c.ExternalJWKSURL = v
		return nil
	}},
	{env: "VOXANNE_EXTERNAL_ISSUER", flag: "external-issuer", help: "issuer of the external Supabase project", set: text(func(c *Config) *string { return &c.ExternalIssuer })},
	{env: "VOXANNE_KEY_ENCRYPTION_KEY", flag: "key-encryption-key", secret: true, help: "encrypt signing keys and webhook-endpoint secrets at rest with this secret", set: secretOf(16, func(c *Config) *string { return &c.KeyEncryptionKey })},
	{env: "VOXANNE_AUDIT_KEY", flag: "audit-key", secret: true, help: "secret that keys the audit hash chain (default: derived from the key-encryption key)", set: secretOf(16, func(c *Config) *string { return &c.AuditKey })},
	// A short webhook secret can be guessed: anyone who does can write into
	// every org the shared endpoints route to.
	{env: "VOXANNE_VAPI_SECRET", flag: "vapi-secret", secret: true, help: "Vapi server-URL secret", set: secretOf(16, func(c *Config) *string { return &c.VapiSecret })},
	{env: "VOXANNE_VAPI_SECRET_PREVIOUS", flag: "vapi-secret-previous", secret: true, help: "previous Vapi secret, accepted during rotation", set: secretOf(16, func(c *Config) *string { return &c.VapiSecretPrev })},
	{env: "VOXANNE_TWILIO_AUTH_TOKEN", flag: "twilio-auth-token", secret: true, help: "Twilio auth token", set: secretOf(16, func(c *Config) *string { return &c.TwilioToken })},
	{env: "VOXANNE_TWILIO_AUTH_TOKEN_PREVIOUS", flag: "twilio-auth-token-previous", secret: true, help: "previous Twilio auth token", set: secretOf(16, func(c *Config) *string { return &c.TwilioTokenPrev })},
	{env: "VOXANNE_CORS_ORIGINS", flag: "cors-origins", help: "comma-separated allowed origins", set: func(c *Config, v string) error {
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimRight(strings.TrimSpace(o), "/")
			if o == "" {
				continue
			}
			u, err := url.Parse(o)
			if o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "") {
				return fmt.Errorf("%q is not an origin such as https://app.example.com", o)
			}
			c.CORSOrigins = append(c.CORSOrigins, o)
		}
		return nil
	}},
	{env: "VOXANNE_RATE_LIMIT_HEADER", flag: "rate-limit-header", help: "client-IP header set by your proxy (default X-Forwarded-For when trusted proxies are set)", set: func(c *Config, v string) error {
		c.RateLimitHeader = strings.TrimSpace(v)
		return nil
	}},
	{env: "VOXANNE_TRUSTED_PROXIES", flag: "trusted-proxies", help: "number of trusted proxy hops, or comma-separated proxy CIDRs; the client is the right-most untrusted X-Forwarded-For address", set: func(c *Config, v string) (err error) {
		c.TrustedProxies, err = voxhttp.ParseTrustedProxies(v)
		return err
	}},
	{env: "VOXANNE_SMTP_URL", flag: "smtp-url", secret: true, help: "smtp://user:pass@host:port (unset: mails go to the log)", set: func(c *Config, v string) error {
		if v != "" {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" || u.Port() == "" {
				return errors.New("want smtp://user:pass@host:port")
			}
		}
		c.SMTPURL = v
		return nil
	}},
	{env: "VOXANNE_MAILER_AUTOCONFIRM", flag: "mailer-autoconfirm", def: "true", help: "confirm sign-ups at once", set: boolean(func(c *Config) *bool { return &c.MailerAutoconfirm })},
	{env: "VOXANNE_DISABLE_SIGNUP", flag: "disable-signup", def: "false", help: "refuse new sign-ups", set: boolean(func(c *Config) *bool { return &c.DisableSignup })},
	{env: "VOXANNE_SENTRY_DSN", flag: "sentry-dsn", secret: true, help: "report unexpected errors to Sentry", set: text(func(c *Config) *string { return &c.SentryDSN })},
	{env: "VOXANNE_RATE_LIMIT_SIGN_IN", flag: "rate-limit-sign-in", def: "30/5m", help: "per client IP on /signup and password sign-in (N/duration or off)", set: rate(func(c *Config) *voxhttp.Rate { return &c.RateLimits.SignIn })},
	{env: "VOXANNE_RATE_LIMIT_TOKEN_REFRESH", flag: "rate-limit-token-refresh", def: "150/5m", help: "per client IP on refresh-token grants", set: rate(func(c *Config) *voxhttp.Rate { return &c.RateLimits.Refresh })},
	{env: "VOXANNE_RATE_LIMIT_VERIFY", flag: "rate-limit-verify", def: "30/5m", help: "per client IP on /verify", set: rate(func(c *Config) *voxhttp.Rate { return &c.RateLimits.Verify })},
	{env: "VOXANNE_RATE_LIMIT_RECOVER", flag: "rate-limit-recover", def: "30/5m", help: "per client IP on /recover", set: rate(func(c *Config) *voxhttp.Rate { return &c.RateLimits.Recover })},
	{env: "VOXANNE_RATE_LIMIT_EMAIL", flag: "rate-limit-email", def: "10/5m", help: "failed password sign-ins per email address and client IP", set: rate(func(c *Config) *voxhttp.Rate { return &c.RateLimits.Email })},
	{env: "VOXANNE_RATE_LIMIT_EMAIL_GLOBAL", flag: "rate-limit-email-global", def: "100/5m", help: "failed password sign-ins per email address over all client IPs", set: rate(func(c *Config) *voxhttp.Rate { return &c.RateLimits.EmailGlobal })},
	{env: "VOXANNE_RATE_LIMIT_RECOVER_EMAIL", flag: "rate-limit-recover-email", def: "5/1h", help: "per email address on /recover", set: rate(func(c *Config) *voxhttp.Rate { return &c.RateLimits.RecoverEmail })},
	{env: "VOXANNE_RATE_LIMIT_PASSWORD_CHANGE", flag: "rate-limit-password-change", def: "10/1h", help: "password changes (PUT /auth/v1/user) per user", set: rate(func(c *Config) *voxhttp.Rate { return &c.RateLimits.PasswordChange })},
	{env: "VOXANNE_RATE_LIMIT_ORG_SWITCH", flag: "rate-limit-org-switch", def: "60/5m", help: "org switches (POST /api/orgs/{id}/switch) per user", set: rate(func(c *Config) *voxhttp.Rate { return &c.RateLimits.OrgSwitch })},
	{env: "VOXANNE_WORKERS", flag: "workers", def: "20", help: "background jobs run at once", set: func(c *Config, v string) (err error) {
		if c.Workers, err = strconv.Atoi(v); err != nil || c.Workers < 1 || c.Workers > 1000 {
			return errors.New("want a whole number from 1 to 1000")
		}
		return nil
	}},
	{env: "VOXANNE_REQUEST_TIMEOUT", flag: "request-timeout", def: "10", help: "each request's server-side deadline in seconds: one still waiting on the database then answers 503 (exports and event streams: 1 hour)", set: func(c *Config, v string) error {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 1 || secs > 300 {
			return errors.New("want whole seconds between 1 and 300")
		}
		c.RequestTimeout = time.Duration(secs) * time.Second
		return nil
	}},
	{env: "VOXANNE_LOG_FORMAT", flag: "log-format", help: "text or json (default: text on a terminal, else json)", set: func(c *Config, v string) error {
		switch v {
		case "":
			c.LogFormat = "json"
			if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				c.LogFormat = "text"
			}
		case "text", "json":
			c.LogFormat = v
		default:
			return errors.New("want text or json")
		}
		return nil
	}},
}

// text is a setting taken as it is.
func text(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

// secretOf is a secret setting of at least min characters when set.
func secretOf(min int, field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" && len(v) < min {
			return fmt.Errorf("shorter than %d characters", min)
		}
		*field(c) = v
		return nil
	}
}

// boolean is a true/false setting.
func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) (err error) {
		if *field(c), err = strconv.ParseBool(v); err != nil {
			return errors.New("want true or false")
		}
		return nil
	}
}

// rate is a rate-limit setting: N/duration or off.
func rate(field func(*Config) *voxhttp.Rate) func(*Config, string) error {
	return func(c *Config, v string) (err error) {
		*field(c), err = voxhttp.ParseRate(v)
		return err
	}
}

// registerSettings adds every setting's flag to fs; the returned slice
// receives their raw values, in the table's order.
func registerSettings(fs *flag.FlagSet) []string {
	raw := make([]string, len(settings))
	for i, s := range settings {
		help := s.help + " [" + s.env + "]"
		if s.secret {
			// Flags show up in ps and shell history; secrets belong in the environment.
			help += " (a secret: prefer the environment variable)"
		}
		// The default shown by --help is the built-in one, never the environment's
		// value, which may be a secret.
		fs.StringVar(&raw[i], s.flag, s.def, help)
	}
	return raw
}

// loadConfig reads the environment, lets flags on fs (the settings' and any
// the command added before) override it and parses every setting of the
// table; a bad value yields one line naming the setting.
func loadConfig(fs *flag.FlagSet, args []string) (*Config, error) {
	raw := registerSettings(fs)
	if err := fs.Parse(args); err != nil {
		return nil, usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return nil, usageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c := &Config{}
	for i, s := range settings {
		if v, ok := os.LookupEnv(s.env); ok && !set[s.flag] {
			raw[i] = v
		}
		if err := s.set(c, raw[i]); err != nil {
			return nil, fmt.Errorf("invalid %s: %s", s.env, err)
		}
	}
	// Rules across settings.
	c.publicURLSet = c.PublicURL != ""
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		return nil, errors.New("invalid VOXANNE_DATA_DIR: empty (needed when DATABASE_URL is unset)")
	}
	if (c.ExternalJWKSURL == "") != (c.ExternalIssuer == "") {
		return nil, errors.New("invalid VOXANNE_EXTERNAL_JWKS_URL: set it together with VOXANNE_EXTERNAL_ISSUER")
	}
	return c, nil
}
