// Package mailer sends Voxanne's mails: over SMTP when a server is configured,
// otherwise into the log so that a development set-up needs nothing.
package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	"github.com/voxanne/voxanne"
)

// Log writes mails to a logger.
type Log struct {
	Logger *slog.Logger
}

// Send logs the mail. Its body holds single-use links, which is the point in
// development; configure SMTP in production.
func (l Log) Send(ctx context.Context, m voxanne.Mail) error {
	l.Logger.InfoContext(ctx, "mail (no SMTP configured)", "to", m.To, "subject", m.Subject, "body", m.Body)
	return nil
}

// SMTP sends mail through an SMTP server.
type SMTP struct {
	addr     string
	host     string
	implicit bool // smtps: TLS from the first byte
	auth     smtp.Auth
	From     string
	// TLSConfig is used for smtps and STARTTLS; nil means the defaults.
	TLSConfig *tls.Config
}

// NewSMTP parses smtp://user:pass@host:port or smtps://... . Credentials are only
// ever sent over TLS, or in the clear to a server on the loopback interface.
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("invalid SMTP URL: want smtp://user:pass@host:port")
	}
	s := &SMTP{addr: u.Host, host: u.Hostname(), implicit: u.Scheme == "smtps", From: from}
	if u.User != nil {
		pw, _ := u.User.Password()
		s.auth = smtp.PlainAuth("", u.User.Username(), pw, u.Hostname())
	}
	return s, nil
}

// Send delivers m.
func (s *SMTP) Send(ctx context.Context, m voxanne.Mail) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	d := net.Dialer{Deadline: deadline}
	var conn net.Conn
	var err error
	tlsCfg := s.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
	}
	if s.implicit {
		conn, err = tls.DialWithDialer(&d, "tcp", s.addr, tlsCfg)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return fmt.Errorf("smtp connect: %w", err)
	}
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp hello: %w", err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok && !s.implicit {
		if err := c.StartTLS(tlsCfg); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	}
	if s.auth != nil {
		if err := c.Auth(s.auth); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	// The envelope takes the bare address; the header keeps the display name.
	envelopeFrom := s.From
	if a, err := mail.ParseAddress(s.From); err == nil {
		envelopeFrom = a.Address
	}
	if err := c.Mail(envelopeFrom); err != nil {
		return fmt.Errorf("smtp from: %w", err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return fmt.Errorf("smtp rcpt: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if _, err := w.Write(message(s.From, m)); err != nil {
		return fmt.Errorf("smtp write: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp send: %w", err)
	}
	return c.Quit()
}

// message formats m as a plain-text RFC 5322 message with CRLF line endings.
func message(from string, m voxanne.Mail) []byte {
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from)
	header("To", m.To)
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", time.Now().UTC().Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	body := strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n")
	b.WriteString(body)
	b.WriteString("\r\n")
	return b.Bytes()
}
