// Package report answers questions about collected events. For now: the
// headline numbers of a site over a period in the site's time zone.
package report

import (
	"context"
	"fmt"
	"time"

	"fjord/internal/store"
)

// Range is a half-open time range [From, To) and the local days it covers.
type Range struct {
	From, To         time.Time
	FromDay, ToDay   string // inclusive, in the site's zone
	Period, TimeZone string
}

// Periods lists the periods Headline understands.
var Periods = []string{"today", "day", "yesterday", "7d", "28d", "30d", "90d", "month", "6mo", "12mo", "year"}

// ParsePeriod turns a period name into a range of whole local days ending
// with today (today included, as Plausible's "last N days" does not; we
// state it in the docs): "7d" is today and the six days before.
func ParsePeriod(period, tz string, now time.Time) (Range, error) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return Range{}, fmt.Errorf("time zone %q: %w", tz, err)
	}
	local := now.In(loc)
	today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	var from, to time.Time
	switch period {
	case "today", "day":
		from, to = today, today.AddDate(0, 0, 1)
	case "28d":
		from, to = today.AddDate(0, 0, -27), today.AddDate(0, 0, 1)
	case "month":
		from = time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, loc)
		to = from.AddDate(0, 1, 0)
	case "6mo", "12mo":
		n := 6
		if period == "12mo" {
			n = 12
		}
		first := time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, loc)
		from, to = first.AddDate(0, 1-n, 0), first.AddDate(0, 1, 0)
	case "year":
		from = time.Date(local.Year(), 1, 1, 0, 0, 0, 0, loc)
		to = from.AddDate(1, 0, 0)
	case "yesterday":
		from, to = today.AddDate(0, 0, -1), today
	case "7d":
		from, to = today.AddDate(0, 0, -6), today.AddDate(0, 0, 1)
	case "30d":
		from, to = today.AddDate(0, 0, -29), today.AddDate(0, 0, 1)
	case "90d":
		from, to = today.AddDate(0, 0, -89), today.AddDate(0, 0, 1)
	default:
		return Range{}, fmt.Errorf("unknown period %q (want one of %v)", period, Periods)
	}
	return Range{From: from.UTC(), To: to.UTC(), FromDay: from.Format(time.DateOnly),
		ToDay: to.AddDate(0, 0, -1).Format(time.DateOnly), Period: period, TimeZone: tz}, nil
}

// Headline is the answer of `fjord stats`.
type Headline struct {
	Site   string `json:"site"`
	Period string `json:"period"`
	From   string `json:"from"`
	To     string `json:"to"`
	store.Summary
	Bots int64 `json:"bots"`
}

// HeadlineOf computes the headline numbers of a site.
func HeadlineOf(ctx context.Context, events store.EventStore, site store.Site, period string, now time.Time) (Headline, error) {
	r, err := ParsePeriod(period, site.TimeZone, now)
	if err != nil {
		return Headline{}, err
	}
	sum, err := events.Summary(ctx, site.ID, r.From, r.To)
	if err != nil {
		return Headline{}, err
	}
	counts, err := events.Counts(ctx, site.ID, r.FromDay, r.ToDay)
	if err != nil {
		return Headline{}, err
	}
	return Headline{Site: site.Domain, Period: period, From: r.FromDay, To: r.ToDay, Summary: sum, Bots: counts[store.CountBot]}, nil
}
