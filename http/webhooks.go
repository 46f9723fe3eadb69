package http

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/webhook"
)

// maxWebhookBody is the webhook body limit.
const maxWebhookBody = 5 << 20

// OutcomeHeader names, on the answer to a stored delivery, what became of
// it: stored, duplicate or unroutable (stored, but no org is assigned its
// number: it will not be processed).
const OutcomeHeader = "X-Voxanne-Outcome"

// WebhookConfig holds the webhook verification settings.
type WebhookConfig struct {
	// PublicURL is the external base URL Twilio signs requests against.
	PublicURL    string
	Vapi         webhook.VapiSecrets
	TwilioTokens []string
}

func (s *Server) registerWebhooks() {
	s.webhookOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "voxanne_webhook_events_total",
		Help: "Webhook deliveries by provider, type and outcome (stored, duplicate, unroutable, ignored, answered, rejected, invalid).",
	}, []string{"provider", "type", "outcome"})
	s.Registry.MustRegister(s.webhookOutcomes)
	s.route("POST /api/webhooks/vapi", s.handleVapi)
	s.route("POST /api/webhooks/twilio/sms", s.twilio("sms"))
	s.route("POST /api/webhooks/twilio/status", s.twilio("status"))
	if s.Endpoints != nil {
		s.route("POST /api/webhooks/vapi/{endpoint}", s.handleVapi)
		s.route("POST /api/webhooks/twilio/{endpoint}/sms", s.twilio("sms"))
		s.route("POST /api/webhooks/twilio/{endpoint}/status", s.twilio("status"))
	}
}

// webhookSource is what a delivery is verified with and which org it is for:
// the platform secrets on the shared endpoints (the org then comes from the
// operator's assignments), or an org's own endpoint's secrets, which decide
// the org by themselves.
type webhookSource struct {
	orgID string // "" on the shared endpoints
	// dedup prefixes dedup keys, so that deliveries to one org's endpoint can
	// never be taken for (or block) another's.
	dedup  string
	vapi   webhook.VapiSecrets
	twilio []string
}

// webhookSource finds the source of a delivery from its path. An unknown
// endpoint is answered like a bad signature: a caller learns nothing about
// which endpoint ids exist.
func (s *Server) webhookSource(r *http.Request, provider string) (webhookSource, error) {
	id := r.PathValue("endpoint")
	if id == "" {
		return webhookSource{vapi: s.WebhookConfig.Vapi, twilio: s.WebhookConfig.TwilioTokens}, nil
	}
	if _, err := uuid.Parse(id); err != nil {
		return webhookSource{}, errBadSignature
	}
	c, err := s.Endpoints.EndpointCredentials(r.Context(), provider, id)
	if voxanne.ErrorCode(err) == voxanne.ENOTFOUND {
		return webhookSource{}, errBadSignature
	} else if err != nil {
		return webhookSource{}, err
	}
	src := webhookSource{orgID: c.OrgID, dedup: "ep:" + id + ":", twilio: c.Secrets}
	src.vapi.Current = c.Secrets[0]
	if len(c.Secrets) > 1 {
		src.vapi.Previous = c.Secrets[1]
	}
	return src, nil
}

// rejected counts and logs a delivery whose signature failed.
func (s *Server) rejected(r *http.Request, provider, typ string, reason error) error {
	s.outcome(provider, typ, "rejected")
	s.Logger.LogAttrs(r.Context(), slog.LevelWarn, "security_event", slog.String("event", "webhook_rejected"),
		slog.String("provider", provider), slog.String("reason", reason.Error()), slog.String("ip", s.clientIP(r)),
		slog.String("endpoint", r.PathValue("endpoint")))
	return errBadSignature
}

// readWebhookBody reads at most maxWebhookBody bytes: a larger body is refused
// by its Content-Length before anything is read, or cut off while reading.
func readWebhookBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > maxWebhookBody {
		return nil, voxanne.ReasonErrorf(voxanne.ETOOLARGE, voxanne.ReasonTooLarge, "the body is larger than 5 MiB")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, voxanne.ReasonErrorf(voxanne.ETOOLARGE, voxanne.ReasonTooLarge, "the body is larger than 5 MiB")
		}
		return nil, voxanne.Errorf(voxanne.EINVALID, "could not read the body")
	}
	return body, nil
}

var errBadSignature = voxanne.ReasonErrorf(voxanne.EUNAUTHORIZED, voxanne.ReasonInvalidSignature, "the webhook signature is missing or invalid")

func (s *Server) outcome(provider, typ, outcome string) {
	s.webhookOutcomes.WithLabelValues(provider, typ, outcome).Inc()
}

// handleVapi verifies a Vapi server message over its raw body, then answers the
// synchronous types at once and stores the informational ones durably.
func (s *Server) handleVapi(w http.ResponseWriter, r *http.Request) error {
	body, err := readWebhookBody(w, r)
	if err != nil {
		return err
	}
	src, err := s.webhookSource(r, "vapi")
	if err == errBadSignature {
		return s.rejected(r, "vapi", "unknown", errors.New("unknown endpoint"))
	} else if err != nil {
		return err
	}
	if err := webhook.VerifyVapi(r.Header, body, src.vapi, time.Now()); err != nil {
		return s.rejected(r, "vapi", "unknown", err)
	}
	// The delivery is authentic: text that cannot be stored is cleaned rather
	// than refused, so that it is processed and not retried forever.
	body = voxanne.CleanJSONText(body)
	m, err := webhook.ParseVapi(body)
	if err != nil {
		s.outcome("vapi", "unknown", "invalid")
		return voxanne.Errorf(voxanne.EINVALID, "the body is not a Vapi server message")
	}
	route := voxanne.Route{OrgID: src.orgID, ProviderNumberID: m.PhoneNumberID(), AssistantID: m.AssistantID()}
	if e, ok := webhook.NormalizeE164(m.PhoneNumber.Number); ok {
		route.E164 = e
	}
	ctx := r.Context()
	switch m.Type {
	case "assistant-request":
		org, err := s.Webhooks.Route(ctx, "vapi", route)
		if err != nil {
			return err
		}
		s.outcome("vapi", m.Type, "answered")
		if org.OrgID == "" || org.AssistantID == "" {
			return writeJSON(w, http.StatusOK, map[string]string{"error": "Sorry, this number is not in service."})
		}
		return writeJSON(w, http.StatusOK, map[string]string{"assistantId": org.AssistantID})
	case "tool-calls":
		org, err := s.Webhooks.Route(ctx, "vapi", route)
		if err != nil {
			return err
		}
		s.outcome("vapi", m.Type, "answered")
		caller := m.Customer.Number
		if caller == "" {
			caller = m.Call.Customer.Number
		}
		results := make([]voxanne.ToolResult, 0, len(m.ToolCalls))
		for _, tc := range m.ToolCalls {
			results = append(results, s.runTool(r, org, caller, tc))
		}
		return writeJSON(w, http.StatusOK, map[string]any{"results": results})
	case "status-update", "end-of-call-report", "hang":
		if m.CallID() == "" {
			s.outcome("vapi", m.Type, "invalid")
			return voxanne.Errorf(voxanne.EINVALID, "message.call.id is required")
		}
		return s.store(w, r, voxanne.InboundEvent{Provider: "vapi", EventType: m.Type, DedupKey: src.dedup + "vapi:" + m.DedupKey(),
			Payload: body, Event: webhook.VapiEvent(m), Route: route}, func() error { return writeJSON(w, http.StatusOK, map[string]bool{"received": true}) })
	default:
		s.outcome("vapi", "other", "ignored")
		return writeJSON(w, http.StatusOK, map[string]bool{"received": true})
	}
}

// runTool runs one tool call; only take_message is built in.
func (s *Server) runTool(r *http.Request, org voxanne.Routed, caller string, tc webhook.ToolCall) voxanne.ToolResult {
	res := voxanne.ToolResult{ToolCallID: tc.ID, Name: tc.Name}
	if tc.Name != "take_message" {
		res.Error = "unknown tool " + tc.Name
		return res
	}
	var args struct {
		Name    string `json:"name"`
		Phone   string `json:"phone"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(tc.Arguments, &args); err != nil || args.Message == "" {
		res.Error = "take_message needs a message"
		return res
	}
	if org.OrgID == "" {
		res.Error = "this number is not in service"
		return res
	}
	// The note goes on the caller's contact: the model fills the arguments from
	// what the caller says, so a number in them must not pick another contact.
	// It is used only when the call has no number (a web call), and otherwise
	// kept in the note as the number to call back.
	number, message := caller, args.Message
	if number == "" {
		number = args.Phone
	} else if args.Phone != "" && args.Phone != caller {
		message += " (call back on " + args.Phone + ")"
	}
	if err := s.Webhooks.TakeMessage(r.Context(), org, number, args.Name, message); err != nil {
		if voxanne.ErrorCode(err) == voxanne.EINVALID {
			res.Error = "a valid phone number is needed to take a message"
			return res
		}
		s.logUnexpected(r, err)
		res.Error = "the message could not be saved"
		return res
	}
	res.Result = "Message saved. Someone will get back to you."
	return res
}

// store stores ev, counts the outcome and answers with reply.
func (s *Server) store(w http.ResponseWriter, r *http.Request, ev voxanne.InboundEvent, reply func() error) error {
	routed, dup, err := s.Webhooks.Store(r.Context(), ev)
	if err != nil {
		return err
	}
	outcome := "stored"
	switch {
	case dup:
		outcome = "duplicate"
	case routed.OrgID == "":
		outcome = "unroutable"
	}
	s.outcome(ev.Provider, ev.EventType, outcome)
	// Only now, stored: what became of the event, for senders that care
	// (voxanne webhook send); Vapi and Twilio ignore it.
	w.Header().Set(OutcomeHeader, outcome)
	return reply()
}

// twilio handles Twilio's form-encoded SMS and status webhooks.
func (s *Server) twilio(kind string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := readWebhookBody(w, r)
		if err != nil {
			return err
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
			s.outcome("twilio", kind, "invalid")
			return voxanne.Errorf(voxanne.EINVALID, "the body must be application/x-www-form-urlencoded")
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			s.outcome("twilio", kind, "invalid")
			return voxanne.Errorf(voxanne.EINVALID, "the body is not a valid form")
		}
		src, err := s.webhookSource(r, "twilio")
		if err == errBadSignature {
			return s.rejected(r, "twilio", kind, errors.New("unknown endpoint"))
		} else if err != nil {
			return err
		}
		// Twilio signs the URL it called: our public base URL, the path and the
		// query exactly as sent.
		signedURL := s.WebhookConfig.PublicURL + r.URL.RequestURI()
		if err := webhook.VerifyTwilio(r.Header.Get("X-Twilio-Signature"), src.twilio, signedURL, form); err != nil {
			return s.rejected(r, "twilio", kind, err)
		}
		form = cleanForm(form)
		sms, err := webhook.ParseTwilioSMS(form)
		if err != nil || (kind == "status" && sms.MessageStatus == "") {
			s.outcome("twilio", kind, "invalid")
			return voxanne.Errorf(voxanne.EINVALID, "MessageSid (and MessageStatus for status callbacks) are required")
		}
		payload, _ := json.Marshal(form)
		ev := voxanne.InboundEvent{Provider: "twilio", EventType: kind, Payload: payload, Event: webhook.TwilioEvent(kind, sms),
			Route: voxanne.Route{OrgID: src.orgID}}
		if kind == "sms" {
			ev.DedupKey = src.dedup + "twilio:sms:" + sms.MessageSid
			if e, ok := webhook.NormalizeE164(sms.To); ok {
				ev.Route.E164 = e
			}
		} else {
			ev.DedupKey = src.dedup + "twilio:status:" + sms.MessageSid + ":" + sms.MessageStatus
			ev.Route.MessageSid = sms.MessageSid
			if e, ok := webhook.NormalizeE164(sms.From); ok {
				ev.Route.E164 = e
			}
		}
		return s.store(w, r, ev, func() error {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusOK)
			_, err := io.WriteString(w, "<Response></Response>")
			return err
		})
	}
}

// cleanForm returns an authentic form with its names and values made storable
// (voxanne.CleanText), so that the delivery is processed rather than refused.
func cleanForm(form url.Values) url.Values {
	out := make(url.Values, len(form))
	for k, vs := range form {
		k = voxanne.CleanText(k)
		for _, v := range vs {
			out[k] = append(out[k], voxanne.CleanText(v))
		}
	}
	return out
}
