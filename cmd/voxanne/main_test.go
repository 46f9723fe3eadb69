package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testbin"
	"github.com/voxanne/voxanne/internal/testdb"
)

var binary string

func TestMain(m *testing.M) { os.Exit(testbin.Main(m, ".", &binary)) }

func TestConfigRejectsBadValuesNamingTheSetting(t *testing.T) {
	cases := map[string]string{
		"VOXANNE_ADDR":                       "nonsense",
		"VOXANNE_PUBLIC_URL":                 "ftp://x",
		"VOXANNE_JWT_EXP":                    "soon",
		"VOXANNE_JWT_SECRET":                 "short",
		"VOXANNE_EXTERNAL_JWKS_URL":          "https://x.example/jwks",
		"VOXANNE_CORS_ORIGINS":               "https://ok.example,not an origin",
		"VOXANNE_SMTP_URL":                   "mail.example.com",
		"VOXANNE_MAILER_AUTOCONFIRM":         "sometimes",
		"VOXANNE_DISABLE_SIGNUP":             "maybe",
		"VOXANNE_LOG_FORMAT":                 "xml",
		"DATABASE_URL":                       "mysql://user:hunter2secret@host/db",
		"VOXANNE_KEY_ENCRYPTION_KEY":         "short",
		"VOXANNE_TRUSTED_PROXIES":            "10.0.0.0/8, the-load-balancer",
		"VOXANNE_VAPI_SECRET":                "short-secret",
		"VOXANNE_VAPI_SECRET_PREVIOUS":       "short-secret",
		"VOXANNE_TWILIO_AUTH_TOKEN":          "0123456789abcde",
		"VOXANNE_TWILIO_AUTH_TOKEN_PREVIOUS": "0123456789abcde",
	}
	for env, val := range cases {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, val)
			_, err := loadConfig(flag.NewFlagSet("t", flag.ContinueOnError), nil)
			if err == nil || !strings.Contains(err.Error(), env) {
				t.Fatalf("got %v, want an error naming %s", err, env)
			}
			if strings.Contains(err.Error(), "hunter2secret") {
				t.Fatal("the error shows a secret")
			}
		})
	}
}

func TestTrustedProxiesSetting(t *testing.T) {
	for _, c := range []struct{ env, flag, want string }{
		{"", "", ""},
		{"2", "", "2"},
		{"10.0.0.0/8,192.168.1.1", "", "10.0.0.0/8,192.168.1.1/32"},
		{"2", "172.16.0.0/12", "172.16.0.0/12"},
	} {
		t.Setenv("VOXANNE_TRUSTED_PROXIES", c.env)
		var args []string
		if c.flag != "" {
			args = []string{"--trusted-proxies", c.flag}
		}
		cfg, err := loadConfig(flag.NewFlagSet("t", flag.ContinueOnError), args)
		if err != nil || cfg.TrustedProxies.String() != c.want {
			t.Errorf("env %q flag %q: %v %v, want %q", c.env, c.flag, cfg, err, c.want)
		}
	}
	for _, bad := range []string{"0", "100", "ten", "10.0.0.0/40"} {
		t.Setenv("VOXANNE_TRUSTED_PROXIES", bad)
		_, err := loadConfig(flag.NewFlagSet("t", flag.ContinueOnError), nil)
		if err == nil || strings.Count(err.Error(), "\n") > 0 || !strings.HasPrefix(err.Error(), "invalid VOXANNE_TRUSTED_PROXIES: ") {
			t.Errorf("%q: %v, want one line naming VOXANNE_TRUSTED_PROXIES", bad, err)
		}
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	t.Setenv("VOXANNE_ADDR", "127.0.0.1:1")
	cfg, err := loadConfig(flag.NewFlagSet("t", flag.ContinueOnError), []string{"--addr", "127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:2" || cfg.PublicURL != "http://127.0.0.1:2" {
		t.Fatalf("%+v", cfg)
	}
}

func TestUsageAndExitCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--help"}, 0, "voxanne serve"},
		{[]string{"version"}, 0, "voxanne"},
		{nil, 2, "Usage"},
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"migrate"}, 2, "migrate needs"},
		{[]string{"migrate", "down", "x"}, 2, "not a positive number"},
		{[]string{"serve", "--no-such-flag"}, 2, "no-such-flag"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		code := run(c.args, &out, &out)
		if code != c.code || !strings.Contains(out.String(), c.out) {
			t.Errorf("%v: exit %d, output %q", c.args, code, out.String())
		}
	}
}

// startServe runs the real binary and waits for /health to answer 200.
func startServe(t *testing.T, env []string, target time.Duration, args ...string) (*exec.Cmd, string, *lockedBuffer) {
	t.Helper()
	return startServeIn(t, "", append(os.Environ(), env...), target, args...)
}

// startServeIn runs the real binary in dir with exactly env and waits for
// /health to answer 200.
func startServeIn(t *testing.T, dir string, env []string, target time.Duration, args ...string) (*exec.Cmd, string, *lockedBuffer) {
	t.Helper()
	addr := testbin.FreeAddr(t)
	cmd := exec.Command(binary, append([]string{"serve", "--addr", addr}, args...)...)
	cmd.Env, cmd.Dir = env, dir
	logs := &lockedBuffer{}
	cmd.Stderr, cmd.Stdout = logs, logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr
	for time.Since(start) < 120*time.Second {
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				// Start-up time is reported against its target, not asserted:
				// machines here are shared and noisy (a timed test would flake).
				took := time.Since(start)
				t.Logf("healthy after %s (target %s)", took.Round(time.Millisecond), target)
				return cmd, url, logs
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatalf("never healthy; logs:\n%s", logs)
	return nil, "", nil
}

// cleanEnv is the test's environment without any Voxanne setting: what a
// fresh shell that follows the README has.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VOXANNE_") && !strings.HasPrefix(kv, "DATABASE_URL=") {
			env = append(env, kv)
		}
	}
	return env
}

func postmasterPID(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "postgres", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	return pid
}

func stopAndCheckNoPostgres(t *testing.T, cmd *exec.Cmd, pgPID int, logs *lockedBuffer) {
	t.Helper()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("serve did not stop on SIGINT")
	}
	if syscall.Kill(pgPID, 0) == nil {
		t.Fatalf("postgres (pid %d) still running after serve exited", pgPID)
	}
}

// The README's first command on a fresh data directory: initdb, migrations and
// /health (target 15 s, reported); a later start (target 5 s); Ctrl-C leaves no
// PostgreSQL.
func TestServeManagedClusterLifecycle(t *testing.T) {
	t.Parallel()
	dataDir := testdb.ServerDir(t)
	env := []string{"VOXANNE_DATA_DIR=" + dataDir, "DATABASE_URL="}
	cmd, url, logs := startServe(t, env, 15*time.Second)
	resp, err := http.Get(url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"database":{`) {
		t.Errorf("health body %s", body)
	}
	stopAndCheckNoPostgres(t, cmd, postmasterPID(t, dataDir), logs)

	// The second start serves /metrics on a listener of its own
	// (VOXANNE_METRICS_ADDR), and only there.
	metricsAddr := testbin.FreeAddr(t)
	cmd, url, logs = startServe(t, append(env, "VOXANNE_METRICS_ADDR="+metricsAddr), 5*time.Second)
	for _, c := range []struct {
		url  string
		want int
	}{{"http://" + metricsAddr + "/metrics", 200}, {url + "/metrics", 404}, {"http://" + metricsAddr + "/health", 404}} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || (c.want == 200 && !strings.Contains(string(body), `voxanne_check_up{check="database"} 1`)) {
			t.Errorf("GET %s: %d, want %d\n%.300s", c.url, resp.StatusCode, c.want, body)
		}
	}
	stopAndCheckNoPostgres(t, cmd, postmasterPID(t, dataDir), logs)
}

func TestServeRefusesBadConfigWithOneLine(t *testing.T) {
	t.Parallel()
	for env, name := range map[string]string{
		"VOXANNE_JWT_EXP=-5":                          "VOXANNE_JWT_EXP",
		"VOXANNE_TRUSTED_PROXIES=the-load-balancer":   "VOXANNE_TRUSTED_PROXIES",
		"VOXANNE_SENTRY_DSN=not-a-dsn-secretkey12345": "VOXANNE_SENTRY_DSN",
	} {
		cmd := exec.Command(binary, "serve", "--addr", testbin.FreeAddr(t))
		cmd.Env = append(os.Environ(), env, "VOXANNE_DATA_DIR="+testdb.ServerDir(t))
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("%s: exit %v", env, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], name) || strings.Contains(lines[0], "secretkey") {
			t.Fatalf("%s: output %q", env, out)
		}
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	dataDir := testdb.ServerDir(t)
	runCmd := func(args ...string) string {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "VOXANNE_DATA_DIR="+dataDir, "DATABASE_URL=", "VOXANNE_LOG_FORMAT=json")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	if out := runCmd("migrate", "status"); !strings.Contains(out, "pending") {
		t.Fatalf("status before: %s", out)
	}
	if out := runCmd("migrate", "up"); !strings.Contains(out, "applied 0001") {
		t.Fatalf("up: %s", out)
	}
	if out := runCmd("migrate", "status"); strings.Contains(out, "pending") {
		t.Fatalf("status after up: %s", out)
	}
	if out := runCmd("migrate", "down", "100"); !strings.Contains(out, "reverted 0001") {
		t.Fatalf("down: %s", out)
	}
	if out := runCmd("migrate", "up"); !strings.Contains(out, "applied 0001") {
		t.Fatalf("up again: %s", out)
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serve --demo as the README runs it: in a fresh directory, with no setting
// but a free address, it seeds a login and a few days of calls and texts
// through the signed webhook path and prints the dashboard URL, the login, the
// webhook URLs, the secrets it made up and the numbers it assigned. The
// README's `voxanne webhook send` beside it, with no setting at all, reaches
// it, is routed to the demo org and processed; an event for a number no org is
// assigned is stored unroutable and the command says so (exit 1). A second
// start adds nothing but a new password.
func TestServeDemo(t *testing.T) {
	t.Parallel()
	work := filepath.Dir(testdb.ServerDir(t))
	dataDir := filepath.Join(work, ".voxanne")
	samples, err := filepath.Abs(filepath.Join("..", "..", "webhook", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	send := func(kind, file string) (int, string, string) {
		c := exec.Command(binary, "webhook", "send", kind, file, "--new-id")
		c.Env, c.Dir = cleanEnv(), work
		var stdout, stderr lockedBuffer
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), stdout.String(), stderr.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, stdout.String(), stderr.String()
	}
	login := regexp.MustCompile(`sign in with (\S+) / (\S+)`)
	for run := 0; run < 2; run++ {
		cmd, url, logs := startServeIn(t, work, cleanEnv(), 30*time.Second, "--demo")
		var m []string
		for deadline := time.Now().Add(60 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if strings.Contains(logs.String(), "Try:") {
				m = login.FindStringSubmatch(logs.String())
			}
		}
		if m == nil {
			t.Fatalf("no demo login printed:\n%s", logs)
		}
		printed := logs.String()
		for _, want := range []string{"Dashboard:  " + url + "/login", url + "/api/webhooks/vapi", url + "/api/webhooks/twilio/sms",
			url + "/api/webhooks/twilio/status", "VOXANNE_VAPI_SECRET=", "VOXANNE_TWILIO_AUTH_TOKEN=", "made up for this run",
			demoVapiNumber, demoTwilioNumber, sampleNumber, "voxanne webhook send vapi webhook/testdata/vapi-end-of-call-report.json"} {
			if !strings.Contains(printed, want) {
				t.Errorf("run %d: the demo does not print %q:\n%s", run, want, printed)
			}
		}
		tok := demoSignIn(t, url, m[1], m[2])
		calls, texts := 24, 4
		if run == 0 {
			for _, s := range []struct{ kind, file string }{{"vapi", "vapi-end-of-call-report.json"}, {"twilio-sms", "twilio-sms.txt"}} {
				code, out, errOut := send(s.kind, filepath.Join(samples, s.file))
				if code != 0 || !strings.Contains(out, "200 OK") {
					t.Fatalf("webhook send %s: exit %d\n%s%s", s.kind, code, out, errOut)
				}
			}
			// The same event for a number nobody is assigned.
			sample, err := os.ReadFile(filepath.Join(samples, "vapi-end-of-call-report.json"))
			if err != nil {
				t.Fatal(err)
			}
			other := strings.NewReplacer(sampleNumber, "+14155559999", sampleVapiNumber, "no-such-number-id", sampleVapiAssist, "no-such-assistant").Replace(string(sample))
			otherFile := filepath.Join(work, "unassigned.json")
			if err := os.WriteFile(otherFile, []byte(other), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := send("vapi", otherFile)
			if code != 1 || !strings.Contains(out, "200 OK") || !strings.Contains(errOut, "unroutable") {
				t.Errorf("an unroutable event: exit %d\n%s%s", code, out, errOut)
			}
		}
		calls, texts = calls+1, texts+1
		var got int
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if got = demoStat(t, url, tok, "calls"); got == calls && demoStat(t, url, tok, "messages_in") == texts {
				break
			}
		}
		if got != calls || demoStat(t, url, tok, "messages_in") != texts {
			t.Fatalf("run %d: %d calls, %d texts, want %d and %d", run, got, demoStat(t, url, tok, "messages_in"), calls, texts)
		}
		stopAndCheckNoPostgres(t, cmd, postmasterPID(t, dataDir), logs)
	}
}

func demoSignIn(t *testing.T, url, email, password string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	resp, err := http.Post(url+"/auth/v1/token?grant_type=password", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("demo sign-in: %d %v", resp.StatusCode, err)
	}
	return s.AccessToken
}

func demoStat(t *testing.T, url, tok, field string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/api/stats?from=2000-01-01T00:00:00Z", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	n, _ := st[field].(float64)
	return int(n)
}

// webhook send signs a sample so the server accepts it; a wrong secret is
// refused and the command fails. Until the operator assigns the samples'
// number to an org, the server stores the event as unroutable and the
// command says so and fails too; after, it is routed (exit 0).
func TestWebhookSend(t *testing.T) {
	t.Parallel()
	dataDir := testdb.ServerDir(t)
	env := []string{"VOXANNE_DATA_DIR=" + dataDir, "DATABASE_URL=", "VOXANNE_LOG_FORMAT=json",
		"VOXANNE_VAPI_SECRET=right-secret-0123456789", "VOXANNE_TWILIO_AUTH_TOKEN=right-token-0123456789"}
	cmd, url, logs := startServe(t, env, 30*time.Second)
	defer func() { stopAndCheckNoPostgres(t, cmd, postmasterPID(t, dataDir), logs) }()
	send := func(kind, file, secret string) (int, string) {
		c := exec.Command(binary, "webhook", "send", kind, file, "--url", url, "--new-id")
		c.Env = append(os.Environ(), "VOXANNE_PUBLIC_URL="+url, "VOXANNE_DATA_DIR="+dataDir, secret)
		out, err := c.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		return 0, string(out)
	}
	type sendCase struct {
		kind, file, env string
		code            int
		out             string
	}
	check := func(cases []sendCase) {
		t.Helper()
		for _, c := range cases {
			code, out := send(c.kind, c.file, c.env)
			if code != c.code || !strings.Contains(out, c.out) {
				t.Errorf("%s with %s: exit %d, output %q", c.kind, c.env, code, out)
			}
		}
	}
	vapi, twilio := "../../webhook/testdata/vapi-end-of-call-report.json", "../../webhook/testdata/twilio-sms.txt"
	check([]sendCase{
		{"vapi", vapi, "VOXANNE_VAPI_SECRET=right-secret-0123456789", 1, "stored the event as unroutable"},
		{"vapi", vapi, "VOXANNE_VAPI_SECRET=wrong-secret-0123456789", 1, "401"},
		{"twilio-sms", twilio, "VOXANNE_TWILIO_AUTH_TOKEN=right-token-0123456789", 1, "stored the event as unroutable"},
		{"twilio-sms", twilio, "VOXANNE_TWILIO_AUTH_TOKEN=wrong-token-0123456789", 1, "401"},
		{"fax", "x", "VOXANNE_VAPI_SECRET=right-secret-0123456789", 2, "unknown webhook kind"},
	})

	// The operator assigns the samples' number to an org, with a token from
	// the command beside the server.
	tn := newTenant(t, url, "send@example.com")
	var org struct{ ID string }
	if code := doJSON(t, "GET", url+"/api/org", tn.token, nil, &org); code != 200 {
		t.Fatalf("org: %d", code)
	}
	code, tok, errOut := runCLI(t, []string{"VOXANNE_DATA_DIR=" + dataDir, "DATABASE_URL="}, "token", "service-role")
	if code != 0 {
		t.Fatalf("token service-role: %d %s", code, errOut)
	}
	if code := doJSON(t, "POST", url+"/api/admin/phone-numbers", strings.TrimSpace(tok), map[string]any{"org_id": org.ID,
		"e164": sampleNumber, "provider": "vapi", "provider_id": sampleVapiNumber, "assistant_id": sampleVapiAssist}, nil); code != 201 {
		t.Fatalf("assign the samples' number: %d", code)
	}
	check([]sendCase{
		{"vapi", vapi, "VOXANNE_VAPI_SECRET=right-secret-0123456789", 0, "200 OK"},
		{"twilio-sms", twilio, "VOXANNE_TWILIO_AUTH_TOKEN=right-token-0123456789", 0, "<Response></Response>"},
	})
}
