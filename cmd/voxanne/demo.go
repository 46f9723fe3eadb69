package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/app"
)

const (
	demoEmail        = "demo@voxanne.local"
	demoVapiNumber   = "+14155550100"
	demoTwilioNumber = "+14155550199"
	// The number, Vapi phone-number id and assistant of the samples in
	// webhook/testdata/, assigned to the demo org so that
	// `voxanne webhook send` routes there.
	sampleNumber      = "+14155550132"
	sampleVapiNumber  = "5b0e7a1c-3d2f-4e6a-9b8c-7d1e2f3a4b5c"
	sampleVapiAssist  = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
	sampleNumberLabel = "Samples (webhook/testdata)"
)

// randomSecret returns a random URL-safe secret.
func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// demoCaller is one of the demo's callers.
type demoCaller struct{ number, name string }

var demoCallers = []demoCaller{
	{"+14155551001", "Maria Lopez"}, {"+14155551002", "James Chen"}, {"+14155551003", "Aisha Patel"},
	{"+14155551004", "Tom Becker"}, {"+14155551005", "Sofia Rossi"}, {"+14155551006", ""},
}

var demoReports = []struct{ reason, summary, transcript string }{
	{"customer-ended-call", "Caller booked a cleaning for Thursday at 3pm.", "AI: Thanks for calling Demo Dental. User: I'd like to book a cleaning. AI: Thursday at 3pm works. User: Perfect."},
	{"assistant-ended-call", "Caller asked about opening hours; answered.", "AI: Demo Dental, how can I help? User: When are you open on Saturdays? AI: 9am to 1pm."},
	{"customer-ended-call", "Caller has tooth pain; took a message for the dentist.", "User: I have a bad toothache since yesterday. AI: I'll take a message and someone will call you back today."},
	{"silence-timed-out", "Caller did not speak.", "AI: Hello? Are you there?"},
	{"voicemail", "Reached voicemail on an outbound reminder.", "AI: This is a reminder of your appointment tomorrow at 10am."},
	{"customer-ended-call", "Caller rescheduled an appointment to next Monday.", "User: I need to move my appointment. AI: How about Monday at 11? User: Great."},
}

// seedDemo makes (or refreshes) the demo login and org, assigns it the demo's
// and the samples' numbers, feeds it a few days of calls and texts through the
// real, signed webhook path and prints how to use it. It is idempotent: events
// have fixed ids, so a second run adds nothing but a new password. madeUp
// holds the webhook secrets the demo made up (configured ones are not shown).
func seedDemo(ctx context.Context, cfg *Config, base string, a *app.App, madeUp serverRecord, out io.Writer, log *slog.Logger) error {
	password := randomSecret()
	var userID string
	users, _, err := a.Auth.ListUsers(ctx, 1, 1000)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.Email == demoEmail {
			userID = u.ID
		}
	}
	if userID == "" {
		confirm := true
		email := demoEmail
		u, err := a.Auth.CreateUser(ctx, voxanne.AdminUserInput{Email: &email, Password: &password, EmailConfirm: &confirm,
			UserMetadata: map[string]any{"org_name": "Demo Dental Clinic"}})
		if err != nil {
			return fmt.Errorf("demo user: %w", err)
		}
		userID = u.ID
	} else if _, err := a.Auth.UpdateUserByID(ctx, userID, voxanne.AdminUserInput{Password: &password}); err != nil {
		return fmt.Errorf("demo user: %w", err)
	}
	u, err := a.Auth.User(ctx, userID)
	if err != nil {
		return err
	}
	orgID, _ := u.AppMetadata["org_id"].(string)
	owner := &voxanne.Principal{UserID: userID, OrgID: orgID, OrgRole: voxanne.RoleOwner, Role: "authenticated"}
	voice, endpoints := a.Voice, a.Endpoints
	vapiID, twilioID, assistant := "demo-vapi-number", "demo-twilio-number", "demo-assistant"
	sampleID, sampleAssistant := sampleVapiNumber, sampleVapiAssist
	for _, n := range []voxanne.PhoneNumber{
		{E164: demoVapiNumber, Provider: "vapi", ProviderID: &vapiID, AssistantID: &assistant, Label: "Front desk (Vapi)"},
		{E164: demoTwilioNumber, Provider: "twilio", ProviderID: &twilioID, Label: "Texts (Twilio)"},
		{E164: sampleNumber, Provider: "vapi", ProviderID: &sampleID, AssistantID: &sampleAssistant, Label: sampleNumberLabel},
	} {
		if _, err := voice.AddPhoneNumber(ctx, owner, n); err != nil && voxanne.ErrorCode(err) != voxanne.ECONFLICT {
			return fmt.Errorf("demo number: %w", err)
		}
		// The demo plays the platform operator too: only its assignment routes
		// the shared endpoints' events to the demo org.
		a := voxanne.PhoneAssignment{OrgID: orgID, E164: &n.E164, Provider: n.Provider, ProviderID: n.ProviderID,
			AssistantID: n.AssistantID, Label: n.Label}
		if _, err := endpoints.Assign(ctx, a); err != nil && voxanne.ErrorCode(err) != voxanne.ECONFLICT {
			return fmt.Errorf("demo number assignment: %w", err)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second}
	send := func(kind string, body []byte) error {
		req, err := signedRequest(ctx, kind, base, cfg.PublicURL, body, cfg)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("demo event: %s", resp.Status)
		}
		return nil
	}
	now := time.Now().UTC()
	sent := 0
	for i := 0; i < 24; i++ {
		c := demoCallers[i%len(demoCallers)]
		r := demoReports[i%len(demoReports)]
		start := now.Add(-time.Duration(i)*3*time.Hour - 20*time.Minute)
		end := start.Add(time.Duration(45+i*13%240) * time.Second)
		callID := fmt.Sprintf("demo-call-%02d", i)
		call := map[string]any{"id": callID, "orgId": "demo", "type": "inboundPhoneCall", "phoneNumberId": vapiID,
			"assistantId": assistant, "createdAt": start.Format(time.RFC3339Nano), "customer": map[string]any{"number": c.number, "name": c.name}}
		for _, msg := range []map[string]any{
			{"type": "status-update", "status": "in-progress"},
			{"type": "end-of-call-report", "endedReason": r.reason, "startedAt": start.Format(time.RFC3339Nano),
				"endedAt": end.Format(time.RFC3339Nano), "cost": 0.05 + float64(i%7)*0.03,
				"artifact": map[string]any{"transcript": r.transcript, "recordingUrl": "https://recordings.example/" + callID + ".wav"},
				"analysis": map[string]any{"summary": r.summary, "successEvaluation": "true"}},
		} {
			msg["call"] = call
			msg["timestamp"] = end.UnixMilli()
			msg["phoneNumber"] = map[string]any{"id": vapiID, "number": demoVapiNumber}
			msg["customer"] = map[string]any{"number": c.number, "name": c.name}
			body, _ := json.Marshal(map[string]any{"message": msg})
			if err := send("vapi", body); err != nil {
				return err
			}
			sent++
		}
	}
	for i, text := range []string{"Can I move my cleaning to Thursday?", "Running 10 minutes late, sorry!", "Do you take Delta Dental insurance?", "Thanks, see you Monday."} {
		c := demoCallers[i]
		form := url.Values{"MessageSid": {fmt.Sprintf("SMdemo%02d", i)}, "AccountSid": {"ACdemo"}, "From": {c.number},
			"To": {demoTwilioNumber}, "Body": {text}, "NumMedia": {"0"}}
		if err := send("twilio-sms", []byte(form.Encode())); err != nil {
			return err
		}
		sent++
	}
	log.Info("demo data seeded", "events", sent, "org_id", orgID)
	printDemo(out, cfg, password, madeUp)
	return nil
}

// printDemo tells how to use the demo: the dashboard and its login, the
// webhook URLs and secrets, and the numbers that route to the demo org.
func printDemo(out io.Writer, cfg *Config, password string, madeUp serverRecord) {
	secret := func(env, made string) string {
		if made == "" {
			return env + " as configured"
		}
		return env + "=" + made + " (made up for this run)"
	}
	p := cfg.PublicURL
	fmt.Fprintf(out, `
Demo ready.
  Dashboard:  %s/login
  Login:      sign in with %s / %s
              (or POST %s/auth/v1/token?grant_type=password; the password is new on every --demo start)
  Webhooks:   %s/api/webhooks/vapi
              %s/api/webhooks/twilio/sms
              %s/api/webhooks/twilio/status
  Secrets:    %s
              %s
  Numbers:    %s (Vapi), %s (Twilio) and %s (the samples in webhook/testdata/) route to the demo org
  Try:        voxanne webhook send vapi webhook/testdata/vapi-end-of-call-report.json --new-id
              (from this directory: it finds this server and its secrets in VOXANNE_DATA_DIR)

`, p, demoEmail, password, p, p, p, p,
		secret("VOXANNE_VAPI_SECRET", madeUp.VapiSecret), secret("VOXANNE_TWILIO_AUTH_TOKEN", madeUp.TwilioToken),
		demoVapiNumber, demoTwilioNumber, sampleNumber)
}
