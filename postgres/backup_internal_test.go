package postgres

import "testing"

// libpq's programs get DATABASE_URL without its password (which goes in
// their environment instead, out of the process list) and without pgx's own
// parameters, which libpq would refuse.
func TestLibpqConnString(t *testing.T) {
	for _, c := range []struct{ in, conn, password string }{
		{"postgres://voxanne:s3cret@db.example:5433/voxanne?sslmode=require&pool_max_conns=40",
			"postgres://voxanne@db.example:5433/voxanne?sslmode=require", "s3cret"},
		{"postgresql://voxanne@/voxanne?host=%2Fvar%2Frun%2Fpostgresql&password=p%40ss",
			"postgresql://voxanne@/voxanne?host=%2Fvar%2Frun%2Fpostgresql", "p@ss"},
		{`host=db.example user=voxanne password='it\'s a \\ and spaces' dbname=voxanne pool_max_conns=5`,
			"host='db.example' user='voxanne' dbname='voxanne'", `it's a \ and spaces`},
		{"host=/tmp dbname='my db' password=plain",
			"host='/tmp' dbname='my db'", "plain"},
	} {
		conn, password := libpqConnString(c.in)
		if conn != c.conn || password != c.password {
			t.Errorf("%s:\n got %q %q\nwant %q %q", c.in, conn, password, c.conn, c.password)
		}
	}
}
