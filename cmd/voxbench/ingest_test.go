package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voxanne/voxanne/webhook"
)

// fakeEndpointID is the id of the org's Vapi endpoint in the fake.
const fakeEndpointID = "6f1c2a3b-0000-4000-8000-00000000beef"

// fakeIngest mimics the parts of Voxanne that "voxbench ingest" touches:
// sign-up, POST /api/org/webhook-endpoints, the org's own signed Vapi
// endpoint, GET /api/stats and GET /health. "Processing" turns an accepted
// event into a call after lag; stallAfter, when set, stops it after that many
// calls.
type fakeIngest struct {
	publicURL   string // the server's VOXANNE_PUBLIC_URL, the base of the endpoint's url
	lag         time.Duration
	stallAfter  int
	noEndpoints bool // a server without org webhook endpoints: their routes 404
	omitSecret  bool // the answer creating the endpoint lacks its secret

	mu        sync.Mutex
	token     string
	signups   int
	endpoints int // endpoints created
	// secret is generated when the endpoint is created and then verifies its
	// deliveries (a test may change it to refuse them).
	secret     string
	callIDs    map[string]bool
	accepted   []time.Time // acceptance time of each stored event
	duplicates int
	rejected   int // 401s
	bad        []string
	minBody    int
	maxBody    int
	callers    map[string]bool
	statsReads int
	healthHits int
}

// newFakeIngest returns a fake whose public URL is not the address the bench
// talks to, as behind a proxy or tunnel.
func newFakeIngest() *fakeIngest {
	return &fakeIngest{publicURL: "https://voxanne.example.com", callIDs: map[string]bool{}, callers: map[string]bool{}}
}

// processed is how many calls exist now. Call with mu held.
func (f *fakeIngest) processed(now time.Time) int {
	n := 0
	for _, at := range f.accepted {
		if now.Sub(at) >= f.lag {
			n++
		}
	}
	if f.stallAfter > 0 {
		n = min(n, f.stallAfter)
	}
	return n
}

func (f *fakeIngest) authorized(r *http.Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.token != "" && r.Header.Get("Authorization") == "Bearer "+f.token
}

func (f *fakeIngest) problem(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bad = append(f.bad, fmt.Sprintf(format, args...))
}

var benchCaller = regexp.MustCompile(`^\+1415555\d{4}$`)

func (f *fakeIngest) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/v1/signup", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Email, Password string
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !strings.HasSuffix(in.Email, "@example.com") || len(in.Password) < 16 {
			http.Error(w, `{"code":"validation_failed"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.signups++
		f.token = fmt.Sprintf("tok-%d", f.signups)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token": %q, "token_type": "bearer", "user": {}}`, f.token)
	})
	if !f.noEndpoints {
		mux.HandleFunc("POST /api/org/webhook-endpoints", func(w http.ResponseWriter, r *http.Request) {
			if !f.authorized(r) {
				http.Error(w, `{"code":"no_authorization"}`, http.StatusUnauthorized)
				return
			}
			var in struct {
				Provider  string  `json:"provider"`
				AuthToken *string `json:"auth_token"`
			}
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Provider != "vapi" || in.AuthToken != nil {
				http.Error(w, `{"code":"validation_failed"}`, http.StatusBadRequest)
				return
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			f.endpoints++
			f.secret = "whsec_" + randomHex(16)
			secret := f.secret
			if f.omitSecret {
				secret = ""
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id":%q,"provider":"vapi","secret":%q,"previous_valid_until":null,"created_at":"2026-01-01T00:00:00Z","rotated_at":null,"url":%q}`,
				fakeEndpointID, secret, f.publicURL+"/api/webhooks/vapi/"+fakeEndpointID)
		})
		mux.HandleFunc("POST /api/webhooks/vapi/{endpoint}", f.vapiEndpoint)
	}
	// Org-registered numbers no longer route the shared endpoint: the bench
	// must never send there.
	mux.HandleFunc("POST /api/webhooks/vapi", func(w http.ResponseWriter, r *http.Request) {
		f.problem("an event was sent to the shared endpoint")
		http.Error(w, `{"code":"invalid_signature"}`, http.StatusUnauthorized)
	})
	mux.HandleFunc("GET /api/stats", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(r) {
			http.Error(w, `{"code":"no_authorization"}`, http.StatusUnauthorized)
			return
		}
		from, err := time.Parse(time.RFC3339, r.URL.Query().Get("from"))
		if err != nil || time.Since(from) < 24*time.Hour || time.Since(from) > 48*time.Hour {
			f.problem("stats read with from=%q", r.URL.Query().Get("from"))
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.statsReads++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"calls": %d, "answered": 0, "by_day": [], "by_outcome": {}}`, f.processed(time.Now()))
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.healthHits++
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer service-token" {
			// Like Voxanne: statuses only, details for the service role.
			fmt.Fprint(w, `{"status":"ok","checks":{"jobs":{"status":"ok"}}}`)
			return
		}
		fmt.Fprintf(w, `{"status":"ok","checks":{"jobs":{"status":"ok","queued":%d,"running":0,"retrying":0,"discarded":0,"unroutable_events":0}}}`,
			len(f.accepted)-f.processed(time.Now()))
	})
	return mux
}

// vapiEndpoint is the org's own Vapi endpoint: deliveries must name the
// endpoint the fake created and be signed with its secret (X-Timestamp +
// X-Signature). Like the real server, it answers an unknown endpoint like a
// bad signature. The numbers an event names do not matter.
func (f *fakeIngest) vapiEndpoint(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get("X-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	f.mu.Lock()
	secret, created := f.secret, f.endpoints > 0
	f.mu.Unlock()
	want := webhook.SignVapi(secret, ts, body)
	if !created || r.PathValue("endpoint") != fakeEndpointID ||
		err != nil || time.Since(time.Unix(sec, 0)).Abs() > webhook.MaxTimestampSkew ||
		!hmac.Equal([]byte(r.Header.Get("X-Signature")), []byte(want)) {
		f.mu.Lock()
		f.rejected++
		f.mu.Unlock()
		http.Error(w, `{"code":"invalid_signature","message":"the webhook signature is missing or invalid"}`, http.StatusUnauthorized)
		return
	}
	m, err := webhook.ParseVapi(body)
	if err != nil || m.Type != "end-of-call-report" || m.CallID() == "" {
		f.problem("not an end-of-call-report with a call id: %s", body)
		http.Error(w, `{"code":"validation_failed"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !benchCaller.MatchString(m.Customer.Number):
		f.bad = append(f.bad, "caller "+m.Customer.Number)
	case m.DurationSeconds() == nil || *m.DurationSeconds() != 120:
		f.bad = append(f.bad, "call not 2 minutes long: "+string(body))
	case m.EndedReason != "customer-ended-call" || m.Artifact.Transcript == "" || m.Analysis.Summary == "" ||
		m.Direction() != "inbound" || m.Call.CreatedAt.IsZero() || m.Timestamp.IsZero():
		f.bad = append(f.bad, "incomplete event: "+string(body))
	}
	if f.minBody == 0 || len(body) < f.minBody {
		f.minBody = len(body)
	}
	f.maxBody = max(f.maxBody, len(body))
	f.callers[m.Customer.Number] = true
	w.Header().Set("Content-Type", "application/json")
	if f.callIDs[m.CallID()] {
		// The real server acknowledges a duplicate without storing it.
		f.duplicates++
		fmt.Fprint(w, `{"received":true}`)
		return
	}
	f.callIDs[m.CallID()] = true
	f.accepted = append(f.accepted, time.Now())
	fmt.Fprint(w, `{"received":true}`)
}

func decodeIngest(t *testing.T, stdout string) ingestReport {
	t.Helper()
	var rep ingestReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	return rep
}

func TestIngestEndToEnd(t *testing.T) {
	// The fake's public URL names another host: the events must still come
	// to the endpoint's path on --url, signed with the secret it issued.
	fake := newFakeIngest()
	fake.lag = 300 * time.Millisecond
	srv := httptest.NewServer(fake.handler())
	defer srv.Close()

	code, stdout, stderr := runVoxbench(t, "ingest", "--url", srv.URL, "--service-token", "service-token",
		"--duration", "1s", "--warmup", "0", "--concurrency", "4", "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	rep := decodeIngest(t, stdout)
	if rep.EventsAcknowledged <= 0 || rep.Requests != rep.EventsAcknowledged {
		t.Errorf("events acknowledged %d of %d requests, want all and > 0", rep.EventsAcknowledged, rep.Requests)
	}
	if rep.Failed != 0 || rep.TransportErrors != 0 || len(rep.ErrorsByStatus) != 0 {
		t.Errorf("errors: failed %d, transport %d, by status %v\n%s", rep.Failed, rep.TransportErrors, rep.ErrorsByStatus, stderr)
	}
	if rep.EventsProcessed != rep.EventsAcknowledged || rep.EventsExpected != int64(rep.EventsAcknowledged) || !rep.KeptUp {
		t.Errorf("processed %d of %d acknowledged (expected %d), kept up %v", rep.EventsProcessed, rep.EventsAcknowledged, rep.EventsExpected, rep.KeptUp)
	}
	// The fake processes each event 300ms after accepting it, so the drain
	// takes about that long, and processing spans the load plus the drain.
	if rep.DrainSeconds == nil || *rep.DrainSeconds < 0.2 || *rep.DrainSeconds > 2 {
		t.Errorf("drain_seconds = %v, want about 0.3", rep.DrainSeconds)
	}
	if rep.ProcessingSeconds < rep.DurationSeconds || rep.ProcessingPerSecond <= 0 ||
		rep.ProcessingPerSecond > float64(rep.EventsProcessed)/rep.DurationSeconds {
		t.Errorf("processing: %d in %vs = %v/s; load %vs", rep.EventsProcessed, rep.ProcessingSeconds, rep.ProcessingPerSecond, rep.DurationSeconds)
	}
	if want := round(float64(rep.EventsAcknowledged)/rep.DurationSeconds, 1); rep.AcknowledgedPerSecond < want*0.99 || rep.AcknowledgedPerSecond > want*1.01 {
		t.Errorf("acknowledged/s = %v, want about %v", rep.AcknowledgedPerSecond, want)
	}
	if rep.MaxQueueDepth == nil || *rep.MaxQueueDepth <= 0 || rep.QueueSamples < 2 {
		t.Errorf("queue depth %v over %d samples, want > 0 over at least 2", rep.MaxQueueDepth, rep.QueueSamples)
	}
	if rep.Samples != rep.Requests || rep.Latency.Max <= 0 || rep.Latency.P50 > rep.Latency.P999 {
		t.Errorf("latency: %+v over %d samples", rep.Latency, rep.Samples)
	}
	if rep.DurationSeconds < 1 || rep.DurationSeconds > 3 {
		t.Errorf("duration = %vs, want about 1s", rep.DurationSeconds)
	}

	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.bad) > 0 {
		t.Errorf("the fake saw %d malformed requests, e.g. %s", len(fake.bad), fake.bad[0])
	}
	if fake.duplicates != 0 || fake.rejected != 0 {
		t.Errorf("%d duplicate call ids, %d bad signatures", fake.duplicates, fake.rejected)
	}
	// Every acknowledged event was stored under its own call id, plus the probe.
	if len(fake.callIDs) != rep.EventsAcknowledged+1 {
		t.Errorf("server stored %d distinct calls, want %d acknowledged + 1 probe", len(fake.callIDs), rep.EventsAcknowledged)
	}
	wantURL := fake.publicURL + "/api/webhooks/vapi/" + fakeEndpointID
	if fake.signups != 1 || fake.endpoints != 1 || rep.EndpointID != fakeEndpointID || rep.EndpointURL != wantURL {
		t.Errorf("set-up: %d sign-ups, %d endpoints created; report endpoint %s, url %s",
			fake.signups, fake.endpoints, rep.EndpointID, rep.EndpointURL)
	}
	if fake.minBody < 800 || fake.maxBody > 1400 || rep.EventBytes != fake.minBody && rep.EventBytes != fake.maxBody {
		t.Errorf("event bodies %d..%d bytes (report %d), want about 1 KB", fake.minBody, fake.maxBody, rep.EventBytes)
	}
	if len(fake.callers) < 2 || len(fake.callers) > callerPool {
		t.Errorf("%d distinct callers", len(fake.callers))
	}
	for _, want := range []string{"endpoint:     vapi " + fakeEndpointID + ", url " + wantURL,
		"request:      POST " + srv.URL + "/api/webhooks/vapi/" + fakeEndpointID,
		"acknowledged:", "processed:", "kept up:      yes", "queue depth:  max", "p99.9:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("text report lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stdout+stderr, fake.secret) {
		t.Errorf("the secret appears in the output")
	}
}

func TestIngestWarmupEventsAreAwaited(t *testing.T) {
	// A warm-up whose events are not measured but must still be processed.
	// The server's own Vapi secret in the environment is not used, and a
	// server without a public URL answers a url that is only a path.
	t.Setenv("VOXANNE_VAPI_SECRET", "not-the-endpoint-secret")
	fake := newFakeIngest()
	fake.publicURL = ""
	srv := httptest.NewServer(fake.handler())
	defer srv.Close()

	code, stdout, stderr := runVoxbench(t, "ingest", "--url", srv.URL, "--duration", "500ms", "--warmup", "300ms",
		"--concurrency", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	rep := decodeIngest(t, stdout)
	// No --service-token: /health shows no job figures, and the report says how to get them.
	if rep.MaxQueueDepth != nil || !strings.Contains(stderr, "give --service-token") {
		t.Errorf("queue depth %v without a service token; report:\n%s", rep.MaxQueueDepth, stderr)
	}
	if rep.WarmupAcknowledged <= 0 || rep.WarmupAcknowledged != rep.WarmupRequests {
		t.Errorf("warm-up: %d acknowledged of %d", rep.WarmupAcknowledged, rep.WarmupRequests)
	}
	if rep.EventsExpected != rep.WarmupAcknowledged+int64(rep.EventsAcknowledged) || int64(rep.EventsProcessed) != rep.EventsExpected || !rep.KeptUp {
		t.Errorf("expected %d (%d + %d warm-up), processed %d, kept up %v",
			rep.EventsExpected, rep.EventsAcknowledged, rep.WarmupAcknowledged, rep.EventsProcessed, rep.KeptUp)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.callIDs) != int(rep.EventsExpected)+1 || fake.duplicates != 0 {
		t.Errorf("server stored %d calls (%d duplicates), want %d + the probe", len(fake.callIDs), fake.duplicates, rep.EventsExpected)
	}
}

func TestIngestProcessingFallsBehind(t *testing.T) {
	// The "jobs" stop after the probe and 3 more calls: the run must wait
	// --drain, then fail.
	fake := newFakeIngest()
	fake.stallAfter = 4
	srv := httptest.NewServer(fake.handler())
	defer srv.Close()

	t0 := time.Now()
	code, stdout, stderr := runVoxbench(t, "ingest", "--url", srv.URL,
		"--duration", "300ms", "--warmup", "0", "--concurrency", "2", "--drain", "600ms", "--json")
	took := time.Since(t0)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstderr:\n%s", code, stderr)
	}
	rep := decodeIngest(t, stdout)
	if rep.KeptUp || rep.DrainSeconds != nil || rep.EventsProcessed != 3 || rep.Failed != 0 {
		t.Errorf("kept up %v, drain %v, processed %d of %d, failed %d", rep.KeptUp, rep.DrainSeconds, rep.EventsProcessed, rep.EventsExpected, rep.Failed)
	}
	if !strings.Contains(stderr, "FAIL: processing did not finish within --drain 600ms") || !strings.Contains(stderr, "kept up:      NO") {
		t.Errorf("stderr does not explain the failure:\n%s", stderr)
	}
	if took < 900*time.Millisecond || took > 5*time.Second {
		t.Errorf("the run took %v; it should wait for --drain and no longer", took)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	// 600ms of polling every 250ms: the first read, two more and one at the
	// deadline, plus the set-up reads.
	if fake.statsReads < 4 || fake.statsReads > 10 {
		t.Errorf("%d stats reads", fake.statsReads)
	}
}

func TestIngestProbeRejected(t *testing.T) {
	// The server refuses the secret it has just issued (say its key changed
	// in between): the set-up probe catches it, and no load is sent.
	fake := newFakeIngest()
	h := fake.handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fake.mu.Lock()
		if fake.endpoints > 0 {
			fake.secret = "changed"
		}
		fake.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	code, _, stderr := runVoxbench(t, "ingest", "--url", srv.URL, "--duration", "1s", "--warmup", "0", "--concurrency", "4")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"probe event: HTTP 401", "invalid_signature", "refused the endpoint's own secret", fakeEndpointID} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.rejected != 1 || len(fake.accepted) != 0 || len(fake.bad) != 0 {
		t.Errorf("server rejected %d and stored %d events (problems %v), want 1 and 0", fake.rejected, len(fake.accepted), fake.bad)
	}
}

func TestIngestRejectedDuringLoad(t *testing.T) {
	// The secret is right for the probe, then the server "rotates" it away:
	// every load request gets 401 and the run fails on the error rate.
	fake := newFakeIngest()
	h := fake.handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fake.mu.Lock()
		if len(fake.accepted) == 1 {
			fake.secret = "rotated"
		}
		fake.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	code, stdout, stderr := runVoxbench(t, "ingest", "--url", srv.URL,
		"--duration", "300ms", "--warmup", "0", "--concurrency", "2", "--json")
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s", code, stderr)
	}
	rep := decodeIngest(t, stdout)
	if rep.Requests == 0 || rep.ErrorsByStatus[401] != rep.Requests || rep.EventsAcknowledged != 0 {
		t.Errorf("want every request counted as 401: %+v", rep.summary)
	}
	// Nothing was acknowledged, so nothing needs processing.
	if !rep.KeptUp || rep.EventsExpected != 0 {
		t.Errorf("kept up %v with %d expected", rep.KeptUp, rep.EventsExpected)
	}
	if !strings.Contains(stderr, "FAIL: 100.000% of requests failed") ||
		!strings.Contains(stderr, "rejected signatures (401): was endpoint "+fakeEndpointID+" rotated") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestIngestSetupFailures(t *testing.T) {
	// Sign-up rate-limited: the auth mode's hint.
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/v1/signup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		http.Error(w, `{"code":"over_request_rate_limit","message":"slow down"}`, http.StatusTooManyRequests)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	code, _, stderr := runVoxbench(t, "ingest", "--url", srv.URL, "--duration", "1s")
	if code != 1 {
		t.Errorf("429 on sign-up: exit %d, want 1", code)
	}
	for _, want := range []string{"HTTP 429", "slow down", "VOXANNE_RATE_LIMIT_SIGN_IN=100000/1m"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	// A server without org webhook endpoints.
	fake := newFakeIngest()
	fake.noEndpoints = true
	srv2 := httptest.NewServer(fake.handler())
	defer srv2.Close()
	code, _, stderr = runVoxbench(t, "ingest", "--url", srv2.URL, "--duration", "1s")
	if code != 1 || !strings.Contains(stderr, "POST /api/org/webhook-endpoints: HTTP 404") ||
		!strings.Contains(stderr, "offers no org webhook endpoints") {
		t.Errorf("no endpoints: exit %d\n%s", code, stderr)
	}

	// An answer without the secret: a clear failure, before any event.
	fake = newFakeIngest()
	fake.omitSecret = true
	srv3 := httptest.NewServer(fake.handler())
	defer srv3.Close()
	code, _, stderr = runVoxbench(t, "ingest", "--url", srv3.URL, "--duration", "1s")
	if code != 1 || !strings.Contains(stderr, "HTTP 201 without an id, a url and a secret") {
		t.Errorf("no secret: exit %d\n%s", code, stderr)
	}
	fake.mu.Lock()
	if fake.rejected != 0 || len(fake.accepted) != 0 || len(fake.bad) != 0 {
		t.Errorf("events were sent without a secret: %d rejected, %d stored, problems %v", fake.rejected, len(fake.accepted), fake.bad)
	}
	fake.mu.Unlock()

	// The public URL has a path prefix that --url lacks: the probe finds
	// nothing at the endpoint's path, and the hint says why.
	fake = newFakeIngest()
	fake.publicURL = "https://voxanne.example.com/voxanne"
	srv4 := httptest.NewServer(fake.handler())
	defer srv4.Close()
	code, _, stderr = runVoxbench(t, "ingest", "--url", srv4.URL, "--duration", "1s")
	if code != 1 || !strings.Contains(stderr, "probe event: HTTP 404") || !strings.Contains(stderr, "must agree on any path prefix") {
		t.Errorf("prefix mismatch: exit %d\n%s", code, stderr)
	}

	// Nothing listening.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	code, _, stderr = runVoxbench(t, "ingest", "--url", deadURL)
	if code != 1 || !strings.Contains(stderr, "is a Voxanne server running") {
		t.Errorf("no server: exit %d\n%s", code, stderr)
	}
}

func TestIngestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--url", "http://10.0.0.1:8080"},
		{"--duration", "11m"},
		{"--drain", "11m"},
		{"--drain", "-1s"},
		{"--warmup", "-1s"},
		{"--concurrency", "0"},
		{"--rate", "-1"},
		{"--vapi-secret", "x"}, // gone: the endpoint's own secret signs the events
		{"extra"},
		{"--bogus"},
	} {
		code, _, stderr := runVoxbench(t, append([]string{"ingest"}, args...)...)
		if code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	code, stdout, _ := runVoxbench(t, "ingest", "--help")
	if code != 0 {
		t.Errorf("--help: exit %d", code)
	}
	for _, f := range []string{"--url", "--concurrency", "--duration", "--warmup", "--json", "--drain", "--rate"} {
		if !strings.Contains(stdout, "  "+f) {
			t.Errorf("--help does not explain %s", f)
		}
	}
	for _, want := range []string{"POST /api/org/webhook-endpoints", "/api/webhooks/vapi/<id>", "endpoint's secret"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
	if strings.Contains(stdout, "--vapi-secret") || strings.Contains(stdout, "/api/phone-numbers") {
		t.Errorf("--help still describes the shared endpoint's set-up:\n%s", stdout)
	}
}

func TestDeliveryTarget(t *testing.T) {
	for _, c := range []struct{ base, path, want string }{
		{"http://127.0.0.1:8080", "/api/webhooks/vapi/e1", "http://127.0.0.1:8080/api/webhooks/vapi/e1"},
		{"http://127.0.0.1:8080/", "/api/webhooks/vapi/e1", "http://127.0.0.1:8080/api/webhooks/vapi/e1"},
		// A prefix only the bench's address has (a proxy adds it).
		{"http://127.0.0.1:8080/voxanne", "/api/webhooks/vapi/e1", "http://127.0.0.1:8080/voxanne/api/webhooks/vapi/e1"},
		// A prefix the public URL includes too: not repeated.
		{"http://127.0.0.1:8080/voxanne/", "/voxanne/api/webhooks/vapi/e1", "http://127.0.0.1:8080/voxanne/api/webhooks/vapi/e1"},
		{"http://127.0.0.1:8080/vox", "/voxanne/api/webhooks/vapi/e1", "http://127.0.0.1:8080/vox/voxanne/api/webhooks/vapi/e1"},
	} {
		base, err := checkLoopback(c.base)
		if err != nil {
			t.Fatal(err)
		}
		if got := deliveryTarget(base, c.path); got != c.want {
			t.Errorf("deliveryTarget(%s, %s) = %s, want %s", c.base, c.path, got, c.want)
		}
	}
}

func TestIngestInterrupted(t *testing.T) {
	// Ctrl-C during the load: the report is still printed, processing is
	// read once instead of awaited, and the run fails as unfinished.
	fake := newFakeIngest()
	fake.stallAfter = 1 // only the probe is ever processed
	srv := httptest.NewServer(fake.handler())
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	var out, errOut bytes.Buffer
	t0 := time.Now()
	code := run(ctx, []string{"ingest", "--url", srv.URL, "--duration", "10s",
		"--warmup", "0", "--concurrency", "2", "--json"}, &out, &errOut)
	if took := time.Since(t0); took > 3*time.Second {
		t.Errorf("an interrupted run took %v", took)
	}
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s", code, errOut.String())
	}
	rep := decodeIngest(t, out.String())
	if rep.StoppedEarly != "interrupted" || !rep.DrainInterrupted || rep.KeptUp || rep.EventsAcknowledged == 0 {
		t.Errorf("stopped %q, drain interrupted %v, kept up %v, acknowledged %d",
			rep.StoppedEarly, rep.DrainInterrupted, rep.KeptUp, rep.EventsAcknowledged)
	}
	if !strings.Contains(errOut.String(), "FAIL: interrupted before processing finished") {
		t.Errorf("stderr:\n%s", errOut.String())
	}
}
