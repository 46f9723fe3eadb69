package main

import (
	"strings"
	"testing"
)

func TestCheckLoopback(t *testing.T) {
	accepted := []string{
		"http://127.0.0.1",
		"http://127.0.0.1:8080",
		"http://127.5.5.5:9000",
		"http://[::1]:8080",
		"http://[::1]",
		"http://localhost:8080",
		"http://LOCALHOST",
		"https://localhost",
		"http://[::ffff:127.0.0.1]:8080",
		"http://127.0.0.1:8080/prefix",
	}
	for _, raw := range accepted {
		if _, err := checkLoopback(raw); err != nil {
			t.Errorf("checkLoopback(%q) refused: %v", raw, err)
		}
	}
	refused := []string{
		"http://10.0.0.1",
		"http://10.0.0.1:8080",
		"http://192.168.1.1",
		"http://example.com",
		"http://8.8.8.8",
		"http://[2001:4860:4860::8888]",
		"http://0.0.0.0:8080",
		"http://127.0.0.1.example.com",
		"http://localhost.example.com",
		"http://2130706433", // 127.0.0.1 as a number: not an IP literal we accept
		"http://user@8.8.8.8",
	}
	for _, raw := range refused {
		_, err := checkLoopback(raw)
		if err == nil {
			t.Errorf("checkLoopback(%q) accepted a non-loopback host", raw)
			continue
		}
		if !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("checkLoopback(%q): error does not say why: %v", raw, err)
		}
	}
	// Not URLs of an HTTP server at all.
	for _, raw := range []string{"127.0.0.1:8080", "localhost:8080", "ftp://127.0.0.1", "http://", "http://127.0.0.1/?x=1"} {
		if _, err := checkLoopback(raw); err == nil {
			t.Errorf("checkLoopback(%q) accepted a malformed URL", raw)
		}
	}
}

func TestClientRefusesToDialNonLoopback(t *testing.T) {
	// The dial-time check is the backstop behind checkLoopback. 192.0.2.1 is
	// TEST-NET-1: nothing is sent, the dialer refuses before connecting.
	c := newClient(1)
	_, err := c.Get("http://192.0.2.1:9/")
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("GET to a non-loopback address: err = %v, want a refusal", err)
	}
}
