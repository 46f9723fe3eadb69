package webhook

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// MaxTwilioMedia is the most media items Twilio attaches to one message, and
// so the most ParseTwilioSMS reads, whatever NumMedia claims.
const MaxTwilioMedia = 10

// TwilioSMS is an inbound message webhook or a message status callback from
// Twilio. Fields absent from the form are empty. From and To are as Twilio sent
// them; pass them through NormalizeE164 before matching stored numbers.
type TwilioSMS struct {
	// MessageSid identifies the message; it is also the deduplication key
	// (with MessageStatus for status callbacks).
	MessageSid          string
	AccountSid          string
	MessagingServiceSid string
	From, To            string
	Body                string
	// NumMedia is the count Twilio reported, clamped to 0..MaxTwilioMedia. It
	// may exceed len(Media) when some MediaUrl{N} fields are missing.
	NumMedia int
	Media    []TwilioMedia
	// MessageStatus is the status of a status callback, or SmsStatus when
	// MessageStatus is absent (inbound webhooks send only SmsStatus).
	MessageStatus string
	ErrorCode     string
	ErrorMessage  string
}

// TwilioMedia is one MMS attachment; URL is hosted by Twilio and needs the
// account's credentials to fetch.
type TwilioMedia struct {
	URL         string
	ContentType string
}

// ParseTwilioSMS decodes a Twilio messaging webhook form. Verify the signature
// with VerifyTwilio over the same form first. It returns ErrBadPayload when the
// form names no message SID (MessageSid, SmsMessageSid or SmsSid), since
// without one the event can be neither stored idempotently nor matched.
func ParseTwilioSMS(form url.Values) (*TwilioSMS, error) {
	sid := firstNonEmpty(form.Get("MessageSid"), form.Get("SmsMessageSid"), form.Get("SmsSid"))
	if sid == "" {
		return nil, fmt.Errorf("%w: no MessageSid", ErrBadPayload)
	}
	m := &TwilioSMS{
		MessageSid:          sid,
		AccountSid:          form.Get("AccountSid"),
		MessagingServiceSid: form.Get("MessagingServiceSid"),
		From:                form.Get("From"),
		To:                  form.Get("To"),
		Body:                form.Get("Body"),
		MessageStatus:       firstNonEmpty(form.Get("MessageStatus"), form.Get("SmsStatus")),
		ErrorCode:           form.Get("ErrorCode"),
		ErrorMessage:        form.Get("ErrorMessage"),
	}

	// Without NumMedia (some status callbacks omit it) every slot up to the
	// maximum is examined; with it, no more than it claims. Either way only
	// slots that carry a URL become media, so a gap does not end the list.
	limit := MaxTwilioMedia
	if v, ok := form["NumMedia"]; ok && len(v) > 0 {
		n, err := strconv.Atoi(strings.TrimSpace(v[0]))
		if err != nil || n < 0 {
			n = 0
		}
		m.NumMedia = min(n, MaxTwilioMedia)
		limit = m.NumMedia
	}
	for i := 0; i < limit; i++ {
		u := form.Get("MediaUrl" + strconv.Itoa(i))
		if u == "" {
			continue
		}
		m.Media = append(m.Media, TwilioMedia{
			URL:         u,
			ContentType: form.Get("MediaContentType" + strconv.Itoa(i)),
		})
	}
	return m, nil
}

// Ranks of Twilio message statuses, in the order a message can move through
// them. Outbound: accepted → scheduled → queued → sending → sent →
// partially_delivered → delivered | undelivered | failed → read; canceled ends
// a scheduled message. Inbound: receiving → received.
const (
	rankAccepted           = 1
	rankScheduled          = 2
	rankQueued             = 3
	rankSending            = 4 // also receiving
	rankSent               = 5
	rankPartiallyDelivered = 6
	rankFinal              = 7 // delivered, undelivered, failed, canceled, received
	rankRead               = 8
)

var statusRanks = map[string]int{
	"accepted":            rankAccepted,
	"scheduled":           rankScheduled,
	"queued":              rankQueued,
	"sending":             rankSending,
	"receiving":           rankSending,
	"sent":                rankSent,
	"partially_delivered": rankPartiallyDelivered,
	"delivered":           rankFinal,
	"undelivered":         rankFinal,
	"failed":              rankFinal,
	"canceled":            rankFinal,
	"received":            rankFinal,
	"read":                rankRead,
}

// StatusRank orders Twilio message statuses so that callbacks arriving out of
// order cannot move a message backwards. The order, lowest first, is:
//
//	1 accepted
//	2 scheduled
//	3 queued
//	4 sending, receiving
//	5 sent
//	6 partially_delivered
//	7 delivered, undelivered, failed, canceled, received
//	8 read
//
// read ranks above delivered because WhatsApp and RCS report it after
// delivery. A caller should apply a new status only when its rank is strictly
// greater than the stored one's, so that two final statuses of equal rank (a
// late "failed" after "delivered") never flip. Unknown statuses rank 0 and so
// never replace a known one; the comparison is case-insensitive.
func StatusRank(status string) int {
	return statusRanks[strings.ToLower(strings.TrimSpace(status))]
}

// IsFinalStatus reports whether Twilio normally sends no further status for a
// message in this status: delivered, undelivered, failed, canceled, received
// or read. delivered is final for SMS even though channels with read receipts
// may still report read, which StatusRank allows. partially_delivered is not
// final, because a later delivered or undelivered may follow.
func IsFinalStatus(status string) bool {
	return StatusRank(status) >= rankFinal
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
