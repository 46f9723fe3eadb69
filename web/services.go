package web

import (
	"context"
	"time"

	"github.com/voxanne/voxanne"
)

// VoiceService is the voice service as the dashboard uses it: the API's
// service and the reads that gather what one page shows in one tenant
// transaction (postgres.VoiceStore implements both).
type VoiceService interface {
	voxanne.VoiceService
	// ListCallsNamed is ListCalls with the names of the calls' contacts
	// (contact id to name).
	ListCallsNamed(ctx context.Context, p *voxanne.Principal, f voxanne.CallFilter, pg voxanne.Page) ([]voxanne.Call, map[string]string, string, error)
	// ListMessagesNamed is ListMessages with the names of their contacts.
	ListMessagesNamed(ctx context.Context, p *voxanne.Principal, contactID string, pg voxanne.Page) ([]voxanne.Message, map[string]string, string, error)
	// SearchContacts lists the contacts whose name, number or email
	// contains q.
	SearchContacts(ctx context.Context, p *voxanne.Principal, q string, pg voxanne.Page) ([]voxanne.Contact, string, error)
	// Overview returns the figures of [from, to] and of [today, to] and the
	// latest calls with their contacts' names.
	Overview(ctx context.Context, p *voxanne.Principal, from, today, to time.Time, latest int) (period, day *voxanne.Stats, calls []voxanne.Call, names map[string]string, err error)
	// CallWithContact returns a call (its read audited) and its caller's
	// contact, nil without one.
	CallWithContact(ctx context.Context, p *voxanne.Principal, id, ip string) (*voxanne.CallDetail, *voxanne.ContactDetail, error)
}

// OrgService is the org service as the dashboard uses it: the API's service
// and the reads of the team and audit pages (postgres.OrgStore).
type OrgService interface {
	voxanne.OrgService
	// Team returns the members and, for admins, the open invitations.
	Team(ctx context.Context, p *voxanne.Principal) ([]voxanne.Member, []voxanne.Invitation, error)
	// AuditPage returns a page of the audit log (admin) and the members who
	// name its actors.
	AuditPage(ctx context.Context, p *voxanne.Principal, limit int, before int64, action string) ([]voxanne.AuditEntry, []voxanne.Member, error)
}
