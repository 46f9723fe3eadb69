package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
)

// Failures of the database's availability are told apart from failures of a
// request, from real errors of each kind.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	run := func(sql string) error {
		_, err := conn.Exec(ctx, sql)
		return err
	}

	unavailable := map[string]error{}
	_, err = conn.Exec(ctx, "set statement_timeout = '20ms'")
	if err != nil {
		t.Fatal(err)
	}
	unavailable["statement_timeout"] = run("select pg_sleep(1)")
	if _, err := conn.Exec(ctx, "reset statement_timeout"); err != nil {
		t.Fatal(err)
	}
	_, err = pgx.Connect(ctx, "host="+filepath.Join(t.TempDir(), "nothing")+" user=x dbname=x sslmode=disable")
	unavailable["no server"] = err
	db := testdb.New(t)
	db.Close()
	_, err = db.Ping(ctx)
	unavailable["closed pool"] = err
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := other.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "select pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	_, err = other.Exec(ctx, "select 1")
	unavailable["connection ended by the server"] = err
	for name, err := range map[string]error{
		"syntax":      run("selec 1"),
		"unique":      run("create temp table u (id int primary key); insert into u values (1), (1)"),
		"permission":  run("set role voxanne_tenant; select * from auth.users"),
		"no rows":     conn.QueryRow(ctx, "select 1 where false").Scan(new(int)),
		"plain error": errors.New("something else"),
	} {
		if err == nil || postgres.Unavailable(err) {
			t.Errorf("%s: %v: taken for unavailable", name, err)
		}
	}
	// A deadline passing mid-statement (this closes the connection: last).
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = conn.Exec(short, "select pg_sleep(1)")
	cancel()
	unavailable["request deadline"] = fmt.Errorf("wrapped: %w", err)
	for name, err := range unavailable {
		if err == nil || !postgres.Unavailable(err) {
			t.Errorf("%s: %v: not unavailable", name, err)
		}
	}

}

// The service roles' sessions end a statement after 30 s, and every pool
// bounds making a connection, so that a hung database holds nothing for ever.
func TestServiceRolesHaveDeadlines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	for name, pool := range map[string]*pgxpool.Pool{"auth": postgres.AuthPool(db), "tenant": postgres.TenantPool(db), "owner": postgres.OwnerPool(db)} {
		if got := pool.Config().ConnConfig.ConnectTimeout; got != postgres.ConnectTimeout {
			t.Errorf("%s pool: connect timeout %s", name, got)
		}
		if name == "owner" {
			continue // migrations may run long
		}
		var timeout string
		if err := pool.QueryRow(ctx, "show statement_timeout").Scan(&timeout); err != nil || timeout != "30s" {
			t.Errorf("%s role: statement_timeout %q %v", name, timeout, err)
		}
	}
}
