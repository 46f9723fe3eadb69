package webhook

import (
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/voxanne/voxanne"
)

// VapiEvent is the domain event of a Vapi status-update, end-of-call-report or
// hang: what it says about its call, with the message's fields taking
// precedence over the call's.
func VapiEvent(m *VapiMessage) *voxanne.Event {
	c := &voxanne.CallEvent{
		Type:                  m.Type,
		ProviderCallID:        m.CallID(),
		Direction:             m.Direction(),
		At:                    m.Timestamp,
		AssistantID:           m.AssistantID(),
		ProviderPhoneNumberID: m.PhoneNumberID(),
		StartedAt:             m.StartedAt,
		EndedAt:               m.EndedAt,
		DurationSeconds:       m.DurationSeconds(),
		EndedReason:           m.EndedReason,
		CostUSD:               m.Cost,
		Summary:               m.Analysis.Summary,
		SuccessEvaluation:     m.Analysis.SuccessEvaluation,
		Transcript:            m.Artifact.Transcript,
		Messages:              m.Artifact.Messages,
		StructuredData:        m.Analysis.StructuredData,
		RecordingURL:          m.Artifact.RecordingURL,
		CreatedAt:             m.Call.CreatedAt,
	}
	switch m.Type {
	case "status-update":
		c.Status = m.Status
	case "end-of-call-report":
		c.Status = "ended"
	}
	customer := m.Customer
	if customer.Number == "" {
		customer = m.Call.Customer
	}
	c.CustomerNumber, c.CustomerName = customer.Number, customer.Name
	c.From, c.To = customer.Number, m.PhoneNumber.Number
	if c.Direction == "outbound" {
		c.From, c.To = m.PhoneNumber.Number, customer.Number
	}
	if c.StartedAt.IsZero() {
		c.StartedAt = m.Call.StartedAt
	}
	if c.EndedAt.IsZero() {
		c.EndedAt = m.Call.EndedAt
	}
	if c.CostUSD == nil {
		c.CostUSD = m.Call.Cost
	}
	if len(c.Messages) == 0 || string(c.Messages) == "null" {
		c.Messages = nil
	}
	if len(c.StructuredData) == 0 || string(c.StructuredData) == "null" {
		c.StructuredData = nil
	}
	c.Clamp()
	return &voxanne.Event{Call: c}
}

// TwilioEvent is the domain event of a Twilio inbound SMS (kind "sms") or
// message status callback (kind "status"). An inbound message without a
// status is "received".
func TwilioEvent(kind string, sms *TwilioSMS) *voxanne.Event {
	m := &voxanne.MessageEvent{Kind: kind, ProviderMessageID: sms.MessageSid, From: sms.From, To: sms.To,
		Body: sms.Body, Status: sms.MessageStatus}
	if kind == "sms" {
		if m.Status == "" {
			m.Status = "received"
		}
		m.Media = make([]voxanne.Media, 0, len(sms.Media))
		for _, x := range sms.Media {
			m.Media = append(m.Media, voxanne.Media{URL: x.URL, ContentType: x.ContentType})
		}
	}
	m.StatusRank = StatusRank(m.Status)
	return &voxanne.Event{Message: m}
}

// DecodeStored decodes the raw payload of a stored event of provider and type
// typ, as ingestion stored it (a Vapi body; a Twilio form as a JSON object of
// value lists). It serves events stored before ingestion kept the decoded
// event.
func DecodeStored(provider, typ string, payload []byte) (*voxanne.Event, error) {
	switch provider {
	case "vapi":
		m, err := ParseVapi(payload)
		if err != nil {
			return nil, fmt.Errorf("decode stored vapi event: %w", err)
		}
		return VapiEvent(m), nil
	case "twilio":
		var form url.Values
		if err := json.Unmarshal(payload, &form); err != nil {
			return nil, fmt.Errorf("decode stored twilio event: %w", err)
		}
		sms, err := ParseTwilioSMS(form)
		if err != nil {
			return nil, fmt.Errorf("decode stored twilio event: %w", err)
		}
		return TwilioEvent(typ, sms), nil
	}
	return nil, fmt.Errorf("%w: unknown provider %q", ErrBadPayload, provider)
}
