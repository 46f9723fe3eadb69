package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// allowedTargets is quoted in every refusal so the user knows what would work.
const allowedTargets = "127.0.0.0/8, ::1 or localhost"

// requestTimeout bounds one request. It is generous because a benchmark should
// report a slow server, not hide it behind timeouts; it exists only so that a
// wedged server cannot hang a worker forever.
const requestTimeout = 30 * time.Second

// checkLoopback parses the --url value and refuses it unless its host is a
// loopback address. This is a hard rule of the machines voxbench runs on, so
// it is checked before anything is sent, and again at dial time (see
// newClient) in case a name resolves somewhere unexpected.
func checkLoopback(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--url %q is not a URL: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("--url %q: scheme must be http or https (e.g. http://127.0.0.1:8080)", raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("--url %q has no host", raw)
	}
	if !isLoopbackHost(host) {
		return nil, fmt.Errorf("refusing --url %q: host %q is not a loopback address; voxbench only sends load to %s", raw, host, allowedTargets)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--url %q: give the server's base URL without a query or fragment", raw)
	}
	return u, nil
}

// isLoopbackHost reports whether host (as url.URL.Hostname returns it, without
// brackets or port) is a loopback IP literal or the name localhost. Other
// names are refused rather than resolved: a DNS answer is not something this
// rule should depend on.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	// Unmap so that ::ffff:127.0.0.1 counts as the IPv4 loopback it is.
	return addr.Unmap().IsLoopback()
}

// newClient returns the one client every request of a run shares. conns is
// the number of workers: with MaxIdleConnsPerHost equal to it, each worker
// keeps its keep-alive connection instead of the default two idle connections
// per host forcing the rest to reconnect (and measure TCP handshakes).
func newClient(conns int) *http.Client {
	dialer := &net.Dialer{
		Timeout:   5 * time.Second,
		KeepAlive: 30 * time.Second,
		// The last line of defence for the loopback rule: whatever the URL
		// said and whatever "localhost" resolved to, the socket may only
		// connect to a loopback address.
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !ap.Addr().Unmap().IsLoopback() {
				return fmt.Errorf("voxbench: refusing to connect to %s: not a loopback address", address)
			}
			return nil
		},
	}
	tr := &http.Transport{
		// No proxy: an HTTP(S)_PROXY from the environment would send the
		// load off this machine.
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConns:        conns + 8, // + the set-up workers
		MaxIdleConnsPerHost: conns + 8,
		IdleConnTimeout:     90 * time.Second,
		// Responses are small JSON; gzip would only add CPU on both sides.
		DisableCompression: true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   requestTimeout,
		// Never follow redirects: a redirect could point off loopback, and a
		// benchmark should count a 3xx as the wrong answer, not chase it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// endpoint joins the base URL and a path such as /auth/v1/signup. The base may
// carry a path prefix (a server mounted below /), which is kept.
func endpoint(base *url.URL, path string) string {
	return strings.TrimSuffix(base.String(), "/") + path
}

// maxBodyKept bounds how much of a response body is kept for error messages.
const maxBodyKept = 2048

// sendJSON sends a request with an optional JSON body and bearer token and
// returns the status and (the start of) the response body, read to the end so
// the connection is reused.
func sendJSON(ctx context.Context, c *http.Client, method, target, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, data, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, data, nil
}

// postJSON sends body as JSON with no token.
func postJSON(ctx context.Context, c *http.Client, target string, body any) (int, []byte, error) {
	return sendJSON(ctx, c, http.MethodPost, target, "", body)
}

// truncate shortens a response body for printing.
func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxBodyKept {
		return s[:maxBodyKept] + "…"
	}
	return s
}
