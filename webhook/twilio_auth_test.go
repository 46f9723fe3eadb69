package webhook

import (
	"errors"
	"net/url"
	"slices"
	"testing"
)

// twilioVector is Twilio's published test vector (WEBHOOKS.md).
var twilioVector = struct {
	token, url, want string
	form             url.Values
}{
	token: "12345",
	url:   "https://mycompany.com/myapp.php?foo=1&bar=2",
	want:  "vOEb5UThFn24KEfnOFLQY2AE5FY=",
	form: url.Values{
		"CallSid":               {"CA1234567890ABCDE"},
		"Caller":                {"+14158675309"},
		"Digits":                {"1234"},
		"From":                  {"+14158675309"},
		"To":                    {"+18005551212"},
		"ReasonConferenceEnded": {"test"},
		"Reason":                {"Participant"},
	},
}

func TestTwilioSignatureVector(t *testing.T) {
	v := twilioVector
	if got := TwilioSignature(v.token, v.url, v.form); got != v.want {
		t.Fatalf("TwilioSignature = %s, want %s", got, v.want)
	}
}

func TestTwilioSignatureRepeatedKeys(t *testing.T) {
	// Expected value computed independently (Python hmac): values of a
	// repeated name are signed in sorted byte order, so "Mid" < "alpha" < "zeta".
	form := url.Values{
		"Tag":       {"zeta", "alpha", "Mid"},
		"Body":      {"hi"},
		"MediaUrl0": {"b"},
	}
	orig := slices.Clone(form["Tag"])
	const want = "7trH7DrofUJzCYlOgz98SRpx/ZY="
	if got := TwilioSignature("12345", "https://example.com/sms", form); got != want {
		t.Fatalf("TwilioSignature = %s, want %s", got, want)
	}
	if !slices.Equal(form["Tag"], orig) {
		t.Fatalf("TwilioSignature reordered the caller's values: %v", form["Tag"])
	}
	// The order in which the values arrived must not matter.
	reordered := url.Values{"Tag": {"Mid", "zeta", "alpha"}, "Body": {"hi"}, "MediaUrl0": {"b"}}
	if got := TwilioSignature("12345", "https://example.com/sms", reordered); got != want {
		t.Fatalf("TwilioSignature(reordered) = %s, want %s", got, want)
	}
}

func TestTwilioSignatureURLOnly(t *testing.T) {
	const want = "gbIAqasj35DNQ6tCbTSbD80dmOM="
	if got := TwilioSignature("12345", "https://example.com/sms?x=1", nil); got != want {
		t.Fatalf("TwilioSignature = %s, want %s", got, want)
	}
}

func TestVerifyTwilio(t *testing.T) {
	v := twilioVector
	tampered := url.Values{}
	for k, vs := range v.form {
		tampered[k] = vs
	}
	tampered.Set("Digits", "9999")
	extra := url.Values{}
	for k, vs := range v.form {
		extra[k] = vs
	}
	extra.Set("Injected", "1")

	tests := []struct {
		name   string
		sig    string
		tokens []string
		url    string
		form   url.Values
		want   error
	}{
		{"valid", v.want, []string{v.token}, v.url, v.form, nil},
		{"valid with previous token", v.want, []string{"new-token", v.token}, v.url, v.form, nil},
		{"empty tokens skipped", v.want, []string{"", v.token}, v.url, v.form, nil},
		{"wrong token", v.want, []string{"54321"}, v.url, v.form, ErrBadSignature},
		{"tampered value", v.want, []string{v.token}, v.url, tampered, ErrBadSignature},
		{"extra field", v.want, []string{v.token}, v.url, extra, ErrBadSignature},
		{"different url", v.want, []string{v.token}, "https://mycompany.com/myapp.php?foo=1&bar=3", v.form, ErrBadSignature},
		{"url re-encoded", v.want, []string{v.token}, "https://mycompany.com/myapp.php?bar=2&foo=1", v.form, ErrBadSignature},
		{"http instead of https", v.want, []string{v.token}, "http://mycompany.com/myapp.php?foo=1&bar=2", v.form, ErrBadSignature},
		{"url with default port", v.want, []string{v.token}, "https://mycompany.com:443/myapp.php?foo=1&bar=2", v.form, nil},
		{"url with other port", v.want, []string{v.token}, "https://mycompany.com:8443/myapp.php?foo=1&bar=2", v.form, ErrBadSignature},
		{"truncated signature", v.want[:27], []string{v.token}, v.url, v.form, ErrBadSignature},
		{"empty signature", "", []string{v.token}, v.url, v.form, ErrNoCredentials},
		{"no tokens", v.want, nil, v.url, v.form, ErrNotConfigured},
		{"only empty tokens", v.want, []string{"", ""}, v.url, v.form, ErrNotConfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyTwilio(tt.sig, tt.tokens, tt.url, tt.form)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifyTwilio = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyTwilio = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyTwilioJSON(t *testing.T) {
	body := []byte(`{"MessageSid":"SM123","MessageStatus":"delivered"}`)
	const (
		token   = "12345"
		bodyHex = "458597634cd82805792467af543ce1e6b98ee56a12d89f07e2202e7266f76084"
		u       = "https://example.com/status?bodySHA256=" + bodyHex
		sig     = "4lMptiHAv+jvjphgrRtWwPm/Vxw=" // computed independently
	)
	tests := []struct {
		name   string
		sig    string
		tokens []string
		url    string
		body   []byte
		want   error
	}{
		{"valid", sig, []string{token}, u, body, nil},
		{"valid with previous token", sig, []string{"other", token}, u, body, nil},
		{"tampered body", sig, []string{token}, u, []byte(`{"MessageSid":"SM123","MessageStatus":"failed"}`), ErrBadSignature},
		{"wrong token", sig, []string{"other"}, u, body, ErrBadSignature},
		{"no bodySHA256", TwilioSignature(token, "https://example.com/status", nil), []string{token}, "https://example.com/status", body, ErrBadSignature},
		{"repeated bodySHA256", TwilioSignature(token, u+"&bodySHA256=x", nil), []string{token}, u + "&bodySHA256=x", body, ErrBadSignature},
		{"uppercase digest in url", TwilioSignature(token, "https://example.com/status?bodySHA256=458597634CD82805792467AF543CE1E6B98EE56A12D89F07E2202E7266F76084", nil), []string{token}, "https://example.com/status?bodySHA256=458597634CD82805792467AF543CE1E6B98EE56A12D89F07E2202E7266F76084", body, nil},
		{"empty signature", "", []string{token}, u, body, ErrNoCredentials},
		{"no tokens", sig, []string{""}, u, body, ErrNotConfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyTwilioJSON(tt.sig, tt.tokens, tt.url, tt.body)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifyTwilioJSON = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyTwilioJSON = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestURLVariants(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"https://a.example/x?y=1", []string{"https://a.example/x?y=1", "https://a.example:443/x?y=1"}},
		{"https://a.example:443/x", []string{"https://a.example:443/x", "https://a.example/x"}},
		{"http://a.example", []string{"http://a.example", "http://a.example:80"}},
		{"HTTP://a.example:80?q", []string{"HTTP://a.example:80?q", "HTTP://a.example?q"}},
		{"https://u:p@a.example/x", []string{"https://u:p@a.example/x", "https://u:p@a.example:443/x"}},
		{"https://[::1]/x", []string{"https://[::1]/x", "https://[::1]:443/x"}},
		{"https://a.example:8443/x", []string{"https://a.example:8443/x"}},
		{"ftp://a.example/x", []string{"ftp://a.example/x"}},
		{"/relative", []string{"/relative"}},
	}
	for _, tt := range tests {
		if got := urlVariants(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("urlVariants(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
