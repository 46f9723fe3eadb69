package postgres

// Backup and restore with PostgreSQL's own pg_dump, pg_restore and psql.
//
// A backup is pg_dump's custom format, dumped as BackupRole (pg_dump --role):
// an owner that is no superuser is bound by the tables' forced row-level
// security and would dump nothing (pg_dump refuses), while BackupRole reads
// every row through a select-only policy on each such table (migration 0013).
//
// A restore runs in one transaction (psql --single-transaction): optionally
// drop everything Voxanne made in the database, create the cluster-wide roles
// that are missing (a dump holds one database, never roles), replay the dump
// with the restoring user as owner of everything, then hand the SECURITY
// DEFINER functions back to DefinerRole. Any error rolls it all back. The
// service roles' logins are then set from the owner's password, as migrations
// do. The dump's data goes in before its row-level security is enabled and its
// triggers exist, so rows come back exactly as they were (audit hashes
// included).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/postgres/pglocal"
)

// Roles of migration 0013.
const (
	// DefinerRole owns every SECURITY DEFINER function, with exactly the
	// grants and policies their bodies need; it cannot log in.
	DefinerRole = "voxanne_definer"
	// BackupRole is what backups read as: select on every table, through a
	// select-only policy where row-level security is on; it cannot log in.
	BackupRole = "voxanne_backup"
)

// backupVersion is the first schema version that BackupRole can dump.
const backupVersion = 13

// Tools are the PostgreSQL client programs backups and restores run.
type Tools struct {
	PgDump, PgRestore, Psql string
}

// FindTools looks for pg_dump, pg_restore and psql in binDir (the managed
// cluster's: the same binaries as its server) or, when binDir is "", where
// pglocal.FindTool looks.
func FindTools(binDir string) (Tools, error) {
	find := func(name string) (string, error) {
		if binDir == "" {
			return pglocal.FindTool(name)
		}
		p := filepath.Join(binDir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("no %s beside the server binaries in %s", name, binDir)
		}
		return p, nil
	}
	var t Tools
	var err error
	if t.PgDump, err = find("pg_dump"); err != nil {
		return t, err
	}
	if t.PgRestore, err = find("pg_restore"); err != nil {
		return t, err
	}
	t.Psql, err = find("psql")
	return t, err
}

// Backup writes the database to file (pg_dump's custom format, mode 0600: it
// holds password hashes and signing keys) and returns the schema version it
// holds. The file appears only once the dump is complete.
func (db *DB) Backup(ctx context.Context, tools Tools, file string) (int, error) {
	version, err := db.prepareBackup(ctx)
	if err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	err = db.runTool(ctx, tools.PgDump, nil, tmp, "--format=custom", "--role="+BackupRole,
		"--enable-row-security", "--no-subscriptions", "--no-publications")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return version, nil
}

// prepareBackup checks that the schema has BackupRole's policies, grants it
// select on tables made since (a River upgrade's, say), and refuses when a
// table with row-level security has no policy for it: pg_dump would dump
// that table empty.
func (db *DB) prepareBackup(ctx context.Context) (int, error) {
	var version int
	var unreadable []string
	err := db.InOwner(ctx, "prepare a backup", func(c Conn) error {
		v, err := schemaVersion(ctx, c)
		if err != nil {
			return err
		}
		if version = v; version < backupVersion {
			return voxanne.Errorf(voxanne.EINVALID, "the database is at schema version %d: migrate it (voxanne migrate up) before a backup", version)
		}
		if _, err := c.Exec(ctx, fmt.Sprintf(`grant select on all tables in schema public, auth to %[1]s;
			grant select on all sequences in schema public, auth to %[1]s`, BackupRole)); err != nil {
			return err
		}
		rows, err := c.Query(ctx, `select c.oid::regclass::text from pg_class c
			join pg_namespace n on n.oid = c.relnamespace
			where n.nspname in ('public', 'auth') and c.relrowsecurity and not exists (
				select 1 from pg_policy p where p.polrelid = c.oid and p.polcmd in ('r', '*')
				and (select oid from pg_roles where rolname = $1) = any (p.polroles))
			order by 1`, BackupRole)
		if err != nil {
			return err
		}
		unreadable, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if len(unreadable) > 0 {
		return 0, fmt.Errorf("backup: %s %s row-level security but no policy that lets %s read it, so its rows would be left out: add one in a migration",
			strings.Join(unreadable, ", "), map[bool]string{true: "has", false: "have"}[len(unreadable) == 1], BackupRole)
	}
	return version, nil
}

// schemaVersion is the newest applied migration, 0 for a database without
// Voxanne's schema.
func schemaVersion(ctx context.Context, c Conn) (int, error) {
	var version int
	err := c.QueryRow(ctx, `select case when to_regclass('public.voxanne_schema_migrations') is null then 0
		else (select coalesce(max(version), 0) from public.voxanne_schema_migrations) end`).Scan(&version)
	return version, err
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Replace drops everything Voxanne made in a database that is not empty
	// first (in the restore's transaction); without it such a database is
	// refused.
	Replace bool
}

// Restore replays a backup of Backup's into the database, which must be empty
// unless opts.Replace, and returns the schema version it holds. No Voxanne
// may be running on the database. On any error nothing has changed.
func (db *DB) Restore(ctx context.Context, tools Tools, file string, opts RestoreOptions) (int, error) {
	// A file that pg_restore cannot read is refused before anything happens.
	var toc bytes.Buffer
	if err := runCmd(ctx, tools.PgRestore, nil, nil, &toc, "--list", file); err != nil {
		return 0, fmt.Errorf("restore: %s is not a backup that %s can read: %w", file, filepath.Base(tools.PgRestore), err)
	}
	if !bytes.Contains(toc.Bytes(), []byte(" voxanne_schema_migrations ")) {
		return 0, fmt.Errorf("restore: %s is not a Voxanne backup (it has no voxanne_schema_migrations table)", file)
	}
	err := db.InOwner(ctx, "check a restore's target", func(c Conn) error {
		// Sessions of a server that has just stopped may take a moment to end.
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			var others int
			if err := c.QueryRow(ctx, `select count(*) from pg_stat_activity
				where datname = current_database() and usename = any ($1) and pid <> pg_backend_pid()`,
				[]string{AuthRole, TenantRole, RiverRole}).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				break
			}
			if time.Now().After(deadline) {
				return voxanne.Errorf(voxanne.ECONFLICT, "a Voxanne server is using the database (%d connections of its roles): stop it before a restore", others)
			}
		}
		var objects int
		if err := c.QueryRow(ctx, countObjectsSQL).Scan(&objects); err != nil {
			return err
		}
		if objects > 0 && !opts.Replace {
			return voxanne.Errorf(voxanne.ECONFLICT, "the database is not empty (%d objects in schemas public and auth): restore replaces nothing unless told to (voxanne restore --force)", objects)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}

	prelude := assertEmptySQL
	if opts.Replace {
		prelude = wipeSQL
	}
	dump, err := dumpScript(ctx, tools.PgRestore, file)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	script := io.MultiReader(strings.NewReader(prelude+rolesSQL()), dump, strings.NewReader(handOverSQL))
	err = db.runTool(ctx, tools.Psql, script, io.Discard, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction")
	if werr := dump.Wait(); err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return 0, fmt.Errorf("restore (nothing was changed): %w", err)
	}
	// The service roles log in with passwords derived from this owner's.
	var version int
	conn, err := db.owner.Acquire(ctx)
	if err == nil {
		defer conn.Release()
		if err = setupRoleLogins(ctx, conn.Conn(), db.ownerCfg.ConnConfig.Password); err == nil {
			version, err = schemaVersion(ctx, conn)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("restore: the data is back, but: %w", err)
	}
	return version, nil
}

// countObjectsSQL counts what Voxanne (or anyone) made in the schemas Voxanne
// uses: public's relations, routines, types and extensions, and schema auth.
const countObjectsSQL = `select
	(select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public')
	+ (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public')
	+ (select count(*) from pg_type t join pg_namespace n on n.oid = t.typnamespace where n.nspname = 'public')
	+ (select count(*) from pg_extension e join pg_namespace n on n.oid = e.extnamespace where n.nspname = 'public')
	+ (select count(*) from pg_namespace where nspname = 'auth')`

// assertEmptySQL makes the restore's transaction fail if the database filled
// up since it was checked.
const assertEmptySQL = `do $$
begin
  if (` + countObjectsSQL + `) > 0 then
    raise exception 'the database is no longer empty';
  end if;
end
$$;
`

// wipeSQL drops schema auth and everything in schema public (the schema
// itself stays, with its owner and privileges), then checks nothing is left.
const wipeSQL = `do $$
declare r record;
begin
  drop schema if exists auth cascade;
  for r in select e.extname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
           where n.nspname = 'public' loop
    execute format('drop extension if exists %I cascade', r.extname);
  end loop;
  for r in select format('%I.%I', n.nspname, c.relname) as name, c.relkind from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S') loop
    execute format('drop %s if exists %s cascade', case r.relkind when 'v' then 'view'
      when 'm' then 'materialized view' when 'f' then 'foreign table' when 'S' then 'sequence'
      else 'table' end, r.name);
  end loop;
  for r in select format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) as name,
           p.prokind from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public' loop
    execute format('drop %s if exists %s cascade', case r.prokind when 'a' then 'aggregate' else 'routine' end, r.name);
  end loop;
  for r in select format('%I.%I', n.nspname, t.typname) as name, t.typtype from pg_type t
           join pg_namespace n on n.oid = t.typnamespace
           where n.nspname = 'public' and t.typtype in ('c', 'd', 'e', 'm', 'r') loop
    execute format('drop %s if exists %s cascade', case r.typtype when 'd' then 'domain' else 'type' end, r.name);
  end loop;
  if (` + countObjectsSQL + `) > 0 then
    raise exception 'could not empty the database: objects of kinds Voxanne does not make are left in schema public';
  end if;
end
$$;
`

// rolesSQL creates the cluster-wide roles a restore needs that are missing
// (a restore into a new cluster), as the migrations made them, with their
// settings, and makes the restoring user a member of DefinerRole and
// BackupRole.
func rolesSQL() string {
	var b strings.Builder
	b.WriteString("do $$\nbegin\n")
	for _, r := range []string{AuthRole, TenantRole, RiverRole, DefinerRole, BackupRole} {
		fmt.Fprintf(&b, "  if not exists (select 1 from pg_roles where rolname = '%[1]s') then\n    create role %[1]s nologin noinherit nobypassrls;\n  end if;\n", r)
	}
	b.WriteString("end\n$$;\n")
	fmt.Fprintf(&b, "grant %s, %s to current_user;\n", DefinerRole, BackupRole)
	// Migrations 0008 and 0012: no statement or idle transaction of a
	// service role holds a connection for long.
	for _, r := range []string{AuthRole, TenantRole, RiverRole} {
		fmt.Fprintf(&b, "alter role %s set statement_timeout = '30s';\nalter role %[1]s set idle_in_transaction_session_timeout = '15s';\n", r)
	}
	return b.String()
}

// handOverSQL gives every SECURITY DEFINER function that DefinerRole does not
// own yet to it: after a restore (which made the restoring user their owner)
// and after every migration run. A new owner needs CREATE on the schema
// unless a superuser does it; the role has it only meanwhile.
const handOverSQL = `do $$
declare f text;
begin
  for f in select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname in ('public', 'auth') and p.prosecdef and p.proowner <> '` + DefinerRole + `'::regrole loop
    execute 'grant create on schema public, auth to ` + DefinerRole + `';
    execute format('alter function %s owner to ` + DefinerRole + `', f);
    execute 'revoke create on schema public, auth from ` + DefinerRole + `';
  end loop;
end
$$;
`

// dumpProcess is pg_restore turning a backup into SQL on its stdout.
type dumpProcess struct {
	io.Reader
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func dumpScript(ctx context.Context, pgRestore, file string) (*dumpProcess, error) {
	cmd := exec.CommandContext(ctx, pgRestore, "--no-owner", "--file=-", file)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	d := &dumpProcess{Reader: out, cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", filepath.Base(pgRestore), err)
	}
	return d, nil
}

// Wait waits for pg_restore (after its output was read, or not).
func (d *dumpProcess) Wait() error {
	_, _ = io.Copy(io.Discard, d.Reader)
	if err := d.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w%s", filepath.Base(d.cmd.Path), err, errorLines(d.stderr.Bytes()))
	}
	return nil
}

// runTool runs a client program against the database as its owner: the
// connection string (password left out) is its last argument, the password
// goes in the environment.
func (db *DB) runTool(ctx context.Context, path string, stdin io.Reader, stdout io.Writer, args ...string) error {
	conn, password := libpqConnString(db.ownerCfg.ConnString())
	if password == "" {
		password = db.ownerCfg.ConnConfig.Password
	}
	env := []string{}
	if password != "" {
		env = append(env, "PGPASSWORD="+password)
	}
	return runCmd(ctx, path, env, stdin, stdout, append(args, "--dbname="+conn)...)
}

// runCmd runs a program, returning its error messages (never its other output,
// which may hold data) when it fails.
func runCmd(ctx context.Context, path string, env []string, stdin io.Reader, stdout io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w%s", filepath.Base(path), err, errorLines(stderr.Bytes()))
	}
	return nil
}

// errorLines keeps the lines of a client program's output that say what went
// wrong, leaving out the lines that quote data (DETAIL, CONTEXT, LINE).
func errorLines(out []byte) string {
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "ERROR:") || strings.Contains(l, "FATAL:") || strings.Contains(l, "error:") {
			keep = append(keep, strings.TrimSpace(l))
		}
		if len(keep) == 5 {
			break
		}
	}
	if len(keep) == 0 {
		return ""
	}
	return ": " + strings.Join(keep, "; ")
}

// libpqKeywords are the connection parameters libpq knows; pgx's own (such as
// pool_max_conns) and server settings are left out of what libpq is given.
var libpqKeywords = []string{"host", "hostaddr", "port", "dbname", "user", "passfile", "channel_binding",
	"connect_timeout", "client_encoding", "options", "application_name", "fallback_application_name",
	"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
	"gssencmode", "sslmode", "requiressl", "sslcompression", "sslcert", "sslkey", "sslpassword",
	"sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version",
	"ssl_max_protocol_version", "krbsrvname", "gsslib", "service", "target_session_attrs",
	"require_auth", "sslcertmode", "load_balance_hosts", "sslnegotiation"}

// libpqConnString turns a DATABASE_URL (URL or keyword=value form) into one
// for libpq's programs without its password (which it returns) or pgx's own
// parameters, so that the password never shows in a process list.
func libpqConnString(s string) (conn, password string) {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			return s, ""
		}
		if u.User != nil {
			password, _ = u.User.Password()
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		if p := q.Get("password"); p != "" {
			password = p
		}
		for k := range q {
			if !slices.Contains(libpqKeywords, k) {
				q.Del(k)
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), password
	}
	var parts []string
	for _, kv := range keywordValues(s) {
		switch {
		case kv[0] == "password":
			password = kv[1]
		case slices.Contains(libpqKeywords, kv[0]):
			parts = append(parts, kv[0]+"='"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(kv[1])+"'")
		}
	}
	return strings.Join(parts, " "), password
}

// keywordValues splits libpq's keyword=value form: values may be single-quoted,
// with backslash escapes.
func keywordValues(s string) [][2]string {
	var out [][2]string
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return out
		}
		key := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val strings.Builder
		quoted := strings.HasPrefix(s, "'")
		if quoted {
			s = s[1:]
		}
		i := 0
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				val.WriteByte(s[i])
				continue
			}
			if (quoted && c == '\'') || (!quoted && (c == ' ' || c == '\t' || c == '\n')) {
				break
			}
			val.WriteByte(c)
		}
		out = append(out, [2]string{key, val.String()})
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
}
