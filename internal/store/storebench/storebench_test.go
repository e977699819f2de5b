package storebench_test

// Benchmarks of the event store engines on Fjord's schema. Run with
//
//	FJORD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test -run='^$' -bench=. -count=3 ./internal/store/storebench/
//
// FJORD_BENCH_EVENTS sets the size of the store BenchmarkSummary loads
// (default 1000000; "10M" and "500k" work too). Without
// FJORD_TEST_POSTGRES the PostgreSQL halves are skipped. The Test functions
// below are quick (20k events) and run with a plain go test.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"fjord/internal/store"
	"fjord/internal/store/duckdb"
	"fjord/internal/store/postgres"
	"fjord/internal/store/storebench"
	"fjord/internal/store/storetest"
)

const (
	seed = 42
	// The product's defaults (settings duckdb-memory-limit, duckdb-threads).
	duckMemory  = "512MB"
	duckThreads = 2
	// The loader's default MaxBatch, used to load the Summary stores.
	loadBatch = 10000
)

// engine is one event store under test, with what the benchmarks need
// beyond the EventStore interface.
type engine struct {
	st store.EventStore
	// settle runs after a bulk load, untimed: CHECKPOINT on DuckDB,
	// VACUUM ANALYZE on PostgreSQL (what autovacuum would do soon).
	settle func() error
	// size is the bytes on disk of the events.
	size func() (int64, error)
}

var engines = []struct {
	name string
	open func(b testing.TB) engine
}{
	{"duckdb", openDuck},
	{"postgres", openPG},
}

// utc: the generated site is in UTC; its newest days' rollups are kept
// current at ingest, as fjord serve does.
func utc(int64) (string, bool) { return "UTC", true }

func openDuck(t testing.TB) engine {
	path := filepath.Join(t.TempDir(), "events.duckdb")
	st, err := duckdb.Open(context.Background(), path, duckdb.Options{MemoryLimit: duckMemory, Threads: duckThreads})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.KeepRollupsLive(utc)
	st.Weeks = os.Getenv("FJORD_BENCH_DUCK_WEEKS") != ""
	ctx := context.Background()
	return engine{
		st:     st,
		settle: func() error { return st.Checkpoint(ctx) },
		size: func() (int64, error) {
			// The whole file (events and the small tables) after folding
			// the WAL in.
			if err := st.Checkpoint(ctx); err != nil {
				return 0, err
			}
			var n int64
			for _, p := range []string{path, path + ".wal"} {
				if fi, err := os.Stat(p); err == nil {
					n += fi.Size()
				}
			}
			return n, nil
		},
	}
}

func openPG(t testing.TB) engine {
	url := storetest.PostgresURL(t) // skips, naming FJORD_TEST_POSTGRES, when unset
	st, err := postgres.OpenEvents(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.KeepRollupsLive(utc)
	ctx := context.Background()
	return engine{
		st: st,
		settle: func() error {
			// what autovacuum does in production: statistics, and the
			// visibility map that index-only scans of rollups need
			for _, t := range []string{"events", "rollups", "rollup_days"} {
				if _, err := st.DB.ExecContext(ctx, "VACUUM ANALYZE "+t); err != nil {
					return err
				}
			}
			return nil
		},
		size: func() (int64, error) {
			// Heap, TOAST and both indexes (primary key none; events_site_ts).
			var n int64
			err := st.DB.QueryRowContext(ctx, "SELECT pg_total_relation_size('events') + pg_total_relation_size('rollups') + pg_total_relation_size('rollup_days')").Scan(&n)
			return n, err
		},
	}
}

// benchEvents is the size of the loaded store: FJORD_BENCH_EVENTS or 1M.
func benchEvents(t testing.TB) int {
	v := os.Getenv("FJORD_BENCH_EVENTS")
	if v == "" {
		return 1_000_000
	}
	mult := 1
	switch {
	case strings.HasSuffix(v, "M"), strings.HasSuffix(v, "m"):
		mult, v = 1_000_000, v[:len(v)-1]
	case strings.HasSuffix(v, "k"), strings.HasSuffix(v, "K"):
		mult, v = 1000, v[:len(v)-1]
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n <= 0 {
		t.Fatalf("FJORD_BENCH_EVENTS=%q: want a positive number such as 1000000, 500k or 10M", os.Getenv("FJORD_BENCH_EVENTS"))
	}
	return n * mult
}

// BenchmarkApply measures Apply (events plus the journal position, one
// transaction) in batches of 1,000 and 10,000 events, into a fresh store
// that grows during the run. ns/op is per batch.
func BenchmarkApply(b *testing.B) {
	for _, eng := range engines {
		for _, batch := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/batch=%d", eng.name, batch), func(b *testing.B) {
				e := eng.open(b)
				ctx := context.Background()
				// A dense 90-day dataset (10M events) generated lazily; a run
				// uses its first days.
				g := storebench.NewGen(storebench.Config{Seed: seed, Events: 10_000_000})
				buf := make([]store.Event, 0, batch)
				var applied int
				var took time.Duration
				for b.Loop() {
					b.StopTimer()
					buf = g.Next(buf[:0], batch)
					if len(buf) < batch {
						b.Fatalf("dataset exhausted after %d events; use a shorter -benchtime", g.Emitted())
					}
					b.StartTimer()
					t0 := time.Now()
					if err := e.st.Apply(ctx, buf, store.JournalPos{Segment: 1, Offset: int64(g.Emitted())}); err != nil {
						b.Fatal(err)
					}
					took += time.Since(t0)
					applied += len(buf)
				}
				b.ReportMetric(float64(applied)/took.Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkSummary loads FJORD_BENCH_EVENTS events (90 days) with Apply in
// batches of 10,000, settles the store (untimed), then measures Summary
// over the last 30, 7 and 90 days; the "store" sub-benchmark reports the
// bytes per event on disk and the load rate (events over the time spent in
// Apply).
// load fills a store with n generated events in batches of loadBatch (the
// loader's MaxBatch) and returns the generator and the time spent in Apply.
func load(b *testing.B, e engine, n int) (*storebench.Gen, time.Duration) {
	g := storebench.NewGen(storebench.Config{Seed: seed, Events: n})
	buf := make([]store.Event, 0, loadBatch)
	var took time.Duration
	for {
		buf = g.Next(buf[:0], loadBatch)
		if len(buf) == 0 {
			return g, took
		}
		t0 := time.Now()
		if err := e.st.Apply(context.Background(), buf, store.JournalPos{Segment: 1, Offset: int64(g.Emitted())}); err != nil {
			b.Fatal(err)
		}
		took += time.Since(t0)
	}
}

func BenchmarkSummary(b *testing.B) {
	n := benchEvents(b)
	for _, eng := range engines {
		b.Run(eng.name, func(b *testing.B) {
			e := eng.open(b)
			ctx := context.Background()
			g, took := load(b, e, n)
			total := g.Emitted()
			loadRate := float64(total) / took.Seconds()
			if err := e.settle(); err != nil {
				b.Fatal(err)
			}
			end := g.End()
			for _, days := range []int{30, 7, 90} {
				from := end.AddDate(0, 0, -days)
				b.Run(fmt.Sprintf("%dd", days), func(b *testing.B) {
					inRange, err := e.st.CountEvents(ctx, 1, from, end)
					if err != nil {
						b.Fatal(err)
					}
					var s store.Summary
					for b.Loop() {
						if s, err = e.st.Summary(ctx, 1, from, end); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(inRange), "events")
					b.ReportMetric(float64(inRange)/(float64(b.Elapsed().Nanoseconds())/float64(b.N))*1e3, "Mevents/s")
					b.Logf("%s %dd: %+v", eng.name, days, s)
				})
			}
			// "store": the loaded store. ns/op is only the cost of measuring
			// the size; the metrics are the point.
			b.Run("store", func(b *testing.B) {
				var bytes int64
				for b.Loop() {
					var err error
					if bytes, err = e.size(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(bytes)/float64(total), "B/event")
				b.ReportMetric(float64(bytes)/(1<<20), "MiB")
				b.ReportMetric(float64(total), "events")
				b.ReportMetric(loadRate, "load-events/s")
			})
		})
	}
}

// reference computes the Summary in Go, independently of the SQL: a
// visitor's non-engagement events form one visit while each follows the
// previous within the session timeout.
func reference(events []store.Event, site int64, from, to time.Time) store.Summary {
	byVisitor := map[uint64][]store.Event{}
	for _, e := range events {
		if e.SiteID == site && !e.Time.Before(from) && e.Time.Before(to) && e.Name != "engagement" {
			byVisitor[e.VisitorID] = append(byVisitor[e.VisitorID], e)
		}
	}
	var s store.Summary
	s.Visitors = int64(len(byVisitor))
	for _, evs := range byVisitor {
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
		var first, last time.Time
		var inter int
		flush := func() {
			s.Visits++
			s.DurationSum += last.Sub(first).Milliseconds()
			if inter <= 1 {
				s.Bounces++
			}
		}
		for i, e := range evs {
			if i > 0 && e.Time.Sub(last) > store.SessionTimeout {
				flush()
				inter = 0
			}
			if i == 0 || e.Time.Sub(last) > store.SessionTimeout {
				first = e.Time
			}
			last = e.Time
			if e.Name == "pageview" {
				s.Pageviews++
			} else {
				s.Events++
			}
			if e.Name == "pageview" || e.Interactive {
				inter++
			}
		}
		flush()
	}
	s.Finish()
	return s
}

func TestGeneratorIsDeterministicAndShaped(t *testing.T) {
	const n = 20000
	cfg := storebench.Config{Seed: seed, Events: n}
	a := storebench.NewGen(cfg).All()
	b := storebench.NewGen(cfg).All()
	if len(a) != len(b) {
		t.Fatalf("lengths %d and %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("event %d differs:\n%+v\n%+v", i, a[i], b[i])
		}
	}
	if c := storebench.NewGen(storebench.Config{Seed: seed + 1, Events: n}).All(); len(c) > 0 && c[0] == a[0] {
		t.Fatal("another seed gave the same first event")
	}
	if len(a) < n*95/100 || len(a) > n*105/100 {
		t.Fatalf("%d events, want about %d", len(a), n)
	}
	g := storebench.NewGen(cfg)
	days := map[string]bool{}
	dayOf := map[uint64]string{}
	ids := map[[16]byte]bool{}
	for i, e := range a {
		if i > 0 && e.Time.Before(a[i-1].Time) {
			t.Fatalf("event %d out of ts order", i)
		}
		if e.Time.Before(g.Start()) || !e.Time.Before(g.End()) {
			t.Fatalf("event %d at %v outside the period", i, e.Time)
		}
		d := e.Time.Format(time.DateOnly)
		days[d] = true
		if prev, ok := dayOf[e.VisitorID]; ok && prev != d {
			t.Fatalf("visitor id %x on %s and %s: ids must rotate daily", e.VisitorID, prev, d)
		}
		dayOf[e.VisitorID] = d
		if ids[e.ID] {
			t.Fatalf("duplicate event id %x", e.ID)
		}
		ids[e.ID] = true
	}
	if len(days) != 90 {
		t.Fatalf("events on %d days, want 90", len(days))
	}
	s := reference(a, 1, g.Start(), g.End())
	pv := float64(s.Pageviews) / float64(s.Visits)
	if pv < 2.6 || pv > 3.4 || s.BounceRate < 25 || s.BounceRate > 45 || s.Visits < s.Visitors {
		t.Fatalf("shape: %.2f pageviews per visit, summary %+v", pv, s)
	}
	t.Logf("%d events, %.2f pageviews/visit, %+v", len(a), pv, s)
}

func TestSummaryMatchesReference(t *testing.T) {
	all := storebench.NewGen(storebench.Config{Seed: seed, Events: 20000}).All()
	g := storebench.NewGen(storebench.Config{Seed: seed})
	end := g.End()
	ctx := context.Background()
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			e := eng.open(t)
			for i := 0; i < len(all); i += 5000 {
				if err := e.st.Apply(ctx, all[i:min(i+5000, len(all))], store.JournalPos{Segment: 1, Offset: int64(i)}); err != nil {
					t.Fatal(err)
				}
			}
			for _, days := range []int{30, 7} {
				from := end.AddDate(0, 0, -days)
				got, err := e.st.Summary(ctx, 1, from, end)
				if err != nil {
					t.Fatal(err)
				}
				if want := reference(all, 1, from, end); got != want {
					t.Errorf("%d days:\n got %+v\nwant %+v", days, got, want)
				}
			}
		})
	}
}
