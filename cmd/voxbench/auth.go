package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// setupParallelism is how many sign-ups or sign-ins run at once. Password
// hashing makes them expensive on the server; more would mostly queue there
// and make the set-up time less meaningful.
const setupParallelism = 8

// maxDuration caps --duration (and --warmup): every request's latency is
// kept in memory for exact percentiles, so an unbounded run would grow
// without limit.
const maxDuration = 10 * time.Minute

// rateLimitHint is printed when the server answers 429 during set-up: its
// default per-IP and per-email limits allow a few dozen sign-ins, not hundreds.
const rateLimitHint = "hint: start the server with generous auth rate limits, e.g.\n" +
	"  VOXANNE_RATE_LIMIT_SIGN_IN=100000/1m VOXANNE_RATE_LIMIT_EMAIL=100000/1m voxanne serve"

const authUsageHead = `Usage: voxbench auth [flags]

Signs up --users users (one POST /auth/v1/signup each, 8 at a time), then runs
--concurrency workers for --duration after a --warmup, and reports requests/s,
errors by status, exact latency percentiles, and the CPU and memory of the
server and of PostgreSQL (from /proc). What the workers send is --mode: GET
--path with the users' bearer tokens (get; e.g. --path /auth/v1/user), refresh
grants (refresh), password sign-ins (password) or sign-ups (signup). Exits 1 if
set-up fails or more than 1% of requests fail.

The server needs generous auth rate limits for the set-up, e.g.
  VOXANNE_RATE_LIMIT_SIGN_IN=100000/1m VOXANNE_RATE_LIMIT_EMAIL=100000/1m voxanne serve

Flags:
`

const authUsageTail = `
Output: a text report on stdout (set-up timings, then requests, duration,
requests/s, errors by status code and transport errors, and latency p50, p90,
p99, p99.9 and max in ms with 3 decimals, nearest-rank over every response).
With --json the text goes to stderr and stdout gets one JSON object instead.
`

// authConfig is the parsed command line of "voxbench auth".
type authConfig struct {
	loadFlags
	users int
	orgs  int
	path  string
	fresh bool
	pool  int
	mode  string
}

// The load modes of voxbench auth: what each worker sends.
const (
	modeGet      = "get"      // GET --path with a bearer token
	modeRefresh  = "refresh"  // POST /auth/v1/token?grant_type=refresh_token
	modePassword = "password" // POST /auth/v1/token?grant_type=password
	modeSignup   = "signup"   // POST /auth/v1/signup with a new email
)

func parseAuthFlags(args []string, stdout, stderr io.Writer) (*authConfig, int) {
	var cfg authConfig
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs, "requests", "`D` of load sent before measuring starts and not counted (fills connection\npools and server caches); 0 for none")
	fs.IntVar(&cfg.users, "users", 200, "`N` users to sign up in set-up, each with its own password and token")
	fs.IntVar(&cfg.orgs, "orgs", 20, "`M` org names to cycle through: user i asks for \"Bench org <i mod M>\".\nNames only: every sign-up creates its own organization today")
	fs.StringVar(&cfg.mode, "mode", modeGet, "`M`, what the load sends: get (GET --path with the users' tokens), refresh\n(refresh-token grants: each user's session is a chain of single-use tokens,\neach used once), password (password sign-ins cycling over the users) or\nsignup (a sign-up with a new email each; no users are signed up in set-up)")
	fs.StringVar(&cfg.path, "path", "/api/session", "the route (`PATH`, may include a query) every load request GETs with a\nuser's bearer token")
	fs.BoolVar(&cfg.fresh, "fresh-tokens", false, "uncached mode: every request uses a token never used before, from a pool\nminted in set-up by password sign-ins; the load phase stops early when the\npool is used up. Measures the uncached token verification path. The\nwarm-up reuses the sign-up tokens, so the pool is spent on measured requests")
	fs.IntVar(&cfg.pool, "pool", 5000, "with --fresh-tokens: `P` tokens in the pool, each from a password sign-in\n(POST /auth/v1/token?grant_type=password) cycling over the users. Sign-ins\nhash passwords, so expect tens to hundreds a second: minting is slow")
	if code := cfg.parse(fs, args, "auth", authUsageHead, authUsageTail, stdout, stderr); code >= 0 {
		return nil, code
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	cfg.check(bad)
	if cfg.users < 1 {
		bad("--users must be at least 1")
	}
	if cfg.orgs < 1 {
		bad("--orgs must be at least 1")
	}
	if !strings.HasPrefix(cfg.path, "/") {
		bad("--path must start with /")
	}
	if cfg.pool < 1 {
		bad("--pool must be at least 1")
	}
	switch cfg.mode {
	case modeGet, modePassword, modeSignup:
	case modeRefresh:
		if cfg.users <= cfg.concurrency {
			bad("--mode refresh needs more --users than --concurrency (each worker holds one user's session at a time)")
		}
	default:
		bad("--mode must be get, refresh, password or signup")
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "pool" && !cfg.fresh {
			bad("--pool only makes sense with --fresh-tokens")
		}
		if (f.Name == "path" || f.Name == "fresh-tokens") && cfg.mode != modeGet {
			bad("--%s only makes sense with --mode get", f.Name)
		}
	})
	if code := usageProblems("auth", problems, stderr); code >= 0 {
		return nil, code
	}
	return &cfg, -1
}

// printFlags lists the flags in --name form (the flag package's own listing
// shows -name), with multi-line descriptions indented.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if arg == "value" { // bool flags have no argument
			arg = ""
		}
		head := "  --" + f.Name
		if arg != "" {
			head += " " + arg
		}
		fmt.Fprintln(w, head)
		for l := range strings.SplitSeq(usage, "\n") {
			fmt.Fprintln(w, "        "+l)
		}
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, "        (default %s)\n", f.DefValue)
		}
	})
}

// benchUser is one signed-up user.
type benchUser struct {
	email    string
	password string
	token    string // from the sign-up
	refresh  string // the sign-up session's refresh token
}

// authReport is the --json output of an auth run.
type authReport struct {
	Mode           string         `json:"mode"`
	Load           string         `json:"load"`
	RunID          string         `json:"run_id"`
	URL            string         `json:"url"`
	Path           string         `json:"path"`
	Users          int            `json:"users"`
	Orgs           int            `json:"orgs"`
	OrgNames       int            `json:"org_names"`
	Concurrency    int            `json:"concurrency"`
	FreshTokens    bool           `json:"fresh_tokens"`
	SignupSeconds  float64        `json:"signup_seconds"`
	Pool           int            `json:"pool,omitempty"`
	SignIns        int            `json:"sign_ins,omitempty"`
	SignInSeconds  float64        `json:"sign_in_seconds,omitempty"`
	WarmupSeconds  float64        `json:"warmup_seconds"`
	WarmupRequests int64          `json:"warmup_requests"`
	StoppedEarly   string         `json:"stopped_early,omitempty"`
	Resources      resourceReport `json:"resources"`
	summary
}

func runAuth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code := parseAuthFlags(args, stdout, stderr)
	if cfg == nil {
		return code
	}
	// With --json, stdout carries only the JSON object so it can be piped.
	out := stdout
	if cfg.json {
		out = stderr
	}
	client := newClient(cfg.concurrency)
	defer client.CloseIdleConnections()

	runID := randomHex(4)
	rep := authReport{
		Mode: "auth", Load: cfg.mode, RunID: runID, URL: cfg.base.String(), Path: cfg.path,
		Users: cfg.users, Orgs: cfg.users, OrgNames: min(cfg.orgs, cfg.users),
		Concurrency: cfg.concurrency, FreshTokens: cfg.fresh,
		WarmupSeconds: cfg.warmup.Seconds(),
	}
	fmt.Fprintf(out, "voxbench auth: run %s against %s\n", runID, cfg.base)
	fmt.Fprintln(out, "set-up")

	if cfg.mode == modeSignup {
		cfg.users = 0
		rep.Users, rep.Orgs, rep.OrgNames = 0, 0, 0
	}
	// Sign-ups.
	users := make([]benchUser, cfg.users)
	t0 := time.Now()
	err := parallel(ctx, cfg.users, setupParallelism, func(ctx context.Context, i int) error {
		u := benchUser{email: fmt.Sprintf("bench-%s-%d@example.com", runID, i), password: randomPassword()}
		body := map[string]any{
			"email": u.email, "password": u.password,
			"data": map[string]string{"org_name": fmt.Sprintf("Bench org %d", i%cfg.orgs)},
		}
		s, err := obtainSession(ctx, client, endpoint(cfg.base, "/auth/v1/signup"), body)
		if err != nil {
			return fmt.Errorf("sign-up %d (%s): %w", i, u.email, err)
		}
		u.token, u.refresh = s.AccessToken, s.RefreshToken
		users[i] = u
		return nil
	})
	if err != nil {
		return setupFailed(stderr, cfg, err)
	}
	took := time.Since(t0)
	rep.SignupSeconds = round(took.Seconds(), 3)
	if cfg.users > 0 {
		line(out, "sign-ups", "%d users in %.3fs (%.1f/s, %d at a time)", cfg.users, took.Seconds(), float64(cfg.users)/took.Seconds(), setupParallelism)
		line(out, "orgs", "%d (one per user; memberships across orgs need the organizations API)", cfg.users)
		line(out, "org names", "%d: \"Bench org 0\" .. \"Bench org %d\"", rep.OrgNames, rep.OrgNames-1)
	}

	var (
		do      shot
		request string
		label   string
	)
	switch cfg.mode {
	case modeGet:
		var code int
		if do, label, code = getShot(ctx, client, cfg, users, &rep, out, stderr); do == nil {
			return code
		}
		request = "GET " + endpoint(cfg.base, cfg.path)
	case modeRefresh:
		do, label = refreshShot(client, cfg, users)
		request = "POST " + endpoint(cfg.base, "/auth/v1/token?grant_type=refresh_token")
	case modePassword:
		do, label = passwordShot(client, cfg, users)
		request = "POST " + endpoint(cfg.base, "/auth/v1/token?grant_type=password")
	case modeSignup:
		do, label = signupShot(client, cfg, runID)
		request = "POST " + endpoint(cfg.base, "/auth/v1/signup")
	}

	// Load.
	fmt.Fprintln(out, "load")
	line(out, "request", "%s", request)
	line(out, "tokens", "%s", label)
	line(out, "concurrency", "%d", cfg.concurrency)
	stopMeter := cfg.meter()
	res := runLoad(ctx, cfg.concurrency, cfg.warmup, cfg.duration, do)
	rep.Resources = stopMeter()
	rep.WarmupRequests = res.warmupRequests
	rep.StoppedEarly = res.stoppedEarly
	rep.summary = res.stats.summary()
	line(out, "warm-up", "%v, %d requests (not counted)", cfg.warmup, res.warmupRequests)
	switch res.stoppedEarly {
	case "exhausted":
		line(out, "stopped early", "token pool used up after %d measured requests; raise --pool for a longer run", rep.Requests)
	case "interrupted":
		line(out, "stopped early", "interrupted")
	}
	rep.summary.writeText(out)
	rep.Resources.writeText(out)
	if rep.ErrorsByStatus[http.StatusTooManyRequests] > 0 {
		fmt.Fprintln(out, "note: the server rate-limited requests (429); raise its limits for benchmarking")
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "voxbench auth:", err)
			return 1
		}
	}
	if rep.tooManyFailures() {
		if rep.Requests == 0 {
			fmt.Fprintln(stderr, "FAIL: no requests were measured")
		} else {
			fmt.Fprintf(stderr, "FAIL: %.3f%% of requests failed (limit %.0f%%)\n", rep.FailedPercent, failLimitPercent)
		}
		return 1
	}
	return 0
}

// mintPool builds the --fresh-tokens pool with password sign-ins cycling over
// the users. Each sign-in is a new session, so no two tokens share a session
// either and no per-session cache can help the server.
func mintPool(ctx context.Context, client *http.Client, cfg *authConfig, users []benchUser) (pool []string, took time.Duration, err error) {
	pool = make([]string, cfg.pool)
	t0 := time.Now()
	target := endpoint(cfg.base, "/auth/v1/token?grant_type=password")
	err = parallel(ctx, cfg.pool, setupParallelism, func(ctx context.Context, j int) error {
		u := users[j%len(users)]
		tok, err := obtainToken(ctx, client, target, map[string]string{"email": u.email, "password": u.password})
		if err != nil {
			return fmt.Errorf("sign-in %d (%s): %w", j, u.email, err)
		}
		pool[j] = tok
		return nil
	})
	return pool, time.Since(t0), err
}

// httpError is a set-up request that got an answer other than 200.
type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("HTTP %d %s\n%s", e.status, http.StatusText(e.status), e.body)
}

// obtainToken posts a sign-up or sign-in and returns the session's access
// token. Anything but 200 with a token is an error carrying status and body.
func obtainToken(ctx context.Context, client *http.Client, target string, body any) (string, error) {
	s, err := obtainSession(ctx, client, target, body)
	return s.AccessToken, err
}

// session is the part of a token response voxbench uses.
type session struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// obtainSession is obtainToken returning the refresh token too.
func obtainSession(ctx context.Context, client *http.Client, target string, body any) (session, error) {
	var s session
	status, data, err := postJSON(ctx, client, target, body)
	if err != nil {
		return s, err
	}
	if status != http.StatusOK {
		return s, &httpError{status: status, body: truncate(data)}
	}
	if err := json.Unmarshal(data, &s); err != nil || s.AccessToken == "" {
		// A sign-up without autoconfirm answers 200 with the bare user.
		return s, fmt.Errorf("HTTP 200 without an access_token (is VOXANNE_MAILER_AUTOCONFIRM off?)\n%s", truncate(data))
	}
	return s, nil
}

// setupFailed reports a failed set-up with whatever hint applies. Exit 1.
func setupFailed(stderr io.Writer, cfg *authConfig, err error) int {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "voxbench auth: set-up interrupted")
		return 1
	}
	fmt.Fprintln(stderr, "voxbench auth: set-up failed:", err)
	var he *httpError
	switch {
	case errors.As(err, &he) && he.status == http.StatusTooManyRequests:
		fmt.Fprintln(stderr, rateLimitHint)
	case !errors.As(err, &he):
		fmt.Fprintf(stderr, "hint: is a Voxanne server running at %s (voxanne serve)?\n", cfg.base)
	}
	return 1
}

// parallel calls f(ctx, i) for every i in [0, n), at most par at a time, and
// returns the first error. After an error no new calls start and the running
// ones see ctx cancelled, so a broken server fails the set-up at once instead
// of after n more failures.
func parallel(ctx context.Context, n, par int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range min(par, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil && next.Load() < int64(n) {
		// Interrupted before every call ran.
		return context.Canceled
	}
	return first
}

// randomPassword returns a password no dictionary holds: 144 random bits,
// 24 URL-safe characters.
func randomPassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomHex returns 2n random hex digits, used as the run id so that emails
// from different runs never collide.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// getShot is --mode get: GET --path with the users' tokens. The sign-up
// tokens, reused round-robin, serve the whole run in the default (cached)
// mode and the warm-up in --fresh-tokens mode, where spending pool tokens on
// requests that are not measured would waste the slow-to-mint pool. A nil
// shot means the set-up failed, with the exit code.
func getShot(ctx context.Context, client *http.Client, cfg *authConfig, users []benchUser, rep *authReport, out, stderr io.Writer) (shot, string, int) {
	signupTokens := make([]string, len(users))
	for i, u := range users {
		signupTokens[i] = u.token
	}
	var rr atomic.Uint64
	roundRobin := func() (string, bool) { return signupTokens[(rr.Add(1)-1)%uint64(len(signupTokens))], true }
	var (
		next  func(warm bool) (string, bool)
		label string
	)
	if !cfg.fresh {
		next = func(bool) (string, bool) { return roundRobin() }
		label = fmt.Sprintf("reused round-robin over %d users (cached verification path)", len(signupTokens))
	} else {
		// Minting can take minutes; say so before the wait, not after.
		line(out, "token pool", "minting %d tokens by password sign-in...", cfg.pool)
		pool, took, err := mintPool(ctx, client, cfg, users)
		if err != nil {
			return nil, "", setupFailed(stderr, cfg, err)
		}
		rep.Pool, rep.SignIns, rep.SignInSeconds = len(pool), len(pool), round(took.Seconds(), 3)
		line(out, "token pool", "%d tokens from password sign-ins in %.3fs (%.1f/s, %d at a time)",
			len(pool), took.Seconds(), float64(len(pool))/took.Seconds(), setupParallelism)
		var n atomic.Int64
		next = func(warm bool) (string, bool) {
			if warm {
				return roundRobin()
			}
			i := n.Add(1) - 1
			if i >= int64(len(pool)) {
				return "", false
			}
			return pool[i], true
		}
		label = fmt.Sprintf("each used once, from a pool of %d (uncached verification path);\n"+
			"                warm-up reuses the %d sign-up tokens", len(pool), len(signupTokens))
	}
	target := endpoint(cfg.base, cfg.path)
	return func(warm bool, keep func(int) bool) (int, []byte, error) {
		tok, ok := next(warm)
		if !ok {
			return 0, nil, errExhausted
		}
		return get(client, target, tok, keep)
	}, label, 0
}

// chainWait is how long a refresh worker waits for a session to be free
// before deciding that every chain has broken.
const chainWait = 2 * time.Second

// refreshShot is --mode refresh. Every user's session is a chain: a worker
// takes a session's current refresh token, spends it (each token is used
// exactly once, as a client does), and puts the new one back for the next
// worker. A refused refresh breaks that chain; when none is left the phase
// ends early.
func refreshShot(client *http.Client, cfg *authConfig, users []benchUser) (shot, string) {
	chains := make(chan string, len(users))
	for _, u := range users {
		chains <- u.refresh
	}
	target := endpoint(cfg.base, "/auth/v1/token?grant_type=refresh_token")
	return func(bool, func(int) bool) (int, []byte, error) {
		var tok string
		select {
		case tok = <-chains:
		case <-time.After(chainWait):
			return 0, nil, errExhausted
		}
		status, data, err := postJSON(context.Background(), client, target, map[string]string{"refresh_token": tok})
		if err == nil && status == http.StatusOK {
			var s session
			if json.Unmarshal(data, &s) == nil && s.RefreshToken != "" {
				chains <- s.RefreshToken
			}
		}
		return status, data, err
	}, fmt.Sprintf("%d sessions, each a chain of single-use refresh tokens (every token used once)", len(users))
}

// passwordShot is --mode password: sign-ins cycling over the users.
func passwordShot(client *http.Client, cfg *authConfig, users []benchUser) (shot, string) {
	target := endpoint(cfg.base, "/auth/v1/token?grant_type=password")
	var n atomic.Uint64
	return func(bool, func(int) bool) (int, []byte, error) {
		u := users[(n.Add(1)-1)%uint64(len(users))]
		return postJSON(context.Background(), client, target, map[string]string{"email": u.email, "password": u.password})
	}, fmt.Sprintf("password sign-ins cycling over %d users (each hashes a password)", len(users))
}

// signupShot is --mode signup: a new user with a new email every request.
func signupShot(client *http.Client, cfg *authConfig, runID string) (shot, string) {
	target := endpoint(cfg.base, "/auth/v1/signup")
	var n atomic.Int64
	return func(bool, func(int) bool) (int, []byte, error) {
		i := n.Add(1) - 1
		return postJSON(context.Background(), client, target, map[string]any{
			"email": fmt.Sprintf("bench-%s-s%d@example.com", runID, i), "password": randomPassword(),
			"data": map[string]string{"org_name": fmt.Sprintf("Bench org %d", i%int64(cfg.orgs))}})
	}, "a sign-up with a new email each (each hashes a password and creates an org)"
}
