package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"fjord/internal/report"
	"fjord/internal/store"
)

// Rollups hold, per site and local day, the additive sums (sumRow) of the
// aggregate, of each dimension but goals, and of hours (package rollup
// computes them). Because the visitor id changes every local day, summing
// days is exact: a range's answer from rollups equals the answer from raw
// events.
//
// A day counts as built while rollup_days lists it. The newest two days
// of a site are kept current at ingest (live.go); an older day is built by
// RefreshRollups (a job) and taken out of the built days by a late event.
// A day not built is answered from raw events.

func dayBounds(day string, loc *time.Location) (time.Time, time.Time, error) {
	d, err := time.ParseInLocation(time.DateOnly, day, loc)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return d, d.AddDate(0, 0, 1), nil
}

// BuildDay computes a day's rollups from its raw events and marks it built,
// in one transaction; a day the live state keeps is left to it.
func (e *EventReads) BuildDay(ctx context.Context, site store.Site, day string) error {
	loc, err := time.LoadLocation(site.TimeZone)
	if err != nil {
		return err
	}
	e.live.mu.Lock()
	defer e.live.mu.Unlock()
	if e.isLive(site.ID, day) {
		return nil
	}
	d, err := e.replayDay(ctx, site.ID, day, loc, nil)
	if err != nil {
		return err
	}
	// written whole, as a live day that leaves the window
	return e.InTx(ctx, func(tx Tx) error {
		if err := e.writeDay(ctx, tx, site.ID, day, &liveDay{Day: d, whole: true}, loc); err != nil {
			return fmt.Errorf("rollups %d/%s: %w", site.ID, day, err)
		}
		return nil
	})
}

// RefreshRollups builds every day of a site up to today whose rollups are
// missing or whose event count changed since they were built, but the days
// kept live (after a restart, that is how today is rebuilt before its
// next event), then the weeks that can be (weeks.go). It also writes the live days' pending rows and lets go of
// live days before yesterday. It returns how many days and weeks it built.
func (e *EventReads) RefreshRollups(ctx context.Context, site store.Site, now time.Time) (int, error) {
	loc, err := time.LoadLocation(site.TimeZone)
	if err != nil {
		return 0, err
	}
	l := now.In(loc)
	tomorrow := time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
	rows, err := e.DB.QueryContext(ctx, e.q(`SELECT d, COUNT(*) FROM (
		SELECT CAST(to_timestamp(ts / 1000.0) AT TIME ZONE ? AS DATE) AS d FROM events WHERE site_id = ? AND ts < ?) x GROUP BY d`),
		site.TimeZone, site.ID, store.Millis(tomorrow))
	if err != nil {
		return 0, fmt.Errorf("rollups of site %d: %w", site.ID, err)
	}
	counts := map[string]int64{}
	for rows.Next() {
		var d time.Time
		var n int64
		if err := rows.Scan(&d, &n); err != nil {
			rows.Close()
			return 0, err
		}
		counts[d.Format(time.DateOnly)] = n
	}
	rows.Close()
	built, err := e.builtDays(ctx, site.ID, "0000-00-00", "9999-99-99")
	if err != nil {
		return 0, err
	}
	e.live.mu.Lock()
	err = e.forgetStale(ctx, site.ID, now)
	var todo []string
	for d, n := range counts {
		if b, ok := built[d]; (!ok || b != n) && !e.isLive(site.ID, d) {
			todo = append(todo, d)
		}
	}
	e.live.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("rollups of site %d: %w", site.ID, err)
	}
	if err := e.flushLive(ctx, site.ID); err != nil {
		return 0, err
	}
	sort.Strings(todo)
	for i, day := range todo {
		if err := e.BuildDay(ctx, site, day); err != nil {
			return i, err
		}
	}
	weeks, err := e.buildWeeks(ctx, site)
	if err != nil {
		return len(todo) + weeks, err
	}
	return len(todo) + weeks, e.cluster(ctx)
}

// cluster has the engine re-order the rollups (Cluster) at the first
// refresh after start and whenever the rows appended since the last time
// reach a twentieth of the table: the appended tail is read in full by
// every panel.
func (e *EventReads) cluster(ctx context.Context) error {
	if e.Cluster == nil {
		return nil
	}
	e.live.mu.Lock()
	defer e.live.mu.Unlock()
	if e.live.clustered && e.live.appended*20 < e.live.clusteredRows {
		return nil
	}
	if err := e.Cluster(ctx); err != nil {
		return fmt.Errorf("cluster rollups: %w", err)
	}
	var n int64
	if err := e.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM rollups`).Scan(&n); err != nil {
		return err
	}
	e.live.clustered, e.live.appended, e.live.clusteredRows = true, 0, n
	return nil
}

func (e *EventReads) builtDays(ctx context.Context, siteID int64, fromDay, toDay string) (map[string]int64, error) {
	rows, err := e.DB.QueryContext(ctx, e.q(`SELECT day, events FROM rollup_days WHERE site_id = ? AND day >= ? AND day <= ?`), siteID, fromDay, toDay)
	if err != nil {
		return nil, fmt.Errorf("built days of site %d: %w", siteID, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var d string
		var n int64
		if err := rows.Scan(&d, &n); err != nil {
			return nil, err
		}
		out[d] = n
	}
	return out, rows.Err()
}

// rollupable: no filters, at most one dimension that rollups hold (or a
// day, week or month bucket), no goals, and a range of whole local days.
func rollupable(q *report.Query) bool {
	if q.Filter != nil || len(q.Dimensions) > 1 {
		return false
	}
	for _, m := range q.Metrics {
		if m == report.MConversion {
			return false
		}
	}
	if len(q.Dimensions) == 1 && q.Dimensions[0].Goal {
		return false
	}
	loc, err := time.LoadLocation(q.Site.TimeZone)
	if err != nil {
		return false
	}
	for _, t := range []time.Time{q.Range.From.In(loc), q.Range.To.In(loc)} {
		if t.Hour() != 0 || t.Minute() != 0 || t.Second() != 0 || t.Nanosecond() != 0 {
			return false
		}
	}
	return true
}

// planned answers from rollups for built days and from raw events for the
// others, merging by dimension value. When every day is built and only the
// top rows of a breakdown are asked for, only those are read (topOf); the
// total then counts all.
func (e *EventReads) planned(ctx context.Context, q *report.Query) ([]sumRow, int, error) {
	if err := e.flushLive(ctx, q.Site.ID); err != nil {
		return nil, 0, err
	}
	loc, _ := time.LoadLocation(q.Site.TimeZone)
	from, to := q.Range.From.In(loc), q.Range.To.In(loc)
	var days []string
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format(time.DateOnly))
	}
	if len(days) == 0 {
		return nil, 0, nil
	}
	built, err := e.builtDays(ctx, q.Site.ID, days[0], days[len(days)-1])
	if err != nil {
		return nil, 0, err
	}
	// whole weeks for a question their rows answer (not a time bucket)
	var weeks map[string]int64
	if e.Weeks && (len(q.Dimensions) == 0 || q.Dimensions[0].Time == "") && len(built) >= 7 {
		if weeks, err = e.builtWeeks(ctx, q.Site.ID, days[0], days[len(days)-1]); err != nil {
			return nil, 0, err
		}
	}
	merged := map[string]*sumRow{}
	var order []string
	add := func(r sumRow) {
		k := strings.Join(r.dims, "\x00")
		m, ok := merged[k]
		if !ok {
			m = &sumRow{dims: r.dims}
			merged[k] = m
			order = append(order, k)
		}
		for i := range m.sums {
			m.sums[i] += r.sums[i]
		}
	}
	rs := rollupRead{ranges: keyRanges(days, built, weeks)}
	if len(built) == len(days) {
		rs.top, rs.orderCol, rs.desc = topOf(q)
		rows, total, err := e.rollupSums(ctx, q, rs)
		if err != nil || rs.top > 0 {
			return rows, total, err
		}
		for _, r := range rows {
			add(r)
		}
	} else if len(built) > 0 {
		rows, _, err := e.rollupSums(ctx, q, rs)
		if err != nil {
			return nil, 0, err
		}
		for _, r := range rows {
			add(r)
		}
	}
	// raw events for each run of days not built
	for i := 0; i < len(days); {
		if _, ok := built[days[i]]; ok {
			i++
			continue
		}
		j := i
		for j < len(days) {
			if _, ok := built[days[j]]; ok {
				break
			}
			j++
		}
		rq := *q
		rf, _, _ := dayBounds(days[i], loc)
		_, rt, _ := dayBounds(days[j-1], loc)
		rq.Range = report.Range{From: rf.UTC(), To: rt.UTC(), FromDay: days[i], ToDay: days[j-1], TimeZone: q.Site.TimeZone}
		rows, err := e.rawSums(ctx, &rq)
		if err != nil {
			return nil, 0, err
		}
		for _, r := range rows {
			add(r)
		}
		i = j
	}
	out := make([]sumRow, 0, len(order))
	for _, k := range order {
		// a value whose counts went back to zero (an exit page the visit
		// moved on from) is no row
		if r := merged[k]; len(r.dims) == 0 || r.sums != [7]int64{} {
			out = append(out, *r)
		}
	}
	if len(q.Dimensions) == 0 && len(out) == 0 {
		out = append(out, sumRow{})
	}
	return out, 0, nil
}

// rollupRead is what rollupSums reads: ranges of rollups keys, each of
// consecutive built days or of consecutive built weeks (keyRanges), and
// with top > 0 only the rows ranked in the top by orderCol (ties at the
// edge included).
type rollupRead struct {
	ranges   [][2]string
	top      int
	orderCol string
	desc     bool
}

// keyRanges covers the built days of a range of days with key ranges: a
// run of seven built days from a Monday whose week is built reads as that
// week, the others as days. Each range holds only keys that are listed,
// so rows left by a day or week since taken out are never read.
func keyRanges(days []string, built, weeks map[string]int64) [][2]string {
	var out [][2]string
	prevWeek, prevDay := false, false // what the last range holds and whether it reaches the previous key
	for i := 0; i < len(days); {
		d := days[i]
		if _, ok := built[d]; !ok {
			prevWeek, prevDay = false, false
			i++
			continue
		}
		if _, ok := weeks[d]; ok && i+7 <= len(days) && allIn(days[i:i+7], built) {
			if k := weekPrefix + d; prevWeek {
				out[len(out)-1][1] = k
			} else {
				out = append(out, [2]string{k, k})
			}
			prevWeek, prevDay = true, false
			i += 7
			continue
		}
		if prevDay {
			out[len(out)-1][1] = d
		} else {
			out = append(out, [2]string{d, d})
		}
		prevWeek, prevDay = false, true
		i++
	}
	return out
}

func allIn(keys []string, set map[string]int64) bool {
	for _, k := range keys {
		if _, ok := set[k]; !ok {
			return false
		}
	}
	return true
}

// topOf tells how many rows of a one-dimension breakdown are enough: when
// the first sort key is a plain sum (visitors, visits, pageviews, events),
// the rows ranked within offset+limit by it hold every row the page can
// show, whatever the later keys; report.Sort then orders them exactly.
func topOf(q *report.Query) (int, string, bool) {
	if len(q.Dimensions) != 1 || q.Dimensions[0].Time != "" || q.Limit <= 0 {
		return 0, "", false
	}
	key := report.Order{By: q.Metrics[0], Desc: true}
	if len(q.OrderBy) > 0 {
		key = q.OrderBy[0]
	}
	col := map[string]string{report.MVisitors: "visitors", report.MVisits: "visits", report.MPageviews: "pageviews", report.MEvents: "events"}[key.By]
	if col == "" {
		return 0, "", false
	}
	return q.Offset + q.Limit, col, key.Desc
}

// sumCols are the rollups' sums in sumRow order; sumsOf the ones each
// metric is computed from.
var (
	sumCols = []string{"visitors", "pageviews", "events", "visits", "bounces", "dur", "vpv"}
	sumsOf  = map[string][]string{
		report.MVisitors: {"visitors"}, report.MPercentage: {"visitors"}, report.MPageviews: {"pageviews"},
		report.MEvents: {"events"}, report.MVisits: {"visits"}, report.MBounceRate: {"visits", "bounces"},
		report.MVisitDuration: {"visits", "dur"}, report.MViewsPerVisit: {"visits", "vpv"},
	}
)

// rollupSums reads the rollups of exactly the given days, the ones the
// planner found built (so a day built or un-built meanwhile is neither
// counted twice nor lost).
func (e *EventReads) rollupSums(ctx context.Context, q *report.Query, rs rollupRead) ([]sumRow, int, error) {
	dim, key := "", "''"
	var bucket string
	if len(q.Dimensions) == 1 {
		d := q.Dimensions[0]
		switch d.Time {
		case "":
			dim, key = d.Name, "val"
		case "hour":
			dim, key = d.Name, "val"
		default:
			key, bucket = "day", d.Time
		}
	}
	// only the sums the metrics need (the others read as 0)
	need := map[string]bool{"visitors": true, rs.orderCol: true}
	for _, m := range q.Metrics {
		for _, c := range sumsOf[m] {
			need[c] = true
		}
	}
	var inner []string
	sums := make([]string, len(sumCols))
	for i, c := range sumCols {
		if need[c] {
			inner = append(inner, c)
			sums[i] = "SUM(" + c + ") AS " + c
		} else {
			sums[i] = "0 AS " + c
		}
	}
	// one index range per key range
	var args []any
	parts := make([]string, len(rs.ranges))
	for i, r := range rs.ranges {
		parts[i] = fmt.Sprintf(`SELECT %s AS k, %s FROM rollups WHERE site_id = ? AND dim = ? AND day >= ? AND day <= ?`, key, strings.Join(inner, ", "))
		args = append(args, q.Site.ID, dim, r[0], r[1])
	}
	outKey := "k"
	if key == "''" {
		outKey = "'' AS k"
	}
	query := fmt.Sprintf(`SELECT %s, %s FROM (%s) u`, outKey, strings.Join(sums, ", "), strings.Join(parts, " UNION ALL "))
	if key != "''" {
		// The stored deltas of a value may sum to nothing (an exit page
		// a visit moved on from); a value that occurred has a visitor.
		query += " GROUP BY k HAVING SUM(visitors) <> 0"
	}
	cols := "k, visitors, pageviews, events, visits, bounces, dur, vpv"
	if rs.top > 0 {
		dir := "ASC"
		if rs.desc {
			dir = "DESC"
		}
		query = fmt.Sprintf(`SELECT %s, total FROM (SELECT %s, RANK() OVER (ORDER BY %s %s) AS r, COUNT(*) OVER () AS total FROM (%s) g) x WHERE r <= %d`,
			cols, cols, rs.orderCol, dir, query, rs.top)
	} else {
		query = fmt.Sprintf(`SELECT %s, 0 FROM (%s) g`, cols, query)
	}
	rows, err := e.DB.QueryContext(ctx, e.q(query), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("rollups of site %d: %w", q.Site.ID, err)
	}
	defer rows.Close()
	var out []sumRow
	var total int
	for rows.Next() {
		var k string
		var r sumRow
		var sums [7]sql.NullInt64
		dest := []any{&k}
		for i := range sums {
			dest = append(dest, &sums[i])
		}
		dest = append(dest, &total)
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, err
		}
		for i := range sums {
			r.sums[i] = sums[i].Int64
		}
		if len(q.Dimensions) == 1 {
			if bucket != "" {
				k = bucketOfDay(k, bucket)
			}
			r.dims = []string{k}
		}
		out = append(out, r)
	}
	return out, total, rows.Err()
}

// bucketOfDay is the time label of the week (from Monday) or month of a
// local day, as the raw planner labels them.
func bucketOfDay(day, unit string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return day
	}
	switch unit {
	case "week":
		t = t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
	case "month":
		t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return report.TimeLabel(unit, t)
}
