package storetest

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"fjord/internal/report"
	"fjord/internal/store"
)

// dayID is the visitor id of person v at t: as in the product, it
// changes at each local midnight (the daily salt), so no id spans two days.
func dayID(v uint64, t time.Time) uint64 {
	loc, _ := time.LoadLocation("Europe/Helsinki")
	l := t.In(loc)
	return v*100000 + uint64(l.YearDay())
}

// truthEvents makes a varied event set: visitors with several visits,
// sources only on entry, custom and non-interactive events, engagement.
func truthEvents(site int64, start time.Time) []store.Event {
	r := rand.New(rand.NewPCG(3, 5))
	paths := []string{"/", "/pricing", "/blog/a", "/blog/b", "/docs"}
	sources := [][3]string{{"", "Direct", ""}, {"Google", "Organic Search", "https://www.google.com/"}, {"Facebook", "Organic Social", "https://facebook.com/"}, {"Newsletter", "Email", ""}}
	countries := []string{"FI", "DE", "US", "SE"}
	browsers := []string{"Firefox", "Chrome", "Safari"}
	var out []store.Event
	for v := uint64(1); v <= 80; v++ {
		at := start.Add(time.Duration(r.IntN(60*60*40)) * time.Second)
		country, browser := countries[r.IntN(4)], browsers[r.IntN(3)]
		for visit := 0; visit < 1+r.IntN(3); visit++ {
			src := sources[r.IntN(4)]
			for p := 0; p < 1+r.IntN(4); p++ {
				e := Ev(site, dayID(v, at), at, "pageview", paths[r.IntN(len(paths))])
				e.Country, e.Browser = country, browser
				e.Channel = "Direct"
				if p > 0 && r.IntN(10) == 0 {
					e.Country = "NL" // a visit's country is its first event's, whatever comes later
				}
				if p == 0 {
					e.Source, e.Channel, e.Referrer = src[0], src[1], src[2]
					if src[0] == "Newsletter" {
						e.UTMSource, e.UTMMedium = "newsletter", "email"
					}
				}
				out = append(out, e)
				switch r.IntN(6) {
				case 0:
					c := e
					c.ID[0]++
					c.Name, c.Time, c.Source, c.Channel, c.Referrer = "Signup", at.Add(3*time.Second), "", "Direct", ""
					if p == 0 && v%2 == 0 {
						// the same millisecond as the visit's first pageview: which one
						// starts the visit (its source, its page) goes by id
						c.Time = at
					}
					out = append(out, c)
				case 1:
					c := e
					c.ID[0] += 2
					c.Name, c.Time, c.Interactive = "Scroll", at.Add(4*time.Second), false
					out = append(out, c)
				case 2:
					c := e
					c.ID[0] += 3
					c.Name, c.Time, c.Interactive, c.EngagedMS = "engagement", at.Add(5*time.Second), false, 3000
					out = append(out, c)
				}
				at = at.Add(time.Duration(5+r.IntN(20*60)) * time.Second)
			}
			at = at.Add(time.Duration(31+r.IntN(300)) * time.Minute)
		}
	}
	return out
}

type truthRow struct {
	e           store.Event
	visit       int
	first       store.Event // the visit's first event
	entry, exit string
}

// truthRows is the independent model of visits: sort each visitor's
// events, split at gaps over the timeout; a visit's dimensions are its
// first event's.
func truthRows(evs []store.Event, from, to time.Time) ([]truthRow, map[[2]int]*truthVisit) {
	byV := map[uint64][]store.Event{}
	for _, e := range evs {
		if e.Name == "engagement" || e.Time.Before(from) || !e.Time.Before(to) {
			continue
		}
		byV[e.VisitorID] = append(byV[e.VisitorID], e)
	}
	var rows []truthRow
	visits := map[[2]int]*truthVisit{}
	for vid, list := range byV {
		// time, then id: the order every engine uses for events at the same millisecond
		sort.SliceStable(list, func(i, j int) bool {
			if !list[i].Time.Equal(list[j].Time) {
				return list[i].Time.Before(list[j].Time)
			}
			return bytes.Compare(list[i].ID[:], list[j].ID[:]) < 0
		})
		n := 0
		startIdx := 0
		for i := range list {
			if i > 0 && list[i].Time.Sub(list[i-1].Time) > store.SessionTimeout {
				n++
				startIdx = i
			}
			k := [2]int{int(vid), n}
			tv := visits[k]
			if tv == nil {
				tv = &truthVisit{start: list[i].Time, first: list[startIdx]}
				visits[k] = tv
			}
			tv.last = list[i].Time
			tv.exit = list[i].Path
			if list[i].Name == "pageview" {
				tv.pv++
			}
			if list[i].Name == "pageview" || list[i].Interactive {
				tv.inter++
			}
			rows = append(rows, truthRow{e: list[i], visit: n, first: list[startIdx]})
		}
	}
	for i := range rows {
		tv := visits[[2]int{int(rows[i].e.VisitorID), rows[i].visit}]
		rows[i].entry, rows[i].exit = tv.first.Path, tv.exit
	}
	return rows, visits
}

type truthVisit struct {
	start, last time.Time
	first       store.Event
	exit        string
	pv, inter   int
}

func dimValue(d report.Dim, r truthRow, loc *time.Location, visitStart time.Time, forVisit bool) string {
	if d.Time != "" {
		t := r.e.Time
		if forVisit {
			t = visitStart
		}
		t = t.In(loc)
		switch d.Time {
		case "hour":
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, time.UTC)
		case "day":
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		case "week":
			t = time.Date(t.Year(), t.Month(), t.Day()-(int(t.Weekday())+6)%7, 0, 0, 0, 0, time.UTC)
		case "month":
			t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		}
		return report.TimeLabel(d.Time, t)
	}
	f := r.first
	switch d.Column {
	case "path":
		return r.e.Path
	case "hostname":
		return r.e.Hostname
	case "name":
		return r.e.Name
	case "entry_page":
		return r.entry
	case "exit_page":
		return r.exit
	case "source":
		return f.Source
	case "referrer":
		return f.Referrer
	case "channel":
		return f.Channel
	case "utm_source":
		return f.UTMSource
	case "utm_medium":
		return f.UTMMedium
	case "country":
		return f.Country
	case "browser":
		return f.Browser
	case "device":
		return f.Device
	}
	panic("truth model lacks " + d.Column)
}

func completes(g store.Goal, e store.Event) bool {
	if g.Kind == "page" {
		return e.Name == "pageview" && regexp.MustCompile(report.GoalRegexp(g.Value)).MatchString(e.Path)
	}
	return e.Name == g.Value
}

func truthMatch(f *report.Filter, r truthRow, loc *time.Location, goals []store.Goal) bool {
	if f == nil {
		return true
	}
	if f.Dim.Goal {
		for _, g := range goals {
			for _, v := range f.Values {
				if g.Name() == v && completes(g, r.e) {
					return true
				}
			}
		}
		return false
	}
	switch f.Op {
	case "and":
		for i := range f.Sub {
			if !truthMatch(&f.Sub[i], r, loc, goals) {
				return false
			}
		}
		return true
	case "or":
		for i := range f.Sub {
			if truthMatch(&f.Sub[i], r, loc, goals) {
				return true
			}
		}
		return false
	case "not":
		return !truthMatch(&f.Sub[0], r, loc, goals)
	}
	v := dimValue(f.Dim, r, loc, time.Time{}, false)
	any := false
	for _, want := range f.Values {
		switch strings.TrimSuffix(f.Op, "_not") {
		case "is":
			any = any || v == want
		case "contains":
			any = any || strings.Contains(v, want)
		case "matches":
			any = any || regexp.MustCompile(want).MatchString(v)
		}
	}
	if strings.HasSuffix(f.Op, "_not") {
		return !any
	}
	return any
}

// truthAnswer computes a query's rows from the model.
func truthAnswer(q *report.Query, evs []store.Event) []report.Row {
	loc, _ := time.LoadLocation(q.Site.TimeZone)
	rows, visits := truthRows(evs, q.Range.From, q.Range.To)
	type agg struct {
		visitors                 map[uint64]bool
		pv, ev                   int
		visits, bounces, dur, vp int64
		seenVisit                map[[2]int]bool
	}
	groups := map[string]*agg{}
	// keysOf lists a row's group keys: one, or one per goal it completes
	keysOf := func(r truthRow, forVisit bool) []string {
		keys := []string{""}
		tv := visits[[2]int{int(r.e.VisitorID), r.visit}]
		for i, d := range q.Dimensions {
			var vals []string
			if d.Goal {
				for _, g := range q.Goals {
					if completes(g, r.e) {
						vals = append(vals, g.Name())
					}
				}
			} else {
				vals = []string{dimValue(d, r, loc, tv.start, forVisit)}
			}
			var next []string
			for _, k := range keys {
				for _, v := range vals {
					if i > 0 {
						next = append(next, k+"\x00"+v)
					} else {
						next = append(next, v)
					}
				}
			}
			keys = next
		}
		return keys
	}
	get := func(k string) *agg {
		if groups[k] == nil {
			groups[k] = &agg{visitors: map[uint64]bool{}, seenVisit: map[[2]int]bool{}}
		}
		return groups[k]
	}
	totalVisitors := map[uint64]bool{}
	population := map[uint64]bool{}
	for _, r := range rows {
		if truthMatch(q.WithoutGoalFilters(), r, loc, q.Goals) {
			population[r.e.VisitorID] = true
		}
		if !truthMatch(q.Filter, r, loc, q.Goals) {
			continue
		}
		totalVisitors[r.e.VisitorID] = true
		for _, k := range keysOf(r, false) {
			a := get(k)
			a.visitors[r.e.VisitorID] = true
			a.ev++
			if r.e.Name == "pageview" {
				a.pv++
			}
		}
		vk := [2]int{int(r.e.VisitorID), r.visit}
		for _, k := range keysOf(r, true) {
			b := get(k)
			if !b.seenVisit[vk] {
				b.seenVisit[vk] = true
				tv := visits[vk]
				b.visits++
				if tv.inter <= 1 {
					b.bounces++
				}
				b.dur += tv.last.Sub(tv.start).Milliseconds()
				b.vp += int64(tv.pv)
			}
		}
	}
	var out []report.Row
	for k, a := range groups {
		row := report.Row{Dimensions: []string{}}
		if len(q.Dimensions) > 0 {
			row.Dimensions = strings.Split(k, "\x00")
		}
		for _, m := range q.Metrics {
			var x float64
			switch m {
			case report.MVisitors:
				x = float64(len(a.visitors))
			case report.MPageviews:
				x = float64(a.pv)
			case report.MEvents:
				x = float64(a.ev)
			case report.MVisits:
				x = float64(a.visits)
			case report.MBounceRate:
				if a.visits > 0 {
					x = math.Round(float64(a.bounces) * 100 / float64(a.visits))
				}
			case report.MVisitDuration:
				if a.visits > 0 {
					x = math.Round(float64(a.dur) / float64(a.visits) / 1000)
				}
			case report.MViewsPerVisit:
				if a.visits > 0 {
					x = math.Round(float64(a.vp)*100/float64(a.visits)) / 100
				}
			case report.MConversion:
				if len(population) > 0 {
					x = math.Round(float64(len(a.visitors))*1000/float64(len(population))) / 10
				}
			case report.MPercentage:
				if len(q.Dimensions) == 0 {
					x = 100
				} else if len(totalVisitors) > 0 {
					x = math.Round(float64(len(a.visitors))*1000/float64(len(totalVisitors))) / 10
				}
			}
			row.Metrics = append(row.Metrics, x)
		}
		out = append(out, row)
	}
	if len(q.Dimensions) == 0 && len(out) == 0 {
		out = append(out, report.Row{Dimensions: []string{}, Metrics: make([]float64, len(q.Metrics))})
	}
	report.Sort(q, out)
	return report.Page(q, out)
}

// reportCase is one question of the report suite.
type reportCase struct {
	name   string
	dims   []string
	filter *report.Filter
	order  []report.Order
	limit  int
	offset int
	goals  bool
	rng    *report.Range // the suite's 7 days when nil
	// metrics asked when not all (raw events then skip what they need not
	// gather)
	metrics []string
}

// Reports checks an engine's answers against the independent model.
func Reports(t *testing.T, open func(t *testing.T) store.EventStore) {
	ctx := context.Background()
	s := open(t)
	eng, ok := s.(report.Engine)
	if !ok {
		t.Fatalf("%T is not a report.Engine", s)
	}
	site := store.Site{ID: 1, Domain: "a.example", TimeZone: "Europe/Helsinki"}
	start := time.Date(2026, 3, 27, 8, 0, 0, 0, time.UTC) // spans the DST change of 29 March
	evs := truthEvents(1, start)
	other := truthEvents(2, start)[:50]
	rounding := roundingEvents(3, start)
	if err := s.Apply(ctx, append(append(evs, other...), rounding...), store.JournalPos{Segment: 1, Offset: 1}); err != nil {
		t.Fatal(err)
	}
	all := []string{report.MVisitors, report.MVisits, report.MPageviews, report.MViewsPerVisit, report.MBounceRate, report.MVisitDuration, report.MEvents, report.MPercentage}
	dim := func(n string) report.Dim { d, _ := report.LookupDim(n); return d }
	rng, _ := report.ParsePeriod("7d", site.TimeZone, start.Add(4*24*time.Hour))
	cases := []reportCase{
		{name: "aggregate"},
		{name: "by source", dims: []string{"visit:source"}},
		{name: "by page", dims: []string{"event:page"}},
		{name: "by entry page", dims: []string{"visit:entry_page"}},
		{name: "by exit page", dims: []string{"visit:exit_page"}},
		{name: "by channel", dims: []string{"visit:channel"}},
		{name: "by country and browser", dims: []string{"visit:country", "visit:browser"}},
		{name: "by event name", dims: []string{"event:name"}},
		{name: "by day (DST)", dims: []string{"time:day"}},
		{name: "by hour", dims: []string{"time:hour"}},
		{name: "by utm source", dims: []string{"visit:utm_source"}},
		{name: "country is FI", filter: &report.Filter{Op: "is", Dim: dim("visit:country"), Values: []string{"FI"}}},
		{name: "page contains blog, by source", dims: []string{"visit:source"}, filter: &report.Filter{Op: "contains", Dim: dim("event:page"), Values: []string{"blog"}}},
		{name: "source is Google and browser is not Safari, by page", dims: []string{"event:page"},
			filter: &report.Filter{Op: "and", Sub: []report.Filter{
				{Op: "is", Dim: dim("visit:source"), Values: []string{"Google"}},
				{Op: "is_not", Dim: dim("visit:browser"), Values: []string{"Safari"}},
			}}},
		{name: "or and not, by day", dims: []string{"time:day"},
			filter: &report.Filter{Op: "or", Sub: []report.Filter{
				{Op: "matches", Dim: dim("event:page"), Values: []string{"^/docs"}},
				{Op: "not", Sub: []report.Filter{{Op: "is", Dim: dim("visit:country"), Values: []string{"FI", "DE"}}}},
			}}},
		{name: "visitors and pageviews only, by page, two filters", dims: []string{"event:page"}, metrics: []string{report.MVisitors, report.MPageviews},
			filter: &report.Filter{Op: "and", Sub: []report.Filter{
				{Op: "is", Dim: dim("visit:country"), Values: []string{"FI"}},
				{Op: "is_not", Dim: dim("visit:browser"), Values: []string{"Safari"}},
			}}},
		{name: "visitors only, aggregate, page contains blog", metrics: []string{report.MVisitors},
			filter: &report.Filter{Op: "contains", Dim: dim("event:page"), Values: []string{"blog"}}},
		{name: "visitors only, by hour, page contains blog", dims: []string{"time:hour"}, metrics: []string{report.MVisitors},
			filter: &report.Filter{Op: "contains", Dim: dim("event:page"), Values: []string{"blog"}}},
		{name: "events and percentage, by entry page and country", dims: []string{"visit:entry_page", "visit:country"}, metrics: []string{report.MEvents, report.MPercentage},
			filter: &report.Filter{Op: "is_not", Dim: dim("visit:source"), Values: []string{"Google"}}},
		{name: "ordered and paged", dims: []string{"event:page"}, order: []report.Order{{By: report.MPageviews, Desc: false}}, limit: 2},
		{name: "top 3 sources", dims: []string{"visit:source"}, limit: 3},
		{name: "top exit page", dims: []string{"visit:exit_page"}, order: []report.Order{{By: report.MVisits, Desc: true}}, limit: 1},
		{name: "by goal", dims: []string{"event:goal"}, goals: true},
		{name: "goal Signup, by source", dims: []string{"visit:source"}, goals: true,
			filter: &report.Filter{Op: "is", Dim: dim("event:goal"), Values: []string{"Signup"}}},
		{name: "goal page and country, by day", dims: []string{"time:day"}, goals: true,
			filter: &report.Filter{Op: "and", Sub: []report.Filter{
				{Op: "is", Dim: dim("event:goal"), Values: []string{"Visit /blog/**"}},
				{Op: "is_not", Dim: dim("visit:country"), Values: []string{"US"}},
			}}},
		// orders that Stream gives from SQL: by each derived metric
		// (whose rounded values tie), by dimensions, paged, filtered
		{name: "by page, by bounce rate", dims: []string{"event:page"}, order: []report.Order{{By: report.MBounceRate}}},
		{name: "by entry page and country, by bounce rate desc", dims: []string{"visit:entry_page", "visit:country"}, order: []report.Order{{By: report.MBounceRate, Desc: true}}},
		{name: "by source, by visit duration desc", dims: []string{"visit:source"}, order: []report.Order{{By: report.MVisitDuration, Desc: true}}},
		{name: "by hour, by visit duration", dims: []string{"time:hour"}, order: []report.Order{{By: report.MVisitDuration}}},
		{name: "by exit page and browser, by views per visit", dims: []string{"visit:exit_page", "visit:browser"}, order: []report.Order{{By: report.MViewsPerVisit}}},
		{name: "by country and page, by percentage", dims: []string{"visit:country", "event:page"}, order: []report.Order{{By: report.MPercentage}}},
		{name: "by goal, by conversion rate", dims: []string{"event:goal"}, goals: true, order: []report.Order{{By: report.MConversion}}},
		{name: "goal Signup, by page, by conversion rate desc", dims: []string{"event:page"}, goals: true, order: []report.Order{{By: report.MConversion, Desc: true}},
			filter: &report.Filter{Op: "is", Dim: dim("event:goal"), Values: []string{"Signup"}}},
		{name: "by page desc", dims: []string{"event:page"}, order: []report.Order{{By: "event:page", Desc: true}}},
		{name: "by day desc, paged", dims: []string{"time:day"}, order: []report.Order{{By: "time:day", Desc: true}}, limit: 2, offset: 1},
		{name: "by browser then visitors, by country and browser", dims: []string{"visit:country", "visit:browser"},
			order: []report.Order{{By: "visit:browser"}, {By: report.MVisitors}}},
		{name: "by country and browser, ties, paged", dims: []string{"visit:country", "visit:browser"}, order: []report.Order{{By: report.MEvents}}, limit: 4, offset: 3},
		{name: "by hour, by visitors, paged", dims: []string{"time:hour"}, order: []report.Order{{By: report.MVisitors}, {By: report.MPageviews, Desc: true}}, limit: 5, offset: 4},
		{name: "channels from the third", dims: []string{"visit:channel"}, limit: 10, offset: 2},
		{name: "offset past the end", dims: []string{"visit:channel"}, limit: 10, offset: 10},
		{name: "browser is not Safari, by page, by bounce rate desc, paged", dims: []string{"event:page"}, order: []report.Order{{By: report.MBounceRate, Desc: true}},
			limit: 3, offset: 1, filter: &report.Filter{Op: "is_not", Dim: dim("visit:browser"), Values: []string{"Safari"}}},
		{name: "page matches blog or docs, by source, by views per visit desc", dims: []string{"visit:source"}, order: []report.Order{{By: report.MViewsPerVisit, Desc: true}},
			filter: &report.Filter{Op: "matches", Dim: dim("event:page"), Values: []string{"^/(blog|docs)"}}},
	}
	t.Run("funnel", func(t *testing.T) {
		steps := []store.Goal{{Kind: "page", Value: "/"}, {Kind: "page", Value: "/blog/*"}, {Kind: "event", Value: "Signup"}}
		for _, f := range []*report.Filter{nil, {Op: "is", Dim: dim("visit:country"), Values: []string{"FI", "SE"}}} {
			q := &report.Query{Site: site, Metrics: []string{report.MVisitors}, Range: rng, Goals: steps, Filter: f}
			got, err := eng.Funnel(ctx, q, steps)
			if err != nil {
				t.Fatal(err)
			}
			want := truthFunnel(q, evs, steps)
			if want[1] == 0 || want[2] == 0 || want[2] >= want[0] {
				t.Fatalf("the data makes a poor funnel: %v", want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("funnel %v, want %v", got, want)
			}
		}
	})
	check := func(t *testing.T, eng report.Engine, c reportCase, evs []store.Event) {
		q := &report.Query{Site: site, Metrics: all, Range: rng, Filter: c.filter, OrderBy: c.order, Limit: c.limit, Offset: c.offset}
		if c.metrics != nil {
			q.Metrics = c.metrics
		}
		if c.rng != nil {
			q.Range = *c.rng
		}
		if c.goals {
			q.Goals = []store.Goal{{ID: 1, SiteID: 1, Kind: "event", Value: "Signup"}, {ID: 2, SiteID: 1, Kind: "page", Value: "/blog/**"}, {ID: 3, SiteID: 1, Kind: "page", Value: "/nothing/*"}}
			q.Metrics = append(q.Metrics, report.MConversion)
		}
		for _, d := range c.dims {
			q.Dimensions = append(q.Dimensions, dim(d))
		}
		if err := q.Validate(); err != nil {
			t.Fatal(err)
		}
		checkAnswer(t, eng, q, evs, c.offset > 0)
	}
	// Stream's order is SQL's, so it must round derived metrics as Go
	// does and compare dimensions as bytes: on data where rounding half
	// to even, not rounding, or a language's collation would order the
	// rows otherwise, it must still give Run's rows.
	t.Run("stream rounding and byte order", func(t *testing.T) {
		site := store.Site{ID: 3, Domain: "c.example", TimeZone: site.TimeZone}
		day, _ := report.ParsePeriod("day", site.TimeZone, start)
		signup := []store.Goal{{ID: 4, SiteID: 3, Kind: "event", Value: "Signup"}}
		for _, c := range []struct {
			metric string
			filter *report.Filter
			pair   [2]string // pages whose metric ties only as Go rounds, in byte order
		}{
			{report.MBounceRate, nil, [2]string{"/b1", "/z1"}},
			{report.MVisitDuration, nil, [2]string{"/b2", "/z2"}},
			{report.MViewsPerVisit, nil, [2]string{"/b3", "/z3"}},
			{report.MPercentage, nil, [2]string{"/b4", "/z4"}},
			{report.MConversion, &report.Filter{Op: "is", Dim: dim("event:goal"), Values: []string{"Signup"}}, [2]string{"/b4", "/z4"}},
			{report.MVisitors, nil, [2]string{"/B", "/a"}},
		} {
			t.Run(c.metric, func(t *testing.T) {
				q := &report.Query{Site: site, Metrics: all, Range: day, Dimensions: []report.Dim{dim("event:page")},
					Filter: c.filter, OrderBy: []report.Order{{By: c.metric}}, Goals: signup}
				if c.filter != nil {
					q.Metrics = append(q.Metrics, report.MConversion)
				}
				if err := q.Validate(); err != nil {
					t.Fatal(err)
				}
				// the data does what it is for: the pair ties and
				// stands in byte order
				want := truthAnswer(q, rounding)
				at := map[string]int{}
				for i, r := range want {
					at[r.Dimensions[0]] = i
				}
				mi := slices.Index(q.Metrics, c.metric)
				i, j := at[c.pair[0]], at[c.pair[1]]
				if want[i].Dimensions[0] != c.pair[0] || want[j].Dimensions[0] != c.pair[1] || j < i || want[i].Metrics[mi] != want[j].Metrics[mi] {
					t.Fatalf("%s: %s and %s do not tie in the model:%s", c.metric, c.pair[0], c.pair[1], fmtRows(want))
				}
				checkAnswer(t, eng, q, rounding, false)
			})
		}
	})
	// A comparison asks the same question of the period before: one local
	// day (the day of the DST change) and the day before it.
	day, _ := report.ParsePeriod("day", site.TimeZone, start.Add(2*24*time.Hour))
	before := day.Previous()
	for _, c := range cases[:11] {
		for _, r := range []report.Range{day, before} {
			c := c
			c.name, c.rng = c.name+" on "+r.FromDay, &r
			cases = append(cases, c)
		}
	}
	// Nothing is rolled up yet: raw events answer every case.
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { check(t, eng, c, evs) })
	}
	ru, ok := s.(report.Rollups)
	if !ok {
		t.Fatalf("%T keeps no rollups", s)
	}
	// With rollups built for the days before "now", answers must not
	// change; a late event for a built day must show at once.
	t.Run("rollups", func(t *testing.T) {
		now := start.Add(3 * 24 * time.Hour)
		n, err := ru.RefreshRollups(ctx, site, now)
		if err != nil || n < 3 {
			t.Fatalf("built %d days: %v", n, err)
		}
		if n, _ := ru.RefreshRollups(ctx, site, now); n != 0 {
			t.Fatalf("rebuilt %d unchanged days", n)
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { check(t, eng, c, evs) })
		}
		late := Ev(1, 999, start.Add(26*time.Hour), "pageview", "/late")
		if err := s.Apply(ctx, []store.Event{late}, store.JournalPos{Segment: 1, Offset: 2}); err != nil {
			t.Fatal(err)
		}
		evs := append(append([]store.Event{}, evs...), late)
		check(t, eng, cases[1], evs)
		check(t, eng, cases[8], evs)
		if n, _ := ru.RefreshRollups(ctx, site, now); n != 1 {
			t.Fatalf("late event: rebuilt %d days, want 1", n)
		}
		check(t, eng, cases[2], evs)
		check(t, eng, cases[0], evs)
	})
	// Live: a second store keeps the newest two days current at ingest.
	// The events come in time order, in batches, with some of each batch
	// held back to the next one (out of order within their visits); every
	// day is then built without the job, and a late event for a day that
	// is no longer live goes to raw events until the job builds it.
	t.Run("live", func(t *testing.T) {
		s := open(t)
		s.(report.Rollups).KeepRollupsLive(func(id int64) (string, bool) { return site.TimeZone, id == 1 || id == 2 })
		eng, ru := s.(report.Engine), s.(report.Rollups)
		all := append(append([]store.Event{}, evs...), other...)
		sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
		var held []store.Event
		for i, off := 0, int64(1); i < len(all); off++ {
			j := min(i+37, len(all))
			batch := append(held, all[i:j]...)
			held = nil
			if j < len(all) {
				// every fifth event waits for the next batch
				var keep []store.Event
				for k, e := range batch {
					if k%5 == 4 {
						held = append(held, e)
					} else {
						keep = append(keep, e)
					}
				}
				batch = keep
			}
			if err := s.Apply(ctx, batch, store.JournalPos{Segment: 1, Offset: off}); err != nil {
				t.Fatal(err)
			}
			i = j
		}
		if len(held) > 0 {
			t.Fatal("events left over")
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { check(t, eng, c, evs) })
		}
		late := Ev(1, 998, start.Add(2*time.Hour), "pageview", "/late")
		if err := s.Apply(ctx, []store.Event{late}, store.JournalPos{Segment: 2, Offset: 1}); err != nil {
			t.Fatal(err)
		}
		evs := append(append([]store.Event{}, evs...), late)
		check(t, eng, cases[2], evs)
		// the job builds only the late event's day: every other one was
		// built at ingest
		if n, err := ru.RefreshRollups(ctx, site, start.Add(5*24*time.Hour)); err != nil || n != 1 {
			t.Fatalf("the job built %d days, want 1, the late event's (%v)", n, err)
		}
		check(t, eng, cases[0], evs)
		check(t, eng, cases[8], evs)
		// That job also let go of the days before its "yesterday"; an
		// event for the newest day then replays it from the stored events.
		again := Ev(1, 997, all[len(all)-1].Time, "pageview", "/again")
		if err := s.Apply(ctx, []store.Event{again}, store.JournalPos{Segment: 2, Offset: 2}); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, again)
		check(t, eng, cases[0], evs)
		check(t, eng, cases[2], evs)
		check(t, eng, cases[4], evs)
	})
	// Weeks: the events again 3, 6 and 9 local days later (fresh ids, the
	// visitor ids of those days) fill Friday 27 March to Tuesday 7 April,
	// so the week from Monday 30 March is built whole and read as a week.
	t.Run("weeks", func(t *testing.T) {
		s := open(t)
		eng, ru := s.(report.Engine), s.(report.Rollups)
		loc, _ := time.LoadLocation(site.TimeZone)
		var weeks []store.Event
		for k := range 4 {
			for _, e := range evs {
				c := e
				c.Time = e.Time.In(loc).AddDate(0, 0, 3*k).UTC()
				c.VisitorID = dayID(e.VisitorID/100000, c.Time)
				c.ID[15] ^= byte(k)
				weeks = append(weeks, c)
			}
		}
		if err := s.Apply(ctx, weeks, store.JournalPos{Segment: 1, Offset: 1}); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 4, 8, 12, 0, 0, 0, loc)
		days := map[string]bool{}
		for _, e := range weeks {
			days[e.Time.In(loc).Format(time.DateOnly)] = true
		}
		if !days["2026-03-30"] || !days["2026-04-05"] || len(days) < 11 {
			t.Fatalf("the events fill %d days, not the week from 30 March", len(days))
		}
		// every day with events, and the one week where the store keeps weeks
		weeksKept := 0
		if w, ok := s.(interface{ KeepsWeeks() bool }); ok && w.KeepsWeeks() {
			weeksKept = 1
		}
		if n, err := ru.RefreshRollups(ctx, site, now); err != nil || n != len(days)+weeksKept {
			t.Fatalf("built %d days and weeks, want %d (%v)", n, len(days)+weeksKept, err)
		}
		from, to := time.Date(2026, 3, 28, 0, 0, 0, 0, loc), time.Date(2026, 4, 8, 0, 0, 0, 0, loc)
		span := report.Range{From: from.UTC(), To: to.UTC(), FromDay: "2026-03-28", ToDay: "2026-04-07", TimeZone: site.TimeZone}
		month, _ := report.ParsePeriod("30d", site.TimeZone, now.AddDate(0, 0, -1))
		checkAll := func(t *testing.T, evs []store.Event) {
			for _, c := range cases[:21] {
				for _, r := range []report.Range{span, month} {
					c := c
					c.name, c.rng = c.name+" from "+r.FromDay, &r
					t.Run(c.name, func(t *testing.T) { check(t, eng, c, evs) })
				}
			}
		}
		checkAll(t, weeks)
		// a late event in the week takes it out with its day; the job
		// builds both again
		late := Ev(1, dayID(999, time.Date(2026, 4, 1, 12, 0, 0, 0, loc)), time.Date(2026, 4, 1, 12, 0, 0, 0, loc), "pageview", "/late")
		if err := s.Apply(ctx, []store.Event{late}, store.JournalPos{Segment: 1, Offset: 2}); err != nil {
			t.Fatal(err)
		}
		weeks = append(weeks, late)
		t.Run("late", func(t *testing.T) { checkAll(t, weeks) })
		if n, err := ru.RefreshRollups(ctx, site, now); err != nil || n != 1+weeksKept {
			t.Fatalf("late event: built %d days and weeks, want %d (%v)", n, 1+weeksKept, err)
		}
		t.Run("rebuilt", func(t *testing.T) { checkAll(t, weeks) })
		// an event that makes one of its days live takes the week out too
		s.(report.Rollups).KeepRollupsLive(func(id int64) (string, bool) { return site.TimeZone, id == 1 })
		sunday := time.Date(2026, 4, 5, 20, 0, 0, 0, loc)
		live := Ev(1, dayID(998, sunday), sunday, "pageview", "/live")
		if err := s.Apply(ctx, []store.Event{live}, store.JournalPos{Segment: 1, Offset: 3}); err != nil {
			t.Fatal(err)
		}
		weeks = append(weeks, live)
		t.Run("live", func(t *testing.T) { checkAll(t, weeks) })
	})
}

// checkAnswer checks an engine's answer to q against the model: Run's
// rows and total, Stream's rows against Run's (the same rows in the same
// order), and, when q's page leaves rows out, Stream without a limit
// (Limit 0 is every row) against the model's whole answer.
// paged says q's offset is meant to leave rows out.
func checkAnswer(t *testing.T, eng report.Engine, q *report.Query, evs []store.Event, paged bool) {
	t.Helper()
	ctx := context.Background()
	got, err := eng.Run(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	want := truthAnswer(q, evs)
	whole := *q
	whole.Limit, whole.Offset = 0, 0
	wantAll := truthAnswer(&whole, evs)
	if len(want) == 0 && !paged || len(wantAll) == 0 {
		t.Fatal("the truth model has no rows: the case tests nothing")
	}
	if !sameRows(got.Rows, want) {
		t.Fatalf("rows differ\n got %s\nwant %s", fmtRows(got.Rows), fmtRows(want))
	}
	if got.Total != len(wantAll) {
		t.Fatalf("total %d, want %d", got.Total, len(wantAll))
	}
	if s := streamRows(t, eng, q); !sameRows(s, got.Rows) {
		t.Fatalf("Stream's rows differ from Run's\nstream %s\n   run %s", fmtRows(s), fmtRows(got.Rows))
	}
	// with no row cut off, that was the whole answer already
	if len(want) == len(wantAll) {
		return
	}
	if s := streamRows(t, eng, &whole); !sameRows(s, wantAll) {
		t.Fatalf("Stream without a limit differs from the model\nstream %s\n  want %s", fmtRows(s), fmtRows(wantAll))
	}
}

func streamRows(t *testing.T, eng report.Engine, q *report.Query) []report.Row {
	t.Helper()
	var out []report.Row
	if err := eng.Stream(context.Background(), q, func(r report.Row) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameRows: the same rows in the same order (no rows is no rows, nil
// or not).
func sameRows(a, b []report.Row) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

// roundingEvents are one local day of a site where each visit has its
// own visitor and stays on one page, shaped so that pairs of pages tie on
// a derived metric only when it is rounded half away from zero as Go's
// math.Round does; the pair that sorts first by bytes has the larger
// unrounded value, so rounding half to even, or not at all, swaps them.
// Pages of one visitor whose names sort differently by byte and by a
// language's collation complete the 2000 visitors percentage divides by.
func roundingEvents(site int64, start time.Time) []store.Event {
	var out []store.Event
	visitor := uint64(0)
	at := start
	// visit adds a visit to path: pageviews at the given seconds from its
	// start, and a Signup with signup
	visit := func(path string, secs []int, signup bool) {
		visitor++
		for _, s := range secs {
			out = append(out, Ev(site, visitor, at.Add(time.Duration(s)*time.Second), "pageview", path))
		}
		if signup {
			out = append(out, Ev(site, visitor, at.Add(time.Second), "Signup", path))
		}
		at = at.Add(7 * time.Second)
	}
	repeat := func(n int, path string, secs []int) {
		for range n {
			visit(path, secs, false)
		}
	}
	one, two := []int{0}, []int{0, 10}
	// bounce rate 1/8 = 12.5% -> 13 and 2/15 = 13.3% -> 13
	repeat(1, "/z1", one)
	repeat(7, "/z1", two)
	repeat(2, "/b1", one)
	repeat(13, "/b1", two)
	// visit duration (2+3)/2 = 2.5 s -> 3 and (2+3+3)/3 = 2.67 s -> 3
	visit("/z2", []int{0, 2}, false)
	visit("/z2", []int{0, 3}, false)
	visit("/b2", []int{0, 2}, false)
	visit("/b2", []int{0, 3}, false)
	visit("/b2", []int{0, 3}, false)
	// views per visit 9/8 = 1.125 -> 1.13 and 17/15 = 1.133 -> 1.13
	repeat(7, "/z3", one)
	repeat(1, "/z3", two)
	repeat(13, "/b3", one)
	repeat(2, "/b3", two)
	// percentage and conversion rate of 2000: 1 visitor = 0.05% -> 0.1,
	// 2 visitors = 0.1%
	visit("/z4", one, true)
	visit("/b4", one, true)
	visit("/b4", one, true)
	for _, p := range []string{"/B", "/a", "/~", "/\u00c4", "/\u00e9"} {
		visit(p, one, false)
	}
	for visitor < 2000 {
		visit("/filler", one, false)
	}
	return out
}

// truthFunnel walks each visit's events in time order.
func truthFunnel(q *report.Query, evs []store.Event, steps []store.Goal) []int64 {
	loc, _ := time.LoadLocation(q.Site.TimeZone)
	rows, _ := truthRows(evs, q.Range.From, q.Range.To)
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.e.VisitorID != b.e.VisitorID {
			return a.e.VisitorID < b.e.VisitorID
		}
		if a.visit != b.visit {
			return a.visit < b.visit
		}
		return a.e.Time.Before(b.e.Time)
	})
	reached := make([]map[uint64]bool, len(steps))
	for i := range reached {
		reached[i] = map[uint64]bool{}
	}
	next, cur := 0, [2]int{-1, -1}
	for _, r := range rows {
		if k := [2]int{int(r.e.VisitorID), r.visit}; k != cur {
			cur, next = k, 0
		}
		if !truthMatch(q.Filter, r, loc, q.Goals) {
			continue
		}
		if next < len(steps) && completes(steps[next], r.e) {
			reached[next][r.e.VisitorID] = true
			next++
		}
	}
	out := make([]int64, len(steps))
	for i := range reached {
		out[i] = int64(len(reached[i]))
	}
	return out
}

func fmtRows(rows []report.Row) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "\n  %v %v", r.Dimensions, r.Metrics)
	}
	return b.String()
}
