// Package postgres is the production engine for both stores. A
// postgres:// URL selects it; both stores may share one database.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"fjord/internal/store"
	"fjord/internal/store/sqlstore"
)

//go:embed accounts/*.sql events/*.sql
var migrations embed.FS

// Dialect is PostgreSQL's.
var Dialect = sqlstore.Dialect{Name: "postgres", Dollar: true, IsUnique: isUnique}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func open(ctx context.Context, url, table, dir string) (*sql.DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if _, err := store.Migrate(ctx, db, table, migrations, dir, store.DollarPlaceholder); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return db, nil
}

// OpenAccounts opens the account store in the database at url.
func OpenAccounts(ctx context.Context, url string) (*sqlstore.Accounts, error) {
	db, err := open(ctx, url, "schema_migrations_accounts", "accounts")
	if err != nil {
		return nil, err
	}
	return &sqlstore.Accounts{DB: db, D: Dialect}, nil
}

// Events is the PostgreSQL event store.
type Events struct {
	sqlstore.EventReads
}

// OpenEvents opens the event store in the database at url.
func OpenEvents(ctx context.Context, url string) (*Events, error) {
	db, err := open(ctx, url, "schema_migrations_events", "events")
	if err != nil {
		return nil, err
	}
	return &Events{EventReads: sqlstore.EventReads{DB: db, D: Dialect}}, nil
}

var eventColumns = []string{
	"id", "site_id", "ts", "name", "visitor_id",
	"hostname", "path", "referrer", "source", "channel",
	"utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
	"country", "region", "city", "browser", "browser_version", "os", "os_version", "device",
	"props", "interactive", "scroll_depth", "engaged_ms",
}

// Apply copies the batch in with COPY and records the journal position in
// the same transaction.
func (s *Events) Apply(ctx context.Context, events []store.Event, pos store.JournalPos) error {
	return s.apply(ctx, events, &pos)
}

// Check tells whether Apply would accept the events, storing nothing.
func (s *Events) Check(ctx context.Context, events []store.Event) error {
	return s.apply(ctx, events, nil)
}

// apply copies the events in one transaction; with pos nil it rolls back.
func (s *Events) apply(ctx context.Context, events []store.Event, pos *store.JournalPos) error {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		tx, err := c.Begin(ctx)
		if err != nil {
			return fmt.Errorf("apply: begin: %w", err)
		}
		defer tx.Rollback(context.Background())
		if len(events) > 0 {
			rows := pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
				e := &events[i]
				return []any{
					e.ID, e.SiteID, store.Millis(e.Time), e.Name, int64(e.VisitorID),
					e.Hostname, e.Path, e.Referrer, e.Source, e.Channel,
					e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMContent, e.UTMTerm,
					e.Country, e.Region, e.City, e.Browser, e.BrowserVersion, e.OS, e.OSVersion, e.Device,
					e.Props, e.Interactive, e.ScrollDepth, e.EngagedMS,
				}, nil
			})
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, rows); err != nil {
				return fmt.Errorf("apply %d events: %w", len(events), err)
			}
		}
		if pos == nil {
			return tx.Rollback(ctx)
		}
		for site, span := range sqlstore.TimeSpans(events) {
			if _, err := tx.Exec(ctx, s.D.Rebind(sqlstore.InvalidateSQL), site, span[0], span[1]); err != nil {
				return fmt.Errorf("apply: invalidate rollups: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, s.D.Rebind(sqlstore.SetPositionSQL), pos.Journal, int64(pos.Segment), pos.Offset); err != nil {
			return fmt.Errorf("apply: record position: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("apply: commit: %w", err)
		}
		return nil
	})
}

func (s *Events) Close() error { return s.DB.Close() }
