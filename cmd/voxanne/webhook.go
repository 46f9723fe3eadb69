package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/voxanne/voxanne/webhook"
)

// signedRequest builds a webhook request to base+path signed the way the
// provider signs it: Vapi with the HMAC credential, Twilio over publicURL+path.
func signedRequest(ctx context.Context, kind, base, publicURL string, body []byte, cfg *Config) (*http.Request, error) {
	switch kind {
	case "vapi":
		if cfg.VapiSecret == "" {
			return nil, fmt.Errorf("set VOXANNE_VAPI_SECRET to the server's Vapi secret")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/webhooks/vapi", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Timestamp", ts)
		req.Header.Set("X-Signature", webhook.SignVapi(cfg.VapiSecret, ts, body))
		return req, nil
	case "twilio-sms":
		if cfg.TwilioToken == "" {
			return nil, fmt.Errorf("set VOXANNE_TWILIO_AUTH_TOKEN to the server's Twilio auth token")
		}
		form, err := url.ParseQuery(strings.TrimSpace(string(body)))
		if err != nil {
			return nil, fmt.Errorf("the file is not a form-encoded Twilio request: %w", err)
		}
		const path = "/api/webhooks/twilio/sms"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", webhook.TwilioSignature(cfg.TwilioToken, publicURL+path, form))
		return req, nil
	}
	return nil, usageError(fmt.Sprintf("unknown webhook kind %q: want vapi or twilio-sms", kind))
}

// freshIDs gives a sample event new provider ids, so that sending it again is a
// new event rather than a duplicate.
func freshIDs(kind string, body []byte) ([]byte, error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	if kind == "twilio-sms" {
		form, err := url.ParseQuery(strings.TrimSpace(string(body)))
		if err != nil {
			return nil, err
		}
		sid := "SM" + suffix
		for _, k := range []string{"MessageSid", "SmsSid", "SmsMessageSid"} {
			if form.Has(k) {
				form.Set(k, sid)
			}
		}
		return []byte(form.Encode()), nil
	}
	var doc map[string]map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	if call, ok := doc["message"]["call"].(map[string]any); ok {
		call["id"] = "call-" + suffix
	}
	return json.Marshal(doc)
}

// webhookFlags are webhook send's own flags.
func webhookFlags(fs *flag.FlagSet) {
	fs.String("url", "", "base URL of the server to send to (default: the server running on VOXANNE_DATA_DIR, else VOXANNE_PUBLIC_URL)")
	fs.Bool("new-id", false, "give the event fresh provider ids, so that it is not a duplicate")
}

// outcomeHeader is the response header in which the server says what became
// of a stored delivery: stored, duplicate or unroutable (docs/webhooks.md).
const outcomeHeader = "X-Voxanne-Outcome"

func cmdWebhook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 3 || args[0] != "send" {
		return usageError("webhook send vapi|twilio-sms FILE [--url URL] [--new-id]")
	}
	kind, file, rest := args[1], args[2], args[3:]
	if kind != "vapi" && kind != "twilio-sms" {
		return usageError(fmt.Sprintf("unknown webhook kind %q: want vapi or twilio-sms", kind))
	}
	fs := newFlagSet("webhook")
	webhookFlags(fs)
	cfg, err := loadConfig(fs, rest)
	if err != nil {
		return err
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if fs.Lookup("new-id").Value.String() == "true" {
		if body, err = freshIDs(kind, body); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	// Beside a running server: its address, its public URL (which Twilio
	// signs) and, for a demo, the secrets it made up.
	rec, running := cfg.adoptRunningServer()
	if cfg.VapiSecret == "" {
		cfg.VapiSecret = rec.VapiSecret
	}
	if cfg.TwilioToken == "" {
		cfg.TwilioToken = rec.TwilioToken
	}
	base := strings.TrimRight(fs.Lookup("url").Value.String(), "/")
	switch {
	case base != "":
	case running:
		base = rec.LocalURL
	default:
		base = cfg.PublicURL
	}
	req, err := signedRequest(ctx, kind, base, cfg.PublicURL, body, cfg)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s\n%s\n", resp.Status, bytes.TrimSpace(reply))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("the server answered %s", resp.Status)
	}
	switch resp.Header.Get(outcomeHeader) {
	case "unroutable":
		return errors.New("the server stored the event as unroutable: no organization is assigned the number it names (assign it with POST /api/admin/phone-numbers, see docs/webhooks.md); it will not be processed")
	case "duplicate":
		fmt.Fprintln(stdout, "(a duplicate of an event already stored: nothing new; --new-id sends it as a new one)")
	}
	return nil
}
