package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"fjord/internal/report"
	"fjord/internal/store"
	"fjord/internal/store/sqlstore"
)

// LiveRollupsFailure: a batch whose transaction fails after the live
// rollups took it in must not leave the store answering from rollups that
// lack what an earlier, committed batch added and memory held. open gives
// the store and its shared part (whose write protocol the engines follow).
func LiveRollupsFailure(t *testing.T, open func(t *testing.T) (store.EventStore, *sqlstore.EventReads)) {
	ctx := context.Background()
	s, er := open(t)
	er.KeepRollupsLive(func(int64) (string, bool) { return "UTC", true })
	site := store.Site{ID: 1, Domain: "a.example", TimeZone: "UTC"}
	day := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	rng, _ := report.ParsePeriod("day", "UTC", day.Add(12*time.Hour))
	visitors := func() float64 {
		t.Helper()
		q := &report.Query{Site: site, Range: rng, Metrics: []string{report.MVisitors}}
		if err := q.Validate(); err != nil {
			t.Fatal(err)
		}
		res, err := er.Run(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return res.Rows[0].Metrics[0]
	}
	apply := func(off int64, visitor uint64) {
		t.Helper()
		e := Ev(1, visitor, day.Add(time.Duration(visitor)*time.Hour), "pageview", "/")
		if err := s.Apply(ctx, []store.Event{e}, store.JournalPos{Segment: 1, Offset: off}); err != nil {
			t.Fatal(err)
		}
	}
	apply(1, 1)
	if v := visitors(); v != 1 { // written to the store by this question
		t.Fatalf("visitors %v, want 1", v)
	}
	apply(2, 2) // held in memory until the next question
	// a third batch: its rollups are taken in, then its transaction fails
	er.LockWrites()
	failed := Ev(1, 3, day.Add(3*time.Hour), "pageview", "/")
	err := er.InTx(ctx, func(tx sqlstore.Tx) error {
		if err := er.ApplyRollups(ctx, tx, []store.Event{failed}); err != nil {
			return err
		}
		return errors.New("the batch fails after its rollups")
	})
	er.UnlockWrites(err != nil)
	if err == nil {
		t.Fatal("the failing batch committed")
	}
	if v := visitors(); v != 2 {
		t.Fatalf("after a failed batch: visitors %v, want 2 (the stored events)", v)
	}
	apply(3, 4) // the live state starts again from the stored events
	if v := visitors(); v != 3 {
		t.Fatalf("visitors %v, want 3", v)
	}
	if n, err := er.RefreshRollups(ctx, site, day.Add(12*time.Hour)); err != nil || n != 0 {
		t.Fatalf("the job built %d days (%v): the live state should hold the day", n, err)
	}
}
