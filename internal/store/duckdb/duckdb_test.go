package duckdb_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
