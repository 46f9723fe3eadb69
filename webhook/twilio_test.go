package webhook

import (
	"errors"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseTwilioSMSSample(t *testing.T) {
	raw, err := os.ReadFile("testdata/twilio-sms.txt")
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseTwilioSMS(form)
	if err != nil {
		t.Fatal(err)
	}
	want := &TwilioSMS{
		MessageSid:          "SM5f2e7c9a1b3d4e6f8a0b2c4d6e8f0a1b",
		AccountSid:          "AC0123456789abcdef0123456789abcdef",
		MessagingServiceSid: "MG1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
		From:                "+14155550187",
		To:                  "+14155550132",
		Body:                "Hi, this is Maria. Can I move my cleaning to Thursday at 3pm?",
		NumMedia:            1,
		Media: []TwilioMedia{{
			URL:         "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SM5f2e7c9a1b3d4e6f8a0b2c4d6e8f0a1b/Media/ME9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
			ContentType: "image/jpeg",
		}},
		MessageStatus: "received",
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("ParseTwilioSMS =\n%+v\nwant\n%+v", m, want)
	}
}

func TestParseTwilioSMS(t *testing.T) {
	media := func(n int) []TwilioMedia {
		var out []TwilioMedia
		for i := 0; i < n; i++ {
			out = append(out, TwilioMedia{URL: "u" + string(rune('0'+i)), ContentType: "image/png"})
		}
		return out
	}
	allMedia := func(num string, slots int) url.Values {
		v := url.Values{"MessageSid": {"SM1"}}
		if num != "" {
			v.Set("NumMedia", num)
		}
		for i := 0; i < slots; i++ {
			v.Set("MediaUrl"+string(rune('0'+i)), "u"+string(rune('0'+i)))
			v.Set("MediaContentType"+string(rune('0'+i)), "image/png")
		}
		return v
	}
	tests := []struct {
		name    string
		form    url.Values
		want    *TwilioSMS
		wantErr error
	}{
		{"no sid", url.Values{"From": {"+1"}}, nil, ErrBadPayload},
		{"empty sid", url.Values{"MessageSid": {""}}, nil, ErrBadPayload},
		{"SmsMessageSid fallback", url.Values{"SmsMessageSid": {"SM2"}}, &TwilioSMS{MessageSid: "SM2"}, nil},
		{"SmsSid fallback", url.Values{"SmsSid": {"SM3"}}, &TwilioSMS{MessageSid: "SM3"}, nil},
		{"MessageSid preferred", url.Values{"SmsSid": {"SM3"}, "MessageSid": {"SM1"}}, &TwilioSMS{MessageSid: "SM1"}, nil},
		{"status callback", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"undelivered"}, "SmsStatus": {"sent"}, "ErrorCode": {"30003"}, "ErrorMessage": {"Unreachable"}},
			&TwilioSMS{MessageSid: "SM1", MessageStatus: "undelivered", ErrorCode: "30003", ErrorMessage: "Unreachable"}, nil},
		{"media bounded by NumMedia", allMedia("2", 4), &TwilioSMS{MessageSid: "SM1", NumMedia: 2, Media: media(2)}, nil},
		{"media bounded by what exists", allMedia("3", 1), &TwilioSMS{MessageSid: "SM1", NumMedia: 3, Media: media(1)}, nil},
		{"media bounded by ten", allMedia("1000", 10), &TwilioSMS{MessageSid: "SM1", NumMedia: 10, Media: media(10)}, nil},
		{"media without NumMedia", allMedia("", 3), &TwilioSMS{MessageSid: "SM1", Media: media(3)}, nil},
		{"NumMedia zero", allMedia("0", 3), &TwilioSMS{MessageSid: "SM1"}, nil},
		{"NumMedia negative", allMedia("-1", 3), &TwilioSMS{MessageSid: "SM1"}, nil},
		{"NumMedia garbage", allMedia("many", 3), &TwilioSMS{MessageSid: "SM1"}, nil},
		{"media gap skipped", url.Values{"MessageSid": {"SM1"}, "NumMedia": {"3"}, "MediaUrl2": {"u2"}},
			&TwilioSMS{MessageSid: "SM1", NumMedia: 3, Media: []TwilioMedia{{URL: "u2"}}}, nil},
		{"MediaUrl10 never read", url.Values{"MessageSid": {"SM1"}, "NumMedia": {"11"}, "MediaUrl10": {"u"}},
			&TwilioSMS{MessageSid: "SM1", NumMedia: 10}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTwilioSMS(tt.form)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseTwilioSMS =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestStatusRank(t *testing.T) {
	order := [][]string{
		{"accepted"},
		{"scheduled"},
		{"queued"},
		{"sending", "receiving"},
		{"sent"},
		{"partially_delivered"},
		{"delivered", "undelivered", "failed", "canceled", "received"},
		{"read"},
	}
	for i, group := range order {
		for _, s := range group {
			if StatusRank(s) != StatusRank(group[0]) {
				t.Errorf("StatusRank(%q) = %d, want same as %q", s, StatusRank(s), group[0])
			}
			if i > 0 && StatusRank(s) <= StatusRank(order[i-1][0]) {
				t.Errorf("StatusRank(%q) = %d, not above %q", s, StatusRank(s), order[i-1][0])
			}
		}
	}
	if StatusRank("") != 0 || StatusRank("teleported") != 0 || StatusRank("accepted") <= 0 {
		t.Errorf("unknown statuses must rank 0, below every known one")
	}
	if StatusRank(" Delivered ") != StatusRank("delivered") {
		t.Errorf("StatusRank is not case-insensitive")
	}

	final := map[string]bool{
		"delivered": true, "undelivered": true, "failed": true, "canceled": true, "received": true, "read": true,
		"accepted": false, "scheduled": false, "queued": false, "sending": false, "receiving": false, "sent": false,
		"partially_delivered": false, "": false, "unknown": false,
	}
	for s, want := range final {
		if got := IsFinalStatus(s); got != want {
			t.Errorf("IsFinalStatus(%q) = %v, want %v", s, got, want)
		}
	}
}
