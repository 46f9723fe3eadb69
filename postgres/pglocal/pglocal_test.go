package pglocal_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne/postgres/pglocal"
)

func start(t *testing.T, dir string) *pglocal.Cluster {
	t.Helper()
	c, err := pglocal.Start(context.Background(), pglocal.Options{Dir: dir, Fast: true})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return c
}

func query(t *testing.T, c *pglocal.Cluster, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.SuperuserURL("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 200 && alive(pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		t.Fatalf("pid %d still alive", pid)
	}
}

func TestFirstStartRestartAndCrashRecovery(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	c := start(t, dir)
	if !c.Initialized {
		t.Error("first start did not run initdb")
	}
	// Settings the issue asks for: UTF-8, SCRAM, socket only, password file 0600.
	if enc := query(t, c, "show server_encoding"); enc != "UTF8" {
		t.Errorf("encoding %s", enc)
	}
	if m := query(t, c, "show password_encryption"); m != "scram-sha-256" {
		t.Errorf("password_encryption %s", m)
	}
	if la := query(t, c, "show listen_addresses"); la != "" {
		t.Errorf("listens on TCP %q", la)
	}
	fi, err := os.Stat(filepath.Join(dir, "postgres.password"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v %v", fi, err)
	}
	hba, err := os.ReadFile(filepath.Join(c.DataDir, "pg_hba.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{" trust", " peer"} {
		if containsActiveLine(string(hba), bad) {
			t.Errorf("pg_hba.conf allows%s", bad)
		}
	}
	// A wrong password is refused.
	bad := c.ConnString("postgres", pglocal.Superuser, "wrong")
	if conn, err := pgx.Connect(context.Background(), bad); err == nil {
		conn.Close(context.Background())
		t.Error("connected with a wrong password")
	}
	exec(t, c, "create table keepme (id int)")
	pid := c.PID()
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)

	// Restart reuses the cluster.
	c = start(t, dir)
	if c.Initialized {
		t.Error("restart ran initdb again")
	}
	if got := query(t, c, "select to_regclass('keepme')::text"); got != "keepme" {
		t.Fatalf("data lost on restart: %q", got)
	}

	// Crash: kill -9 the postmaster. The stale postmaster.pid must not stop the
	// next start, and crash recovery must keep the data.
	pid = c.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
	// Orphaned backends may linger a moment after the postmaster dies.
	time.Sleep(500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(c.DataDir, "postmaster.pid")); err != nil {
		t.Fatalf("expected a stale postmaster.pid after the crash: %v", err)
	}
	c = start(t, dir)
	if got := query(t, c, "select to_regclass('keepme')::text"); got != "keepme" {
		t.Fatalf("data lost after crash: %q", got)
	}
	pid = c.PID()
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

// A Voxanne killed with SIGKILL leaves its server running; the next start adopts
// that server and stops it on exit instead of leaving it behind.
func TestAdoptsServerOfACrashedRun(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	first := start(t, dir)
	second := start(t, dir)
	if second.PID() != first.PID() {
		t.Fatalf("second start ran pid %d beside %d", second.PID(), first.PID())
	}
	if err := second.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitGone(t, first.PID())
}

func TestStalePidFileOfAnotherProcess(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	c := start(t, dir)
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A pid file naming a live process that is not our server (this test).
	pidFile := filepath.Join(c.DataDir, "postmaster.pid")
	content := []byte(itoa(os.Getpid()) + "\n" + c.DataDir + "\n")
	if err := os.WriteFile(pidFile, content, 0o600); err != nil {
		t.Fatal(err)
	}
	c = start(t, dir)
	defer c.Stop(context.Background()) //nolint:errcheck
	if c.PID() == os.Getpid() {
		t.Fatal("adopted the wrong process")
	}
	query(t, c, "select 'ok'")
}

func TestTooLongSocketPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(dataDir(t), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	_, err := pglocal.Start(context.Background(), pglocal.Options{Dir: dir})
	if err == nil {
		t.Fatal("started with a socket path over the limit")
	}
}

func TestNoBinaries(t *testing.T) {
	t.Parallel()
	_, err := pglocal.Start(context.Background(), pglocal.Options{Dir: dataDir(t), BinDir: t.TempDir()})
	if err == nil {
		t.Fatal("started without binaries")
	}
}

func TestFindBinDir(t *testing.T) {
	t.Parallel()
	d, err := pglocal.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"postgres", "initdb"} {
		if _, err := os.Stat(filepath.Join(d, b)); err != nil {
			t.Error(err)
		}
	}
}

func containsActiveLine(conf, word string) bool {
	for _, line := range splitLines(conf) {
		if len(line) > 0 && line[0] != '#' && contains(line, word) {
			return true
		}
	}
	return false
}
