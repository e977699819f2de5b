package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"fjord/internal/store"
)

// EventReads is the part of the event store that is the same SQL on DuckDB
// and PostgreSQL. The engines embed it and add Apply.
type EventReads struct {
	DB *sql.DB
	D  Dialect
	// InTx runs fn in a write transaction of the engine, committing when
	// fn returns nil.
	InTx func(ctx context.Context, fn func(Tx) error) error
	// Cluster, when set, rewrites rollups in (site, dimension, day) order
	// so that a panel reads only its dimension's part (DuckDB prunes by
	// min/max per row group; PostgreSQL reads its index instead).
	Cluster func(ctx context.Context) error
	// Weeks turns on week rollups (weeks.go): what an engine that reads
	// many rollup rows slowly (PostgreSQL) needs.
	Weeks bool
	// Schema: the migrations Open applied; zero: CheckSchema checks nothing.
	Schema store.Schema
	// DedupNow is the clock of the de-duplication window (nil: time.Now).
	DedupNow func() time.Time
	live     live
	dups     atomic.Uint64 // Duplicates
	pruned   time.Time     // the last prune of recent_ids; under the write lock
}

// Ping reaches the database.
func (e *EventReads) Ping(ctx context.Context) error { return e.DB.PingContext(ctx) }

// CheckSchema compares the applied migrations with the binary's.
func (e *EventReads) CheckSchema(ctx context.Context) error {
	if e.Schema.Files == nil {
		return nil
	}
	return store.CheckSchema(ctx, e.DB, e.Schema)
}

// KeepsWeeks tells whether the store builds week rollups.
func (e *EventReads) KeepsWeeks() bool { return e.Weeks }

func (e *EventReads) q(s string) string { return e.D.Rebind(s) }

func (e *EventReads) Position(ctx context.Context, journal string) (store.JournalPos, error) {
	p := store.JournalPos{Journal: journal}
	var seg int64
	err := e.DB.QueryRowContext(ctx, e.q(`SELECT segment, off FROM journal_positions WHERE journal = ?`), journal).Scan(&seg, &p.Offset)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("journal position: %w", err)
	}
	p.Segment = uint64(seg)
	return p, nil
}

// SetPositionSQL records the applied journal position; engines run it inside
// the transaction that inserts the batch.
const SetPositionSQL = `INSERT INTO journal_positions (journal, segment, off) VALUES (?, ?, ?)
	ON CONFLICT (journal) DO UPDATE SET segment = excluded.segment, off = excluded.off`

// summarySQL derives visits from the events themselves: a visitor's
// (non-engagement) events form one visit while each follows the previous
// within the session timeout. Because the visitor id changes with the daily
// salt, no visit spans two local days. Bounce: a visit with at most one
// interactive event (pageviews are always interactive).
const summarySQL = `
WITH ev AS (
	SELECT visitor_id, ts, id, name, interactive,
		CASE WHEN ts - LAG(ts) OVER (PARTITION BY visitor_id ORDER BY ts, id) <= ? THEN 0 ELSE 1 END AS starts
	FROM events
	WHERE site_id = ? AND ts >= ? AND ts < ? AND name <> 'engagement'
), numbered AS (
	SELECT visitor_id, ts, name, interactive,
		SUM(starts) OVER (PARTITION BY visitor_id ORDER BY ts, id ROWS UNBOUNDED PRECEDING) AS visit
	FROM ev
), visits AS (
	SELECT visitor_id,
		MAX(ts) - MIN(ts) AS dur,
		SUM(CASE WHEN name = 'pageview' THEN 1 ELSE 0 END) AS pv,
		SUM(CASE WHEN name = 'pageview' OR interactive THEN 1 ELSE 0 END) AS inter,
		COUNT(*) AS n
	FROM numbered GROUP BY visitor_id, visit
)
SELECT COUNT(DISTINCT visitor_id), COUNT(*),
	COALESCE(SUM(pv), 0), COALESCE(SUM(n - pv), 0),
	COALESCE(SUM(CASE WHEN inter <= 1 THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(dur), 0)
FROM visits`

func (e *EventReads) Summary(ctx context.Context, siteID int64, from, to time.Time) (store.Summary, error) {
	var s store.Summary
	err := e.DB.QueryRowContext(ctx, e.q(summarySQL), store.SessionTimeout.Milliseconds(), siteID, store.Millis(from), store.Millis(to)).
		Scan(&s.Visitors, &s.Visits, &s.Pageviews, &s.Events, &s.Bounces, &s.DurationSum)
	if err != nil {
		return s, fmt.Errorf("summary of site %d: %w", siteID, err)
	}
	s.Finish()
	return s, nil
}

func (e *EventReads) CountEvents(ctx context.Context, siteID int64, from, to time.Time) (int64, error) {
	var n int64
	err := e.DB.QueryRowContext(ctx, e.q(`SELECT COUNT(*) FROM events WHERE site_id = ? AND ts >= ? AND ts < ?`),
		siteID, store.Millis(from), store.Millis(to)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count events of site %d: %w", siteID, err)
	}
	return n, nil
}

func (e *EventReads) AddCounts(ctx context.Context, counts []store.Count) error {
	if len(counts) == 0 {
		return nil
	}
	tx, err := e.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add counts: %w", err)
	}
	defer tx.Rollback()
	q := e.q(`INSERT INTO counts (site_id, day, name, n) VALUES (?, ?, ?, ?)
		ON CONFLICT (site_id, day, name) DO UPDATE SET n = counts.n + excluded.n`)
	for _, c := range counts {
		if _, err := tx.ExecContext(ctx, q, c.SiteID, c.Day, c.Name, c.N); err != nil {
			return fmt.Errorf("add count %s for site %d: %w", c.Name, c.SiteID, err)
		}
	}
	return tx.Commit()
}

// Counts sums the counters over the local days that [from, to) touches.
func (e *EventReads) Counts(ctx context.Context, siteID int64, fromDay, toDay string) (map[string]int64, error) {
	rows, err := e.DB.QueryContext(ctx, e.q(`SELECT name, SUM(n) FROM counts WHERE site_id = ? AND day >= ? AND day <= ? GROUP BY name`),
		siteID, fromDay, toDay)
	if err != nil {
		return nil, fmt.Errorf("counts of site %d: %w", siteID, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		out[name] = n
	}
	return out, rows.Err()
}

func (e *EventReads) Salt(ctx context.Context, siteID int64, day string, create func() []byte) ([]byte, error) {
	var salt []byte
	err := e.DB.QueryRowContext(ctx, e.q(`SELECT salt FROM salts WHERE site_id = ? AND day = ?`), siteID, day).Scan(&salt)
	if err == nil {
		return salt, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("salt of site %d for %s: %w", siteID, day, err)
	}
	_, err = e.DB.ExecContext(ctx, e.q(`INSERT INTO salts (site_id, day, salt, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (site_id, day) DO NOTHING`),
		siteID, day, create(), time.Now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("create salt of site %d for %s: %w", siteID, day, err)
	}
	if err := e.DB.QueryRowContext(ctx, e.q(`SELECT salt FROM salts WHERE site_id = ? AND day = ?`), siteID, day).Scan(&salt); err != nil {
		return nil, fmt.Errorf("salt of site %d for %s: %w", siteID, day, err)
	}
	return salt, nil
}

func (e *EventReads) DropSalts(ctx context.Context, createdBefore time.Time) (int, error) {
	res, err := e.DB.ExecContext(ctx, e.q(`DELETE FROM salts WHERE created_at < ?`), createdBefore.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("drop salts: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
