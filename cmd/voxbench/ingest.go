package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voxanne/voxanne/webhook"
)

// pollInterval is how often GET /api/stats is read while waiting for the
// processing to catch up; queueSampleInterval is how often GET /health is
// read during the load for the job queue depth.
const (
	pollInterval        = 250 * time.Millisecond
	queueSampleInterval = time.Second
	// readTimeout bounds one stats or health read, so that a wedged server
	// cannot stretch the drain wait far past --drain.
	readTimeout = 5 * time.Second
)

// minProbeWait is the least time the set-up probe event gets to be
// processed, even with a short --drain.
const minProbeWait = 10 * time.Second

// callerPool is how many distinct callers the events come from: enough for a
// realistic spread of contacts, few enough that most events update an
// existing contact rather than create one.
const callerPool = 500

// benchNumber is the Vapi number the events name. Any number does, since the
// org's own endpoint decides the org; this one lies outside the callers'
// +1415555 0000..0499.
const benchNumber = "+14155551000"

const ingestUsageHead = `Usage: voxbench ingest [flags]

Loads the webhook ingestion path. Set-up signs up one user (one POST
/auth/v1/signup; its organization is created with it), connects the org's
own Vapi account (POST /api/org/webhook-endpoints {"provider":"vapi"}, which
answers the endpoint's delivery url and its secret), sends one probe event
and waits until it is processed. Then --concurrency workers POST
end-of-call-reports (about 1 KB each, a new call id per request, callers from
a pool of 500) for --duration after a --warmup, measuring the
acknowledgement (2xx) latency.

Every event goes to the path of the endpoint's url (/api/webhooks/vapi/<id>)
on --url, whatever host the server's VOXANNE_PUBLIC_URL names, and is signed
with the endpoint's secret (X-Timestamp + X-Signature, HMAC-SHA256). The
endpoint alone decides the org: no number is registered, and the server's own
VOXANNE_VAPI_SECRET is neither needed nor used.

After the load, GET /api/stats is polled every 250ms until the org's call
count includes every acknowledged event (warm-up ones too), or --drain
passes; GET /health checks.jobs.queued is sampled every second during the
load (with --service-token: /health shows job figures only to the service
role). Exits 1 if set-up fails, more than 1% of requests fail, or processing
does not finish within --drain.

Flags:
`

const ingestUsageTail = `
Output: a text report on stdout: set-up, then requests, duration,
requests/s, errors by status code and transport errors, acknowledgement
latency p50, p90, p99, p99.9 and max in ms (exact nearest-rank), events
acknowledged and acknowledged/s, then events processed, the processing rate
(processed events / time from the start of the load until the last processed
count was seen), whether processing kept up, the maximum job queue depth seen
and the time to drain after the load ended. With --json the text goes to
stderr and stdout gets one JSON object instead.
`

// ingestConfig is the parsed command line of "voxbench ingest".
type ingestConfig struct {
	loadFlags
	drain        time.Duration
	rate         float64
	serviceToken string
}

func parseIngestFlags(args []string, stdout, stderr io.Writer) (*ingestConfig, int) {
	var cfg ingestConfig
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs, "events", "`D` of load sent before measuring starts and not counted in the latency\n(its events are still expected to be processed); 0 for none")
	fs.DurationVar(&cfg.drain, "drain", 60*time.Second, "`D` to wait after the load for every acknowledged event to be processed\n(max 10m). The set-up probe event waits up to this too (at least 10s)")
	fs.StringVar(&cfg.serviceToken, "service-token", os.Getenv("VOXANNE_SERVICE_TOKEN"), "a service_role `TOKEN` (voxanne token service-role; default $VOXANNE_SERVICE_TOKEN)\nto read the job queue depth from GET /health, which shows its details only\nto the service role; without it the depth is reported as unknown")
	fs.Float64Var(&cfg.rate, "rate", 0, "offer at most `R` events/s in total (0: as fast as the workers go); a steady\noffered rate shows whether processing keeps up with it")
	if code := cfg.parse(fs, args, "ingest", ingestUsageHead, ingestUsageTail, stdout, stderr); code >= 0 {
		return nil, code
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	cfg.check(bad)
	if cfg.rate < 0 || cfg.rate > 1e6 {
		bad("--rate must be between 0 and 1000000")
	}
	if cfg.drain < 0 || cfg.drain > maxDuration {
		bad("--drain must be between 0 and %v", maxDuration)
	}
	if code := usageProblems("ingest", problems, stderr); code >= 0 {
		return nil, code
	}
	return &cfg, -1
}

// ingestReport is the --json output of an ingest run.
type ingestReport struct {
	Mode        string `json:"mode"`
	RunID       string `json:"run_id"`
	URL         string `json:"url"`
	Concurrency int    `json:"concurrency"`
	// EndpointID and EndpointURL are the org's Vapi webhook endpoint, its
	// url as the server gave it (the events go to its path on URL).
	EndpointID  string `json:"endpoint_id"`
	EndpointURL string `json:"endpoint_url"`
	// EventBytes is the size of the first event body sent.
	EventBytes     int     `json:"event_bytes"`
	SetupSeconds   float64 `json:"setup_seconds"`
	WarmupSeconds  float64 `json:"warmup_seconds"`
	WarmupRequests int64   `json:"warmup_requests"`
	StoppedEarly   string  `json:"stopped_early,omitempty"`

	// Acknowledgement: the measured requests answered 2xx.
	EventsAcknowledged    int     `json:"events_acknowledged"`
	AcknowledgedPerSecond float64 `json:"acknowledged_per_second"`

	// Processing. Every event the server acknowledged must become a call,
	// warm-up ones included, so the target is measured + warm-up
	// acknowledgements; the probe of the set-up is already in the baseline.
	WarmupAcknowledged int64 `json:"warmup_events_acknowledged"`
	EventsExpected     int64 `json:"events_expected"`
	EventsProcessed    int   `json:"events_processed"`
	// ProcessingSeconds runs from the start of the load (warm-up included)
	// until the last processed count was seen.
	ProcessingSeconds   float64 `json:"processing_seconds"`
	ProcessingPerSecond float64 `json:"processing_per_second"`
	KeptUp              bool    `json:"kept_up"`
	// DrainSeconds is the time from the end of the load until every
	// acknowledged event was seen processed; null if that did not happen.
	DrainSeconds      *float64 `json:"drain_seconds"`
	DrainLimitSeconds float64  `json:"drain_limit_seconds"`
	DrainInterrupted  bool     `json:"drain_interrupted,omitempty"`
	// MaxQueueDepth is the largest checks.jobs.queued seen; null when
	// /health never reported it.
	MaxQueueDepth *int `json:"max_queue_depth"`
	QueueSamples  int  `json:"queue_samples"`
	// Resources covers the warm-up, the load and the drain: processing is
	// part of what ingestion costs.
	Resources resourceReport `json:"resources"`
	summary
}

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, code := parseIngestFlags(args, stdout, stderr)
	if cfg == nil {
		return code
	}
	out := stdout
	if cfg.json {
		out = stderr
	}
	client := newClient(cfg.concurrency)
	defer client.CloseIdleConnections()

	runID := randomHex(4)
	rep := ingestReport{
		Mode: "ingest", RunID: runID, URL: cfg.base.String(), Concurrency: cfg.concurrency,
		WarmupSeconds: cfg.warmup.Seconds(), DrainLimitSeconds: cfg.drain.Seconds(),
	}
	fmt.Fprintf(out, "voxbench ingest: run %s against %s\n", runID, cfg.base)
	fmt.Fprintln(out, "set-up")
	setupStart := time.Now()
	b := &bench{cfg: cfg, client: client, runID: runID, numberID: "bench-" + runID}

	// One user, whose sign-up creates its organization.
	t0 := time.Now()
	email := fmt.Sprintf("bench-ingest-%s@example.com", runID)
	tok, err := obtainToken(ctx, client, endpoint(cfg.base, "/auth/v1/signup"), map[string]any{
		"email": email, "password": randomPassword(),
		"data": map[string]string{"org_name": "Bench ingest " + runID},
	})
	if err != nil {
		return ingestSetupFailed(stderr, cfg, fmt.Errorf("sign-up (%s): %w", email, err))
	}
	b.token = tok
	line(out, "sign-up", "%s (with its own org) in %.3fs", email, time.Since(t0).Seconds())

	// Its own Vapi webhook endpoint.
	t0 = time.Now()
	if err := b.createEndpoint(ctx); err != nil {
		code := ingestSetupFailed(stderr, cfg, err)
		var he *httpError
		if errors.As(err, &he) && he.status == http.StatusNotFound {
			fmt.Fprintln(stderr, "hint: the server offers no org webhook endpoints; voxbench needs a Voxanne with POST /api/org/webhook-endpoints")
		}
		return code
	}
	rep.EndpointID, rep.EndpointURL = b.endpointID, b.endpointURL
	line(out, "endpoint", "vapi %s, url %s, in %.3fs", b.endpointID, b.endpointURL, time.Since(t0).Seconds())

	// The stats period: wide enough for the whole run, fixed so that every
	// read counts the same calls.
	y, m, d := time.Now().UTC().Date()
	from := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1).Format(time.RFC3339)
	b.statsURL = endpoint(cfg.base, "/api/stats?"+url.Values{"from": {from}}.Encode())
	before, err := b.readCalls()
	if err != nil {
		return ingestSetupFailed(stderr, cfg, fmt.Errorf("GET /api/stats: %w", err))
	}

	// A probe: one signed event end to end. A delivery path or secret the
	// server refuses fails here, in a second, rather than after a whole run
	// of errors; and a server whose jobs do not run fails here rather than
	// after the load.
	t0 = time.Now()
	probe := b.event(fmt.Sprintf("bench-%s-probe", runID), time.Now())
	rep.EventBytes = len(probe)
	status, body, err := b.send(probe, func(int) bool { return true })
	if err != nil {
		return ingestSetupFailed(stderr, cfg, fmt.Errorf("probe event: %w", err))
	}
	if !isSuccess(status) {
		code := ingestSetupFailed(stderr, cfg, fmt.Errorf("probe event: %w", &httpError{status: status, body: truncate(body)}))
		switch status {
		case http.StatusUnauthorized:
			fmt.Fprintf(stderr, "hint: the server refused the endpoint's own secret: is %s the server that created endpoint %s?\n", cfg.base, b.endpointID)
		case http.StatusNotFound:
			fmt.Fprintf(stderr, "hint: nothing answers POST %s: the endpoint's url %s (from the server's VOXANNE_PUBLIC_URL) and --url must agree on any path prefix\n", b.target, b.endpointURL)
		}
		return code
	}
	acked := time.Since(t0)
	probeWait := max(cfg.drain, minProbeWait)
	pr := b.waitCalls(ctx, before+1, time.Now().Add(probeWait))
	if pr.err != nil && !pr.seen {
		return ingestSetupFailed(stderr, cfg, fmt.Errorf("GET /api/stats: %w", pr.err))
	}
	if !pr.done {
		if pr.interrupted {
			return ingestSetupFailed(stderr, cfg, context.Canceled)
		}
		fmt.Fprintf(stderr, "voxbench ingest: set-up failed: the probe event was acknowledged (HTTP %d) but not processed within %v\n", status, probeWait)
		fmt.Fprintln(stderr, "hint: are the server's background jobs running? GET /health shows checks.jobs")
		return 1
	}
	baseline := pr.calls
	line(out, "probe", "1 signed event acknowledged in %.3fms, processed %.3fs later", float64(acked.Microseconds())/1000, pr.reachedAt.Sub(t0.Add(acked)).Seconds())
	line(out, "baseline", "%d call%s in the org since %s", baseline, plural(baseline), from)
	rep.SetupSeconds = round(time.Since(setupStart).Seconds(), 3)

	// Load.
	fmt.Fprintln(out, "load")
	line(out, "request", "POST %s", b.target)
	line(out, "events", "signed end-of-call-report, %d bytes, a new call id each, %d callers", rep.EventBytes, callerPool)
	line(out, "concurrency", "%d", cfg.concurrency)
	var (
		seq        atomic.Int64
		warmAcked  atomic.Int64
		queue      = &queueSampler{target: endpoint(cfg.base, "/health"), client: client, token: cfg.serviceToken}
		stopSample = make(chan struct{})
		sampled    = make(chan struct{})
	)
	loadStart := time.Now()
	stopMeter := cfg.meter()
	go func() {
		defer close(sampled)
		queue.run(stopSample)
	}()
	res := runLoad(ctx, cfg.concurrency, cfg.warmup, cfg.duration, func(warm bool, keep func(int) bool) (int, []byte, error) {
		id := fmt.Sprintf("bench-%s-%d", runID, seq.Add(1))
		status, body, err := b.send(b.event(id, time.Now()), keep)
		if warm && err == nil && isSuccess(status) {
			warmAcked.Add(1)
		}
		return status, body, err
	}, pacer(ctx, cfg.rate))
	loadEnd := time.Now()
	close(stopSample)
	<-sampled
	queue.sample() // the queue is likely deepest right at the end

	rep.WarmupRequests = res.warmupRequests
	rep.StoppedEarly = res.stoppedEarly
	rep.summary = res.stats.summary()
	rep.EventsAcknowledged = rep.OK
	if res.stats.elapsed > 0 {
		rep.AcknowledgedPerSecond = round(float64(rep.OK)/res.stats.elapsed.Seconds(), 1)
	}
	rep.WarmupAcknowledged = warmAcked.Load()
	rep.EventsExpected = rep.WarmupAcknowledged + int64(rep.OK)
	line(out, "warm-up", "%v, %d requests, %d acknowledged (not in the latency; their processing is awaited)",
		cfg.warmup, res.warmupRequests, rep.WarmupAcknowledged)
	if res.stoppedEarly == "interrupted" {
		line(out, "stopped early", "interrupted; processing is read once, not awaited")
	}

	// Processing: wait for the calls to appear, unless interrupted.
	deadline := loadEnd.Add(cfg.drain)
	if res.stoppedEarly == "interrupted" {
		deadline = time.Now() // one read
	}
	dr := b.waitCalls(ctx, baseline+int(rep.EventsExpected), deadline)
	rep.Resources = stopMeter()
	rep.DrainInterrupted = dr.interrupted
	if dr.seen {
		rep.EventsProcessed = dr.calls - baseline
		if rep.EventsProcessed > 0 {
			took := dr.reachedAt.Sub(loadStart)
			rep.ProcessingSeconds = round(took.Seconds(), 3)
			rep.ProcessingPerSecond = round(float64(rep.EventsProcessed)/took.Seconds(), 1)
		}
	}
	rep.KeptUp = dr.done
	if dr.done {
		s := round(max(0, dr.reachedAt.Sub(loadEnd)).Seconds(), 3)
		rep.DrainSeconds = &s
	}
	if n, ok := queue.maxDepth(); ok {
		rep.MaxQueueDepth = &n
	}
	rep.QueueSamples = queue.count()

	rep.summary.writeText(out)
	fmt.Fprintln(out, "ingestion")
	line(out, "acknowledged", "%d events, %.1f/s over %.3fs", rep.EventsAcknowledged, rep.AcknowledgedPerSecond, rep.DurationSeconds)
	fmt.Fprintf(out, "processing (GET /api/stats calls, every %v for up to %v after the load)\n", pollInterval, cfg.drain)
	line(out, "expected", "%d events (%d measured + %d warm-up acknowledged)", rep.EventsExpected, rep.EventsAcknowledged, rep.WarmupAcknowledged)
	if dr.seen {
		line(out, "processed", "%d", rep.EventsProcessed)
	} else {
		line(out, "processed", "unknown: %v", dr.err)
	}
	line(out, "rate", "%.1f events/s (%d in %.3fs from the start of the load)", rep.ProcessingPerSecond, rep.EventsProcessed, rep.ProcessingSeconds)
	switch {
	case dr.done:
		line(out, "kept up", "yes, within --drain %v: drained %.3fs after the load ended", cfg.drain, *rep.DrainSeconds)
	case dr.interrupted:
		line(out, "kept up", "unknown: interrupted with %d of %d processed", rep.EventsProcessed, rep.EventsExpected)
	default:
		line(out, "kept up", "NO: %d of %d processed when --drain %v ran out", rep.EventsProcessed, rep.EventsExpected, cfg.drain)
	}
	if dr.err != nil && dr.seen {
		line(out, "stats errors", "%d of %d reads failed, e.g. %s", dr.failed, dr.polls, oneLine(dr.err.Error(), 160))
	}
	if rep.MaxQueueDepth != nil {
		line(out, "queue depth", "max %d queued jobs (GET /health checks.jobs.queued, %d samples)", *rep.MaxQueueDepth, rep.QueueSamples)
	} else {
		line(out, "queue depth", "unknown: GET /health reported no checks.jobs.queued (%s)", queue.lastError())
	}
	rep.Resources.writeText(out)
	if rep.ErrorsByStatus[http.StatusUnauthorized] > 0 {
		fmt.Fprintf(out, "note: the server rejected signatures (401): was endpoint %s rotated or deleted during the run?\n", b.endpointID)
	}
	if !dr.done && !dr.interrupted {
		if n := queue.unroutableGrowth(); n > 0 {
			fmt.Fprintf(out, "note: the server's unroutable events grew by %d during the load: events it could not route to the org are never processed\n", n)
		}
	}

	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "voxbench ingest:", err)
			return 1
		}
	}
	code = 0
	if rep.tooManyFailures() {
		if rep.Requests == 0 {
			fmt.Fprintln(stderr, "FAIL: no requests were measured")
		} else {
			fmt.Fprintf(stderr, "FAIL: %.3f%% of requests failed (limit %.0f%%)\n", rep.FailedPercent, failLimitPercent)
		}
		code = 1
	}
	if !rep.KeptUp {
		if dr.interrupted {
			fmt.Fprintf(stderr, "FAIL: interrupted before processing finished (%d of %d events processed)\n", rep.EventsProcessed, rep.EventsExpected)
		} else {
			fmt.Fprintf(stderr, "FAIL: processing did not finish within --drain %v (%d of %d events processed)\n", cfg.drain, rep.EventsProcessed, rep.EventsExpected)
		}
		code = 1
	}
	return code
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ingestSetupFailed reports a failed set-up with whatever hint applies. Exit 1.
func ingestSetupFailed(stderr io.Writer, cfg *ingestConfig, err error) int {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "voxbench ingest: set-up interrupted")
		return 1
	}
	fmt.Fprintln(stderr, "voxbench ingest: set-up failed:", err)
	var he *httpError
	switch {
	case errors.As(err, &he) && he.status == http.StatusTooManyRequests:
		fmt.Fprintln(stderr, rateLimitHint)
	case errors.As(err, &he) && strings.Contains(he.body, "signup_disabled"):
		fmt.Fprintln(stderr, "hint: the server has sign-ups disabled (VOXANNE_DISABLE_SIGNUP); voxbench needs one sign-up")
	case !errors.As(err, &he):
		fmt.Fprintf(stderr, "hint: is a Voxanne server running at %s (voxanne serve)?\n", cfg.base)
	}
	return 1
}

// bench is the state an ingest run shares between set-up, load and drain.
type bench struct {
	cfg         *ingestConfig
	client      *http.Client
	runID       string
	token       string // the bench user's access token
	numberID    string // the Vapi phone number id the events name
	endpointID  string // the org's Vapi webhook endpoint
	endpointURL string // its url, as the server gave it
	target      string // where the events go: the url's path on --url
	secret      string // the endpoint's secret, which signs every event
	statsURL    string
}

// createEndpoint connects the org's own Vapi account: POST
// /api/org/webhook-endpoints answers the endpoint's delivery url and its
// secret, shown only this once. Deliveries there belong to the org whatever
// number they name; numbers an org registers itself no longer route the
// shared /api/webhooks/vapi.
func (b *bench) createEndpoint(ctx context.Context) error {
	const path = "/api/org/webhook-endpoints"
	status, data, err := sendJSON(ctx, b.client, http.MethodPost, endpoint(b.cfg.base, path), b.token, map[string]string{"provider": "vapi"})
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	if !isSuccess(status) {
		return fmt.Errorf("POST %s: %w", path, &httpError{status: status, body: truncate(data)})
	}
	var ep struct {
		ID     string `json:"id"`
		URL    string `json:"url"`
		Secret string `json:"secret"`
	}
	// The body is not quoted: it holds the secret.
	if err := json.Unmarshal(data, &ep); err != nil || ep.ID == "" || ep.URL == "" || ep.Secret == "" {
		return fmt.Errorf("POST %s: HTTP %d without an id, a url and a secret", path, status)
	}
	u, err := url.Parse(ep.URL)
	if err != nil || !strings.HasSuffix(u.EscapedPath(), "/"+ep.ID) {
		return fmt.Errorf("POST %s: endpoint %s has url %q, not a delivery url ending in its id", path, ep.ID, ep.URL)
	}
	b.endpointID, b.endpointURL, b.secret = ep.ID, ep.URL, ep.Secret
	b.target = deliveryTarget(b.cfg.base, u.EscapedPath())
	return nil
}

// deliveryTarget returns where the bench sends what the server expects at a
// url with this path: the path on the --url base, since the public url
// (VOXANNE_PUBLIC_URL) may name another host than the loopback address the
// bench talks to. A path prefix of the base that the path already starts
// with is not repeated.
func deliveryTarget(base *url.URL, path string) string {
	if prefix := strings.TrimSuffix(base.EscapedPath(), "/"); prefix != "" && strings.HasPrefix(path, prefix+"/") {
		path = strings.TrimPrefix(path, prefix)
	}
	return endpoint(base, path)
}

// vapiEvent is the body of one end-of-call-report. Only the fields Voxanne
// reads are sent, with values shaped like Vapi's.
type vapiEvent struct {
	Message vapiMessage `json:"message"`
}

type vapiMessage struct {
	Type        string       `json:"type"`
	Timestamp   int64        `json:"timestamp"`
	EndedReason string       `json:"endedReason"`
	StartedAt   string       `json:"startedAt"`
	EndedAt     string       `json:"endedAt"`
	PhoneNumber vapiNumber   `json:"phoneNumber"`
	Customer    vapiCustomer `json:"customer"`
	Call        vapiCall     `json:"call"`
	Artifact    vapiArtifact `json:"artifact"`
	Analysis    vapiAnalysis `json:"analysis"`
}

type vapiNumber struct {
	ID     string `json:"id"`
	Number string `json:"number"`
}

type vapiCustomer struct {
	Number string `json:"number"`
}

type vapiCall struct {
	ID            string `json:"id"`
	OrgID         string `json:"orgId"`
	Type          string `json:"type"`
	PhoneNumberID string `json:"phoneNumberId"`
	CreatedAt     string `json:"createdAt"`
}

type vapiArtifact struct {
	Transcript string `json:"transcript"`
}

type vapiAnalysis struct {
	Summary string `json:"summary"`
}

// benchTranscript and benchSummary make an event about 1 KB, like a short
// real call.
const (
	benchTranscript = "AI: Thank you for calling Bayview Dental, this is Ava. How can I help you today?\n" +
		"User: Hi, I'd like to book a cleaning for next week if you have anything in the morning.\n" +
		"AI: Of course. We have Tuesday at nine or Thursday at ten thirty. Which works better for you?\n" +
		"User: Thursday at ten thirty, please. And can you remind me the day before?\n" +
		"AI: You're booked for Thursday at ten thirty, and we'll send a reminder on Wednesday. Anything else?\n" +
		"User: No, that's all. Thanks!\n" +
		"AI: Have a great day."
	benchSummary = "The caller booked a cleaning for Thursday at 10:30 and asked for a reminder the day before."
)

// rfc3339ms is RFC 3339 with milliseconds, as Vapi writes times.
const rfc3339ms = "2006-01-02T15:04:05.000Z07:00"

// event renders the end-of-call-report of call id, as sent at now.
func (b *bench) event(id string, now time.Time) []byte {
	now = now.UTC()
	ev := vapiEvent{Message: vapiMessage{
		Type:        "end-of-call-report",
		Timestamp:   now.UnixMilli(),
		EndedReason: "customer-ended-call",
		StartedAt:   now.Add(-2 * time.Minute).Format(rfc3339ms),
		EndedAt:     now.Format(rfc3339ms),
		PhoneNumber: vapiNumber{ID: b.numberID, Number: benchNumber},
		Customer:    vapiCustomer{Number: fmt.Sprintf("+1415555%04d", rand.IntN(callerPool))},
		Call: vapiCall{ID: id, OrgID: "bench", Type: "inboundPhoneCall", PhoneNumberID: b.numberID,
			CreatedAt: now.Format(rfc3339ms)},
		Artifact: vapiArtifact{Transcript: benchTranscript},
		Analysis: vapiAnalysis{Summary: benchSummary},
	}}
	body, err := json.Marshal(ev)
	if err != nil {
		panic(err) // only strings and ints: cannot fail
	}
	return body
}

// send POSTs one event to the endpoint, signed with its secret, and reads the
// whole answer, keeping the body when keep says so. Like get, it carries no
// cancellable context: on Ctrl-C the in-flight requests finish normally.
// Building and signing the body happen before the request and take
// microseconds.
func (b *bench) send(body []byte, keep func(int) bool) (int, []byte, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, b.target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, ts)
	req.Header.Set(webhook.HeaderSignature, webhook.SignVapi(b.secret, ts, body))
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var data []byte
	if keep(resp.StatusCode) {
		data, _ = io.ReadAll(io.LimitReader(resp.Body, maxBodyKept))
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}

// readCalls returns the org's call count in the stats period.
func (b *bench) readCalls() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	status, data, err := sendJSON(ctx, b.client, http.MethodGet, b.statsURL, b.token, nil)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, &httpError{status: status, body: truncate(data)}
	}
	var st struct {
		Calls *int `json:"calls"`
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Calls == nil {
		return 0, fmt.Errorf("HTTP 200 without a numeric calls field\n%s", truncate(data))
	}
	return *st.Calls, nil
}

// drainResult is what waitCalls saw.
type drainResult struct {
	seen        bool      // at least one read succeeded
	calls       int       // the last count read
	reachedAt   time.Time // when calls was first seen (the response's arrival)
	done        bool      // calls reached the target
	interrupted bool      // ctx ended the wait
	polls       int
	failed      int
	err         error // the last failed read
}

// waitCalls reads the call count every pollInterval until it reaches want or
// deadline passes (at least one read is made, and one at the deadline), or
// ctx is done. reachedAt is when the last count was first seen, so that the
// processing rate is not diluted by reads that saw nothing new.
func (b *bench) waitCalls(ctx context.Context, want int, deadline time.Time) drainResult {
	var r drainResult
	for {
		start := time.Now()
		n, err := b.readCalls()
		r.polls++
		if err != nil {
			r.failed++
			r.err = err
		} else if !r.seen || n != r.calls {
			r.seen, r.calls, r.reachedAt = true, n, time.Now()
		}
		if r.seen && r.calls >= want {
			r.done = true
			return r
		}
		left := time.Until(deadline)
		if left <= 0 {
			// A run interrupted during the load reads once and lands here.
			r.interrupted = ctx.Err() != nil
			return r
		}
		t := time.NewTimer(min(left, max(0, pollInterval-time.Since(start))))
		select {
		case <-ctx.Done():
			t.Stop()
			r.interrupted = true
			return r
		case <-t.C:
		}
	}
}

// queueSampler reads GET /health checks.jobs during the load.
type queueSampler struct {
	target string
	client *http.Client
	token  string // service_role: /health shows details only to it

	mu         sync.Mutex
	samples    int
	maxQueued  int
	unroutable []int // checks.jobs.unroutable_events, first and latest
	lastErr    string
}

// run samples at once and then every queueSampleInterval until stop closes.
func (q *queueSampler) run(stop <-chan struct{}) {
	tick := time.NewTicker(queueSampleInterval)
	defer tick.Stop()
	for {
		q.sample()
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// sample reads /health once. A degraded server answers 503 with the same
// body, so the status is not checked: whatever jobs figures it has are used.
func (q *queueSampler) sample() {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	status, data, err := sendJSON(ctx, q.client, http.MethodGet, q.target, q.token, nil)
	var h struct {
		Checks struct {
			Jobs struct {
				Queued     *int `json:"queued"`
				Unroutable *int `json:"unroutable_events"`
			} `json:"jobs"`
		} `json:"checks"`
	}
	if err == nil {
		if jerr := json.Unmarshal(data, &h); jerr != nil {
			err = fmt.Errorf("HTTP %d, not JSON: %s", status, oneLine(truncate(data), 80))
		} else if h.Checks.Jobs.Queued == nil && q.token == "" {
			err = errors.New("GET /health shows job figures only to the service role: give --service-token")
		} else if h.Checks.Jobs.Queued == nil {
			err = fmt.Errorf("HTTP %d without checks.jobs.queued", status)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err != nil {
		q.lastErr = err.Error()
		return
	}
	q.samples++
	q.maxQueued = max(q.maxQueued, *h.Checks.Jobs.Queued)
	if u := h.Checks.Jobs.Unroutable; u != nil {
		if len(q.unroutable) < 2 {
			q.unroutable = append(q.unroutable, *u)
		} else {
			q.unroutable[1] = *u
		}
	}
}

func (q *queueSampler) maxDepth() (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.maxQueued, q.samples > 0
}

func (q *queueSampler) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.samples
}

func (q *queueSampler) lastError() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.lastErr == "" {
		return "no samples"
	}
	return oneLine(q.lastErr, 160)
}

// unroutableGrowth is how many events the server stored as unroutable between
// the first and the last sample (server-wide, so other traffic counts too).
func (q *queueSampler) unroutableGrowth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.unroutable) < 2 {
		return 0
	}
	return q.unroutable[1] - q.unroutable[0]
}

// pacer returns a function that blocks until the next request may go, spacing
// requests evenly at rate per second across all workers (no-op for rate 0).
func pacer(ctx context.Context, rate float64) func() {
	if rate <= 0 {
		return func() {}
	}
	interval := time.Duration(float64(time.Second) / rate)
	var mu sync.Mutex
	next := time.Now()
	return func() {
		mu.Lock()
		at := next
		next = next.Add(interval)
		if now := time.Now(); next.Before(now) {
			next = now // do not burst to catch up after a stall
		}
		mu.Unlock()
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
	}
}
