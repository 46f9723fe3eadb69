package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/webhook"
)

// maxWebhookBody is the webhook body limit.
const maxWebhookBody = 5 << 20

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
	if s.Jobs != nil {
		for state, get := range map[string]func(voxanne.JobCounts) int{
			"queued": func(c voxanne.JobCounts) int { return c.Queued }, "running": func(c voxanne.JobCounts) int { return c.Running },
			"retrying": func(c voxanne.JobCounts) int { return c.Retrying }, "discarded": func(c voxanne.JobCounts) int { return c.Discarded },
		} {
			s.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "voxanne_jobs", Help: "Background jobs by state (discarded: retries exhausted).",
				ConstLabels: prometheus.Labels{"state": state},
			}, func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				c, err := s.Jobs(ctx)
				if err != nil {
					return -1
				}
				return float64(get(c))
			}))
		}
	}
	s.route("POST /api/webhooks/vapi", s.handleVapi)
	s.route("POST /api/webhooks/twilio/sms", s.twilio("sms"))
	s.route("POST /api/webhooks/twilio/status", s.twilio("status"))
}

// readWebhookBody reads at most maxWebhookBody bytes: a larger body is refused
// by its Content-Length before anything is read, or cut off while reading.
func readWebhookBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > maxWebhookBody {
		return nil, voxanne.ReasonErrorf(voxanne.ETOOLARGE, "request_entity_too_large", "the body is larger than 5 MiB")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, voxanne.ReasonErrorf(voxanne.ETOOLARGE, "request_entity_too_large", "the body is larger than 5 MiB")
		}
		return nil, voxanne.Errorf(voxanne.EINVALID, "could not read the body")
	}
	return body, nil
}

var errBadSignature = voxanne.ReasonErrorf(voxanne.EUNAUTHORIZED, "invalid_signature", "the webhook signature is missing or invalid")

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
	if err := webhook.VerifyVapi(r.Header, body, s.WebhookConfig.Vapi, time.Now()); err != nil {
		s.outcome("vapi", "unknown", "rejected")
		s.Logger.LogAttrs(r.Context(), slog.LevelWarn, "security_event", slog.String("event", "webhook_rejected"),
			slog.String("provider", "vapi"), slog.String("reason", err.Error()), slog.String("ip", s.clientIP(r)))
		return errBadSignature
	}
	m, err := webhook.ParseVapi(body)
	if err != nil {
		s.outcome("vapi", "unknown", "invalid")
		return voxanne.Errorf(voxanne.EINVALID, "the body is not a Vapi server message")
	}
	route := voxanne.Route{ProviderNumberID: m.PhoneNumberID(), AssistantID: m.AssistantID()}
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
		return s.store(w, r, voxanne.InboundEvent{Provider: "vapi", EventType: m.Type, DedupKey: "vapi:" + m.DedupKey(),
			Payload: body, Route: route}, func() error { return writeJSON(w, http.StatusOK, map[string]bool{"received": true}) })
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
	switch {
	case dup:
		s.outcome(ev.Provider, ev.EventType, "duplicate")
	case routed.OrgID == "":
		s.outcome(ev.Provider, ev.EventType, "unroutable")
	default:
		s.outcome(ev.Provider, ev.EventType, "stored")
	}
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
		// Twilio signs the URL it called: our public base URL, the path and the
		// query exactly as sent.
		signedURL := s.WebhookConfig.PublicURL + r.URL.RequestURI()
		if err := webhook.VerifyTwilio(r.Header.Get("X-Twilio-Signature"), s.WebhookConfig.TwilioTokens, signedURL, form); err != nil {
			s.outcome("twilio", kind, "rejected")
			s.Logger.LogAttrs(r.Context(), slog.LevelWarn, "security_event", slog.String("event", "webhook_rejected"),
				slog.String("provider", "twilio"), slog.String("reason", err.Error()), slog.String("ip", s.clientIP(r)))
			return errBadSignature
		}
		sms, err := webhook.ParseTwilioSMS(form)
		if err != nil || (kind == "status" && sms.MessageStatus == "") {
			s.outcome("twilio", kind, "invalid")
			return voxanne.Errorf(voxanne.EINVALID, "MessageSid (and MessageStatus for status callbacks) are required")
		}
		payload, _ := json.Marshal(form)
		ev := voxanne.InboundEvent{Provider: "twilio", EventType: kind, Payload: payload}
		if kind == "sms" {
			ev.DedupKey = "twilio:sms:" + sms.MessageSid
			if e, ok := webhook.NormalizeE164(sms.To); ok {
				ev.Route.E164 = e
			}
		} else {
			ev.DedupKey = "twilio:status:" + sms.MessageSid + ":" + sms.MessageStatus
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
