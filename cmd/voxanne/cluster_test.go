package main

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testdb"
)

// runCLI runs the binary with env added to the test's environment and
// returns its exit code, stdout and stderr.
func runCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return code, stdout.String(), stderr.String()
}

// Operator commands on the data directory of a running server use its
// cluster and leave it running (they used to adopt and stop it, for good);
// the token they print works on that server without naming its address; a
// second serve on the directory is refused with one line.
func TestCommandsBesideARunningServer(t *testing.T) {
	t.Parallel()
	dataDir := testdb.ServerDir(t)
	env := []string{"VOXANNE_DATA_DIR=" + dataDir, "DATABASE_URL=", "VOXANNE_LOG_FORMAT=json"}
	cmd, url, logs := startServe(t, env, 30*time.Second)
	pgPID := postmasterPID(t, dataDir)

	for _, args := range [][]string{{"token", "service-role"}, {"keys", "list"}, {"migrate", "status"}} {
		code, out, errOut := runCLI(t, env, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		if syscall.Kill(pgPID, 0) != nil || postmasterPID(t, dataDir) != pgPID {
			t.Fatalf("%v stopped or replaced the server's PostgreSQL (pid %d)", args, pgPID)
		}
		if resp, err := http.Get(url + "/health"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("after %v: health %v %v", args, resp, err)
		} else {
			resp.Body.Close()
		}
		if args[0] == "token" {
			req, _ := http.NewRequest("GET", url+"/auth/v1/admin/users", nil)
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(out))
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("the service-role token on the server: %v %v", resp, err)
			}
			resp.Body.Close()
		}
	}

	code, out, errOut := runCLI(t, env, "serve", "--addr", "127.0.0.1:0")
	lines := strings.Split(strings.TrimSpace(out+errOut), "\n")
	if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], "in use by voxanne serve") {
		t.Fatalf("second serve: exit %d, output %q", code, out+errOut)
	}
	if syscall.Kill(pgPID, 0) != nil {
		t.Fatal("the second serve stopped the first one's PostgreSQL")
	}
	stopAndCheckNoPostgres(t, cmd, pgPID, logs)
}
