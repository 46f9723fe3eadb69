package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// ms1 turns whole milliseconds into a duration, to keep samples readable.
func ms1(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range n {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}

func TestNearestRank(t *testing.T) {
	tests := []struct {
		name   string
		sample []time.Duration
		p      float64
		want   time.Duration
	}{
		// The textbook example of the nearest-rank method.
		{"wiki p5", ms1(15, 20, 35, 40, 50), 5, 15 * time.Millisecond},
		{"wiki p30", ms1(15, 20, 35, 40, 50), 30, 20 * time.Millisecond},
		{"wiki p40", ms1(15, 20, 35, 40, 50), 40, 20 * time.Millisecond},
		{"wiki p50", ms1(15, 20, 35, 40, 50), 50, 35 * time.Millisecond},
		{"wiki p100", ms1(15, 20, 35, 40, 50), 100, 50 * time.Millisecond},
		{"100 p50", seq(100), 50, 50 * time.Millisecond},
		{"100 p90", seq(100), 90, 90 * time.Millisecond},
		{"100 p99", seq(100), 99, 99 * time.Millisecond},
		// ceil(99.9) = 100: with 100 samples p99.9 is the maximum.
		{"100 p99.9", seq(100), 99.9, 100 * time.Millisecond},
		// 99.9/100*1000 is 999.0000000000001 in floating point; the rank
		// must still be 999, not 1000.
		{"1000 p99.9", seq(1000), 99.9, 999 * time.Millisecond},
		{"1000 p99", seq(1000), 99, 990 * time.Millisecond},
		{"10 p50", seq(10), 50, 5 * time.Millisecond},
		{"10 p90", seq(10), 90, 9 * time.Millisecond},
		{"10 p99", seq(10), 99, 10 * time.Millisecond},
		{"10 p91", seq(10), 91, 10 * time.Millisecond},
		{"one", ms1(7), 50, 7 * time.Millisecond},
		{"one p99.9", ms1(7), 99.9, 7 * time.Millisecond},
		{"p0 is the minimum", seq(10), 0, 1 * time.Millisecond},
		{"empty", nil, 50, 0},
	}
	for _, tt := range tests {
		if got := nearestRank(tt.sample, tt.p); got != tt.want {
			t.Errorf("%s: nearestRank(p=%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestMergeAndSummary(t *testing.T) {
	// Two workers with interleaved, unsorted samples: merge must sort.
	a, b := newRecorder(), newRecorder()
	for i := 1000; i >= 1; i-- {
		r := a
		if i%2 == 0 {
			r = b
		}
		r.record(time.Duration(i)*time.Millisecond+456*time.Microsecond, 200, nil, nil)
	}
	a.record(3*time.Millisecond, 401, []byte(`{"code":"bad_jwt"}`), nil)
	b.record(0, 0, nil, errors.New("connection refused"))
	b.record(0, 0, nil, errors.New("connection refused"))

	s := merge([]*recorder{a, b}, 2*time.Second)
	sum := s.summary()
	if sum.Requests != 1003 || sum.Failed != 3 || sum.OK != 1000 || sum.TransportErrors != 2 {
		t.Fatalf("counts: %+v", sum)
	}
	if sum.ErrorsByStatus[401] != 1 || len(sum.ErrorsByStatus) != 1 {
		t.Errorf("errors by status = %v", sum.ErrorsByStatus)
	}
	if len(sum.TransportSamples) != 1 {
		t.Errorf("transport samples should be deduplicated: %q", sum.TransportSamples)
	}
	if sum.Samples != 1001 {
		t.Errorf("samples = %d, want 1001 (transport errors carry no latency)", sum.Samples)
	}
	if sum.RequestsPerSecond != 501.5 {
		t.Errorf("requests/s = %v", sum.RequestsPerSecond)
	}
	// Sample: 3ms plus 1.456 .. 1000.456 ms. Rank 501 of 1001 is 500.456.
	if sum.Latency.P50 != 500.456 {
		t.Errorf("p50 = %v, want 500.456", sum.Latency.P50)
	}
	if sum.Latency.Max != 1000.456 {
		t.Errorf("max = %v", sum.Latency.Max)
	}
	if sum.tooManyFailures() {
		t.Errorf("3 of 1003 failed (0.3%%), under the 1%% limit, yet tooManyFailures")
	}
}

func TestFailureLimit(t *testing.T) {
	for _, tt := range []struct {
		requests, failed int
		want             bool
	}{
		{100, 0, false}, {100, 1, false}, {100, 2, true}, {1000, 10, false}, {1000, 11, true}, {0, 0, true},
	} {
		sum := summary{Requests: tt.requests, Failed: tt.failed}
		if got := sum.tooManyFailures(); got != tt.want {
			t.Errorf("%d of %d failed: tooManyFailures = %v, want %v", tt.failed, tt.requests, got, tt.want)
		}
	}
}

func TestMillisecondsHaveThreeDecimals(t *testing.T) {
	if got := ms(1234567 * time.Nanosecond); got != 1.235 {
		t.Errorf("ms(1.234567ms) = %v, want 1.235", got)
	}
	var sb strings.Builder
	s := merge([]*recorder{{latencies: ms1(2), statuses: map[int]int{200: 1}}}, time.Second)
	s.summary().writeText(&sb)
	if !strings.Contains(sb.String(), "p99.9:      2.000") {
		t.Errorf("text report:\n%s", sb.String())
	}
}
