package mailer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/voxanne/voxanne"
	"github.com/voxanne/voxanne/internal/testsmtp"
	"github.com/voxanne/voxanne/mailer"
)

// parsed is a delivered message split into its header and body.
type parsed struct {
	header mail.Header
	body   string
}

func parse(t *testing.T, data string) parsed {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatalf("delivered data is not an RFC 5322 message: %v\n%s", err, data)
	}
	b, err := io.ReadAll(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	return parsed{header: m.Header, body: string(b)}
}

func decodeHeader(t *testing.T, v string) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		t.Fatalf("header %q: %v", v, err)
	}
	return s
}

func send(t *testing.T, m *mailer.SMTP, mail voxanne.Mail) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return m.Send(ctx, mail)
}

// SMTP.Send delivers a well-formed message: the envelope names the bare
// addresses, the headers carry From/To/Subject, every line ends in CRLF, lines
// starting with "." survive the SMTP dot-stuffing, and the URL's credentials
// are used.
func TestSMTPSendDelivers(t *testing.T) {
	const body = "Hello,\n\nOpen this link:\nhttp://127.0.0.1/auth/v1/verify?type=recovery&token_hash=abc\n.hidden line starting with a dot\n..two dots\n.\nBye\r\nwindows line"
	const wantBody = "Hello,\r\n\r\nOpen this link:\r\nhttp://127.0.0.1/auth/v1/verify?type=recovery&token_hash=abc\r\n.hidden line starting with a dot\r\n..two dots\r\n.\r\nBye\r\nwindows line\r\n"
	tests := []struct {
		name, user, pass string
		from             string // SMTP.From: header form
		wantEnvelope     string // MAIL FROM path
		subject          string
	}{
		{name: "bare from", user: "mailer", pass: "s3cret", from: "noreply@example.com",
			wantEnvelope: "noreply@example.com", subject: "Reset your Voxanne password"},
		// cmd/voxanne configures this form; the envelope must still be the bare address.
		{name: "display name from", user: "mailer@example.com", pass: "p@ss:w/rd %1", from: "Voxanne <noreply@example.com>",
			wantEnvelope: "noreply@example.com", subject: "Confirm your Voxanne account"},
		{name: "non-ASCII subject", user: "u", pass: "p", from: "noreply@example.com",
			wantEnvelope: "noreply@example.com", subject: "Réinitialisez votre mot de passe ✓"},
		{name: "no credentials", from: "noreply@example.com",
			wantEnvelope: "noreply@example.com", subject: "Hi"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := testsmtp.Start(t)
			m, err := mailer.NewSMTP(srv.URL(tc.user, tc.pass), tc.from)
			if err != nil {
				t.Fatalf("NewSMTP(%q): %v", srv.URL(tc.user, tc.pass), err)
			}
			const to = "alice@example.com"
			if err := send(t, m, voxanne.Mail{To: to, Subject: tc.subject, Body: body}); err != nil {
				t.Fatalf("Send: %v (server rejected %q)", err, srv.Rejected())
			}
			got := srv.WaitFor(t, to)
			if got.From != tc.wantEnvelope {
				t.Errorf("envelope sender = %q, want %q", got.From, tc.wantEnvelope)
			}
			if len(got.To) != 1 || got.To[0] != to {
				t.Errorf("envelope recipients = %q, want [%s]", got.To, to)
			}
			if got.User != tc.user || got.Password != tc.pass {
				t.Errorf("credentials = %q/%q, want %q/%q", got.User, got.Password, tc.user, tc.pass)
			}
			if n, crlf := strings.Count(got.Data, "\n"), strings.Count(got.Data, "\r\n"); n != crlf {
				t.Errorf("%d bare LFs in the message:\n%q", n-crlf, got.Data)
			}
			p := parse(t, got.Data)
			if h := p.header.Get("From"); h != tc.from {
				t.Errorf("From header = %q, want %q", h, tc.from)
			}
			if h := p.header.Get("To"); h != to {
				t.Errorf("To header = %q, want %q", h, to)
			}
			if h := decodeHeader(t, p.header.Get("Subject")); h != tc.subject {
				t.Errorf("Subject header = %q, want %q", h, tc.subject)
			}
			if h := p.header.Get("Date"); h == "" {
				t.Error("no Date header")
			} else if _, err := mail.ParseDate(h); err != nil {
				t.Errorf("Date header %q: %v", h, err)
			}
			if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(ct, "utf-8") {
				t.Errorf("Content-Type = %q", ct)
			}
			if p.body != wantBody {
				t.Errorf("body =\n%q\nwant\n%q", p.body, wantBody)
			}
			if msgs := srv.Messages(); len(msgs) != 1 {
				t.Errorf("%d messages delivered, want 1", len(msgs))
			}
		})
	}
}

// A message Send could not deliver is an error, never a silent success.
func TestSMTPSendFailures(t *testing.T) {
	// A port where nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	srv := testsmtp.Start(t)
	tests := []struct {
		name, url, to string
	}{
		{name: "connection refused", url: "smtp://u:p@" + closedAddr, to: "bob@example.com"},
		{name: "recipient refused", url: srv.URL("u", "p"), to: "not an address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mailer.NewSMTP(tc.url, "noreply@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if err := send(t, m, voxanne.Mail{To: tc.to, Subject: "s", Body: "b"}); err == nil {
				t.Error("Send succeeded")
			}
		})
	}
	if msgs := srv.Messages(); len(msgs) != 0 {
		t.Errorf("server accepted %d messages, want 0", len(msgs))
	}
}

func TestNewSMTPURLs(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"smtp://user:s3cr3tpw@mail.example.com:587", true},
		{"smtps://user:s3cr3tpw@mail.example.com:465", true},
		{"smtp://127.0.0.1:2525", true},
		{"", false},
		{"mail.example.com:587", false},
		{"http://user:s3cr3tpw@mail.example.com:587", false},
		{"smtp://user:s3cr3tpw@mail.example.com", false}, // no port
		{"smtp://:587", false},                           // no host
		{"smtp://user:s3cr3tpw@:587", false},
		{"smtp//mail.example.com:587", false},
		{"smtp://mail.example.com:587%zz", false},
		{"mailto:noreply@example.com", false},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			m, err := mailer.NewSMTP(tc.url, "noreply@example.com")
			if tc.ok && (err != nil || m == nil) {
				t.Fatalf("NewSMTP(%q) = %v, %v; want a mailer", tc.url, m, err)
			}
			if !tc.ok {
				if err == nil {
					t.Fatalf("NewSMTP(%q) accepted a bad URL", tc.url)
				}
				if strings.Contains(err.Error(), "s3cr3tpw") {
					t.Errorf("error %q may echo the password", err)
				}
			}
		})
	}
}

// Without SMTP, mails are logged with their recipient, subject and body (the
// body holds the link a developer needs).
func TestLogMailer(t *testing.T) {
	var buf bytes.Buffer
	l := mailer.Log{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	m := voxanne.Mail{To: "carol@example.com", Subject: "Confirm your Voxanne account", Body: "open http://x/verify?token_hash=T1"}
	if err := l.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1: %s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("log line is not JSON: %v: %s", err, lines[0])
	}
	for k, want := range map[string]string{"to": m.To, "subject": m.Subject, "body": m.Body, "level": "INFO"} {
		if rec[k] != want {
			t.Errorf("log %s = %v, want %q", k, rec[k], want)
		}
	}
}
