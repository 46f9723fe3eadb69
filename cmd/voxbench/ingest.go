package main

import (
	"context"
	"fmt"
	"io"
)

// runIngest is the placeholder for "voxbench ingest", the webhook ingestion
// load (POST /api/webhooks/vapi and /api/webhooks/twilio/*), which another
// engineer adds later. The pieces it needs already exist and are shared with
// auth: checkLoopback for --url, newClient for the keep-alive transport,
// one recorder per worker, merge into stats, and summary for the text/JSON
// report and the exit status. Exit code 2 so that scripts cannot mistake the
// stub for a passing run.
func runIngest(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "voxbench ingest: not implemented yet")
	return 2
}
