package storebench_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"fjord/internal/report"
	"fjord/internal/store"
)

// dashboardPanels are the dimensions of the dashboard's panels
// (internal/web/dashboard.go), goals left out.
var dashboardPanels = []string{"event:page", "visit:entry_page", "visit:exit_page", "visit:source", "visit:channel",
	"visit:utm_campaign", "visit:country", "visit:region", "visit:city", "visit:browser", "visit:os", "visit:device", "event:name"}

// BenchmarkQuery measures the report engine on a loaded store with daily
// rollups built for every day but the last ("today", answered from raw
// events): the full 30-day dashboard (headline, daily series and every
// panel, one after another), the slowest single panel, a page breakdown
// with two filters (raw events), and a monthly series over the whole set.
func BenchmarkQuery(b *testing.B) {
	n := benchEvents(b)
	for _, eng := range engines {
		b.Run(eng.name, func(b *testing.B) {
			e := eng.open(b)
			ctx := context.Background()
			g, _ := load(b, e, n)
			total := g.Emitted()
			now := g.End().Add(-time.Hour) // the last generated day is "today"
			site := store.Site{ID: 1, Domain: "bench.example", TimeZone: "UTC"}
			eng := e.st.(report.Engine)
			t0 := time.Now()
			days, err := e.st.(report.Rollups).RefreshRollups(ctx, site, now)
			if err != nil {
				b.Fatal(err)
			}
			build := time.Since(t0)
			if err := e.settle(); err != nil {
				b.Fatal(err)
			}
			rng, _ := report.ParsePeriod("30d", site.TimeZone, now)
			dim := func(name string) report.Dim { d, _ := report.LookupDim(name); return d }
			run := func(q *report.Query) {
				if err := q.Validate(); err != nil {
					b.Fatal(err)
				}
				if _, err := eng.Run(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			qs := []*report.Query{
				{Site: site, Range: rng, Metrics: []string{report.MVisitors, report.MVisits, report.MPageviews, report.MViewsPerVisit, report.MBounceRate, report.MVisitDuration}},
				{Site: site, Range: rng, Metrics: []string{report.MVisitors}, Dimensions: []report.Dim{dim("time:day")}},
			}
			names := []string{"headline", "time:day"}
			for _, p := range dashboardPanels {
				qs = append(qs, &report.Query{Site: site, Range: rng, Metrics: []string{report.MVisitors}, Dimensions: []report.Dim{dim(p)}, Limit: 11})
				names = append(names, p)
			}
			b.Run("dashboard-30d", func(b *testing.B) {
				took := make([][]time.Duration, len(qs))
				for b.Loop() {
					for i, q := range qs {
						t := time.Now()
						run(q)
						took[i] = append(took[i], time.Since(t))
					}
				}
				// the slowest panel by its median
				var slowest time.Duration
				var which string
				for i, ts := range took {
					sort.Slice(ts, func(a, b int) bool { return ts[a] < ts[b] })
					if p50 := ts[len(ts)/2]; p50 > slowest {
						slowest, which = p50, names[i]
					}
				}
				b.Logf("slowest panel: %s, p50 %v", which, slowest)
				b.ReportMetric(float64(slowest.Microseconds())/1000, "ms-slowest-panel-p50")
			})
			// as the dashboard page runs them: every query at once
			b.Run("dashboard-30d-parallel", func(b *testing.B) {
				for b.Loop() {
					var wg sync.WaitGroup
					for _, q := range qs {
						wg.Add(1)
						go func() {
							defer wg.Done()
							if _, err := eng.Run(ctx, q); err != nil {
								b.Error(err)
							}
						}()
					}
					wg.Wait()
				}
			})
			b.Run("breakdown-2-filters", func(b *testing.B) {
				q := &report.Query{Site: site, Range: rng, Metrics: []string{report.MVisitors, report.MPageviews},
					Dimensions: []report.Dim{dim("event:page")}, Limit: 10,
					Filter: &report.Filter{Op: "and", Sub: []report.Filter{
						{Op: "is", Dim: dim("visit:country"), Values: []string{"FI"}},
						{Op: "is", Dim: dim("visit:browser"), Values: []string{"Firefox"}},
					}}}
				for b.Loop() {
					run(q)
				}
			})
			b.Run("timeseries-12mo", func(b *testing.B) {
				r12, _ := report.ParsePeriod("12mo", site.TimeZone, now)
				q := &report.Query{Site: site, Range: r12, Metrics: []string{report.MVisitors, report.MPageviews}, Dimensions: []report.Dim{dim("time:month")}}
				for b.Loop() {
					run(q)
				}
			})
			b.Run("store", func(b *testing.B) {
				var bytes int64
				for b.Loop() {
					if bytes, err = e.size(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(bytes)/float64(total), "B/event")
				b.ReportMetric(float64(total), "events")
				b.ReportMetric(float64(days), "days+weeks-rolled-up")
				b.ReportMetric(build.Seconds(), "s-rollup-build")
			})
		})
	}
}
