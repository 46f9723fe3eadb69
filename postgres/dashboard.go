package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/voxanne/voxanne"
)

// DashboardListenerApplicationName names the dashboard event listener's
// connection in pg_stat_activity.
const DashboardListenerApplicationName = "voxanne_dashboard_listener"

// dashboardChannel carries the ids of orgs whose calls or messages changed.
const dashboardChannel = "voxanne_events"

// EventProcessor turns a stored webhook event into calls, messages and
// contacts (the IngestStore does).
type EventProcessor interface {
	ProcessEvent(ctx context.Context, job voxanne.ProcessEventArgs) error
}

// DashboardNotifier wraps the webhook event processor: after each processed
// event it announces with NOTIFY that the event's org has new or changed calls
// or messages. The announcement carries the org id only, never data; every
// instance hears it, and each open dashboard stream of that org re-reads
// through the tenant path what changed.
type DashboardNotifier struct {
	DB   *DB
	Next EventProcessor
}

// ProcessEvent processes the event, then announces its org.
func (n *DashboardNotifier) ProcessEvent(ctx context.Context, job voxanne.ProcessEventArgs) error {
	err := n.Next.ProcessEvent(ctx, job)
	if err == nil && job.OrgID != "" {
		// A lost announcement only delays a live page until the next one.
		_ = n.DB.NotifyDashboard(ctx, job.OrgID)
	}
	return err
}

// NotifyDashboard announces that org's calls or messages changed.
func (db *DB) NotifyDashboard(ctx context.Context, orgID string) error {
	return db.InService(ctx, "announce an organization's changes", func(c Conn) error {
		_, err := c.Exec(ctx, "select pg_notify($1, $2)", dashboardChannel, orgID)
		return err
	})
}

// EventListener follows the announcements of changed orgs for the dashboard's
// live updates: one LISTEN connection per instance.
type EventListener struct {
	DB *DB
	// Publish receives the id of each org whose data changed, and "" for
	// every org each time the listener starts listening; it must not block.
	Publish func(orgID string)
	Logger  *slog.Logger
}

// Run listens until ctx ends, reconnecting with backoff. Changes announced
// while the connection is down are not replayed: the next change, or a page
// load, shows them.
func (l *EventListener) Run(ctx context.Context) {
	cfg := l.DB.ownerCfg.Copy().ConnConfig
	cfg.User = AuthRole
	cfg.Password = rolePassword(l.DB.ownerCfg.ConnConfig.Password, AuthRole)
	cfg.RuntimeParams = map[string]string{"application_name": DashboardListenerApplicationName}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.session(ctx, cfg)
		if ctx.Err() != nil {
			return
		}
		if l.Logger != nil {
			l.Logger.Warn("dashboard event listener lost its connection; live updates pause until it is back", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (l *EventListener) session(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "listen "+dashboardChannel); err != nil {
		return err
	}
	// Changes made while no connection listened went unannounced: an empty
	// org tells the subscribers to look again at everything.
	l.Publish("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if u, err := uuid.Parse(n.Payload); err == nil {
			l.Publish(u.String())
		}
	}
}

// The dashboard's reads: each gathers what one page shows in one tenant
// transaction, with the statements sent together where one does not need
// another's answer, so that a page costs one transaction and few round trips.

// Statements of the team and audit pages ($1 is the org filter), which
// Members, Invitations and AuditLog read too.
const (
	memberOrder      = ` order by m.created_at, m.user_id`
	invitationSelect = `select id::text, email, role, created_at, expires_at, '' from invitations
		where org_id = coalesce($1, org_id) and accepted_at is null and expires_at > now() order by created_at desc`
	auditPageSQL = `select ` + auditColumns + ` from audit_log
		where org_id = coalesce($1, org_id) and ($2 = 0 or seq < $2) and ($3 = '' or action = $3)
		order by seq desc limit $4`
)

// listedCalls are the calls as the dashboard's lists show them: the fields a
// row shows (ID, Status, FromNumber, ContactID, StartedAt, DurationSeconds,
// EndedReason, CostUSD, the first 300 characters of Summary) and CreatedAt,
// the list's order, with the name of the call's contact; the other fields
// stay empty. Fewer columns are less for the database to send and for the
// server to decode.
var listedCalls = callShape{
	columns: `id::text, status, from_number, contact_id::text, started_at, duration_seconds, ended_reason, cost_usd::float8,
		left(summary, 300), created_at`,
	named: true,
	targets: func(c *namedRow[voxanne.Call]) []any {
		return []any{&c.item.ID, &c.item.Status, &c.item.FromNumber, &c.item.ContactID, &c.item.StartedAt, &c.item.DurationSeconds,
			&c.item.EndedReason, &c.item.CostUSD, &c.item.Summary, &c.item.CreatedAt, nil, nil, &c.name}
	},
}

// batchRows collects the rows of a batch's next statement.
func batchRows[T any](br pgx.BatchResults, scan pgx.RowToFunc[T]) ([]T, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scan)
}

// ListCallsNamed is ListCalls with the names of the calls' contacts (contact
// id to name; contacts without a name are left out), read by the same
// statement, and only the fields the dashboard's lists show (listedCalls).
func (s *VoiceStore) ListCallsNamed(ctx context.Context, p *voxanne.Principal, f voxanne.CallFilter, pg voxanne.Page) ([]voxanne.Call, map[string]string, string, error) {
	return s.listCalls(ctx, p, f, pg, listedCalls)
}

// ListMessagesNamed is ListMessages with the names of the messages' contacts,
// read by the same statement.
func (s *VoiceStore) ListMessagesNamed(ctx context.Context, p *voxanne.Principal, contactID string, pg voxanne.Page) ([]voxanne.Message, map[string]string, string, error) {
	return s.listMessages(ctx, p, contactID, pg, true)
}

// Overview is the overview page's data: the org's figures for [from, to] and
// for [today, to] (today must not be before from), and its latest calls with
// their contacts' names (as ListCallsNamed reads them). One pass over the
// period's calls and messages answers both sets of figures.
func (s *VoiceStore) Overview(ctx context.Context, p *voxanne.Principal, from, today, to time.Time, latest int) (period, day *voxanne.Stats, calls []voxanne.Call, names map[string]string, err error) {
	if from.After(today) || today.After(to) {
		return nil, nil, nil, nil, voxanne.Errorf(voxanne.EINVALID, "the periods are out of order")
	}
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		s.queueStats(b, p, from, to)
		sql, args := s.callsQuery(p, voxanne.CallFilter{}, nil, latest, listedCalls)
		b.Queue(sql, args...)
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		days, err := readStats(br)
		if err != nil {
			return err
		}
		period, day = days.since(time.Time{}), days.since(today)
		named, err := batchRows(br, listedCalls.scan)
		if err != nil {
			return err
		}
		named = named[:min(len(named), latest)]
		calls, names = unname(named), namesOf(named, func(c voxanne.Call) *string { return c.ContactID })
		return br.Close()
	})
	if err != nil {
		return nil, nil, nil, nil, mapError("overview", err)
	}
	return period, day, calls, names, nil
}

// CallWithContact is the call page's data: one of the org's calls with its
// transcript and analysis, and the caller's contact with their latest calls
// and messages (nil without a contact). The read is audited in the same
// transaction, as Call's is, by the last statement of the one batch: the
// org's audit chain is locked from it to the commit only.
func (s *VoiceStore) CallWithContact(ctx context.Context, p *voxanne.Principal, id, ip string) (*voxanne.CallDetail, *voxanne.ContactDetail, error) {
	var c voxanne.CallDetail
	var ct *voxanne.ContactDetail
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(callDetailSQL, s.db.org(p), id)
		s.queueContact(b, p, `(select contact_id from calls where org_id = coalesce($1, org_id) and id = $2)`, id)
		// Audits the read of the call, if there is one to read.
		b.Queue(`insert into audit_log (org_id, actor_id, action, target_type, target_id, ip, details, prev_hash, hash)
			select $3, nullif($4, '')::uuid, $5, 'call', id::text, nullif($6, ''), '{}', '', ''
			from calls where org_id = coalesce($1, org_id) and id = $2`,
			s.db.org(p), id, p.OrgID, p.UserID, voxanne.AuditTranscriptRead, ip)
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		err := br.QueryRow().Scan(callDetailTargets(&c)...)
		if errors.Is(err, pgx.ErrNoRows) {
			return voxanne.Errorf(voxanne.ENOTFOUND, "no such call")
		} else if err != nil {
			return err
		}
		if ct, err = readContact(br); err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("audit %s: %w", voxanne.AuditTranscriptRead, err)
		}
		return br.Close()
	})
	if err != nil {
		return nil, nil, mapError("get call", err)
	}
	return &c, ct, nil
}

// Team is the team page's data: the org's members and, for admins, its open
// invitations.
func (s *OrgStore) Team(ctx context.Context, p *voxanne.Principal) (members []voxanne.Member, invitations []voxanne.Invitation, err error) {
	admin := voxanne.AtLeast(p.OrgRole, voxanne.RoleAdmin)
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(memberSelect+memberOrder, s.db.org(p))
		if admin {
			b.Queue(invitationSelect, s.db.org(p))
		}
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		var err error
		if members, err = batchRows(br, pgx.RowToStructByPos[voxanne.Member]); err != nil {
			return err
		}
		if admin {
			if invitations, err = batchRows(br, pgx.RowToStructByPos[voxanne.Invitation]); err != nil {
				return err
			}
		}
		return br.Close()
	})
	if err != nil {
		return nil, nil, mapError("team", err)
	}
	return members, invitations, nil
}

// AuditPage is the audit page's data (admin): a page of the org's audit log,
// as AuditLog reads it, and the org's members, who name the entries' actors.
func (s *OrgStore) AuditPage(ctx context.Context, p *voxanne.Principal, limit int, before int64, action string) (entries []voxanne.AuditEntry, members []voxanne.Member, err error) {
	if err := requireRole(p, voxanne.RoleAdmin); err != nil {
		return nil, nil, err
	}
	err = s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(auditPageSQL, s.db.org(p), before, action, limit)
		b.Queue(memberSelect+memberOrder, s.db.org(p))
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		var err error
		if entries, err = batchRows(br, scanAudit); err != nil {
			return err
		}
		if members, err = batchRows(br, pgx.RowToStructByPos[voxanne.Member]); err != nil {
			return err
		}
		return br.Close()
	})
	if err != nil {
		return nil, nil, mapError("audit log", err)
	}
	return entries, members, nil
}

// SearchContacts lists the caller's org's contacts whose name, number or email
// contains q (ignoring case), newest first, paged with the cursors of
// ListContacts.
func (s *VoiceStore) SearchContacts(ctx context.Context, p *voxanne.Principal, q string, pg voxanne.Page) ([]voxanne.Contact, string, error) {
	if utf8.RuneCountInString(q) > 256 {
		return nil, "", voxanne.Errorf(voxanne.EINVALID, "the search is longer than 256 characters")
	}
	return s.listContacts(ctx, p, q, pg)
}

// likeEscaper makes a search string match literally inside a LIKE pattern.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
