// Package postgres is the production engine for both stores. A
// postgres:// URL selects it; both stores may share one database.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"fjord/internal/rollup"
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

// maxConns bounds the connections of one store.
const maxConns = 32

func open(ctx context.Context, url, table, dir string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	// pgx prepares and caches statements; after five runs PostgreSQL may
	// switch one to a generic plan that ignores the parameters, and for a
	// report over a time range that plan was 10x slower (3 s instead of
	// 0.3 s at 1M events). Planning is cheap next to these queries.
	if _, set := cfg.RuntimeParams["plan_cache_mode"]; !set {
		cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	db := stdlib.OpenDB(*cfg)
	// The dashboard asks its fifteen questions at once. database/sql keeps
	// only two idle connections by default, so every page closed and
	// opened a dozen (a backend process each): 450 ms of a 500 ms
	// dashboard at 1M events. Keep enough for a page or two; let them go
	// when idle.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
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
	return &sqlstore.Accounts{DB: db, D: Dialect, Schema: store.Schema{Table: "schema_migrations_accounts", Files: migrations, Dir: "accounts"}}, nil
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
	ev := &Events{EventReads: sqlstore.EventReads{DB: db, D: Dialect, Weeks: true,
		Schema: store.Schema{Table: "schema_migrations_events", Files: migrations, Dir: "events"}}}
	ev.InTx = ev.inTx
	return ev, nil
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

// errCheckOnly ends the transaction of a Check.
var errCheckOnly = errors.New("check only")

// apply copies the events in one transaction; with pos nil it rolls back.
func (s *Events) apply(ctx context.Context, events []store.Event, pos *store.JournalPos) (err error) {
	s.LockWrites()
	defer func() { s.UnlockWrites(err != nil && pos != nil) }()
	var dropped int
	err = s.inTx(ctx, func(stx sqlstore.Tx) error {
		tx := stx.(pgTx).tx
		if pos != nil && len(events) > 0 {
			// Until commit, no other loader on this database may store
			// an id this one has looked up and found absent.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, applyLockKey); err != nil {
				return fmt.Errorf("apply: lock: %w", err)
			}
			var err error
			cutoff := s.Cutoff()
			events, dropped, err = sqlstore.Dedup(events, cutoff, func(evs []store.Event, cutoff int64) (map[sqlstore.EventKey]bool, error) {
				return findStored(ctx, tx, evs, cutoff)
			})
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			if err := s.remember(ctx, tx, sqlstore.Recent(events, cutoff), cutoff); err != nil {
				return fmt.Errorf("apply: recent ids: %w", err)
			}
		}
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
			return errCheckOnly
		}
		if err := s.ApplyRollups(ctx, stx, events); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		if err := stx.Exec(ctx, s.D.Rebind(sqlstore.SetPositionSQL), pos.Journal, int64(pos.Segment), pos.Offset); err != nil {
			return fmt.Errorf("apply: record position: %w", err)
		}
		return nil
	})
	if pos == nil && errors.Is(err, errCheckOnly) {
		return nil
	}
	if err == nil {
		s.CountDuplicates(dropped)
	}
	return err
}

// applyLockKey names the transaction-scoped advisory lock that Apply
// takes (any fixed number no other user of the database takes): it
// serializes the batches of every server loading into this database
// between their look-up of stored ids and their commit, so that two
// servers given the same event cannot both find it absent and insert it.
const applyLockKey int64 = 0x666a6f7264646570 // "fjorddep"

// findOldSQL joins the batch's events older than the window, passed as
// three arrays, against the stored events, one probe of events_site_ts
// (site_id, ts) per event. The LATERAL ... LIMIT 1 keeps the planner to
// those probes: with a plain join and statistics that lag behind a
// growing table it chose a merge join over a sort of every stored event
// (600 ms for a 10,000-event batch over 1M events, against 50 ms).
const findOldSQL = `SELECT b.site_id, b.id
	FROM unnest($1::bigint[], $2::bigint[], $3::uuid[]) AS b(site_id, ts, id)
	CROSS JOIN LATERAL (SELECT FROM events e WHERE e.site_id = b.site_id AND e.ts = b.ts AND e.id = b.id LIMIT 1) AS s`

// findRecentSQL probes recent_ids' primary key once per recent event.
const findRecentSQL = `SELECT b.site_id, b.id
	FROM unnest($1::bigint[], $2::uuid[]) AS b(site_id, id)
	CROSS JOIN LATERAL (SELECT FROM recent_ids r WHERE r.site_id = b.site_id AND r.id = b.id) AS s`

// remember adds the identities of the recent events stored to recent_ids,
// and now and then forgets those past the window.
func (s *Events) remember(ctx context.Context, tx pgx.Tx, recent []store.Event, cutoff int64) error {
	if s.PruneDue() {
		if _, err := tx.Exec(ctx, `DELETE FROM recent_ids WHERE ts < $1`, cutoff); err != nil {
			return err
		}
	}
	if len(recent) == 0 {
		return nil
	}
	sites, ids, ts := make([]int64, len(recent)), make([][16]byte, len(recent)), make([]int64, len(recent))
	for i := range recent {
		sites[i], ids[i], ts[i] = recent[i].SiteID, recent[i].ID, store.Millis(recent[i].Time)
	}
	_, err := tx.Exec(ctx, `INSERT INTO recent_ids SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[]) ON CONFLICT DO NOTHING`, sites, ids, ts)
	return err
}

// findStored returns the identities among events that are stored (see
// sqlstore.FindStored).
func findStored(ctx context.Context, tx pgx.Tx, events []store.Event, cutoff int64) (map[sqlstore.EventKey]bool, error) {
	var rSites, oSites, oTS []int64
	var rIDs, oIDs [][16]byte
	for i := range events {
		e := &events[i]
		if ts := store.Millis(e.Time); ts >= cutoff {
			rSites, rIDs = append(rSites, e.SiteID), append(rIDs, e.ID)
		} else {
			oSites, oTS, oIDs = append(oSites, e.SiteID), append(oTS, ts), append(oIDs, e.ID)
		}
	}
	found := map[sqlstore.EventKey]bool{}
	scan := func(q string, args ...any) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k sqlstore.EventKey
			if err := rows.Scan(&k.Site, &k.ID); err != nil {
				return err
			}
			found[k] = true
		}
		return rows.Err()
	}
	if len(rSites) > 0 {
		if err := scan(findRecentSQL, rSites, rIDs); err != nil {
			return nil, err
		}
	}
	if len(oSites) > 0 {
		if err := scan(findOldSQL, oSites, oTS, oIDs); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// inTx runs fn in a transaction on one connection of the pool.
func (s *Events) inTx(ctx context.Context, fn func(sqlstore.Tx) error) error {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		// read committed whatever the server's default: Apply's look-up
		// of stored ids, after the advisory lock, must see what the
		// server that held the lock before committed
		tx, err := dc.(*stdlib.Conn).Conn().BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer tx.Rollback(context.Background())
		if err := fn(pgTx{tx}); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
}

type pgTx struct{ tx pgx.Tx }

func (t pgTx) Exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, q, args...)
	return err
}

func (t pgTx) AppendRollups(ctx context.Context, site int64, day string, rows []rollup.Row) error {
	if len(rows) == 0 {
		return nil
	}
	_, err := t.tx.CopyFrom(ctx, pgx.Identifier{"rollups"}, sqlstore.RollupColumns, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		return sqlstore.RollupValues(site, day, &rows[i]), nil
	}))
	return err
}

func (s *Events) Close() error { return s.DB.Close() }
