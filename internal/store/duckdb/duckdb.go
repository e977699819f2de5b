// Package duckdb is the embedded event store. DuckDB allows one writing
// process per file, so the CLI reaches it through the running server.
package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	duck "github.com/duckdb/duckdb-go/v2"

	"fjord/internal/rollup"
	"fjord/internal/store"
	"fjord/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options bound DuckDB's appetite: by default it takes 80% of RAM and
// every core, which would starve the collector on a small machine.
type Options struct {
	MemoryLimit string // e.g. "512MB"
	Threads     int
}

// Store is the DuckDB event store.
type Store struct {
	sqlstore.EventReads
	writer *sql.Conn // the loader's connection; Apply is called by one goroutine
}

// Open opens (creating if needed) the event store at path.
func Open(ctx context.Context, path string, opt Options) (*Store, error) {
	q := url.Values{}
	if opt.MemoryLimit != "" {
		q.Set("memory_limit", opt.MemoryLimit)
	}
	if opt.Threads > 0 {
		q.Set("threads", fmt.Sprint(opt.Threads))
	}
	dsn := path
	if len(q) > 0 {
		dsn += "?" + q.Encode()
	}
	connector, err := duck.NewConnector(dsn, nil)
	if err != nil {
		return nil, fmt.Errorf("open event store %s: %w", path, explainLock(err))
	}
	db := sql.OpenDB(connector)
	if _, err := store.Migrate(ctx, db, "schema_migrations", migrations, "migrations", store.DollarPlaceholder); err != nil {
		db.Close()
		return nil, fmt.Errorf("event store %s: %w", path, err)
	}
	w, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("event store %s: %w", path, err)
	}
	// The batch's identities go to a temporary table (the writer
	// connection's own) for the look-up of stored ones.
	if _, err := w.ExecContext(ctx, `CREATE TEMP TABLE apply_batch (site_id BIGINT NOT NULL, ts BIGINT NOT NULL, id UUID NOT NULL)`); err != nil {
		w.Close()
		db.Close()
		return nil, fmt.Errorf("event store %s: %w", path, err)
	}
	st := &Store{EventReads: sqlstore.EventReads{DB: db, D: Dialect,
		Schema: store.Schema{Table: "schema_migrations", Files: migrations, Dir: "migrations"}}, writer: w}
	st.InTx = st.inTx
	st.Cluster = st.cluster
	return st, nil
}

// Dialect is DuckDB's.
var Dialect = sqlstore.Dialect{Name: "duckdb", Dollar: true}

func explainLock(err error) error {
	if strings.Contains(err.Error(), "Could not set lock") {
		return fmt.Errorf("%w (another process, probably a running fjord serve, holds the event store; use the running server)", err)
	}
	return err
}

// Apply appends the batch with DuckDB's Appender and records the journal
// position in the same transaction: one commit (one WAL fsync) per batch.
func (s *Store) Apply(ctx context.Context, events []store.Event, pos store.JournalPos) error {
	return s.apply(ctx, events, &pos)
}

// Check tells whether Apply would accept the events, storing nothing.
func (s *Store) Check(ctx context.Context, events []store.Event) error {
	return s.apply(ctx, events, nil)
}

// errCheckOnly ends the transaction of a Check.
var errCheckOnly = errors.New("check only")

// apply inserts the events in one transaction; with pos nil it rolls back.
func (s *Store) apply(ctx context.Context, events []store.Event, pos *store.JournalPos) (err error) {
	s.LockWrites()
	defer func() { s.UnlockWrites(err != nil && pos != nil) }()
	var dropped int
	err = s.inTx(ctx, func(tx sqlstore.Tx) error {
		if pos != nil && len(events) > 0 {
			var err error
			cutoff := s.Cutoff()
			events, dropped, err = sqlstore.Dedup(events, cutoff, func(evs []store.Event, cutoff int64) (map[sqlstore.EventKey]bool, error) {
				return s.findStored(ctx, evs, cutoff)
			})
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			if err := s.remember(ctx, sqlstore.Recent(events, cutoff), cutoff); err != nil {
				return fmt.Errorf("apply: recent ids: %w", err)
			}
		}
		if len(events) > 0 {
			err := s.append("events", func(a *duck.Appender) error {
				vals := make([]driver.Value, 0, 27)
				for i := range events {
					if err := a.AppendRow(row(vals, &events[i])...); err != nil {
						return fmt.Errorf("event %x: %w", events[i].ID, err)
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("apply %d events: %w", len(events), err)
			}
		}
		if pos == nil {
			return errCheckOnly
		}
		if err := s.ApplyRollups(ctx, tx, events); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		if err := tx.Exec(ctx, s.D.Rebind(sqlstore.SetPositionSQL), pos.Journal, int64(pos.Segment), pos.Offset); err != nil {
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

// findStored returns the identities among events that are stored (see
// sqlstore.FindStored). The batch goes to apply_batch with the Appender;
// recent events are looked up in recent_ids, older ones in the events of
// their time range only (the zone maps on ts skip the other row groups).
func (s *Store) findStored(ctx context.Context, events []store.Event, cutoff int64) (map[sqlstore.EventKey]bool, error) {
	if _, err := s.writer.ExecContext(ctx, `DELETE FROM apply_batch`); err != nil {
		return nil, err
	}
	lo, hi, old := int64(0), int64(0), false
	rlo, rhi := store.Millis(events[0].Time), store.Millis(events[0].Time)
	err := s.appendTo("temp", "apply_batch", func(a *duck.Appender) error {
		for i := range events {
			ts := store.Millis(events[i].Time)
			rlo, rhi = min(rlo, ts), max(rhi, ts)
			if ts < cutoff {
				if !old {
					lo, hi, old = ts, ts, true
				}
				lo, hi = min(lo, ts), max(hi, ts)
			}
			if err := a.AppendRow(events[i].SiteID, ts, duck.UUID(events[i].ID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	found := map[sqlstore.EventKey]bool{}
	scan := func(q string, args ...any) error {
		rows, err := s.writer.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k sqlstore.EventKey
			var id duck.UUID
			if err := rows.Scan(&k.Site, &id); err != nil {
				return err
			}
			k.ID = id
			found[k] = true
		}
		return rows.Err()
	}
	// Two collectors' copies of one event were received seconds apart, so
	// the look-up reads only recent_ids within an hour of the batch's
	// times (zone maps skip the rest of the 72 hours).
	if err := scan(`SELECT b.site_id, b.id FROM apply_batch b JOIN recent_ids r ON r.site_id = b.site_id AND r.id = b.id
		WHERE r.ts BETWEEN $1 AND $2`, rlo-recentSlack, rhi+recentSlack); err != nil {
		return nil, err
	}
	if old {
		err := scan(`SELECT e.site_id, e.id FROM events e
			JOIN apply_batch b ON e.site_id = b.site_id AND e.ts = b.ts AND e.id = b.id
			WHERE b.ts < $1 AND e.ts BETWEEN $2 AND $3`, cutoff, lo, hi)
		if err != nil {
			return nil, err
		}
	}
	return found, nil
}

// recentSlack is how far apart (ms) two collectors' receipt times of one
// event may be and still be found in recent_ids.
const recentSlack = int64(time.Hour / time.Millisecond)

// remember adds the identities of the recent events stored to recent_ids,
// and now and then forgets those past the window.
func (s *Store) remember(ctx context.Context, recent []store.Event, cutoff int64) error {
	if s.PruneDue() {
		if _, err := s.writer.ExecContext(ctx, `DELETE FROM recent_ids WHERE ts < $1`, cutoff); err != nil {
			return err
		}
	}
	if len(recent) == 0 {
		return nil
	}
	return s.append("recent_ids", func(a *duck.Appender) error {
		for i := range recent {
			if err := a.AppendRow(recent[i].SiteID, duck.UUID(recent[i].ID), store.Millis(recent[i].Time)); err != nil {
				return err
			}
		}
		return nil
	})
}

// inTx runs fn in a transaction of the writer connection: the loader's
// batches and the rollup job take turns on it (under LockWrites).
func (s *Store) inTx(ctx context.Context, fn func(sqlstore.Tx) error) (err error) {
	if _, err := s.writer.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(writerTx{s}); err != nil {
		s.writer.ExecContext(context.Background(), "ROLLBACK")
		return err
	}
	if _, err := s.writer.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// cluster rewrites rollups in (site, dimension, day, value) order: the
// sorted copy is appended, then the old rows (rowids up to the last one
// before it) deleted, in one transaction; a checkpoint frees their blocks.
func (s *Store) cluster(ctx context.Context) error {
	return s.inTx(ctx, func(tx sqlstore.Tx) error {
		var last sql.NullInt64
		if err := s.writer.QueryRowContext(ctx, `SELECT MAX(rowid) FROM rollups`).Scan(&last); err != nil || !last.Valid {
			return err
		}
		if err := tx.Exec(ctx, `INSERT INTO rollups SELECT * FROM rollups ORDER BY site_id, dim, day, val`); err != nil {
			return err
		}
		return tx.Exec(ctx, `DELETE FROM rollups WHERE rowid <= $1`, last.Int64)
	})
}

// append runs fill with an appender on table, on the writer connection.
func (s *Store) append(table string, fill func(*duck.Appender) error) error {
	return s.appendTo("", table, fill)
}

// appendTo is append to a table of a catalog ("temp" for a temporary one).
func (s *Store) appendTo(catalog, table string, fill func(*duck.Appender) error) error {
	return s.writer.Raw(func(dc any) error {
		a, err := duck.NewAppender(dc.(driver.Conn), catalog, "", table)
		if err != nil {
			return err
		}
		if err := fill(a); err != nil {
			a.Close()
			return err
		}
		return a.Close()
	})
}

type writerTx struct{ s *Store }

func (t writerTx) Exec(ctx context.Context, q string, args ...any) error {
	_, err := t.s.writer.ExecContext(ctx, q, args...)
	return err
}

func (t writerTx) AppendRollups(ctx context.Context, site int64, day string, rows []rollup.Row) error {
	if len(rows) == 0 {
		return nil
	}
	return t.s.append("rollups", func(a *duck.Appender) error {
		vals := make([]driver.Value, len(sqlstore.RollupColumns))
		for i := range rows {
			for j, v := range sqlstore.RollupValues(site, day, &rows[i]) {
				vals[j] = v
			}
			if err := a.AppendRow(vals...); err != nil {
				return fmt.Errorf("rollup row %s=%q: %w", rows[i].Dim, rows[i].Val, err)
			}
		}
		return nil
	})
}

// row fills vals (reused across rows: the appender copies them) with an
// event's columns.
func row(vals []driver.Value, e *store.Event) []driver.Value {
	return append(vals[:0],
		duck.UUID(e.ID), e.SiteID, store.Millis(e.Time), e.Name, int64(e.VisitorID),
		e.Hostname, e.Path, e.Referrer, e.Source, e.Channel,
		e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMContent, e.UTMTerm,
		e.Country, e.Region, e.City, e.Browser, e.BrowserVersion, e.OS, e.OSVersion, e.Device,
		e.Props, e.Interactive, e.ScrollDepth, e.EngagedMS,
	)
}

// Checkpoint folds the WAL into the database file.
func (s *Store) Checkpoint(ctx context.Context) error {
	_, err := s.DB.ExecContext(ctx, "CHECKPOINT")
	return err
}

func (s *Store) Close() error {
	s.writer.Close()
	return s.DB.Close()
}
