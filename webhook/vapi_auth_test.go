package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVerifyVapi(t *testing.T) {
	const (
		cur  = "current-secret-0123456789"
		prev = "previous-secret"
	)
	body := []byte(`{"message":{"type":"status-update","call":{"id":"c1"}}}`)
	now := time.Date(2026, 1, 2, 14, 3, 12, 0, time.UTC)
	sec := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	ms := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	both := VapiSecrets{Current: cur, Previous: prev}

	type hdr = map[string]string
	tests := []struct {
		name    string
		headers hdr
		body    []byte // nil means body
		secrets VapiSecrets
		want    error
	}{
		{"x-vapi-secret current", hdr{"X-Vapi-Secret": cur}, nil, both, nil},
		{"x-vapi-secret previous", hdr{"X-Vapi-Secret": prev}, nil, both, nil},
		{"x-vapi-secret wrong", hdr{"X-Vapi-Secret": "nope"}, nil, both, ErrBadSignature},
		{"x-vapi-secret prefix of secret", hdr{"X-Vapi-Secret": cur[:5]}, nil, both, ErrBadSignature},
		{"x-vapi-secret lowercase header name", hdr{"x-vapi-secret": cur}, nil, both, nil},
		{"x-vapi-signature plain", hdr{"X-Vapi-Signature": cur}, nil, both, nil},
		{"x-vapi-signature wrong", hdr{"X-Vapi-Signature": "nope"}, nil, both, ErrBadSignature},
		{"bearer current", hdr{"Authorization": "Bearer " + cur}, nil, both, nil},
		{"bearer previous", hdr{"Authorization": "Bearer " + prev}, nil, both, nil},
		{"bearer lowercase scheme", hdr{"Authorization": "bearer " + cur}, nil, both, nil},
		{"bearer wrong", hdr{"Authorization": "Bearer nope"}, nil, both, ErrBadSignature},
		{"basic scheme is not a credential", hdr{"Authorization": "Basic " + cur}, nil, both, ErrNoCredentials},
		{"bearer empty", hdr{"Authorization": "Bearer "}, nil, both, ErrNoCredentials},
		{"wrong static but valid hmac", hdr{"X-Vapi-Secret": "nope", "X-Timestamp": sec(0), "X-Signature": SignVapi(cur, sec(0), body)}, nil, both, nil},
		{"static secret does not care about body", hdr{"X-Vapi-Secret": cur}, []byte("tampered"), both, nil},

		{"hmac seconds", hdr{"X-Timestamp": sec(0), "X-Signature": SignVapi(cur, sec(0), body)}, nil, both, nil},
		{"hmac milliseconds", hdr{"X-Timestamp": ms(0), "X-Signature": SignVapi(cur, ms(0), body)}, nil, both, nil},
		{"hmac previous secret", hdr{"X-Timestamp": sec(0), "X-Signature": SignVapi(prev, sec(0), body)}, nil, both, nil},
		{"hmac sha256= prefix", hdr{"X-Timestamp": sec(0), "X-Signature": "sha256=" + SignVapi(cur, sec(0), body)}, nil, both, nil},
		{"hmac SHA256= prefix", hdr{"X-Timestamp": sec(0), "X-Signature": "SHA256=" + SignVapi(cur, sec(0), body)}, nil, both, nil},
		{"hmac uppercase hex", hdr{"X-Timestamp": sec(0), "X-Signature": strings.ToUpper(SignVapi(cur, sec(0), body))}, nil, both, nil},
		{"hmac prefix and uppercase hex", hdr{"X-Timestamp": ms(0), "X-Signature": "sha256=" + strings.ToUpper(SignVapi(cur, ms(0), body))}, nil, both, nil},
		{"hmac wrong secret", hdr{"X-Timestamp": sec(0), "X-Signature": SignVapi("other", sec(0), body)}, nil, both, ErrBadSignature},
		{"hmac tampered body", hdr{"X-Timestamp": sec(0), "X-Signature": SignVapi(cur, sec(0), body)}, []byte(`{"message":{"type":"status-update","call":{"id":"c2"}}}`), both, ErrBadSignature},
		{"hmac timestamp swapped", hdr{"X-Timestamp": sec(time.Second), "X-Signature": SignVapi(cur, sec(0), body)}, nil, both, ErrBadSignature},
		{"hmac not hex", hdr{"X-Timestamp": sec(0), "X-Signature": "zz" + SignVapi(cur, sec(0), body)[2:]}, nil, both, ErrBadSignature},
		{"hmac truncated", hdr{"X-Timestamp": sec(0), "X-Signature": SignVapi(cur, sec(0), body)[:32]}, nil, both, ErrBadSignature},
		{"hmac missing timestamp", hdr{"X-Signature": SignVapi(cur, "", body)}, nil, both, ErrBadSignature},
		{"hmac non-numeric timestamp", hdr{"X-Timestamp": "yesterday", "X-Signature": SignVapi(cur, "yesterday", body)}, nil, both, ErrBadSignature},
		{"hmac negative timestamp", hdr{"X-Timestamp": "-" + sec(0), "X-Signature": SignVapi(cur, "-"+sec(0), body)}, nil, both, ErrBadSignature},

		{"edge of window past seconds", hdr{"X-Timestamp": sec(-5 * time.Minute), "X-Signature": SignVapi(cur, sec(-5*time.Minute), body)}, nil, both, nil},
		{"edge of window future ms", hdr{"X-Timestamp": ms(5 * time.Minute), "X-Signature": SignVapi(cur, ms(5*time.Minute), body)}, nil, both, nil},
		{"stale seconds", hdr{"X-Timestamp": sec(-6 * time.Minute), "X-Signature": SignVapi(cur, sec(-6*time.Minute), body)}, nil, both, ErrStaleTimestamp},
		{"stale milliseconds", hdr{"X-Timestamp": ms(-5*time.Minute - time.Millisecond), "X-Signature": SignVapi(cur, ms(-5*time.Minute-time.Millisecond), body)}, nil, both, ErrStaleTimestamp},
		{"future seconds", hdr{"X-Timestamp": sec(6 * time.Minute), "X-Signature": SignVapi(cur, sec(6*time.Minute), body)}, nil, both, ErrStaleTimestamp},
		{"future milliseconds", hdr{"X-Timestamp": ms(5*time.Minute + time.Millisecond), "X-Signature": SignVapi(cur, ms(5*time.Minute+time.Millisecond), body)}, nil, both, ErrStaleTimestamp},
		{"stale with previous secret", hdr{"X-Timestamp": sec(-time.Hour), "X-Signature": SignVapi(prev, sec(-time.Hour), body)}, nil, both, ErrStaleTimestamp},
		{"stale and wrong secret is bad signature", hdr{"X-Timestamp": sec(-time.Hour), "X-Signature": SignVapi("other", sec(-time.Hour), body)}, nil, both, ErrBadSignature},

		{"no headers", hdr{}, nil, both, ErrNoCredentials},
		{"unrelated headers", hdr{"Content-Type": "application/json"}, nil, both, ErrNoCredentials},
		{"only current configured", hdr{"X-Vapi-Secret": cur}, nil, VapiSecrets{Current: cur}, nil},
		{"only previous configured", hdr{"X-Vapi-Secret": prev}, nil, VapiSecrets{Previous: prev}, nil},
		{"previous not accepted once cleared", hdr{"X-Vapi-Secret": prev}, nil, VapiSecrets{Current: cur}, ErrBadSignature},
		{"nothing configured", hdr{"X-Vapi-Secret": cur}, nil, VapiSecrets{}, ErrNotConfigured},
		{"nothing configured empty header", hdr{"X-Vapi-Secret": ""}, nil, VapiSecrets{}, ErrNotConfigured},
		{"nothing configured hmac with empty key", hdr{"X-Timestamp": sec(0), "X-Signature": SignVapi("", sec(0), body)}, nil, VapiSecrets{}, ErrNotConfigured},
		{"empty current does not match empty bearer", hdr{"Authorization": "Bearer"}, nil, VapiSecrets{Previous: prev}, ErrNoCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			b := tt.body
			if b == nil {
				b = body
			}
			err := VerifyVapi(h, b, tt.secrets, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifyVapi = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyVapi = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseUnixTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1767362592", time.Unix(1767362592, 0), true},
		{"1767362592481", time.UnixMilli(1767362592481), true},
		{"99999999999", time.Unix(99999999999, 0), true},
		{"100000000000", time.UnixMilli(100000000000), true},
		{"", time.Time{}, false},
		{"1.5", time.Time{}, false},
		{"+1", time.Time{}, false},
		{" 1", time.Time{}, false},
		{"99999999999999999999", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := parseUnixTimestamp(tt.in)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseUnixTimestamp(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSignVapiKnownValue(t *testing.T) {
	// Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac s
	got := SignVapi("s", "1700000000", []byte("{}"))
	const want = "e9232c9945da8456c2dea6b39da7786c07b00bca7a64d5dd1283674713a7b72a"
	if got != want {
		t.Fatalf("SignVapi = %s, want %s", got, want)
	}
}
