// Package pglocal runs a private PostgreSQL cluster from the server binaries
// installed on the machine, so that Voxanne starts with zero set-up when no
// DATABASE_URL is given. The cluster listens only on a Unix socket inside its own
// data directory and is stopped when Voxanne stops.
package pglocal

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Superuser is the name of the cluster's bootstrap superuser.
const Superuser = "postgres"

// port only names the socket file (.s.PGSQL.<port>); nothing listens on TCP.
const port = 5432

// maxSocketPath is the longest Unix socket path Linux accepts (sun_path less its NUL).
const maxSocketPath = 107

// ErrNoBinaries reports that no PostgreSQL server binaries were found.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found (looked in PATH, `pg_config --bindir` and /usr/lib/postgresql/*/bin): install PostgreSQL 14 or newer (e.g. `apt-get install postgresql`) or set DATABASE_URL to an existing server")

// Options configure a cluster.
type Options struct {
	// Dir is Voxanne's data directory; the cluster lives in Dir/postgres and its
	// superuser password in Dir/postgres.password.
	Dir string
	// BinDir overrides the search for the server binaries.
	BinDir string
	// Fast trades durability for speed (fsync off); for tests only.
	Fast bool
	// Settings are extra `-c name=value` server settings.
	Settings map[string]string
	// Log receives the server's output; nil writes it to Dir/postgres.log.
	Log io.Writer
	// StartTimeout bounds how long Start waits for the server to accept connections.
	StartTimeout time.Duration
}

// Cluster is a running managed PostgreSQL server.
type Cluster struct {
	// DataDir is the PostgreSQL data directory (and its socket directory).
	DataDir string
	// BinDir holds initdb and postgres.
	BinDir string
	// Password is the superuser's password.
	Password string
	// Initialized is true when this start ran initdb.
	Initialized bool

	pid     int
	cmd     *exec.Cmd // nil when an orphaned server of a crashed run was adopted
	exited  chan struct{}
	logFile *os.File
}

// FindBinDir returns the directory holding the newest PostgreSQL server binaries:
// first PATH, then `pg_config --bindir`, then /usr/lib/postgresql/*/bin by major
// version, newest first.
func FindBinDir() (string, error) {
	var candidates []string
	if p, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		candidates = append(candidates, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	candidates = append(candidates, dirs...)
	for _, d := range candidates {
		if isExec(filepath.Join(d, "postgres")) && isExec(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Start initializes the cluster on first use, recovers from a crashed previous run
// and starts the server, returning once it accepts connections.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("pglocal: no data directory")
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("pglocal: data directory: %w", err)
	}
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	c := &Cluster{DataDir: filepath.Join(dir, "postgres"), BinDir: binDir}
	if n := len(c.socketPath()); n > maxSocketPath {
		return nil, fmt.Errorf("pglocal: data directory path too long for a Unix socket (%d > %d bytes): choose a shorter VOXANNE_DATA_DIR", n, maxSocketPath)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("pglocal: create data directory: %w", err)
	}
	if cred != nil {
		// The server runs as another user: it must be able to reach its directory.
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, fmt.Errorf("pglocal: %w", err)
		}
		if err := checkTraversable(dir); err != nil {
			return nil, err
		}
	}
	if c.Password, err = loadOrCreatePassword(filepath.Join(dir, "postgres.password")); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, dir, cred); err != nil {
			return nil, err
		}
		c.Initialized = true
	}

	if pid, alive := c.livePostmaster(); alive {
		// A previous Voxanne died and left its server running: adopt it so it is
		// stopped with us instead of lingering.
		c.pid = pid
		if err := c.waitReady(ctx, opts.StartTimeout); err != nil {
			return nil, fmt.Errorf("pglocal: server of a previous run (pid %d) does not answer: %w", pid, err)
		}
		return c, nil
	}

	logw := opts.Log
	if logw == nil {
		f, err := os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("pglocal: open log: %w", err)
		}
		c.logFile = f
		logw = f
	}
	args := []string{"-D", c.DataDir,
		"-c", "listen_addresses=",
		"-c", "unix_socket_directories=" + c.DataDir,
		"-c", "unix_socket_permissions=0700",
		"-c", "port=" + strconv.Itoa(port),
	}
	settings := map[string]string{
		// Group the WAL flushes of concurrent commits (webhook ingestion commits
		// hundreds of small transactions a second): one fsync serves several.
		"commit_delay":    "500",
		"commit_siblings": "3",
	}
	if opts.Fast {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	cmd := exec.Command(filepath.Join(binDir, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logw, logw
	// Its own process group: a Ctrl-C at the terminal reaches Voxanne, which then
	// shuts the server down in order, rather than both at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	cmd.Env = serverEnv()
	if err := cmd.Start(); err != nil {
		c.closeLog()
		return nil, fmt.Errorf("pglocal: start postgres: %w", err)
	}
	c.cmd, c.pid, c.exited = cmd, cmd.Process.Pid, make(chan struct{})
	go func() { _ = cmd.Wait(); close(c.exited) }()
	if err := c.waitReady(ctx, opts.StartTimeout); err != nil {
		_ = c.Stop(context.Background())
		return nil, fmt.Errorf("pglocal: postgres did not start: %w%s", err, c.logTail())
	}
	return c, nil
}

// initdb creates the cluster; a failed attempt leaves no half-made directory.
func (c *Cluster) initdb(ctx context.Context, dir string, cred *syscall.Credential) error {
	pwFile := filepath.Join(dir, ".initdb.pw")
	if err := os.WriteFile(pwFile, []byte(c.Password+"\n"), 0o600); err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	defer os.Remove(pwFile)
	_ = os.RemoveAll(c.DataDir)
	if err := os.Mkdir(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("pglocal: create cluster directory: %w", err)
	}
	if cred != nil {
		for _, p := range []string{pwFile, c.DataDir} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("pglocal: give %s to the server user: %w", p, err)
			}
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, "initdb"),
		"-D", c.DataDir, "-U", Superuser, "--pwfile", pwFile,
		"--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Env = serverEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(c.DataDir)
		return fmt.Errorf("pglocal: initdb failed: %w\n%s", err, bytes.TrimSpace(out))
	}
	return nil
}

// serverCredential returns the unprivileged user to run the server as when we are
// root (PostgreSQL refuses to run as root), or nil to run it as ourselves.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("pglocal: running as root, and PostgreSQL refuses to run as root: create a `postgres` system user (installing the postgresql package does) or run Voxanne as an unprivileged user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// checkTraversable makes sure another user can reach dir, so that the server user
// is not turned away by a parent directory such as a 0700 home directory.
func checkTraversable(dir string) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pglocal: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pglocal: the postgres user cannot reach %s (%s is not searchable by others): choose a VOXANNE_DATA_DIR outside it", dir, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func serverEnv() []string {
	env := []string{"LC_ALL=C", "LANG=C"}
	if p := os.Getenv("PATH"); p != "" {
		env = append(env, "PATH="+p)
	}
	return env
}

func loadOrCreatePassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		pw := strings.TrimSpace(string(b))
		if pw == "" {
			return "", fmt.Errorf("pglocal: %s is empty", path)
		}
		return pw, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("pglocal: read password: %w", err)
	}
	buf := make([]byte, 24)
	_, _ = rand.Read(buf)
	pw := base64.RawURLEncoding.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("pglocal: write password: %w", err)
	}
	return pw, nil
}

// livePostmaster reports whether postmaster.pid names a running server for this
// data directory. A stale file (dead or reused pid) is removed so the server starts.
func (c *Cluster) livePostmaster() (int, bool) {
	pidFile := filepath.Join(c.DataDir, "postmaster.pid")
	f, err := os.Open(pidFile)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(f)
	sc.Scan()
	pid, _ := strconv.Atoi(strings.TrimSpace(sc.Text()))
	f.Close()
	if pid > 0 {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(cmdline, []byte("postgres")) && bytes.Contains(cmdline, []byte(c.DataDir)) {
			return pid, true
		}
	}
	_ = os.Remove(pidFile)
	return 0, false
}

func (c *Cluster) socketPath() string {
	return filepath.Join(c.DataDir, fmt.Sprintf(".s.PGSQL.%d", port))
}

// waitReady polls until the server completes a connection start-up on its socket.
func (c *Cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if c.exited != nil {
			select {
			case <-c.exited:
				return errors.New("server exited")
			default:
			}
		}
		if err := c.ping(ctx); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ping checks readiness the way pg_isready does: any authentication request from
// the server means it accepts connections.
func (c *Cluster) ping(ctx context.Context) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "unix", c.socketPath())
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	// StartupMessage: length, protocol 3.0, user, database.
	var body bytes.Buffer
	body.Write([]byte{0, 3, 0, 0})
	for _, s := range []string{"user", Superuser, "database", "postgres"} {
		body.WriteString(s)
		body.WriteByte(0)
	}
	body.WriteByte(0)
	msg := make([]byte, 4, 4+body.Len())
	n := uint32(4 + body.Len())
	msg[0], msg[1], msg[2], msg[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	msg = append(msg, body.Bytes()...)
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	reply := make([]byte, 1)
	if _, err := io.ReadFull(conn, reply); err != nil {
		return err
	}
	if reply[0] != 'R' { // 'E': starting up, shutting down or in recovery
		return errors.New("server not accepting connections yet")
	}
	return nil
}

// ConnString returns a connection URL for user on database through the socket.
func (c *Cluster) ConnString(database, user, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Path: "/" + database}
	q := url.Values{}
	q.Set("host", c.DataDir)
	q.Set("port", strconv.Itoa(port))
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// SuperuserURL returns a connection URL for the superuser on database.
func (c *Cluster) SuperuserURL(database string) string {
	return c.ConnString(database, Superuser, c.Password)
}

// PID returns the server's process id.
func (c *Cluster) PID() int { return c.pid }

// Stop shuts the server down with a fast shutdown (sessions are ended, no data
// lost), escalating to an immediate shutdown and then SIGKILL if it lingers.
func (c *Cluster) Stop(ctx context.Context) error {
	defer c.closeLog()
	if c.pid == 0 {
		return nil
	}
	steps := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, 30 * time.Second}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, 5 * time.Second}}
	for _, s := range steps {
		if err := syscall.Kill(c.pid, s.sig); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				return nil
			}
			return fmt.Errorf("pglocal: signal postgres: %w", err)
		}
		if c.waitExit(ctx, s.wait) {
			return nil
		}
	}
	return fmt.Errorf("pglocal: postgres (pid %d) did not stop", c.pid)
}

func (c *Cluster) waitExit(ctx context.Context, d time.Duration) bool {
	if c.exited != nil {
		select {
		case <-c.exited:
			return true
		case <-time.After(d):
			return false
		case <-ctx.Done():
			return false
		}
	}
	// An adopted server is not our child: poll until its pid is gone.
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(c.pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (c *Cluster) closeLog() {
	if c.logFile != nil {
		c.logFile.Close()
		c.logFile = nil
	}
}

func (c *Cluster) logTail() string {
	if c.logFile == nil {
		return ""
	}
	b, err := os.ReadFile(c.logFile.Name())
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + string(b)
}
