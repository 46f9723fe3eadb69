package http

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/voxanne/voxanne"
)

// FuzzDecodeJSON drives the decoder every JSON body of /api and /auth/v1
// goes through: it either refuses the body with a 4xx error (bad_json,
// validation_failed or request_entity_too_large) or decodes it to text that
// PostgreSQL can store (valid UTF-8, no NUL); it accepts exactly the JSON
// objects whose strings are such text. Seeds are in testdata/fuzz.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@example.com","password":"x","data":{"org_name":"Clinic"}}`,
		`{"name":"Acme\u0000"}`,
		"{\"name\":\"Acme\xff\"}",
		`{"data":{"k\u0000":"v"}}`,
		`{"notes":"\ud800"}`,
		`{"notes":"\ud83d\ude00 \\u0000"}`,
		`[1,2]`,
		`{"a":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/auth/v1/signup", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var v map[string]any
		err := decodeJSON(httptest.NewRecorder(), r, &v)
		var obj map[string]any
		wantOK := json.Unmarshal(body, &obj) == nil && voxanne.CheckJSONText(body) == nil && len(body) <= maxBody
		if err != nil {
			status, code, _ := apiError(err)
			if status >= 500 || (code != voxanne.ReasonBadJSON && code != voxanne.ReasonValidationFailed && code != voxanne.ReasonTooLarge) {
				t.Fatalf("%q: error %v answers %d %s", body, err, status, code)
			}
			if wantOK {
				t.Fatalf("%q: refused (%v) though it is an object of valid text", body, err)
			}
			return
		}
		if !wantOK {
			t.Fatalf("%q: accepted", body)
		}
		var walk func(any)
		walk = func(x any) {
			switch x := x.(type) {
			case string:
				if !utf8.ValidString(x) || strings.ContainsRune(x, 0) || strings.ContainsRune(x, utf8.RuneError) && !bytes.ContainsRune(body, utf8.RuneError) && !bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) {
					t.Fatalf("%q decoded to unstorable or altered text %q", body, x)
				}
			case []any:
				for _, y := range x {
					walk(y)
				}
			case map[string]any:
				for k, y := range x {
					walk(k)
					walk(y)
				}
			}
		}
		walk(v)
	})
}
