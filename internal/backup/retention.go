package backup

import (
	"sort"
	"time"
)

// Keep is the retention policy: the newest good backup of each of the
// last Daily days, Weekly ISO weeks and Monthly months (UTC, counting
// the current one) is kept.
type Keep struct{ Daily, Weekly, Monthly int }

// Prune returns the IDs of the backups the policy deletes at now. A
// backup whose drill failed is never a period's keeper while a good one
// of the period exists; the newest backup and the newest that passed its
// drill are always kept, so that failed drills never leave the target
// without a good backup; a backup without a manifest goes once it is a
// day old; one whose manifest does not read is never deleted.
func Prune(backups []Entry, k Keep, now time.Time) []string {
	var good []Entry
	for _, b := range backups {
		if !b.Incomplete && b.Unreadable == "" {
			good = append(good, b)
		}
	}
	sort.Slice(good, func(i, j int) bool { return good[i].Created.After(good[j].Created) }) // newest first
	keep := map[string]bool{}
	if len(good) > 0 {
		keep[good[0].ID] = true
	}
	for _, b := range good {
		if b.Drill != nil && b.Drill.OK {
			keep[b.ID] = true // the newest that passed its drill
			break
		}
	}
	now = now.UTC()
	day := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }
	monday := func(t time.Time) time.Time { d := day(t); return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)) }
	month := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC) }
	periods := []struct {
		n     int
		start func(time.Time) time.Time
		back  func(time.Time) time.Time
	}{
		{k.Daily, day, func(t time.Time) time.Time { return t.AddDate(0, 0, -1) }},
		{k.Weekly, monday, func(t time.Time) time.Time { return t.AddDate(0, 0, -7) }},
		{k.Monthly, month, func(t time.Time) time.Time { return t.AddDate(0, -1, 0) }},
	}
	for _, p := range periods {
		start := p.start(now)
		for i := 0; i < p.n; i++ {
			var keeper, fallback string
			for _, b := range good {
				if p.start(b.Created.UTC()) != start {
					continue
				}
				if fallback == "" {
					fallback = b.ID
				}
				if b.Drill == nil || b.Drill.OK {
					keeper = b.ID
					break
				}
			}
			if keeper == "" {
				keeper = fallback
			}
			if keeper != "" {
				keep[keeper] = true
			}
			start = p.back(start)
		}
	}
	var del []string
	for _, b := range backups {
		switch {
		case b.Unreadable != "":
			// a manifest of a newer version, or damaged: for people to look at
		case b.Incomplete:
			if t, err := ParseID(b.ID); err == nil && now.Sub(t) > 24*time.Hour {
				del = append(del, b.ID)
			}
		case !keep[b.ID]:
			del = append(del, b.ID)
		}
	}
	return del
}
