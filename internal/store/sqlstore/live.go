package sqlstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"fjord/internal/rollup"
	"fjord/internal/store"
)

// Tx is a transaction of the event store as rollups need it; each engine
// adapts its own.
type Tx interface {
	Exec(ctx context.Context, query string, args ...any) error
	// AppendRollups inserts rows of a site's day into rollups in bulk
	// (DuckDB's appender, PostgreSQL's COPY).
	AppendRollups(ctx context.Context, site int64, day string, rows []rollup.Row) error
}

// RollupColumns are the columns of rollups in table order.
var RollupColumns = []string{"site_id", "day", "dim", "val", "visitors", "pageviews", "events", "visits", "bounces", "dur", "vpv"}

// RollupValues are a row's values in the order of RollupColumns.
func RollupValues(site int64, day string, r *rollup.Row) []any {
	return []any{site, day, r.Dim, r.Val, r.Sums[0], r.Sums[1], r.Sums[2], r.Sums[3], r.Sums[4], r.Sums[5], r.Sums[6]}
}

// live keeps the rollups of each site's newest two local days current as
// batches are applied, so that today is read from rollups like any other
// day. A batch changes only the state in memory; the changed rows are
// written when a question is about to read the site's rollups (flushLive),
// when a day leaves the live window, and by the rollup job, so that ingest
// does not pay a rollup write per batch. Its state is what this process
// has applied; whoever else writes the same events table must not (one
// loader per store).
type live struct {
	// mu serialises every writer of rollups: Apply (which holds it for
	// its whole transaction) and the build of a day.
	mu    sync.Mutex
	zone  func(site int64) (string, bool)
	sites map[int64]*liveSite
	// rollup rows appended since the last Cluster (and whether there was
	// one since start), and how many rows that left
	appended, clusteredRows int64
	clustered               bool
	// touched are the sites whose live state the current batch changed
	touched map[int64]bool
	// unbuilt are days whose stored rollups may lack what a failed batch
	// dropped from memory: they are taken out of the built days before
	// anything else is written
	unbuilt map[int64][]string
}

type liveSite struct {
	loc    *time.Location
	newest string
	days   map[string]*liveDay
}

// liveDay is a day kept current: how many delta rows were stored since
// its rows were last written whole, and whether the stored rows are to be
// replaced whole at the next write (a day new to the state, or replayed).
type liveDay struct {
	*rollup.Day
	deltas int
	whole  bool
}

// KeepRollupsLive turns on the maintenance of the newest days' rollups at
// ingest; zone gives a site's time zone (false for an unknown site, whose
// events are then left to the rollup job like late ones).
func (e *EventReads) KeepRollupsLive(zone func(site int64) (string, bool)) {
	e.live.mu.Lock()
	defer e.live.mu.Unlock()
	e.live.zone = zone
	e.live.sites = map[int64]*liveSite{}
}

// LockWrites is taken by an engine around the transaction that applies a
// batch; UnlockWrites releases it. With failed set, the live state of the
// sites the batch touched is dropped: it may hold what was rolled back,
// and is rebuilt from the stored events when the site's next batch comes.
func (e *EventReads) LockWrites() { e.live.mu.Lock() }

func (e *EventReads) UnlockWrites(failed bool) {
	if failed {
		for site := range e.live.touched {
			e.abandon(site)
		}
	}
	clear(e.live.touched)
	e.live.mu.Unlock()
}

// abandon drops a site's live state after a failure, its days to be taken
// out of the built days (their stored rollups may lag behind the events).
// The next batch of the site replays what is stored.
func (e *EventReads) abandon(site int64) {
	if ls := e.live.sites[site]; ls != nil {
		if e.live.unbuilt == nil {
			e.live.unbuilt = map[int64][]string{}
		}
		for day := range ls.days {
			e.live.unbuilt[site] = append(e.live.unbuilt[site], day)
		}
	}
	delete(e.live.sites, site)
}

// dropUnbuilt takes the days left by a failed batch out of the built days
// (the caller holds the lock).
func (e *EventReads) dropUnbuilt(ctx context.Context, tx Tx) error {
	for site, days := range e.live.unbuilt {
		for _, day := range days {
			if err := e.unbuild(ctx, tx, site, day); err != nil {
				return err
			}
		}
	}
	clear(e.live.unbuilt)
	return nil
}

// ApplyRollups brings the rollups up to date with a batch, inside the
// transaction that inserts it (the caller holds LockWrites): the newest
// two local days of each site are maintained in memory (their rows are
// written later: flushLive, writeDay); an event for an older day (a late one) takes its day out
// of the built days, to be answered from raw events until the rollup job
// builds it again.
func (e *EventReads) ApplyRollups(ctx context.Context, tx Tx, events []store.Event) error {
	bySite := map[int64][]*store.Event{}
	for i := range events {
		bySite[events[i].SiteID] = append(bySite[events[i].SiteID], &events[i])
	}
	if e.live.touched == nil {
		e.live.touched = map[int64]bool{}
	}
	if err := e.dropUnbuilt(ctx, tx); err != nil {
		return err
	}
	for site, evs := range bySite {
		e.live.touched[site] = true
		if err := e.applySite(ctx, tx, site, evs); err != nil {
			return fmt.Errorf("rollups of site %d: %w", site, err)
		}
	}
	return nil
}

func (e *EventReads) applySite(ctx context.Context, tx Tx, site int64, evs []*store.Event) error {
	ls, err := e.liveSite(site)
	if err != nil {
		return err
	}
	if ls == nil {
		return e.invalidate(ctx, tx, site, evs)
	}
	// A day before the one preceding the newest day seen so far is late;
	// within that, a batch may span any number of days (a bulk load).
	cutoff := prevDay(ls.newest)
	byDay := map[string][]*store.Event{}
	for _, ev := range evs {
		day := ev.Time.In(ls.loc).Format(time.DateOnly)
		byDay[day] = append(byDay[day], ev)
	}
	days := make([]string, 0, len(byDay))
	for day := range byDay {
		days = append(days, day)
	}
	sort.Strings(days)
	for _, day := range days {
		dayEvs := byDay[day]
		if day < cutoff {
			if err := e.invalidate(ctx, tx, site, dayEvs); err != nil {
				return err
			}
			continue
		}
		sort.Slice(dayEvs, func(i, j int) bool { return before(dayEvs[i], dayEvs[j]) })
		d := ls.days[day]
		for _, ev := range dayEvs {
			if d == nil || !d.Add(ev) {
				// new to the live state, or an event for a visit that
				// has ended: what is stored (this batch is not committed
				// yet) and the batch, replayed
				rd, err := e.replayDay(ctx, site, day, ls.loc, dayEvs)
				if err != nil {
					return err
				}
				d = &liveDay{Day: rd, whole: true}
				ls.days[day] = d
				// until written, the stored rollups of the day are not
				// the day's: take it out of the built days
				if err := e.unbuild(ctx, tx, site, day); err != nil {
					return err
				}
				break
			}
		}
	}
	// Keep the newest two days; one that leaves is written whole (its
	// deltas folded), as it stays.
	ls.newest = max(ls.newest, days[len(days)-1])
	prev := prevDay(ls.newest)
	for day, d := range ls.days {
		if day != ls.newest && day != prev {
			d.whole = d.whole || d.deltas > 0
			if err := e.writeDay(ctx, tx, site, day, d, ls.loc); err != nil {
				return err
			}
			delete(ls.days, day)
		}
	}
	return nil
}

// writeDay stores what changed in a live day and marks it built: its
// deltas, or all its rows in place of the stored ones when it is to be
// written whole or the deltas outnumber its keys (so that a day never
// holds much more than twice its rows).
func (e *EventReads) writeDay(ctx context.Context, tx Tx, site int64, day string, d *liveDay, loc *time.Location) error {
	rows := d.Deltas()
	if d.deltas += len(rows); d.whole || d.deltas > 2*d.Keys()+1000 {
		if err := tx.Exec(ctx, e.q(`DELETE FROM rollups WHERE site_id = ? AND day = ?`), site, day); err != nil {
			return err
		}
		rows, d.deltas, d.whole = d.Rows(), 0, false
	}
	if err := tx.AppendRollups(ctx, site, day, rows); err != nil {
		return err
	}
	e.live.appended += int64(len(rows))
	return e.markBuilt(ctx, tx, site, day, loc, d.Events)
}

// flushLive writes what the site's live days hold and the store does not
// yet, so that its rollups answer for every applied batch. Questions call
// it before reading; it costs nothing when nothing changed.
func (e *EventReads) flushLive(ctx context.Context, site int64) error {
	e.live.mu.Lock()
	defer e.live.mu.Unlock()
	ls := e.live.sites[site]
	if len(e.live.unbuilt) == 0 && (ls == nil || !ls.pending()) {
		return nil
	}
	err := e.InTx(ctx, func(tx Tx) error {
		if err := e.dropUnbuilt(ctx, tx); err != nil {
			return err
		}
		if ls == nil {
			return nil
		}
		for day, d := range ls.days {
			if d.whole || d.Pending() {
				if err := e.writeDay(ctx, tx, site, day, d, ls.loc); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		e.abandon(site)
		return fmt.Errorf("write live rollups of site %d: %w", site, err)
	}
	return nil
}

func (ls *liveSite) pending() bool {
	for _, d := range ls.days {
		if d.whole || d.Pending() {
			return true
		}
	}
	return false
}

// forgetStale drops the site's live days before yesterday (by now, in the
// site's zone), writing whole a day that has deltas, and the site when no
// day is left: a site that went quiet holds no memory. The caller holds
// the lock.
func (e *EventReads) forgetStale(ctx context.Context, site int64, now time.Time) error {
	ls := e.live.sites[site]
	if ls == nil {
		return nil
	}
	yesterday := prevDay(now.In(ls.loc).Format(time.DateOnly))
	for day, d := range ls.days {
		if day >= yesterday {
			continue
		}
		d.whole = d.whole || d.deltas > 0 || d.Pending()
		if err := e.InTx(ctx, func(tx Tx) error { return e.writeDay(ctx, tx, site, day, d, ls.loc) }); err != nil {
			e.abandon(site)
			return err
		}
		delete(ls.days, day)
	}
	if len(ls.days) == 0 {
		delete(e.live.sites, site)
	}
	return nil
}

// liveSite is the site's live state, nil when live rollups are off or the
// site's zone is unknown.
func (e *EventReads) liveSite(site int64) (*liveSite, error) {
	if e.live.zone == nil {
		return nil, nil
	}
	if ls := e.live.sites[site]; ls != nil {
		return ls, nil
	}
	tz, ok := e.live.zone(site)
	if !ok {
		return nil, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		// a zone this host cannot load: the site's events are left to
		// the rollup job (which reports it) rather than stop ingest
		return nil, nil
	}
	ls := &liveSite{loc: loc, days: map[string]*liveDay{}}
	e.live.sites[site] = ls
	return ls, nil
}

// parseUUID reads the text form of an event id.
func parseUUID(s string) ([16]byte, error) {
	var id [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return id, fmt.Errorf("event id %q: want 32 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, fmt.Errorf("event id %q: %w", s, err)
	}
	return id, nil
}

// before orders events by time, then id (rollup.Before).
func before(a, b *store.Event) bool {
	return rollup.Before(store.Millis(a.Time), a.ID, store.Millis(b.Time), b.ID)
}

// prevDay is the day before day, "" before "".
func prevDay(day string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return ""
	}
	return t.AddDate(0, 0, -1).Format(time.DateOnly)
}

// invalidate forgets the built days the events fall into.
func (e *EventReads) invalidate(ctx context.Context, tx Tx, site int64, evs []*store.Event) error {
	lo, hi := store.Millis(evs[0].Time), store.Millis(evs[0].Time)
	for _, ev := range evs {
		ms := store.Millis(ev.Time)
		lo, hi = min(lo, ms), max(hi, ms)
	}
	return tx.Exec(ctx, e.q(`DELETE FROM rollup_days WHERE site_id = ? AND to_ms > ? AND from_ms <= ?`), site, lo, hi)
}

// replayDay computes a day's rollups from its stored events and extra
// ones (in time order, not stored yet), fed in time order.
func (e *EventReads) replayDay(ctx context.Context, site int64, day string, loc *time.Location, extra []*store.Event) (*rollup.Day, error) {
	from, to, err := dayBounds(day, loc)
	if err != nil {
		return nil, err
	}
	rows, err := e.DB.QueryContext(ctx, e.q(`SELECT CAST(id AS VARCHAR), visitor_id, ts, name, path, hostname, interactive, `+strings.Join(sessionCols, ", ")+`
		FROM events WHERE site_id = ? AND ts >= ? AND ts < ? ORDER BY ts, id`), site, store.Millis(from), store.Millis(to))
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", day, err)
	}
	defer rows.Close()
	d := rollup.NewDay(loc)
	add := func(ev *store.Event) error {
		if !d.Add(ev) {
			return fmt.Errorf("replay %s: an event in time order was refused", day)
		}
		return nil
	}
	var ev store.Event
	var vid, ts int64
	var id string
	dest := []any{&id, &vid, &ts, &ev.Name, &ev.Path, &ev.Hostname, &ev.Interactive}
	for _, c := range sessionCols {
		dest = append(dest, store.EventField(&ev, c))
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("replay %s: %w", day, err)
		}
		if ev.ID, err = parseUUID(id); err != nil {
			return nil, fmt.Errorf("replay %s: %w", day, err)
		}
		ev.VisitorID, ev.Time = uint64(vid), time.UnixMilli(ts).UTC()
		for len(extra) > 0 && before(extra[0], &ev) {
			if err := add(extra[0]); err != nil {
				return nil, err
			}
			extra = extra[1:]
		}
		if err := add(&ev); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("replay %s: %w", day, err)
	}
	for _, x := range extra {
		if err := add(x); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// markBuilt lists a day as built from n events; its week, whose rows no
// longer sum its days, is taken out (where weeks are kept).
func (e *EventReads) markBuilt(ctx context.Context, tx Tx, site int64, day string, loc *time.Location, n int64) error {
	from, to, err := dayBounds(day, loc)
	if err != nil {
		return err
	}
	if e.Weeks {
		if err := tx.Exec(ctx, e.q(`DELETE FROM rollup_days WHERE site_id = ? AND day = ?`), site, weekKey(day)); err != nil {
			return err
		}
	}
	return e.list(ctx, tx, site, day, from, to, n)
}

// list enters a day or week key in rollup_days, with its time bounds.
func (e *EventReads) list(ctx context.Context, tx Tx, site int64, key string, from, to time.Time, n int64) error {
	return tx.Exec(ctx, e.q(`INSERT INTO rollup_days (site_id, day, from_ms, to_ms, events, built_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (site_id, day) DO UPDATE SET from_ms = excluded.from_ms, to_ms = excluded.to_ms, events = excluded.events, built_at = excluded.built_at`),
		site, key, store.Millis(from), store.Millis(to), n, time.Now().UnixMilli())
}

// isLive tells whether a day's rollups are kept by the live state (the
// caller holds the lock).
func (e *EventReads) isLive(site int64, day string) bool {
	ls := e.live.sites[site]
	return ls != nil && ls.days[day] != nil
}
