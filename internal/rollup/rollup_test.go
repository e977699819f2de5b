package rollup

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"fjord/internal/store"
)

// dayEvents makes a day of events for a few visitors: several visits
// each, pages, custom and engagement events, changing sources.
func dayEvents(r *rand.Rand, loc *time.Location) []store.Event {
	day := time.Date(2026, 3, 29, 0, 0, 0, 0, loc) // the DST change in Europe/Helsinki
	var out []store.Event
	for v := uint64(1); v <= 30; v++ {
		at := day.Add(time.Duration(r.IntN(20*3600)) * time.Second)
		for visit := 0; visit < 1+r.IntN(3); visit++ {
			n := 1 + r.IntN(6)
			if r.IntN(6) == 0 {
				n = keepEvents + r.IntN(2*keepEvents) // longer than the events kept
			}
			for i := 0; i < n; i++ {
				e := store.Event{VisitorID: v, Time: at, Name: "pageview", Hostname: "a.example",
					Path: fmt.Sprintf("/p%d", r.IntN(5)), Country: []string{"FI", "SE"}[r.IntN(2)], Browser: "Firefox", Interactive: true}
				if i == 0 {
					e.Source = []string{"", "Google", "Bing"}[r.IntN(3)]
				}
				switch r.IntN(4) {
				case 0:
					e.Name = "Signup"
				case 1:
					e.Name, e.Interactive = "engagement", false
				case 2:
					e.Name, e.Interactive = "Scroll", false
				}
				for b := range e.ID {
					e.ID[b] = byte(r.IntN(256))
				}
				out = append(out, e)
				if r.IntN(5) > 0 { // else the next event has the same time: ties go by id
					at = at.Add(time.Duration(r.IntN(300)) * time.Second)
				}
			}
			at = at.Add(time.Duration(31+r.IntN(60)) * time.Minute)
		}
	}
	return out
}

func rowsOf(d *Day) []Row {
	rows := d.Rows()
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Dim != rows[j].Dim {
			return rows[i].Dim < rows[j].Dim
		}
		return rows[i].Val < rows[j].Val
	})
	return rows
}

// TestOrderDoesNotMatter: a day fed in time order (ties by id), in
// reverse, and shuffled has the same rows; and the deltas, summed, equal Rows.
func TestOrderDoesNotMatter(t *testing.T) {
	loc, _ := time.LoadLocation("Europe/Helsinki")
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 20; round++ {
		evs := dayEvents(r, loc)
		byTime := func(evs []store.Event) {
			sort.Slice(evs, func(i, j int) bool {
				return Before(store.Millis(evs[i].Time), evs[i].ID, store.Millis(evs[j].Time), evs[j].ID)
			})
		}
		byTime(evs)
		inOrder := NewDay(loc)
		for i := range evs {
			inOrder.Add(&evs[i])
		}
		want := rowsOf(inOrder)
		if len(want) < 20 {
			t.Fatalf("too few rows to test anything: %d", len(want))
		}
		// as the event store does: when Add refuses an event, the day is
		// rebuilt from every event so far, in time order
		var fed []store.Event
		feed := func(d *Day, e store.Event) *Day {
			fed = append(fed, e)
			if d.Add(&e) {
				return d
			}
			all := slices.Clone(fed)
			byTime(all)
			d = NewDay(loc)
			for i := range all {
				if !d.Add(&all[i]) {
					t.Fatal("a replay in time order was refused")
				}
			}
			return d
		}
		reversed := NewDay(loc)
		for i := len(evs) - 1; i >= 0; i-- {
			reversed = feed(reversed, evs[i])
		}
		fed = nil
		shuffled := NewDay(loc)
		seen := map[string]Sums{}
		rebuilt := 0
		for n, i := range r.Perm(len(evs)) {
			before := shuffled
			shuffled = feed(shuffled, evs[i])
			if shuffled != before {
				// a rebuilt day is written whole: start over
				rebuilt++
				seen = map[string]Sums{}
				// as the store does: deltas taken, then the rows written whole
				shuffled.Deltas()
				for _, row := range shuffled.Rows() {
					seen[row.Dim+"\x00"+row.Val] = row.Sums
				}
			}
			if n%7 == 0 || n == len(evs)-1 {
				for _, row := range shuffled.Deltas() {
					k := row.Dim + "\x00" + row.Val
					seen[k] = plus(seen[k], row.Sums)
				}
			}
		}
		if round == 0 {
			t.Logf("shuffled: %d rebuilds for %d events", rebuilt, len(evs))
		}
		// nearly in order: each event up to 90 seconds late
		fed = nil
		jittered := NewDay(loc)
		arrive := make([]time.Time, len(evs))
		order := make([]int, len(evs))
		for i := range evs {
			arrive[i], order[i] = evs[i].Time.Add(time.Duration(r.IntN(90))*time.Second), i
		}
		sort.SliceStable(order, func(a, b int) bool { return arrive[order[a]].Before(arrive[order[b]]) })
		for _, i := range order {
			jittered = feed(jittered, evs[i])
		}
		for name, d := range map[string]*Day{"reversed": reversed, "shuffled": shuffled, "jittered": jittered} {
			if got := rowsOf(d); !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d, %s: rows differ from time order\n got %v\nwant %v", round, name, got, want)
			}
		}
		for _, row := range want {
			if seen[row.Dim+"\x00"+row.Val] != row.Sums {
				t.Fatalf("round %d: deltas missed %s=%q: %v, want %v", round, row.Dim, row.Val, seen[row.Dim+"\x00"+row.Val], row.Sums)
			}
			delete(seen, row.Dim+"\x00"+row.Val)
		}
		for k, s := range seen {
			if s != (Sums{}) {
				t.Fatalf("round %d: deltas left %q at %v, Rows has no such row", round, k, s)
			}
		}
	}
}

// TestOneVisit pins the counters of a small visit by hand.
func TestOneVisit(t *testing.T) {
	d := NewDay(time.UTC)
	at := time.Date(2026, 1, 1, 10, 59, 0, 0, time.UTC)
	add := func(sec int, name, path, source string, inter bool) {
		d.Add(&store.Event{VisitorID: 7, Time: at.Add(time.Duration(sec) * time.Second), Name: name, Path: path, Source: source, Interactive: inter})
	}
	add(0, "pageview", "/", "Google", true)
	add(30, "Scroll", "/", "", false)
	add(90, "pageview", "/a", "", true)
	add(100, "engagement", "/a", "", false)
	got := map[string]Sums{}
	for _, r := range d.Rows() {
		got[r.Dim+"="+r.Val] = r.Sums
	}
	// visitors, pageviews, events, visits, bounces, dur ms, vpv
	want := map[string]Sums{
		"=":                             {1, 2, 3, 1, 0, 90000, 2},
		"visit:source=Google":           {1, 2, 3, 1, 0, 90000, 2},
		"visit:entry_page=/":            {1, 2, 3, 1, 0, 90000, 2},
		"visit:exit_page=/a":            {1, 2, 3, 1, 0, 90000, 2},
		"event:page=/":                  {1, 1, 2, 1, 0, 90000, 2},
		"event:page=/a":                 {1, 1, 1, 1, 0, 90000, 2},
		"event:name=Scroll":             {1, 0, 1, 1, 0, 90000, 2},
		"time:hour=2026-01-01 10:00:00": {1, 1, 2, 1, 0, 90000, 2},
		"time:hour=2026-01-01 11:00:00": {1, 1, 1, 0, 0, 0, 0},
		"event:name=pageview":           {1, 2, 2, 1, 0, 90000, 2},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %v, want %v", k, got[k], w)
		}
	}
	if d.Events != 4 {
		t.Errorf("events %d, want 4 (engagement counted)", d.Events)
	}
	if g := got["visit:exit_page=/"]; g != (Sums{}) {
		t.Errorf("the first exit page kept %v", g)
	}
}

// BenchmarkLongVisit: one visitor's visit over thousands of distinct pages
// (a crawler with a browser's User-Agent) costs the same per event however
// long it grows; before visitor.lag, each event added to every page the
// visit had touched, and 25,000 pages stalled the loader.
func BenchmarkLongVisit(b *testing.B) {
	for _, pages := range []int{1000, 20000} {
		b.Run(fmt.Sprintf("pages=%d", pages), func(b *testing.B) {
			at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			evs := make([]store.Event, pages)
			for i := range evs {
				evs[i] = store.Event{VisitorID: 1, Time: at.Add(time.Duration(i) * time.Second), Name: "pageview", Path: fmt.Sprintf("/p/%d", i), Interactive: true}
				evs[i].ID[0], evs[i].ID[1] = byte(i>>8), byte(i)
			}
			b.ResetTimer()
			for range b.N {
				d := NewDay(time.UTC)
				for i := range evs {
					d.Add(&evs[i])
				}
				d.Deltas()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pages), "ns/event")
		})
	}
}
