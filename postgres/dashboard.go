package postgres

import (
	"context"
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
	// Publish receives the id of each org whose data changed; it must not
	// block.
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

// ContactNames returns the names of the caller's org's contacts among ids, for
// the dashboard's lists (contacts without a name, and ids of other orgs, are
// left out).
func (s *VoiceStore) ContactNames(ctx context.Context, p *voxanne.Principal, ids []string) (map[string]string, error) {
	out := map[string]string{}
	var valid []string
	for _, id := range ids {
		if u, err := uuid.Parse(id); err == nil {
			valid = append(valid, u.String())
		}
	}
	if len(valid) == 0 {
		return out, nil
	}
	err := s.db.InTenant(ctx, *p, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `select id::text, name from contacts
			where org_id = coalesce($1, org_id) and id = any($2::uuid[]) and coalesce(name, '') <> ''`, s.db.org(p), valid)
		if err != nil {
			return err
		}
		var id, name string
		_, err = pgx.ForEachRow(rows, []any{&id, &name}, func() error { out[id] = name; return nil })
		return err
	})
	if err != nil {
		return nil, mapError("contact names", err)
	}
	return out, nil
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
