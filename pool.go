package voxanne

import "time"

// PoolStat is a snapshot of one database connection pool, for /health and
// /metrics. It is declared here, not taken from the driver, so that only the
// postgres package knows which driver and pool it runs on.
type PoolStat struct {
	Total    int32 // open connections
	Idle     int32 // open connections not in use
	Acquired int32 // connections in use
	// Acquires counts connections taken from the pool; EmptyAcquires those
	// that had to wait because none was idle, and AcquireWait the time spent
	// waiting in all.
	Acquires      int64
	EmptyAcquires int64
	AcquireWait   time.Duration
}
