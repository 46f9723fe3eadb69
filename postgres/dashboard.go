package postgres

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// DashboardListenerApplicationName names the dashboard event listener's
// connection in pg_stat_activity.
const DashboardListenerApplicationName = "voxanne_dashboard_listener"

// dashboardChannel is where the triggers of calls and messages announce
// changes (migration 0010).
const dashboardChannel = "voxanne_events"

// EventListener follows the new and changed calls and messages of every org
// (ids only) for the dashboard's live updates: one connection per instance.
type EventListener struct {
	DB *DB
	// Publish receives each change; it must not block.
	Publish func(orgID, kind, id string)
	Logger  *slog.Logger
}

// Run listens until ctx ends, reconnecting with backoff. Changes made while
// the connection is down are not replayed: pages opened later read the rows.
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
		var ev struct {
			OrgID string `json:"org_id"`
			Kind  string `json:"kind"`
			ID    string `json:"id"`
		}
		if json.Unmarshal([]byte(n.Payload), &ev) != nil || ev.OrgID == "" || ev.ID == "" {
			continue
		}
		l.Publish(ev.OrgID, ev.Kind, ev.ID)
	}
}
