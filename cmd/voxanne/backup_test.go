package main

import (
	"bytes"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres/pglocal"
)

// runVoxanne runs the binary with env added and returns its exit code and
// output.
func runVoxanne(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return 0, out.String(), errOut.String()
}

// clusterChecksums starts the data directory's cluster for a moment and
// describes every table of its database (testdb.Checksums). fn, if any, runs
// while the cluster is up, with the database's superuser URL.
func clusterChecksums(t *testing.T, dataDir string, fn func(url string)) map[string]string {
	t.Helper()
	ctx := context.Background()
	c, err := pglocal.Start(ctx, pglocal.Options{Dir: dataDir, Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx) //nolint:errcheck
	sums, err := testdb.Checksums(ctx, c.SuperuserURL("voxanne"))
	if err != nil {
		t.Fatal(err)
	}
	if fn != nil {
		fn(c.SuperuserURL("voxanne"))
	}
	return sums
}

// A demo server's data survives backup, wiping the whole data directory
// (cluster, roles and all) and restore: every table of schemas public and
// auth is the same, row for row, and the restored server serves it.
func TestBackupWipeRestore(t *testing.T) {
	t.Parallel()
	dataDir := testdb.ServerDir(t)
	env := []string{"VOXANNE_DATA_DIR=" + dataDir, "DATABASE_URL=", "VOXANNE_LOG_FORMAT=json"}
	file := filepath.Join(t.TempDir(), "voxanne.backup")

	cmd, url, logs := startServe(t, env, 30*time.Second, "--demo")
	login := regexp.MustCompile(`sign in with (\S+) / (\S+)`)
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		m = login.FindStringSubmatch(logs.String())
	}
	if m == nil {
		t.Fatalf("no demo login printed:\n%s", logs)
	}
	tok := demoSignIn(t, url, m[1], m[2])
	for deadline := time.Now().Add(30 * time.Second); demoStat(t, url, tok, "calls") != 24 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	// Beside the running server: a backup is one snapshot of its cluster; a
	// restore is refused.
	if code, _, stderr := runVoxanne(t, env, "backup", file); code != 0 {
		t.Fatalf("backup beside the server: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runVoxanne(t, env, "restore", file, "--force"); code != 1 || !strings.Contains(stderr, "a server is running") {
		t.Fatalf("restore beside the server: exit %d: %s", code, stderr)
	}
	stopAndCheckNoPostgres(t, cmd, postmasterPID(t, dataDir), logs)

	// The reference: a backup of the stopped server's database, then its
	// checksums; and a backup of the same through DATABASE_URL.
	if code, stdout, stderr := runVoxanne(t, env, "backup", file); code != 0 || !strings.Contains(stdout, "backed up schema version") {
		t.Fatalf("backup: exit %d: %s%s", code, stdout, stderr)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600", fi, err)
	}
	urlFile := filepath.Join(t.TempDir(), "by-url.backup")
	want := clusterChecksums(t, dataDir, func(dbURL string) {
		if code, _, stderr := runVoxanne(t, []string{"DATABASE_URL=" + dbURL}, "backup", urlFile); code != 0 {
			t.Fatalf("backup through DATABASE_URL: exit %d: %s", code, stderr)
		}
	})
	if want["auth.users"] == "" || strings.HasPrefix(want["public.calls"], "0 rows") {
		t.Fatalf("nothing to compare: %v", want)
	}

	// Wipe: the whole data directory, cluster and roles included.
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runVoxanne(t, env, "restore", file)
	if code != 0 || !strings.Contains(stdout, "restored schema version") {
		t.Fatalf("restore: exit %d: %s%s", code, stdout, stderr)
	}
	compare := func(what string) {
		t.Helper()
		if got := clusterChecksums(t, dataDir, nil); !maps.Equal(got, want) {
			for name, sum := range want {
				if got[name] != sum {
					t.Errorf("%s: %s: %q, want %q", what, name, got[name], sum)
				}
			}
			t.Fatalf("%s: %d tables and sequences, want %d", what, len(got), len(want))
		}
	}
	compare("restored")

	// Not over data, unless told to.
	if code, _, stderr := runVoxanne(t, env, "restore", file); code != 1 || !strings.Contains(stderr, "not empty") || !strings.Contains(stderr, "--force") {
		t.Fatalf("restore over data: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runVoxanne(t, env, "restore", urlFile, "--force"); code != 0 {
		t.Fatalf("restore --force: exit %d: %s", code, stderr)
	}
	compare("restored again with --force")
	if code, _, stderr := runVoxanne(t, env, "restore", filepath.Join(t.TempDir(), "missing.backup"), "--force"); code != 1 || !strings.Contains(stderr, "not a backup") {
		t.Fatalf("restore of a missing file: exit %d: %s", code, stderr)
	}

	// The restored cluster's new roles log in: the demo login signs in and
	// sees its calls.
	cmd, url, logs = startServe(t, env, 30*time.Second)
	if n := demoStat(t, url, demoSignIn(t, url, m[1], m[2]), "calls"); n != 24 {
		t.Errorf("%d calls after the restore, want 24", n)
	}
	stopAndCheckNoPostgres(t, cmd, postmasterPID(t, dataDir), logs)
}

func TestBackupRestoreUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"backup"}, {"restore"}, {"restore", "--force"}, {"backup", "a", "b"}, {"migrate", "up", "--dry-run"}} {
		if code, _, stderr := runVoxanne(t, []string{"VOXANNE_DATA_DIR=" + t.TempDir()}, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, stderr)
		}
	}
}
