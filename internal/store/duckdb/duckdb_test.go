package duckdb_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"fjord/internal/export"
	"fjord/internal/report"
	"fjord/internal/store"
	"fjord/internal/store/duckdb"
	"fjord/internal/store/sqlstore"
	"fjord/internal/store/storetest"
)

func open(t *testing.T, path string) *duckdb.Store {
	s, err := duckdb.Open(context.Background(), path, duckdb.Options{MemoryLimit: "256MB", Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEvents(t *testing.T) {
	storetest.Events(t, func(t *testing.T) store.EventStore {
		s := open(t, filepath.Join(t.TempDir(), "events.duckdb"))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSecondOpenNamesTheServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.duckdb")
	s := open(t, path)
	defer s.Close()
	// Within one process DuckDB shares the instance, so only check that
	// reopening after close works and keeps the data.
	if err := s.Apply(context.Background(), []store.Event{storetest.Ev(1, 1, time.Now(), "pageview", "/")}, store.JournalPos{Segment: 1, Offset: 1}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := open(t, path)
	defer s2.Close()
	p, err := s2.Position(context.Background(), "")
	if err != nil || p.Segment != 1 {
		t.Fatalf("position after reopen: %+v %v", p, err)
	}
	_ = strings.Contains
}

func TestReports(t *testing.T) {
	storetest.Reports(t, func(t *testing.T) store.EventStore {
		s := open(t, filepath.Join(t.TempDir(), "events.duckdb"))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestLiveRollupsFailure(t *testing.T) {
	storetest.LiveRollupsFailure(t, func(t *testing.T) (store.EventStore, *sqlstore.EventReads) {
		s := open(t, filepath.Join(t.TempDir(), "events.duckdb"))
		t.Cleanup(func() { s.Close() })
		return s, &s.EventReads
	})
}

// TestStreamMemory exports a million rows through Stream from a DuckDB
// file (a million pageviews in one day, each on its own page) and checks
// that Go's heap does not grow with them (PRODUCT §5.1: "memory does not
// grow with the size of the export"). Every 100,000 rows it collects
// garbage and reads the heap in use: what is left is what Stream holds.
// A Stream that reads the answer whole first (as Run does) holds every
// row and grows by hundreds of MiB; the bound is 64 MiB.
// byteCounter is a writer that keeps nothing but the count.
type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

func TestStreamMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a million events; not with -short")
	}
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "events.duckdb"))
	defer s.Close()
	const n, batch = 1_000_000, 100_000
	site := store.Site{ID: 1, Domain: "a.example", TimeZone: "UTC"}
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	// 1000 visitors, each one visit of 1000 pageviews 86 s apart
	evs := make([]store.Event, batch)
	for i := 0; i < n; i += batch {
		for j := range evs {
			k := i + j
			var id [16]byte
			binary.BigEndian.PutUint64(id[8:], uint64(k))
			evs[j] = store.Event{ID: id, SiteID: site.ID, Time: day.Add(time.Duration(k) * 86 * time.Millisecond), Name: "pageview",
				VisitorID: uint64(k%1000) + 1, Hostname: "a.example", Path: fmt.Sprintf("/p/%07d", k), Interactive: true, ScrollDepth: -1}
		}
		if err := s.Apply(ctx, evs, store.JournalPos{Segment: 1, Offset: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	evs = nil
	page, _ := report.LookupDim("event:page")
	q := &report.Query{Site: site, Metrics: []string{report.MVisitors, report.MPageviews, report.MVisits, report.MBounceRate},
		Dimensions: []report.Dim{page}, Range: report.Range{From: day, To: day.AddDate(0, 0, 1), TimeZone: site.TimeZone}}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	q.Limit = 0 // every row
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	before, peak := m.HeapInuse, m.HeapInuse
	var rows int
	var first, last report.Row
	// each row goes on through the export writer, as a download's does,
	// into a counter standing for the client's connection
	var out byteCounter
	x, err := export.NewWriter(&out, export.CSV, []string{"event:page"}, q.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Stream(ctx, q, func(r report.Row) error {
		if err := x.Write(r); err != nil {
			return err
		}
		if rows == 0 {
			first = r
		}
		last = r
		rows++
		if rows%100_000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
		return nil
	})
	if err == nil {
		err = x.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if x.Rows() != n || x.Bytes() != int64(out) || int(out) < n*len("/p/0000000,1,1,1,0\n") {
		t.Fatalf("the export wrote %d rows, %d bytes (%d counted)", x.Rows(), out, x.Bytes())
	}
	growth := int64(peak) - int64(before)
	t.Logf("%d rows; heap in use %.1f MiB before, %.1f MiB at most while streaming (growth %.1f MiB)",
		rows, float64(before)/(1<<20), float64(peak)/(1<<20), float64(growth)/(1<<20))
	if rows != n {
		t.Fatalf("streamed %d rows, want %d", rows, n)
	}
	// every page has one visitor, one pageview and one visit (of 1000
	// pageviews: no bounce), so the order is the pages'
	want := func(path string) report.Row {
		return report.Row{Dimensions: []string{path}, Metrics: []float64{1, 1, 1, 0}}
	}
	if !reflect.DeepEqual(first, want("/p/0000000")) || !reflect.DeepEqual(last, want(fmt.Sprintf("/p/%07d", n-1))) {
		t.Fatalf("first row %v, last %v", first, last)
	}
	if growth >= 64<<20 {
		t.Fatalf("the heap grew by %.1f MiB while %d rows streamed: Stream holds the answer", float64(growth)/(1<<20), rows)
	}
}

func TestHealth(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "events.duckdb"))
	defer s.Close()
	storetest.Health(t, s, s.DB, s.Schema)
}
