package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

// This file is shared by every load mode (auth today, ingest later): workers
// record into their own recorder, the recorders are merged into a stats, and
// the stats becomes a summary that prints as text or JSON.

// maxErrSamples is how many distinct transport errors a report quotes; the
// first few are enough to see what went wrong.
const maxErrSamples = 3

// recorder collects one worker's results. Each worker owns one, so recording
// takes no lock and the hot loop stays cheap; merge combines them at the end.
type recorder struct {
	latencies []time.Duration // every request that got an HTTP response
	statuses  map[int]int     // responses by status code
	transport int             // requests that got no response at all
	errs      []string        // first few distinct transport errors
	bodies    map[int]string  // first body seen for each non-2xx status
}

func newRecorder() *recorder {
	return &recorder{
		// Pre-size for a few seconds of a fast server so that the slice
		// does not regrow constantly at the start of the run.
		latencies: make([]time.Duration, 0, 4096),
		statuses:  make(map[int]int),
		bodies:    make(map[int]string),
	}
}

// isSuccess says which statuses count as a successful request.
func isSuccess(status int) bool { return status >= 200 && status <= 299 }

// wantsBody reports whether the caller should keep the body of a response
// with this status: only for a failing status not yet quoted, so successful
// requests never pay for it.
func (r *recorder) wantsBody(status int) bool {
	if isSuccess(status) {
		return false
	}
	_, seen := r.bodies[status]
	return !seen
}

// record notes one finished request: its latency and status, or the
// transport error that stopped it (then status and latency are ignored,
// because the time to fail, e.g. an instant "connection refused", says
// nothing about the server's speed). body is kept only when wantsBody.
func (r *recorder) record(d time.Duration, status int, body []byte, err error) {
	if err != nil {
		r.transport++
		msg := err.Error()
		if len(r.errs) < maxErrSamples && !slices.Contains(r.errs, msg) {
			r.errs = append(r.errs, msg)
		}
		return
	}
	r.latencies = append(r.latencies, d)
	r.statuses[status]++
	if body != nil && r.wantsBody(status) {
		r.bodies[status] = truncate(body)
	}
}

// stats is the merged result of a run: the full latency sample, sorted, so
// that percentiles are exact rather than estimated from buckets.
type stats struct {
	sorted    []time.Duration
	statuses  map[int]int
	transport int
	errs      []string
	bodies    map[int]string
	elapsed   time.Duration // the measured wall time (warm-up excluded)
}

// merge combines the workers' recorders. Call it only after every worker has
// stopped.
func merge(recs []*recorder, elapsed time.Duration) *stats {
	n := 0
	for _, r := range recs {
		n += len(r.latencies)
	}
	s := &stats{
		sorted:   make([]time.Duration, 0, n),
		statuses: make(map[int]int),
		bodies:   make(map[int]string),
		elapsed:  elapsed,
	}
	for _, r := range recs {
		s.sorted = append(s.sorted, r.latencies...)
		for code, c := range r.statuses {
			s.statuses[code] += c
		}
		for code, b := range r.bodies {
			if _, ok := s.bodies[code]; !ok {
				s.bodies[code] = b
			}
		}
		s.transport += r.transport
		for _, e := range r.errs {
			if len(s.errs) < maxErrSamples && !slices.Contains(s.errs, e) {
				s.errs = append(s.errs, e)
			}
		}
	}
	slices.Sort(s.sorted)
	return s
}

// requests counts every measured request, answered or not.
func (s *stats) requests() int { return len(s.sorted) + s.transport }

// failures counts non-2xx responses and transport errors.
func (s *stats) failures() int {
	f := s.transport
	for code, c := range s.statuses {
		if !isSuccess(code) {
			f += c
		}
	}
	return f
}

// percentile returns the nearest-rank percentile p (0 < p <= 100) of the
// sample: the smallest value such that at least p% of the sample is less than
// or equal to it, i.e. sorted[ceil(p/100*n)-1]. It is always a value that was
// actually measured. An empty sample gives 0.
func (s *stats) percentile(p float64) time.Duration {
	return nearestRank(s.sorted, p)
}

// nearestRank is percentile on any sorted sample.
func nearestRank(sorted []time.Duration, p float64) time.Duration {
	n := int64(len(sorted))
	if n == 0 {
		return 0
	}
	// Work in parts per million with integers: in floating point 99.9/100*1000
	// is 999.0000000000001, and its ceiling would pick the wrong rank.
	ppm := int64(math.Round(p * 10_000))
	rank := (ppm*n + 999_999) / 1_000_000
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// failLimitPercent is the failure rate above which a run exits non-zero.
const failLimitPercent = 1.0

// summary is what a run reports. Its JSON form is the --json output (each mode
// embeds it in a larger object with its own set-up details).
type summary struct {
	Requests          int            `json:"requests"`
	OK                int            `json:"ok"`
	Failed            int            `json:"failed"`
	FailedPercent     float64        `json:"failed_percent"`
	ErrorsByStatus    map[int]int    `json:"errors_by_status"`
	ErrorBodies       map[int]string `json:"error_bodies,omitempty"`
	TransportErrors   int            `json:"transport_errors"`
	TransportSamples  []string       `json:"transport_error_samples,omitempty"`
	DurationSeconds   float64        `json:"duration_seconds"`
	RequestsPerSecond float64        `json:"requests_per_second"`
	Samples           int            `json:"latency_samples"`
	Latency           latencyMS      `json:"latency_ms"`
}

// latencyMS holds latencies in milliseconds, rounded to microseconds.
type latencyMS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// ms converts a duration to milliseconds with 3 decimals, the resolution
// reported everywhere.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// round keeps JSON numbers readable.
func round(f float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(f*p) / p
}

func (s *stats) summary() summary {
	sum := summary{
		Requests:         s.requests(),
		Failed:           s.failures(),
		ErrorsByStatus:   map[int]int{},
		TransportErrors:  s.transport,
		TransportSamples: s.errs,
		DurationSeconds:  round(s.elapsed.Seconds(), 3),
		Samples:          len(s.sorted),
	}
	sum.OK = sum.Requests - sum.Failed
	for code, c := range s.statuses {
		if !isSuccess(code) {
			sum.ErrorsByStatus[code] = c
		}
	}
	if len(s.bodies) > 0 {
		sum.ErrorBodies = maps.Clone(s.bodies)
	}
	if sum.Requests > 0 {
		sum.FailedPercent = round(100*float64(sum.Failed)/float64(sum.Requests), 3)
	}
	if s.elapsed > 0 {
		sum.RequestsPerSecond = round(float64(sum.Requests)/s.elapsed.Seconds(), 1)
	}
	if n := len(s.sorted); n > 0 {
		sum.Latency = latencyMS{
			P50:  ms(s.percentile(50)),
			P90:  ms(s.percentile(90)),
			P99:  ms(s.percentile(99)),
			P999: ms(s.percentile(99.9)),
			Max:  ms(s.sorted[n-1]),
		}
	}
	return sum
}

// tooManyFailures reports whether the run should exit non-zero: more than
// failLimitPercent of requests failed, or nothing was measured at all (a run
// with no requests proves nothing).
func (sum summary) tooManyFailures() bool {
	return sum.Requests == 0 || float64(sum.Failed)*100 > failLimitPercent*float64(sum.Requests)
}

// writeText prints the results and latency sections of a report.
func (sum summary) writeText(w io.Writer) {
	fmt.Fprintf(w, "results\n")
	line(w, "requests", "%d", sum.Requests)
	line(w, "duration", "%.3fs", sum.DurationSeconds)
	line(w, "requests/s", "%.1f", sum.RequestsPerSecond)
	line(w, "errors", "%d (%.3f%%)", sum.Failed, sum.FailedPercent)
	for _, code := range slices.Sorted(maps.Keys(sum.ErrorsByStatus)) {
		s := fmt.Sprintf("    HTTP %d: %d", code, sum.ErrorsByStatus[code])
		if b := sum.ErrorBodies[code]; b != "" {
			s += "   e.g. " + oneLine(b, 160)
		}
		fmt.Fprintln(w, s)
	}
	if sum.TransportErrors > 0 {
		fmt.Fprintf(w, "    transport errors: %d\n", sum.TransportErrors)
		for _, e := range sum.TransportSamples {
			fmt.Fprintf(w, "      e.g. %s\n", oneLine(e, 160))
		}
	}
	fmt.Fprintf(w, "latency (ms, exact nearest-rank over %d responses)\n", sum.Samples)
	if sum.Samples == 0 {
		fmt.Fprintf(w, "  (no responses)\n")
		return
	}
	for _, row := range []struct {
		name string
		v    float64
	}{{"p50", sum.Latency.P50}, {"p90", sum.Latency.P90}, {"p99", sum.Latency.P99}, {"p99.9", sum.Latency.P999}, {"max", sum.Latency.Max}} {
		fmt.Fprintf(w, "  %-6s %10s\n", row.name+":", strconv.FormatFloat(row.v, 'f', 3, 64))
	}
}

// line prints one "  label:  value" row of a report, aligned with the others.
func line(w io.Writer, label, format string, args ...any) {
	fmt.Fprintf(w, "  %-13s %s\n", label+":", fmt.Sprintf(format, args...))
}

// oneLine keeps a quoted body or error on one line of the report.
func oneLine(s string, limit int) string {
	r := []rune(s)
	for i, c := range r {
		if c == '\n' || c == '\r' || c == '\t' {
			r[i] = ' '
		}
	}
	if len(r) > limit {
		return string(r[:limit]) + "…"
	}
	return string(r)
}
