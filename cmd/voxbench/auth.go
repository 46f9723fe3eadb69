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
--concurrency workers that GET --path with the users' bearer tokens for
--duration after a --warmup, and reports requests/s, errors by status and exact
latency percentiles. Exits 1 if set-up fails or more than 1% of requests fail.

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
}

func parseAuthFlags(args []string, stdout, stderr io.Writer) (*authConfig, int) {
	var cfg authConfig
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs, "requests", "`D` of load sent before measuring starts and not counted (fills connection\npools and server caches); 0 for none")
	fs.IntVar(&cfg.users, "users", 200, "`N` users to sign up in set-up, each with its own password and token")
	fs.IntVar(&cfg.orgs, "orgs", 20, "`M` org names to cycle through: user i asks for \"Bench org <i mod M>\".\nNames only: every sign-up creates its own organization today")
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
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "pool" && !cfg.fresh {
			bad("--pool only makes sense with --fresh-tokens")
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
}

// authReport is the --json output of an auth run.
type authReport struct {
	Mode           string  `json:"mode"`
	RunID          string  `json:"run_id"`
	URL            string  `json:"url"`
	Path           string  `json:"path"`
	Users          int     `json:"users"`
	Orgs           int     `json:"orgs"`
	OrgNames       int     `json:"org_names"`
	Concurrency    int     `json:"concurrency"`
	FreshTokens    bool    `json:"fresh_tokens"`
	SignupSeconds  float64 `json:"signup_seconds"`
	Pool           int     `json:"pool,omitempty"`
	SignIns        int     `json:"sign_ins,omitempty"`
	SignInSeconds  float64 `json:"sign_in_seconds,omitempty"`
	WarmupSeconds  float64 `json:"warmup_seconds"`
	WarmupRequests int64   `json:"warmup_requests"`
	StoppedEarly   string  `json:"stopped_early,omitempty"`
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
		Mode: "auth", RunID: runID, URL: cfg.base.String(), Path: cfg.path,
		Users: cfg.users, Orgs: cfg.users, OrgNames: min(cfg.orgs, cfg.users),
		Concurrency: cfg.concurrency, FreshTokens: cfg.fresh,
		WarmupSeconds: cfg.warmup.Seconds(),
	}
	fmt.Fprintf(out, "voxbench auth: run %s against %s\n", runID, cfg.base)
	fmt.Fprintln(out, "set-up")

	// Sign-ups.
	users := make([]benchUser, cfg.users)
	t0 := time.Now()
	err := parallel(ctx, cfg.users, setupParallelism, func(ctx context.Context, i int) error {
		u := benchUser{email: fmt.Sprintf("bench-%s-%d@example.com", runID, i), password: randomPassword()}
		body := map[string]any{
			"email": u.email, "password": u.password,
			"data": map[string]string{"org_name": fmt.Sprintf("Bench org %d", i%cfg.orgs)},
		}
		tok, err := obtainToken(ctx, client, endpoint(cfg.base, "/auth/v1/signup"), body)
		if err != nil {
			return fmt.Errorf("sign-up %d (%s): %w", i, u.email, err)
		}
		u.token = tok
		users[i] = u
		return nil
	})
	if err != nil {
		return setupFailed(stderr, cfg, err)
	}
	took := time.Since(t0)
	rep.SignupSeconds = round(took.Seconds(), 3)
	line(out, "sign-ups", "%d users in %.3fs (%.1f/s, %d at a time)", cfg.users, took.Seconds(), float64(cfg.users)/took.Seconds(), setupParallelism)
	line(out, "orgs", "%d (one per user; memberships across orgs need the organizations API)", cfg.users)
	line(out, "org names", "%d: \"Bench org 0\" .. \"Bench org %d\"", rep.OrgNames, rep.OrgNames-1)

	// The token sources of the load phase. The sign-up tokens, reused
	// round-robin, serve the whole run in the default (cached) mode and the
	// warm-up in --fresh-tokens mode, where spending pool tokens on requests
	// that are not measured would waste the slow-to-mint pool.
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
			return setupFailed(stderr, cfg, err)
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

	// Load.
	target := endpoint(cfg.base, cfg.path)
	fmt.Fprintln(out, "load")
	line(out, "request", "GET %s", target)
	line(out, "tokens", "%s", label)
	line(out, "concurrency", "%d", cfg.concurrency)
	res := runLoad(ctx, cfg.concurrency, cfg.warmup, cfg.duration, func(warm bool, keep func(int) bool) (int, []byte, error) {
		tok, ok := next(warm)
		if !ok {
			return 0, nil, errExhausted
		}
		return get(client, target, tok, keep)
	})
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
	status, data, err := postJSON(ctx, client, target, body)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", &httpError{status: status, body: truncate(data)}
	}
	var session struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(data, &session); err != nil || session.AccessToken == "" {
		// A sign-up without autoconfirm answers 200 with the bare user.
		return "", fmt.Errorf("HTTP 200 without an access_token (is VOXANNE_MAILER_AUTOCONFIRM off?)\n%s", truncate(data))
	}
	return session.AccessToken, nil
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
