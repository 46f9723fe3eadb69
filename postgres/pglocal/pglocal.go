// Package pglocal runs a private PostgreSQL cluster from the server binaries
// installed on the machine, so that Voxanne starts with zero set-up when no
// DATABASE_URL is given. The cluster listens only on a Unix socket inside its own
// data directory and is stopped when Voxanne stops.
//
// A data directory has one owner at a time: Start takes an exclusive lock on
// it (flock on voxanne.lock) for as long as the cluster runs, and Open lets an
// operator command use the cluster of a running server without starting,
// adopting or stopping it. Supervise restarts a server that exits on its own.
package pglocal

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
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
	// StartTimeout bounds how long Start waits for the server to accept
	// connections (and Open for a running server's cluster, or for another
	// command to finish with the directory).
	StartTimeout time.Duration
	// Command names the holder of the directory in what a refused command
	// prints ("serve", "migrate", ...).
	Command string
	// Serving marks a holder that shares its running cluster: Open attaches to
	// it instead of waiting for the directory (voxanne serve).
	Serving bool
	// Logger receives Supervise's restarts (nil: discarded).
	Logger *slog.Logger
}

// Holder is who holds a data directory, as recorded in its lock file.
type Holder struct {
	PID     int    `json:"pid"`
	Command string `json:"command"`
	Serving bool   `json:"serving"`
}

// InUseError reports that another process holds the data directory.
type InUseError struct {
	Dir    string
	Holder Holder
}

// Error names the directory and its holder, in one line.
func (e *InUseError) Error() string {
	who := "another voxanne process"
	if e.Holder.Command != "" {
		who = "voxanne " + e.Holder.Command
	}
	if e.Holder.PID > 0 {
		who += fmt.Sprintf(" (pid %d)", e.Holder.PID)
	}
	return fmt.Sprintf("data directory %s is in use by %s", e.Dir, who)
}

// lockName is the lock file in Voxanne's data directory.
const lockName = "voxanne.lock"

// Cluster is a managed PostgreSQL server: one this process runs (Start), or
// the running server's that an operator command uses (Open, Attached).
type Cluster struct {
	// DataDir is the PostgreSQL data directory (and its socket directory).
	DataDir string
	// BinDir holds initdb and postgres.
	BinDir string
	// Password is the superuser's password.
	Password string
	// Initialized is true when this start ran initdb.
	Initialized bool

	opts     Options
	args     []string
	cred     *syscall.Credential
	logw     io.Writer
	logFile  *os.File
	lock     *os.File // held while this process owns the directory
	attached bool

	mu       sync.Mutex
	pid      int
	exited   chan struct{} // closed when the server this process started exits
	stopping bool
	restarts int
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

// Start takes the data directory's lock, initializes the cluster on first use,
// recovers from a crashed previous run and starts the server, returning once
// it accepts connections. A directory another process holds is refused with
// an *InUseError; Stop releases it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c, dir, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	if err := c.takeLock(dir); err != nil {
		return nil, err
	}
	if err := c.start(ctx, dir); err != nil {
		c.releaseLock()
		return nil, err
	}
	return c, nil
}

// Open gives an operator command the directory's cluster: its own (as Start)
// when the directory is free, the running cluster of a serving holder
// (Attached: Stop leaves it running), and after waiting when another command
// holds the directory.
func Open(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := Start(ctx, opts)
	waitUntil := time.Now().Add(startTimeout(opts))
	for {
		var inUse *InUseError
		if !errors.As(err, &inUse) {
			return c, err
		}
		if inUse.Holder.Serving {
			return attach(ctx, opts)
		}
		if time.Now().After(waitUntil) {
			return nil, err
		}
		// Another command (or a holder still writing its record): wait.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		c, err = Start(ctx, opts)
	}
}

// attach returns the cluster a serving holder runs, once it accepts connections.
func attach(ctx context.Context, opts Options) (*Cluster, error) {
	c, dir, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	c.attached = true
	if c.Password, err = readPassword(filepath.Join(dir, "postgres.password")); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, startTimeout(opts)); err != nil {
		return nil, fmt.Errorf("pglocal: the running server's PostgreSQL does not answer: %w", err)
	}
	return c, nil
}

// ReadHolder returns who holds the data directory dir, if anyone does.
func ReadHolder(dir string) (Holder, bool) {
	f, err := os.Open(filepath.Join(dir, lockName))
	if err != nil {
		return Holder{}, false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return Holder{}, false // nobody holds it: the record is stale
	}
	return readHolderFile(f.Name()), true
}

func readHolderFile(path string) Holder {
	var h Holder
	b, err := os.ReadFile(path)
	if err == nil {
		_ = json.Unmarshal(b, &h)
	}
	return h
}

func startTimeout(opts Options) time.Duration {
	if opts.StartTimeout == 0 {
		return 60 * time.Second
	}
	return opts.StartTimeout
}

// prepare checks the options and finds the binaries and paths.
func prepare(opts Options) (*Cluster, string, error) {
	if opts.Dir == "" {
		return nil, "", errors.New("pglocal: no data directory")
	}
	opts.StartTimeout = startTimeout(opts)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, "", fmt.Errorf("pglocal: data directory: %w", err)
	}
	c := &Cluster{DataDir: filepath.Join(dir, "postgres"), BinDir: opts.BinDir, opts: opts}
	if n := len(c.socketPath()); n > maxSocketPath {
		return nil, "", fmt.Errorf("pglocal: data directory path too long for a Unix socket (%d > %d bytes): choose a shorter VOXANNE_DATA_DIR", n, maxSocketPath)
	}
	return c, dir, nil
}

// takeLock takes the directory's lock without waiting and records the holder.
func (c *Cluster) takeLock(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("pglocal: create data directory: %w", err)
	}
	path := filepath.Join(dir, lockName)
	// Opened close-on-exec (as os.OpenFile always does): the server's processes
	// never inherit the lock, so it goes with this process.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("pglocal: open lock file: %w", err)
	}
	// A holder without a record (or with the record of a process that is
	// gone) is one that is just writing it, or a reader (ReadHolder) testing
	// the lock for an instant: try again shortly.
	for tries := 0; ; tries++ {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return fmt.Errorf("pglocal: lock %s: %w", path, err)
		}
		if h := readHolderFile(path); (h.PID != 0 && !errors.Is(syscall.Kill(h.PID, 0), syscall.ESRCH)) || tries == 10 {
			f.Close()
			return &InUseError{Dir: dir, Holder: h}
		}
		time.Sleep(50 * time.Millisecond)
	}
	rec, _ := json.Marshal(Holder{PID: os.Getpid(), Command: c.opts.Command, Serving: c.opts.Serving})
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(append(rec, '\n'), 0)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("pglocal: write lock file: %w", err)
	}
	c.lock = f
	return nil
}

func (c *Cluster) releaseLock() {
	if c.lock != nil {
		// An empty record: a reader between unlock and the next holder's
		// write learns nothing stale.
		_ = c.lock.Truncate(0)
		c.lock.Close()
		c.lock = nil
	}
}

// start runs initdb on first use, replaces a server left running by a crashed
// run, and starts the server.
func (c *Cluster) start(ctx context.Context, dir string) error {
	var err error
	if c.BinDir == "" {
		if c.BinDir, err = FindBinDir(); err != nil {
			return err
		}
	}
	if c.cred, err = serverCredential(); err != nil {
		return err
	}
	if c.cred != nil {
		// The server runs as another user: it must be able to reach its directory.
		if err := os.Chmod(dir, 0o711); err != nil {
			return fmt.Errorf("pglocal: %w", err)
		}
		if err := checkTraversable(dir); err != nil {
			return err
		}
	}
	if c.Password, err = loadOrCreatePassword(filepath.Join(dir, "postgres.password")); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, dir, c.cred); err != nil {
			return err
		}
		c.Initialized = true
	}

	if pid, alive := c.livePostmaster(); alive {
		// A previous run was killed and left its server running (we hold the
		// lock, so nobody uses it): shut it down in order and run our own,
		// which we can supervise.
		c.opts.Logger.Warn("stopping the managed postgres a killed run left behind", "pid", pid)
		if err := stopPID(ctx, pid, nil); err != nil {
			return fmt.Errorf("pglocal: server of a previous run (pid %d): %w", pid, err)
		}
	}

	c.logw = c.opts.Log
	if c.logw == nil {
		f, err := os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("pglocal: open log: %w", err)
		}
		c.logFile = f
		c.logw = f
	}
	c.args = c.serverArgs()
	exited, err := c.spawn()
	if err != nil {
		c.closeLog()
		return err
	}
	if err := c.waitReady(ctx, c.opts.StartTimeout); err != nil {
		tail := c.logTail()
		_ = stopPID(context.Background(), c.PID(), exited)
		c.closeLog()
		return fmt.Errorf("pglocal: postgres did not start: %w%s", err, tail)
	}
	return nil
}

// serverArgs are the postgres command line's arguments.
func (c *Cluster) serverArgs() []string {
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
	if c.opts.Fast {
		settings["fsync"] = "off"
		settings["synchronous_commit"] = "off"
		settings["full_page_writes"] = "off"
	}
	for k, v := range c.opts.Settings {
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
	return args
}

var errStopping = errors.New("pglocal: the cluster is being stopped")

// spawn starts the server process, unless Stop was called.
func (c *Cluster) spawn() (chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return nil, errStopping
	}
	// A pid file of a server that is gone (or of a reused pid) must not stop
	// the start.
	c.livePostmaster()
	cmd := exec.Command(filepath.Join(c.BinDir, "postgres"), c.args...)
	cmd.Stdout, cmd.Stderr = c.logw, c.logw
	// Its own process group: a Ctrl-C at the terminal reaches Voxanne, which then
	// shuts the server down in order, rather than both at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	cmd.Env = serverEnv()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pglocal: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c.pid, c.exited = cmd.Process.Pid, exited
	return exited, nil
}

// Supervise keeps the server running until ctx ends or Stop is called: when it
// exits on its own (a crash, a kill), it is started again, after a wait that
// doubles from 100 ms up to 5 s while starts keep failing.
func (c *Cluster) Supervise(ctx context.Context) {
	if c.attached {
		return
	}
	log := c.opts.Logger
	for {
		c.mu.Lock()
		exited, pid := c.exited, c.pid
		c.mu.Unlock()
		if exited == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-exited:
		}
		if c.isStopping() {
			return
		}
		down := time.Now()
		log.Error("managed postgres exited unexpectedly: restarting it", "pid", pid)
		// Its backends outlive it for a while and hold its shared memory,
		// which stops a new server from starting: end them (the server ran in
		// a process group of its own, and they are useless without it).
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			exited, err := c.spawn()
			if errors.Is(err, errStopping) {
				return
			}
			if err == nil {
				if err = c.waitReady(ctx, c.opts.StartTimeout); err != nil {
					// Not ready in time but running: end it before the next try.
					_ = stopPID(context.Background(), c.PID(), exited)
				}
			}
			if err == nil {
				c.mu.Lock()
				c.restarts++
				n := c.restarts
				c.mu.Unlock()
				log.Info("managed postgres restarted", "pid", c.PID(), "restarts", n,
					"down_ms", time.Since(down).Milliseconds())
				break
			}
			if c.isStopping() || ctx.Err() != nil {
				return
			}
			// Typically the killed server's backends still hold its shared
			// memory for a moment.
			log.Warn("managed postgres restart failed: retrying", "error", err, "retry_in_ms", min(2*wait, 5*time.Second).Milliseconds())
		}
	}
}

// Restarts returns how many times Supervise restarted the server.
func (c *Cluster) Restarts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restarts
}

// Attached reports whether the cluster is a running server's, which this
// process uses but does not run.
func (c *Cluster) Attached() bool { return c.attached }

func (c *Cluster) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
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

// readPassword reads the superuser's password.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("pglocal: read password: %w", err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("pglocal: %s is empty", path)
	}
	return pw, nil
}

func loadOrCreatePassword(path string) (string, error) {
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return readPassword(path)
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
	pid, alive := c.postmaster()
	if !alive {
		_ = os.Remove(filepath.Join(c.DataDir, "postmaster.pid"))
	}
	return pid, alive
}

// postmaster reads postmaster.pid and reports whether it names a running
// server of this data directory.
func (c *Cluster) postmaster() (int, bool) {
	f, err := os.Open(filepath.Join(c.DataDir, "postmaster.pid"))
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
	return 0, false
}

func (c *Cluster) socketPath() string {
	return filepath.Join(c.DataDir, fmt.Sprintf(".s.PGSQL.%d", port))
}

// waitReady polls until the server completes a connection start-up on its socket.
func (c *Cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c.mu.Lock()
	exited := c.exited
	c.mu.Unlock()
	for {
		if exited != nil {
			select {
			case <-exited:
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

// PID returns the server's process id (the running server's when attached).
func (c *Cluster) PID() int {
	c.mu.Lock()
	pid := c.pid
	c.mu.Unlock()
	if pid == 0 && c.attached {
		pid, _ = c.postmaster()
	}
	return pid
}

// Stop shuts the server down with a fast shutdown (sessions are ended, no data
// lost), escalating to an immediate shutdown and then SIGKILL if it lingers,
// and releases the data directory. An attached cluster is left running.
func (c *Cluster) Stop(ctx context.Context) error {
	if c.attached {
		return nil
	}
	defer c.releaseLock()
	defer c.closeLog()
	c.mu.Lock()
	c.stopping = true
	pid, exited := c.pid, c.exited
	c.mu.Unlock()
	if pid == 0 {
		return nil
	}
	return stopPID(ctx, pid, exited)
}

// stopPID stops the server pid: SIGINT (fast shutdown), then SIGQUIT, then
// SIGKILL. exited is closed when it is our child and has exited; without it,
// the pid is polled.
func stopPID(ctx context.Context, pid int, exited chan struct{}) error {
	steps := []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, 30 * time.Second}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, 5 * time.Second}}
	for _, s := range steps {
		if err := syscall.Kill(pid, s.sig); err != nil {
			if errors.Is(err, syscall.ESRCH) {
				return nil
			}
			return fmt.Errorf("pglocal: signal postgres: %w", err)
		}
		if waitExit(ctx, pid, exited, s.wait) {
			return nil
		}
	}
	return fmt.Errorf("pglocal: postgres (pid %d) did not stop", pid)
}

func waitExit(ctx context.Context, pid int, exited chan struct{}, d time.Duration) bool {
	if exited != nil {
		select {
		case <-exited:
			return true
		case <-time.After(d):
			return false
		case <-ctx.Done():
			return false
		}
	}
	// Not our child: poll until its pid is gone.
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
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
