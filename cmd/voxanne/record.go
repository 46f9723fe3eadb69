package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/voxanne/voxanne/postgres/pglocal"
)

// recordName is the file in the data directory where a running serve tells
// the operator commands beside it where it answers.
const recordName = "server.json"

// serverRecord is what a running serve records for the commands beside it:
// its URLs, and in demo mode the webhook secrets it made up. It is written
// 0600 in the data directory (where the database password already is) and
// removed on exit; it counts only while that serve holds the directory.
type serverRecord struct {
	PID int `json:"pid"`
	// PublicURL is the server's VOXANNE_PUBLIC_URL (the tokens' issuer).
	PublicURL string `json:"public_url"`
	// LocalURL is where it listens, for commands on this machine.
	LocalURL string `json:"local_url"`
	// The demo's webhook secrets (only with --demo, and only made-up ones).
	VapiSecret  string `json:"vapi_secret,omitempty"`
	TwilioToken string `json:"twilio_auth_token,omitempty"`
}

// writeRecord writes r into dir atomically and returns the function that
// removes it.
func writeRecord(dir string, r serverRecord) (func(), error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, recordName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("record the server in %s: %w", dir, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("record the server in %s: %w", dir, err)
	}
	return func() { _ = os.Remove(path) }, nil
}

// runningServer returns the record of the serve that holds dir, if one does.
func runningServer(dir string) (serverRecord, bool) {
	var r serverRecord
	h, held := pglocal.ReadHolder(dir)
	if !held || !h.Serving {
		return r, false
	}
	b, err := os.ReadFile(filepath.Join(dir, recordName))
	if err != nil || json.Unmarshal(b, &r) != nil || r.PID != h.PID {
		return r, false
	}
	return r, true
}

// localURL is the URL of a listener's address for a client on this machine:
// an unspecified host (0.0.0.0, ::) is reached on loopback.
func localURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// adoptRunningServer makes an operator command speak for the server running
// on the managed data directory: its public URL (the tokens' issuer, the URL
// Twilio signs), unless VOXANNE_PUBLIC_URL was given. It returns the record.
func (c *Config) adoptRunningServer() (serverRecord, bool) {
	if c.DatabaseURL != "" {
		return serverRecord{}, false
	}
	r, ok := runningServer(c.DataDir)
	if ok && !c.publicURLSet && r.PublicURL != "" {
		c.PublicURL = r.PublicURL
	}
	return r, ok
}
