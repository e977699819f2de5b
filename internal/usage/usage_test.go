package usage_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"fjord/internal/store/sqlite"
	"fjord/internal/usage"
)

// TestTallyAndRead: counts buffered across UTC days are written by Flush,
// kept when the write fails, and summed by site, account and day.
func TestTallyAndRead(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// 23:30 in Berlin on 30 November is 22:30 UTC, the same UTC day;
	// 00:30 in Berlin on 1 December is still 30 November in UTC
	berlin, _ := time.LoadLocation("Europe/Berlin")
	nov30 := time.Date(2026, 11, 30, 23, 30, 0, 0, berlin)
	dec1 := time.Date(2026, 12, 1, 0, 30, 0, 0, berlin)
	dec1late := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var tally usage.Tally
	tally.Add(1, 10, usage.Events, nov30, 3)
	tally.Add(1, 10, usage.Events, dec1, 2)
	tally.Add(1, 10, usage.Events, dec1late, 4)
	tally.Add(1, 0, usage.APICalls, dec1late, 1)
	tally.Add(1, 11, usage.Exports, dec1late, 1)
	tally.Add(2, 20, usage.Events, dec1late, 50)
	tally.Add(2, 20, usage.Events, dec1late, 0) // nothing

	// a failed write keeps what it could not store
	closed, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "closed.db"))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if err := tally.Flush(ctx, closed); err == nil {
		t.Fatal("a flush to a closed store succeeded")
	}
	tally.Add(1, 10, usage.Events, dec1late, 1)
	if err := tally.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := tally.Flush(ctx, st); err != nil { // nothing left to write
		t.Fatal(err)
	}

	from := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	r, err := usage.Read(ctx, st, 1, from, dec1late)
	if err != nil {
		t.Fatal(err)
	}
	want := []usage.Row{
		{Account: 1, Site: 0, Totals: usage.Totals{APICalls: 1}},
		{Account: 1, Site: 10, Totals: usage.Totals{Events: 10}},
		{Account: 1, Site: 11, Totals: usage.Totals{Exports: 1}},
	}
	if len(r.Rows) != len(want) {
		t.Fatalf("rows %+v, want %+v", r.Rows, want)
	}
	for i := range want {
		if r.Rows[i] != want[i] {
			t.Fatalf("row %d: %+v, want %+v", i, r.Rows[i], want[i])
		}
	}
	if got := r.Accounts[1]; got != (usage.Totals{Events: 10, APICalls: 1, Exports: 1}) {
		t.Fatalf("account 1: %+v", got)
	}
	if _, ok := r.Accounts[2]; ok {
		t.Fatal("a read of account 1 holds account 2")
	}
	wantDays := []usage.DayTotals{{Day: "2026-11-29"}, {Day: "2026-11-30", Totals: usage.Totals{Events: 5}},
		{Day: "2026-12-01", Totals: usage.Totals{Events: 5, APICalls: 1, Exports: 1}}}
	if len(r.Days) != len(wantDays) {
		t.Fatalf("days %+v, want %+v", r.Days, wantDays)
	}
	for i := range wantDays {
		if r.Days[i] != wantDays[i] {
			t.Fatalf("day %d: %+v, want %+v", i, r.Days[i], wantDays[i])
		}
	}
	all, err := usage.Read(ctx, st, 0, dec1late, dec1late)
	if err != nil {
		t.Fatal(err)
	}
	if all.Accounts[2].Events != 50 || all.Accounts[1].Events != 5 {
		t.Fatalf("every account on 1 December: %+v", all.Accounts)
	}
}
