// Package usage keeps how much each account uses the service, per day:
// events accepted for each of its sites, Stats API calls and exports of
// report data (PRODUCT §9.3). The account's Administrators and the
// operator's staff read it; the same numbers are Prometheus counters,
// which forget a day once scraped, so these are kept in the account store.
//
// Days are UTC days, so that an account's sites in different time zones
// add up. The counts are buffered in memory and written with the other
// counters (every 10 seconds in fjord serve, and at shutdown): a crash
// loses at most those seconds of usage, never an event.
package usage

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// The kinds of use counted.
const (
	Events   = "events"  // events accepted (acknowledged) for a site
	APICalls = "api"     // Stats API calls with one of the account's keys
	Exports  = "exports" // downloads and API answers of report data
)

// Kinds lists every kind, in the order they are shown.
var Kinds = []string{Events, APICalls, Exports}

// Count is one day's use of one kind by an account, for one of its sites
// (Site 0: not of one site, as API calls, which are counted per key).
type Count struct {
	Account, Site int64
	Day           string // YYYY-MM-DD, UTC
	Kind          string
	N             int64
}

// Store keeps the counts.
type Store interface {
	// AddUsage adds the counts to those already stored, in one transaction.
	AddUsage(ctx context.Context, counts []Count) error
	// Usage returns the stored counts of days fromDay..toDay of an account
	// (0: of every account), ordered by account, site, day and kind.
	Usage(ctx context.Context, account int64, fromDay, toDay string) ([]Count, error)
}

// Day is the UTC day of t, as stored.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// Tally buffers counts between writes. The zero value is ready.
type Tally struct {
	mu sync.Mutex
	m  map[Count]int64 // the key's N is 0
}

// Add counts n of a kind at time at.
func (t *Tally) Add(account, site int64, kind string, at time.Time, n int64) {
	if n <= 0 {
		return
	}
	k := Count{Account: account, Site: site, Day: Day(at), Kind: kind}
	t.mu.Lock()
	if t.m == nil {
		t.m = map[Count]int64{}
	}
	t.m[k] += n
	t.mu.Unlock()
}

// Flush writes what was counted since the last flush; what a failed write
// could not store is kept for the next one.
func (t *Tally) Flush(ctx context.Context, s Store) error {
	t.mu.Lock()
	m := t.m
	t.m = nil
	t.mu.Unlock()
	if len(m) == 0 {
		return nil
	}
	cs := make([]Count, 0, len(m))
	for k, n := range m {
		k.N = n
		cs = append(cs, k)
	}
	if err := s.AddUsage(ctx, cs); err != nil {
		t.mu.Lock()
		if t.m == nil {
			t.m = map[Count]int64{}
		}
		for k, n := range m {
			t.m[k] += n
		}
		t.mu.Unlock()
		return fmt.Errorf("write usage: %w", err)
	}
	return nil
}

// Totals is the use of each kind over some days.
type Totals struct {
	Events, APICalls, Exports int64
}

func (t *Totals) add(c Count) {
	switch c.Kind {
	case Events:
		t.Events += c.N
	case APICalls:
		t.APICalls += c.N
	case Exports:
		t.Exports += c.N
	}
}

// Row is the use of one account's site (Site 0: of no one site) over the
// days read.
type Row struct {
	Account, Site int64
	Totals
}

// Report sums counts over the days of [from, to] (UTC days).
type Report struct {
	From, To string
	Rows     []Row            // by account and site
	Accounts map[int64]Totals // each account's sum
	Days     []DayTotals      // every day of the span, oldest first
}

// DayTotals is the use of one day, all accounts and sites read.
type DayTotals struct {
	Day string
	Totals
}

// Read reads the use of the days from..to (UTC, both included) of an
// account (0: every account) and sums it by site and by day.
func Read(ctx context.Context, s Store, account int64, from, to time.Time) (Report, error) {
	r := Report{From: Day(from), To: Day(to), Accounts: map[int64]Totals{}}
	cs, err := s.Usage(ctx, account, r.From, r.To)
	if err != nil {
		return r, err
	}
	type key struct{ account, site int64 }
	rows := map[key]*Totals{}
	days := map[string]int{}
	for d := from.UTC(); Day(d) <= r.To; d = d.AddDate(0, 0, 1) {
		days[Day(d)] = len(r.Days)
		r.Days = append(r.Days, DayTotals{Day: Day(d)})
	}
	for _, c := range cs {
		k := key{c.Account, c.Site}
		if rows[k] == nil {
			rows[k] = &Totals{}
		}
		rows[k].add(c)
		acc := r.Accounts[c.Account]
		acc.add(c)
		r.Accounts[c.Account] = acc
		if i, ok := days[c.Day]; ok {
			r.Days[i].add(c)
		}
	}
	for k, t := range rows {
		r.Rows = append(r.Rows, Row{Account: k.account, Site: k.site, Totals: *t})
	}
	sort.Slice(r.Rows, func(i, j int) bool {
		a, b := r.Rows[i], r.Rows[j]
		if a.Account != b.Account {
			return a.Account < b.Account
		}
		return a.Site < b.Site
	})
	return r, nil
}
