package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
)

// BenchmarkCallsListRLS measures what row-level security costs the calls list
// (GET /api/calls's statement for a page of 24 calls, in an org of 24 calls
// among 20 orgs of 500): "rls" runs it as InTenant does, as the tenant role
// under the org's policies; "owner" runs the same statement with the same
// claims set in the same kind of transaction as the database owner, whom the
// policies do not bind. The difference of the two is the policies' cost
// (target: at most 10 %). Compare medians of several runs:
//
//	go test -run '^$' -bench CallsListRLS -count 6 ./postgres/
func BenchmarkCallsListRLS(b *testing.B) {
	db := testdb.New(b)
	ctx := context.Background()
	owner := postgres.OwnerPool(db)
	var org string
	if err := owner.QueryRow(ctx, `with o as (insert into organizations (name) select 'Org ' || i from generate_series(1, 21) i returning id)
		select min(id::text) from o`).Scan(&org); err != nil {
		b.Fatal(err)
	}
	if _, err := owner.Exec(ctx, `insert into calls (org_id, provider_call_id, status, from_number, summary, started_at, created_at, duration_seconds)
		select o.id, o.id::text || '-' || i, 'ended', '+12025550100', 'Call ' || i, now() - i * interval '1 minute', now() - i * interval '1 minute', 60
		from organizations o, generate_series(1, 500) i where o.id::text <> $1
		union all
		select $1::uuid, 'mine-' || i, 'ended', '+12025550100', 'Call ' || i, now() - i * interval '1 minute', now() - i * interval '1 minute', 60
		from generate_series(1, 24) i`, org); err != nil {
		b.Fatal(err)
	}
	if _, err := owner.Exec(ctx, "analyze"); err != nil {
		b.Fatal(err)
	}
	p := voxanne.Principal{UserID: "00000000-0000-4000-8000-000000000001", OrgID: org, OrgRole: "member", Role: "authenticated"}
	sql, args := postgres.CallsListSQL(db, &p, 24)
	claims, err := postgres.ClaimsJSON(p)
	if err != nil {
		b.Fatal(err)
	}
	list := func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if n != 24 {
			b.Fatalf("%d rows, want 24", n)
		}
		return nil
	}
	owned := func() error {
		return pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "select set_config('request.jwt.claims', $1, true)", string(claims)); err != nil {
				return err
			}
			return list(tx)
		})
	}
	tenant := func() error { return db.InTenant(ctx, p, list) }
	// The two run alternately (in alternating order), so that a machine that
	// gets busier or quieter during the run weighs on both alike; each one's
	// median is reported, and the overhead of the medians.
	var rls, own []time.Duration
	i := 0
	for b.Loop() {
		first, second := tenant, owned
		if i%2 == 1 {
			first, second = owned, tenant
		}
		for _, f := range []func() error{first, second} {
			t0 := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			d := time.Since(t0)
			if (i%2 == 0) == (len(rls) == len(own)) {
				rls = append(rls, d)
			} else {
				own = append(own, d)
			}
		}
		i++
	}
	mr, mo := median(rls), median(own)
	b.ReportMetric(float64(mr.Microseconds()), "rls-µs")
	b.ReportMetric(float64(mo.Microseconds()), "owner-µs")
	b.ReportMetric(100*(float64(mr)/float64(mo)-1), "overhead-%")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
