package storebench_test

import (
	"context"
	"os"
	"testing"
	"time"

	"fjord/internal/store"
	"fjord/internal/store/duckdb"
	"fjord/internal/store/storebench"
)

func TestExpLoad(t *testing.T) {
	path := os.Getenv("EXP_DB")
	if path == "" {
		t.Skip()
	}
	st, err := duckdb.Open(context.Background(), path, duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.KeepRollupsLive(utc)
	g := storebench.NewGen(storebench.Config{Seed: seed, Events: benchEvents(t)})
	buf := make([]store.Event, 0, loadBatch)
	t0 := time.Now()
	for {
		buf = g.Next(buf[:0], loadBatch)
		if len(buf) == 0 {
			break
		}
		if err := st.Apply(context.Background(), buf, store.JournalPos{Segment: 1, Offset: int64(g.Emitted())}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("loaded %d in %v", g.Emitted(), time.Since(t0))
	st.Checkpoint(context.Background())
}
