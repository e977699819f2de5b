package sqlstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"fjord/internal/report"
	"fjord/internal/store"
)

// Rollups hold, per site and local day, the additive sums (sumRow) of the
// aggregate, of each dimension but goals, and of hours. Because the
// visitor id changes every local day, summing days is exact: a range's
// answer from rollups equals the answer from raw events.
//
// Days are built by RefreshRollups (a job) once they are over; today and
// any day not (or no longer) built are answered from raw events.

// rollupDims are the dimensions kept in rollups; "" is the aggregate.
func rollupDims() []report.Dim {
	out := []report.Dim{{}}
	for _, d := range report.Dims {
		if d.Goal || (d.Time != "" && d.Time != "hour") {
			continue
		}
		out = append(out, d)
	}
	return out
}

// InvalidateSQL forgets the built days that a batch's events fall into
// (late events); engines run it in the transaction that applies the batch.
const InvalidateSQL = `DELETE FROM rollup_days WHERE site_id = ? AND to_ms > ? AND from_ms <= ?`

// TimeSpans returns, per site of a batch, the first and last event time.
func TimeSpans(events []store.Event) map[int64][2]int64 {
	out := map[int64][2]int64{}
	for i := range events {
		ms := store.Millis(events[i].Time)
		sp, ok := out[events[i].SiteID]
		if !ok {
			sp = [2]int64{ms, ms}
		}
		sp[0], sp[1] = min(sp[0], ms), max(sp[1], ms)
		out[events[i].SiteID] = sp
	}
	return out
}

func dayBounds(day string, loc *time.Location) (time.Time, time.Time, error) {
	d, err := time.ParseInLocation(time.DateOnly, day, loc)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return d, d.AddDate(0, 0, 1), nil
}

// BuildDays computes the rollups of a run of consecutive local days from
// raw events and marks them built: one query per dimension for the whole
// run (the day is an extra grouping), then one transaction.
func (e *EventReads) BuildDays(ctx context.Context, site store.Site, fromDay, toDay string, counts map[string]int64) error {
	loc, err := time.LoadLocation(site.TimeZone)
	if err != nil {
		return err
	}
	from, _, err := dayBounds(fromDay, loc)
	if err != nil {
		return err
	}
	_, to, err := dayBounds(toDay, loc)
	if err != nil {
		return err
	}
	type out struct {
		day, dim, val string
		sums          [7]int64
	}
	var rows []out
	rng := report.Range{From: from.UTC(), To: to.UTC(), FromDay: fromDay, ToDay: toDay, TimeZone: site.TimeZone}
	byDay, _ := report.LookupDim("time:day")
	for _, d := range rollupDims() {
		q := &report.Query{Site: site, Range: rng, Metrics: []string{report.MVisitors}, Dimensions: []report.Dim{byDay}}
		if d.Name != "" {
			q.Dimensions = append(q.Dimensions, d)
		}
		sums, err := e.rawSums(ctx, q)
		if err != nil {
			return fmt.Errorf("rollups %d/%s..%s %s: %w", site.ID, fromDay, toDay, d.Name, err)
		}
		for _, r := range sums {
			if r.sums == [7]int64{} {
				continue
			}
			o := out{day: r.dims[0], dim: d.Name, sums: r.sums}
			if len(r.dims) > 1 {
				o.val = r.dims[1]
			}
			rows = append(rows, o)
		}
	}
	tx, err := e.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, e.q(`DELETE FROM rollups WHERE site_id = ? AND day >= ? AND day <= ?`), site.ID, fromDay, toDay); err != nil {
		return fmt.Errorf("rollups %d/%s..%s: %w", site.ID, fromDay, toDay, err)
	}
	// Multi-row inserts: one statement per 200 rows.
	const per = 200
	for i := 0; i < len(rows); i += per {
		chunk := rows[i:min(i+per, len(rows))]
		var sb strings.Builder
		sb.WriteString(`INSERT INTO rollups (site_id, day, dim, val, visitors, pageviews, events, visits, bounces, dur, vpv) VALUES `)
		args := make([]any, 0, len(chunk)*11)
		for j, r := range chunk {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, site.ID, r.day, r.dim, r.val)
			for _, x := range r.sums {
				args = append(args, x)
			}
		}
		if _, err := tx.ExecContext(ctx, e.q(sb.String()), args...); err != nil {
			return fmt.Errorf("rollups %d/%s..%s: insert: %w", site.ID, fromDay, toDay, err)
		}
	}
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		day := d.Format(time.DateOnly)
		_, dt, _ := dayBounds(day, loc)
		if _, err := tx.ExecContext(ctx, e.q(`INSERT INTO rollup_days (site_id, day, from_ms, to_ms, events, built_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (site_id, day) DO UPDATE SET from_ms = excluded.from_ms, to_ms = excluded.to_ms, events = excluded.events, built_at = excluded.built_at`),
			site.ID, day, store.Millis(d), store.Millis(dt), counts[day], time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("rollups %d/%s: mark built: %w", site.ID, day, err)
		}
	}
	return tx.Commit()
}

// RefreshRollups builds every day of a site before today whose rollups are
// missing or whose event count changed since they were built. It returns
// how many days it built.
func (e *EventReads) RefreshRollups(ctx context.Context, site store.Site, now time.Time) (int, error) {
	loc, err := time.LoadLocation(site.TimeZone)
	if err != nil {
		return 0, err
	}
	l := now.In(loc)
	today := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	rows, err := e.DB.QueryContext(ctx, e.q(`SELECT d, COUNT(*) FROM (
		SELECT CAST(to_timestamp(ts / 1000.0) AT TIME ZONE ? AS DATE) AS d FROM events WHERE site_id = ? AND ts < ?) x GROUP BY d`),
		site.TimeZone, site.ID, store.Millis(today))
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
	var todo []string
	for d, n := range counts {
		if b, ok := built[d]; !ok || b != n {
			todo = append(todo, d)
		}
	}
	sort.Strings(todo)
	// build runs of consecutive days together
	for i := 0; i < len(todo); {
		j := i + 1
		for j < len(todo) && nextDay(todo[j-1]) == todo[j] {
			j++
		}
		if err := e.BuildDays(ctx, site, todo[i], todo[j-1], counts); err != nil {
			return i, err
		}
		i = j
	}
	return len(todo), nil
}

func nextDay(day string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return ""
	}
	return t.AddDate(0, 0, 1).Format(time.DateOnly)
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
// others, merging by dimension value.
func (e *EventReads) planned(ctx context.Context, q *report.Query) ([]sumRow, error) {
	loc, _ := time.LoadLocation(q.Site.TimeZone)
	from, to := q.Range.From.In(loc), q.Range.To.In(loc)
	var days []string
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format(time.DateOnly))
	}
	if len(days) == 0 {
		return nil, nil
	}
	built, err := e.builtDays(ctx, q.Site.ID, days[0], days[len(days)-1])
	if err != nil {
		return nil, err
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
	if len(built) > 0 {
		rows, err := e.rollupSums(ctx, q, built)
		if err != nil {
			return nil, err
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
			return nil, err
		}
		for _, r := range rows {
			add(r)
		}
		i = j
	}
	out := make([]sumRow, 0, len(order))
	for _, k := range order {
		out = append(out, *merged[k])
	}
	if len(q.Dimensions) == 0 && len(out) == 0 {
		out = append(out, sumRow{})
	}
	return out, nil
}

// rollupSums reads the rollups of exactly the given days, the ones the
// planner found built (so a day built or un-built meanwhile is neither
// counted twice nor lost).
func (e *EventReads) rollupSums(ctx context.Context, q *report.Query, built map[string]int64) ([]sumRow, error) {
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
	group := ""
	if key != "''" {
		group = " GROUP BY " + key
	}
	args := []any{q.Site.ID, dim}
	marks := make([]string, 0, len(built))
	for d := range built {
		args = append(args, d)
		marks = append(marks, "?")
	}
	query := fmt.Sprintf(`SELECT %s, COALESCE(SUM(visitors), 0), COALESCE(SUM(pageviews), 0), COALESCE(SUM(events), 0),
		COALESCE(SUM(visits), 0), COALESCE(SUM(bounces), 0), COALESCE(SUM(dur), 0), COALESCE(SUM(vpv), 0)
		FROM rollups WHERE site_id = ? AND dim = ? AND day IN (%s)%s`, key, strings.Join(marks, ", "), group)
	rows, err := e.DB.QueryContext(ctx, e.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("rollups of site %d: %w", q.Site.ID, err)
	}
	defer rows.Close()
	var out []sumRow
	for rows.Next() {
		var k string
		var r sumRow
		dest := []any{&k}
		for i := range r.sums {
			dest = append(dest, &r.sums[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if len(q.Dimensions) == 1 {
			if bucket != "" {
				k = bucketOfDay(k, bucket)
			}
			r.dims = []string{k}
		}
		out = append(out, r)
	}
	return out, rows.Err()
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
