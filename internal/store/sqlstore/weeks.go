package sqlstore

import (
	"context"
	"fmt"
	"time"

	"fjord/internal/rollup"
	"fjord/internal/store"
)

// Week rollups: the sums of a site's seven local days from a Monday, per
// dimension and value (time dimensions left out), stored in rollups and
// listed in rollup_days under the key "W" + the Monday. As every sum is
// additive over days, a range reads a whole week in one row per value
// instead of seven: a 30-day page panel reads about a fifth of the rows.
// The key sorts after every day ('W' > '9'), so day ranges never meet it.
//
// A week is built (buildWeeks, from the rollup job) only when its seven
// days are built and none is live; anything that writes or un-builds one
// of its days un-builds the week (markBuilt, unbuild, invalidate by its
// time bounds), and the planner reads a week only while it is listed.

const weekPrefix = "W"

// mondayOf is the Monday on or before a local day ("" for a bad day).
func mondayOf(day string) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return ""
	}
	return t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7)).Format(time.DateOnly)
}

// weekKey is the rollups key of the week a day is in.
func weekKey(day string) string { return weekPrefix + mondayOf(day) }

// addDays is day shifted by n days.
func addDays(day string, n int) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return ""
	}
	return t.AddDate(0, 0, n).Format(time.DateOnly)
}

// unbuild takes a day, and the week it is in, out of the built days.
func (e *EventReads) unbuild(ctx context.Context, tx Tx, site int64, day string) error {
	return tx.Exec(ctx, e.q(`DELETE FROM rollup_days WHERE site_id = ? AND day IN (?, ?)`), site, day, weekKey(day))
}

// builtWeeks are the listed weeks of a site from the week of fromDay to
// the week of toDay, by Monday, with their event counts.
func (e *EventReads) builtWeeks(ctx context.Context, siteID int64, fromDay, toDay string) (map[string]int64, error) {
	weeks, err := e.builtDays(ctx, siteID, weekKey(fromDay), weekKey(toDay))
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(weeks))
	for k, n := range weeks {
		out[k[len(weekPrefix):]] = n
	}
	return out, nil
}

// buildWeeks builds every week of the site whose seven days are built and
// not live and that is not built yet; it returns how many it built.
func (e *EventReads) buildWeeks(ctx context.Context, site store.Site) (int, error) {
	if !e.Weeks {
		return 0, nil
	}
	loc, err := time.LoadLocation(site.TimeZone)
	if err != nil {
		return 0, err
	}
	days, err := e.builtDays(ctx, site.ID, "0000-00-00", "9999-99-99")
	if err != nil {
		return 0, err
	}
	weeks, err := e.builtWeeks(ctx, site.ID, "0000-01-03", "9999-12-31")
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	n := 0
	for day := range days {
		mon := mondayOf(day)
		if mon == "" || seen[mon] {
			continue
		}
		seen[mon] = true
		if _, ok := weeks[mon]; ok {
			continue
		}
		whole := true
		for i := range 7 {
			_, ok := days[addDays(mon, i)]
			whole = whole && ok
		}
		if !whole {
			continue
		}
		built, err := e.buildWeek(ctx, site.ID, mon, loc)
		if err != nil {
			return n, fmt.Errorf("week rollups %d/%s: %w", site.ID, mon, err)
		}
		if built {
			n++
		}
	}
	return n, nil
}

// buildWeek sums the rows of the week's days into its rows and lists it,
// unless one of its days is live or no longer built.
func (e *EventReads) buildWeek(ctx context.Context, site int64, mon string, loc *time.Location) (bool, error) {
	e.live.mu.Lock()
	defer e.live.mu.Unlock()
	sun := addDays(mon, 6)
	for i := range 7 {
		if e.isLive(site, addDays(mon, i)) {
			return false, nil
		}
	}
	// the lock keeps every writer of rollups out: what is read here is
	// what the week is written from
	days, err := e.builtDays(ctx, site, mon, sun)
	if err != nil || len(days) != 7 {
		return false, err
	}
	var events int64
	for _, n := range days {
		events += n
	}
	rows, err := e.DB.QueryContext(ctx, e.q(`SELECT dim, val, SUM(visitors), SUM(pageviews), SUM(events), SUM(visits), SUM(bounces), SUM(dur), SUM(vpv)
		FROM rollups WHERE site_id = ? AND day >= ? AND day <= ? AND dim NOT LIKE 'time:%'
		GROUP BY dim, val HAVING SUM(visitors) <> 0 ORDER BY dim, val`), site, mon, sun)
	if err != nil {
		return false, err
	}
	var out []rollup.Row
	for rows.Next() {
		var r rollup.Row
		dest := []any{&r.Dim, &r.Val}
		for i := range r.Sums {
			dest = append(dest, &r.Sums[i])
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return false, err
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	key := weekPrefix + mon
	from, _, err := dayBounds(mon, loc)
	if err != nil {
		return false, err
	}
	_, to, _ := dayBounds(sun, loc)
	err = e.InTx(ctx, func(tx Tx) error {
		if err := tx.Exec(ctx, e.q(`DELETE FROM rollups WHERE site_id = ? AND day = ?`), site, key); err != nil {
			return err
		}
		if err := tx.AppendRollups(ctx, site, key, out); err != nil {
			return err
		}
		return e.list(ctx, tx, site, key, from, to, events)
	})
	if err != nil {
		return false, err
	}
	e.live.appended += int64(len(out))
	return true, nil
}
