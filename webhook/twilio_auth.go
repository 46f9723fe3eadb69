package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// TwilioSignature computes the X-Twilio-Signature value for a request:
// base64(HMAC-SHA1(authToken, url + name1 + value1 + name2 + value2 ...)), with
// names sorted byte-wise and, for a repeated name, each of its values in sorted
// order. url must be exactly the URL Twilio requested, query string included and
// not re-encoded. A nil or empty form signs the URL alone, which is what Twilio
// does for JSON bodies. form is not modified.
func TwilioSignature(authToken, url string, form url.Values) string {
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(url))
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	// sort.Strings compares bytes, which is the order Twilio uses
	// ("Reason" before "ReasonConferenceEnded").
	sort.Strings(names)
	for _, name := range names {
		values := append([]string(nil), form[name]...)
		sort.Strings(values)
		for _, v := range values {
			m.Write([]byte(name))
			m.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// VerifyTwilio checks an X-Twilio-Signature header against every non-empty auth
// token (several are allowed so a token can be rotated). It returns
// ErrNotConfigured when no token is set, ErrNoCredentials when sig is empty and
// ErrBadSignature when no token matches.
//
// Besides url as given it also tries the same URL with the scheme's default
// port added or removed, as Twilio's own SDK validators do, because Twilio has
// signed with and without ":443" depending on how the URL was configured.
func VerifyTwilio(sig string, tokens []string, url string, form url.Values) error {
	tokens = nonEmpty(tokens)
	if len(tokens) == 0 {
		return ErrNotConfigured
	}
	if sig == "" {
		return ErrNoCredentials
	}
	if !matchTwilio(sig, tokens, url, form) {
		return ErrBadSignature
	}
	return nil
}

// VerifyTwilioJSON checks a Twilio request with a JSON body. For those Twilio
// adds bodySHA256=<hex SHA-256 of the body> to the URL's query and signs the URL
// alone, so the body is authentic only if both the signature and the digest
// match. A URL without exactly one bodySHA256 parameter is rejected with
// ErrBadSignature: such a request cannot bind its body to the signature.
func VerifyTwilioJSON(sig string, tokens []string, url string, body []byte) error {
	tokens = nonEmpty(tokens)
	if len(tokens) == 0 {
		return ErrNotConfigured
	}
	if sig == "" {
		return ErrNoCredentials
	}
	want, ok := bodySHA256Param(url)
	if !ok {
		return fmt.Errorf("%w: URL has no single bodySHA256 parameter", ErrBadSignature)
	}
	if !matchTwilio(sig, tokens, url, nil) {
		return ErrBadSignature
	}
	sum := sha256.Sum256(body)
	got := hex.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(strings.ToLower(want))) != 1 {
		return fmt.Errorf("%w: body does not match bodySHA256", ErrBadSignature)
	}
	return nil
}

func matchTwilio(sig string, tokens []string, rawURL string, form url.Values) bool {
	ok := 0
	for _, u := range urlVariants(rawURL) {
		for _, t := range tokens {
			// The expected value has a fixed length (28 characters), so a
			// length mismatch reveals only the length of the caller's own
			// input.
			ok |= subtle.ConstantTimeCompare([]byte(TwilioSignature(t, u, form)), []byte(sig))
		}
	}
	return ok == 1
}

// urlVariants returns rawURL and, for http and https, the same URL with the
// default port toggled. It edits the string rather than round-tripping through
// url.URL, which would re-encode the path and query and break the signature.
func urlVariants(rawURL string) []string {
	out := []string{rawURL}
	i := strings.Index(rawURL, "://")
	if i < 0 {
		return out
	}
	var port string
	switch strings.ToLower(rawURL[:i]) {
	case "https":
		port = ":443"
	case "http":
		port = ":80"
	default:
		return out
	}
	start := i + 3
	end := len(rawURL)
	if j := strings.IndexAny(rawURL[start:], "/?#"); j >= 0 {
		end = start + j
	}
	authority := rawURL[start:end]
	hostStart := start
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		hostStart = start + at + 1
	}
	host := rawURL[hostStart:end]
	switch {
	case strings.HasSuffix(host, port):
		out = append(out, rawURL[:end-len(port)]+rawURL[end:])
	case !hasPort(host):
		out = append(out, rawURL[:end]+port+rawURL[end:])
	}
	return out
}

// hasPort reports whether host ends in ":digits", ignoring the colons of a
// bracketed IPv6 literal.
func hasPort(host string) bool {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.LastIndexByte(host, ']') > i {
		return false
	}
	return true
}

// bodySHA256Param extracts the bodySHA256 query parameter from a raw URL.
func bodySHA256Param(rawURL string) (string, bool) {
	i := strings.IndexByte(rawURL, '?')
	if i < 0 {
		return "", false
	}
	q := rawURL[i+1:]
	if j := strings.IndexByte(q, '#'); j >= 0 {
		q = q[:j]
	}
	// ParseQuery reports the first malformed pair but still returns the
	// others; a malformed neighbour does not make bodySHA256 less reliable.
	values, _ := url.ParseQuery(q)
	v := values["bodySHA256"]
	if len(v) != 1 || v[0] == "" {
		return "", false
	}
	return v[0], true
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
