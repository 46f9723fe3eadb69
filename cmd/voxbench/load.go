package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// errExhausted is returned by a shot that has no more work (e.g. the token
// pool of --fresh-tokens is used up). It ends the load phase early.
var errExhausted = errors.New("no more work")

// A shot performs one request and returns its status, and its body when keep
// says the body is wanted. warm tells it the request falls in the warm-up and
// will not be recorded, so a mode can spend no scarce work on it. It returns
// errExhausted, without sending anything, when there is nothing left to send.
// Shots run concurrently.
type shot func(warm bool, keep func(status int) bool) (status int, body []byte, err error)

// loadResult is what runLoad measured.
type loadResult struct {
	stats          *stats
	warmupRequests int64
	// stoppedEarly says why the phase ended before --duration: "" (it did
	// not), "exhausted" or "interrupted".
	stoppedEarly string
}

// runLoad runs workers that fire shots back to back until warmup+duration has
// passed, ctx is done, or a shot reports errExhausted. Requests started during
// the warm-up are made (to fill connection pools and server caches) but not
// recorded. A request is attributed by its start time, and none starts after
// the deadline; the measured time runs until the last in-flight request has
// finished, so requests/s is not inflated by that tail.
func runLoad(ctx context.Context, workers int, warmup, duration time.Duration, do shot, pace ...func()) loadResult {
	start := time.Now()
	measureStart := start.Add(warmup)
	end := measureStart.Add(duration)
	var (
		exhausted atomic.Bool
		warm      atomic.Int64
		wg        sync.WaitGroup
	)
	recs := make([]*recorder, workers)
	for w := range workers {
		rec := newRecorder()
		recs[w] = rec
		wg.Go(func() {
			for ctx.Err() == nil && !exhausted.Load() {
				// Pacing waits come before the clock starts: latency is the server's.
				for _, p := range pace {
					p()
				}
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				warmup := t0.Before(measureStart)
				status, body, err := do(warmup, rec.wantsBody)
				d := time.Since(t0)
				if errors.Is(err, errExhausted) {
					exhausted.Store(true)
					return
				}
				if warmup {
					warm.Add(1)
					continue
				}
				rec.record(d, status, body, err)
			}
		})
	}
	wg.Wait()
	elapsed := max(0, time.Since(measureStart))
	res := loadResult{stats: merge(recs, elapsed), warmupRequests: warm.Load()}
	switch {
	case exhausted.Load():
		res.stoppedEarly = "exhausted"
	case ctx.Err() != nil:
		res.stoppedEarly = "interrupted"
	}
	return res
}

// get sends one GET with a bearer token and reads the whole response, so that
// the measured latency covers the body and the connection goes back to the
// pool. Requests deliberately carry no cancellable context: on Ctrl-C the
// in-flight requests finish normally instead of turning into errors.
func get(c *http.Client, target, token string, keep func(int) bool) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body []byte
	if keep(resp.StatusCode) {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxBodyKept))
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, body, nil
}

// loadFlags are the flags every mode shares: the target, the workers, the
// measured phase and the report format.
type loadFlags struct {
	base        *url.URL
	rawURL      string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	json        bool
	serverPID   int
}

// register adds the shared flags to fs; unit names what a worker sends and
// warmupHelp says what the warm-up is for in this mode.
func (l *loadFlags) register(fs *flag.FlagSet, unit, warmupHelp string) {
	fs.StringVar(&l.rawURL, "url", "http://127.0.0.1:8080", "base `URL` of the Voxanne server; loopback only ("+allowedTargets+")")
	fs.IntVar(&l.concurrency, "concurrency", 32, "`C` workers send "+unit+" in parallel, each on its own keep-alive connection")
	fs.DurationVar(&l.duration, "duration", 20*time.Second, "`D`, the length of the measured load phase, after the warm-up (max 10m)")
	fs.DurationVar(&l.warmup, "warmup", 2*time.Second, warmupHelp)
	fs.BoolVar(&l.json, "json", false, "print the report as one JSON object on stdout (text goes to stderr)")
	fs.IntVar(&l.serverPID, "server-pid", 0, "`PID` of the Voxanne server, for its CPU and memory in the report;\n0 finds the process listening on --url's port (Linux /proc)")
}

// meter starts measuring the server's and PostgreSQL's CPU and memory; the
// returned function stops and reports. Where /proc cannot tell, the report
// carries a note instead of figures.
func (l *loadFlags) meter() func() resourceReport {
	port, err := strconv.Atoi(l.base.Port())
	if err != nil {
		port = 80
		if l.base.Scheme == "https" {
			port = 443
		}
	}
	m, why := startMeter(l.serverPID, port)
	if m == nil {
		return func() resourceReport { return resourceReport{Note: why} }
	}
	return m.stop
}

// parse parses args, printing the mode's help on --help; it returns -1 to go
// on, or the exit code.
func (l *loadFlags) parse(fs *flag.FlagSet, args []string, mode, head, tail string, stdout, stderr io.Writer) int {
	fs.Usage = func() {}
	code := parseFlags(fs, args)
	switch {
	case code == 0:
		fmt.Fprint(stdout, head)
		printFlags(stdout, fs)
		fmt.Fprint(stdout, tail)
	case code > 0:
		fmt.Fprintf(stderr, "run \"voxbench %s --help\" for the flags\n", mode)
	}
	return code
}

// check validates the shared flags, reporting through bad.
func (l *loadFlags) check(bad func(format string, args ...any)) {
	u, err := checkLoopback(l.rawURL)
	if err != nil {
		bad("%v", err)
	}
	l.base = u
	if l.concurrency < 1 || l.concurrency > 10_000 {
		bad("--concurrency must be between 1 and 10000")
	}
	if l.duration <= 0 || l.duration > maxDuration {
		bad("--duration must be more than 0 and at most %v", maxDuration)
	}
	if l.serverPID < 0 {
		bad("--server-pid must be a process id")
	}
	if l.warmup < 0 || l.warmup > maxDuration {
		bad("--warmup must be between 0 and %v", maxDuration)
	}
}

// usageProblems prints problems and returns exit code 2, or -1 when there are none.
func usageProblems(mode string, problems []string, stderr io.Writer) int {
	for _, p := range problems {
		fmt.Fprintf(stderr, "voxbench %s: %s\n", mode, p)
	}
	if len(problems) > 0 {
		return 2
	}
	return -1
}
