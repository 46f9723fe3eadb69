package main

import (
	"context"
	"errors"
	"io"
	"net/http"
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
