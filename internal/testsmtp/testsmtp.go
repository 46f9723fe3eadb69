// Package testsmtp is a tiny in-process SMTP server for tests. It speaks enough
// of RFC 5321 for net/smtp (EHLO with AUTH PLAIN and no STARTTLS, AUTH PLAIN,
// MAIL, RCPT, DATA, RSET, NOOP, QUIT), checks the syntax of the envelope
// addresses as a real server would, and records every accepted message.
package testsmtp

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Limits keep a misbehaving client from hanging or exhausting a test.
const (
	maxLineLen      = 4096             // bytes per command or data line (RFC 5321 allows 1000)
	maxCommands     = 1000             // commands per connection
	maxMessageBytes = 10 << 20         // bytes per message
	maxConns        = 100              // connections over the server's life
	idleTimeout     = 30 * time.Second // per read or write
	waitTimeout     = 10 * time.Second // WaitFor
)

// Message is one accepted message.
type Message struct {
	// From is the envelope sender (the MAIL FROM path without its brackets).
	From string
	// To are the envelope recipients.
	To []string
	// Data is the message as sent after DATA, dot-unstuffed, with CRLF line
	// endings and without the terminating ".".
	Data string
	// User and Password are the AUTH PLAIN credentials of the session, if any.
	User, Password string
}

// Server is a running test SMTP server.
type Server struct {
	ln net.Listener

	mu       sync.Mutex
	msgs     []Message
	rejected []string // commands answered with a 5xx, for failure messages
	conns    map[net.Conn]struct{}
	accepted int
	closed   bool
	changed  chan struct{} // closed and replaced whenever msgs grows

	wg sync.WaitGroup
}

// Start starts a server on 127.0.0.1 on a free port; it is closed when the test
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testsmtp: listen: %v", err)
	}
	s := &Server{ln: ln, conns: map[net.Conn]struct{}{}, changed: make(chan struct{})}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns smtp://user:pass@127.0.0.1:port with user and pass escaped.
func (s *Server) URL(user, pass string) string {
	u := url.URL{Scheme: "smtp", Host: s.Addr()}
	if user != "" || pass != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

// Messages returns a copy of the accepted messages.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		m.To = append([]string(nil), m.To...)
		out[i] = m
	}
	return out
}

// Rejected returns the commands the server answered with an error.
func (s *Server) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rejected...)
}

// WaitFor returns the first message with recipient `to`, waiting up to 10 s;
// it fails the test when none arrives.
func (s *Server) WaitFor(t testing.TB, to string) Message {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		for _, m := range s.msgs {
			for _, rcpt := range m.To {
				if strings.EqualFold(rcpt, to) {
					s.mu.Unlock()
					m.To = append([]string(nil), m.To...)
					return m
				}
			}
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("testsmtp: no message to %s within %s; rejected commands: %q", to, waitTimeout, s.Rejected())
			return Message{}
		}
	}
}

// Close stops the server, ends open sessions and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed || s.accepted >= maxConns {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.accepted++
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			(&session{srv: s, conn: c, r: bufio.NewReaderSize(c, maxLineLen)}).run()
		}()
	}
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) reject(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rejected) < 100 {
		s.rejected = append(s.rejected, line)
	}
}

// session is one SMTP connection.
type session struct {
	srv  *Server
	conn net.Conn
	r    *bufio.Reader

	greeted        bool
	user, password string
	from           *string
	to             []string
}

var errLineTooLong = errors.New("line too long")

// readLine reads one CRLF- (or LF-) terminated line without its ending.
func (c *session) readLine() (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(idleTimeout))
	line, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errLineTooLong
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r"), nil
}

func (c *session) reply(format string, args ...any) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(idleTimeout))
	_, err := fmt.Fprintf(c.conn, format+"\r\n", args...)
	return err
}

// fail answers a command with a permanent error and remembers it.
func (c *session) fail(cmd, format string, args ...any) error {
	c.srv.reject(cmd)
	return c.reply(format, args...)
}

func (c *session) reset() {
	c.from, c.to = nil, nil
}

func (c *session) run() {
	if c.reply("220 127.0.0.1 testsmtp ESMTP ready") != nil {
		return
	}
	for range maxCommands {
		line, err := c.readLine()
		if errors.Is(err, errLineTooLong) {
			_ = c.fail("(long line)", "500 5.5.2 line too long")
			return
		}
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		var werr error
		switch strings.ToUpper(verb) {
		case "EHLO":
			if arg == "" {
				werr = c.fail(line, "501 5.5.4 EHLO needs a domain")
				break
			}
			c.greeted = true
			c.reset()
			werr = c.reply("250-127.0.0.1 greets %s\r\n250-8BITMIME\r\n250 AUTH PLAIN", arg)
		case "HELO":
			if arg == "" {
				werr = c.fail(line, "501 5.5.4 HELO needs a domain")
				break
			}
			c.greeted = true
			c.reset()
			werr = c.reply("250 127.0.0.1")
		case "AUTH":
			werr = c.auth(line, arg)
		case "MAIL":
			werr = c.mail(line, arg)
		case "RCPT":
			werr = c.rcpt(line, arg)
		case "DATA":
			werr = c.data(line)
		case "RSET":
			c.reset()
			werr = c.reply("250 2.0.0 OK")
		case "NOOP":
			werr = c.reply("250 2.0.0 OK")
		case "QUIT":
			_ = c.reply("221 2.0.0 bye")
			return
		default:
			werr = c.fail(line, "502 5.5.1 command not implemented")
		}
		if werr != nil {
			return
		}
	}
	_ = c.reply("421 4.7.0 too many commands")
}

func (c *session) auth(line, arg string) error {
	if !c.greeted {
		return c.fail(line, "503 5.5.1 EHLO first")
	}
	if c.user != "" {
		return c.fail(line, "503 5.5.1 already authenticated")
	}
	mech, initial, _ := strings.Cut(arg, " ")
	if !strings.EqualFold(mech, "PLAIN") {
		return c.fail("AUTH "+mech, "504 5.5.4 unrecognized authentication type")
	}
	if initial == "" {
		if err := c.reply("334 "); err != nil {
			return err
		}
		var err error
		if initial, err = c.readLine(); err != nil {
			return err
		}
		if initial == "*" {
			return c.fail("AUTH PLAIN *", "501 5.7.0 authentication cancelled")
		}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(initial))
	if err != nil {
		return c.fail("AUTH PLAIN (bad base64)", "501 5.5.2 bad base64")
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		return c.fail("AUTH PLAIN (malformed)", "501 5.5.2 malformed PLAIN response")
	}
	c.user, c.password = parts[1], parts[2]
	return c.reply("235 2.7.0 authentication successful")
}

// path parses "<mailbox>" followed by optional ESMTP parameters, as in
// "MAIL FROM:<a@b.example> BODY=8BITMIME". The mailbox must be a bare
// local@domain (RFC 5321 §4.1.2): no display name, spaces or brackets.
func path(s string, allowEmpty bool) (string, bool) {
	s = strings.TrimLeft(s, " ")
	if !strings.HasPrefix(s, "<") {
		return "", false
	}
	end := strings.IndexByte(s, '>')
	if end < 0 {
		return "", false
	}
	addr, params := s[1:end], s[end+1:]
	if params != "" && !strings.HasPrefix(params, " ") {
		return "", false
	}
	if addr == "" {
		return "", allowEmpty
	}
	if strings.ContainsAny(addr, "<> \t\"(),;") {
		return "", false
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", false
	}
	return addr, true
}

func (c *session) mail(line, arg string) error {
	if !c.greeted {
		return c.fail(line, "503 5.5.1 EHLO first")
	}
	if c.from != nil {
		return c.fail(line, "503 5.5.1 nested MAIL command")
	}
	rest, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		return c.fail(line, "501 5.5.4 syntax: MAIL FROM:<address>")
	}
	from, ok := path(rest, true)
	if !ok {
		return c.fail(line, "501 5.1.7 bad sender address syntax")
	}
	c.from = &from
	return c.reply("250 2.1.0 OK")
}

func (c *session) rcpt(line, arg string) error {
	if c.from == nil {
		return c.fail(line, "503 5.5.1 MAIL first")
	}
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		return c.fail(line, "501 5.5.4 syntax: RCPT TO:<address>")
	}
	to, ok := path(rest, false)
	if !ok {
		return c.fail(line, "501 5.1.3 bad recipient address syntax")
	}
	if len(c.to) >= 100 {
		return c.fail(line, "452 4.5.3 too many recipients")
	}
	c.to = append(c.to, to)
	return c.reply("250 2.1.5 OK")
}

func (c *session) data(line string) error {
	if c.from == nil || len(c.to) == 0 {
		return c.fail(line, "503 5.5.1 RCPT first")
	}
	if err := c.reply("354 end data with <CR><LF>.<CR><LF>"); err != nil {
		return err
	}
	defer c.reset()
	var b bytes.Buffer
	for {
		l, err := c.readLine()
		if err != nil {
			return err // includes a line too long: the session ends
		}
		if l == "." {
			break
		}
		l = strings.TrimPrefix(l, ".") // dot-unstuffing (RFC 5321 §4.5.2)
		// Every line adds at least two bytes, so this also bounds the loop.
		if b.Len()+len(l)+2 > maxMessageBytes {
			_ = c.fail("DATA (too big)", "552 5.3.4 message too big")
			return errors.New("message too big") // ends the session
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	c.srv.record(Message{From: *c.from, To: append([]string(nil), c.to...), Data: b.String(),
		User: c.user, Password: c.password})
	return c.reply("250 2.0.0 OK queued")
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}
