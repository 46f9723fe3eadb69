package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testbin"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/internal/testsmtp"
)

var binary string

func TestMain(m *testing.M) { os.Exit(testbin.Main(m, "../cmd/voxanne", &binary)) }

// server is a running `voxanne serve`.
type server struct {
	cmd  *exec.Cmd
	URL  string
	logs *bytes.Buffer
	// env is the server's own environment (data directory and the
	// caller's settings), for CLI commands beside it.
	env []string
}

// startServer runs the binary with its own managed cluster in a fresh data
// directory and waits for /health.
func startServer(t *testing.T, env ...string) *server {
	t.Helper()
	addr := testbin.FreeAddr(t)
	s := &server{URL: "http://" + addr, logs: &bytes.Buffer{}}
	s.cmd = exec.Command(binary, "serve", "--addr", addr)
	s.env = append([]string{"VOXANNE_DATA_DIR=" + testdb.ServerDir(t), "DATABASE_URL=", "VOXANNE_LOG_FORMAT=json"}, env...)
	s.cmd.Env = append(os.Environ(), s.env...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.URL + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server never became healthy:\n%s", s.logs)
	return nil
}

func (s *server) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	if t.Failed() {
		t.Logf("server logs:\n%s", s.logs)
	}
}

// TestAuthJS drives a running server with the official @supabase/auth-js client
// (pinned in e2e/authjs/package-lock.json) under node's test runner.
func TestAuthJS(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the auth-js end-to-end test (Node.js) is skipped under -short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for the auth-js end-to-end test (apt-get install nodejs npm)")
	}
	if _, err := os.Stat("authjs/node_modules/@supabase/auth-js"); err != nil {
		npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = "authjs"
		if out, err := npm.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
	}
	// Generous limits: the client signs in many times from one address.
	// Mails go to a test SMTP server whose messages the client reads.
	mail := testsmtp.Start(t)
	s := startServer(t, "VOXANNE_RATE_LIMIT_SIGN_IN=1000/1m", "VOXANNE_RATE_LIMIT_EMAIL=1000/1m",
		"VOXANNE_RATE_LIMIT_RECOVER=1000/1m", "VOXANNE_RATE_LIMIT_VERIFY=1000/1m", "VOXANNE_SMTP_URL="+mail.URL("", ""))
	cmd := exec.Command(node, "--test", "--test-reporter=tap", "run.mjs")
	cmd.Dir = "authjs"
	cmd.Env = append(os.Environ(), "VOXANNE_URL="+s.URL, "VOXANNE_MAILBOX_URL="+mailbox(t, mail),
		"VOXANNE_SERVICE_ROLE_KEY="+s.serviceRoleToken(t))
	out, err := cmd.CombinedOutput()
	t.Logf("auth-js:\n%s", out)
	if err != nil {
		t.Fatalf("auth-js end-to-end test failed: %v", err)
	}
	if !bytes.Contains(out, []byte("# fail 0")) || bytes.Contains(out, []byte("# pass 0")) {
		t.Fatal("auth-js run did not report a clean pass")
	}
}
