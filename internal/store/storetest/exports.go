package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fjord/internal/export"
	"fjord/internal/store"
)

// exports: the account store keeps the export record (newest first, per
// account), sums a person's usage by day and hour, keeps an account's
// thresholds (the defaults until set) and lets exactly one claim of a
// crossing through, on both engines.
func exports(t *testing.T, open func(t *testing.T) store.AccountStore) {
	ctx := context.Background()
	as := open(t)
	s, ok := as.(export.Store)
	if !ok {
		t.Fatal("the account store keeps no export record")
	}
	acme, admin, err := as.CreateAccount(ctx, store.Account{Name: "Acme"}, store.User{Email: "boss@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	other, otherAdmin, err := as.CreateAccount(ctx, store.Account{Name: "Other"}, store.User{Email: "boss@other.example"})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }

	// thresholds: the defaults until set, then the account's own
	if th, err := s.ExportThresholds(ctx, acme.ID); err != nil || th != export.Defaults {
		t.Fatalf("thresholds before any were set: %+v %v, want the defaults", th, err)
	}
	mine := export.Thresholds{RowsPerDay: 10, BytesPerDay: 2000, ExportsPerHour: 3}
	for _, th := range []export.Thresholds{{RowsPerDay: 1, BytesPerDay: 1, ExportsPerHour: 1}, mine} {
		if err := s.SetExportThresholds(ctx, acme.ID, th); err != nil {
			t.Fatal(err)
		}
	}
	if th, err := s.ExportThresholds(ctx, acme.ID); err != nil || th != mine {
		t.Fatalf("thresholds: %+v %v, want %+v", th, err, mine)
	}
	if th, _ := s.ExportThresholds(ctx, other.ID); th != export.Defaults {
		t.Fatalf("another account's thresholds: %+v, want the defaults", th)
	}

	// the record: every field back, newest first, one account's only
	recs := []export.Record{
		{Time: at(9, 0), Account: acme.ID, User: admin.ID, Site: 4, Panel: "pages", Period: "30d", Format: export.CSV, Via: export.ViaDashboard, Rows: 4, Bytes: 300, Complete: true},
		{Time: at(10, 5), Account: acme.ID, User: admin.ID, APIKey: 9, Site: 4, Report: 7, Panel: "v2 query", Period: "7d", Format: export.JSON, Via: export.ViaAPI, Rows: 3, Bytes: 900, Complete: true},
		{Time: at(10, 30), Account: acme.ID, Staff: 2, Site: 4, Report: 7, Period: "7d", Format: export.CSV, Via: export.ViaReport, Rows: 50, Bytes: 5000, Complete: false},
		{Time: at(10, 40), Account: acme.ID, User: admin.ID, Site: 4, Panel: "sources", Period: "today", Format: export.CSV, Via: export.ViaDashboard, Rows: 2, Bytes: 100, Complete: true},
		{Time: at(10, 41), Account: other.ID, User: otherAdmin.ID, Site: 5, Panel: "pages", Format: export.JSON, Via: export.ViaDashboard, Rows: 1000, Bytes: 1000, Complete: true},
	}
	for i := range recs {
		if recs[i], err = s.AddExport(ctx, recs[i]); err != nil || recs[i].ID == 0 {
			t.Fatalf("add export %d: %+v %v", i, recs[i], err)
		}
	}
	got, err := s.Exports(ctx, acme.ID, 100)
	if err != nil || len(got) != 4 {
		t.Fatalf("Acme's exports: %d %v, want 4", len(got), err)
	}
	for i, want := range []export.Record{recs[3], recs[2], recs[1], recs[0]} {
		if got[i] != want {
			t.Errorf("export %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
	if got, _ := s.Exports(ctx, acme.ID, 2); len(got) != 2 || got[0].ID != recs[3].ID {
		t.Fatalf("limited to 2: %+v", got)
	}
	if got, _ := s.Exports(ctx, other.ID, 100); len(got) != 1 || got[0].ID != recs[4].ID {
		t.Fatalf("Other's exports: %+v", got)
	}
	if _, err := s.AddExport(ctx, export.Record{Time: at(11, 0), Account: acme.ID, User: admin.ID, Format: "xls", Via: export.ViaAPI}); err == nil {
		t.Fatal("an export of format xls was stored")
	}

	// usage: one person's rows and bytes since the day began, exports
	// since the hour began; an API key's exports are its user's, staff's
	// are their own
	if u, err := s.ExportUsage(ctx, acme.ID, admin.ID, 0, day, at(10, 0)); err != nil || u != (export.Usage{Rows: 9, Bytes: 1300, Exports: 2}) {
		t.Fatalf("the Administrator's usage: %+v %v", u, err)
	}
	if u, _ := s.ExportUsage(ctx, acme.ID, admin.ID, 0, at(10, 0), at(10, 40)); u != (export.Usage{Rows: 5, Bytes: 1000, Exports: 1}) {
		t.Fatalf("usage since 10:00 and 10:40: %+v", u)
	}
	if u, _ := s.ExportUsage(ctx, acme.ID, 0, 2, day, at(10, 0)); u != (export.Usage{Rows: 50, Bytes: 5000, Exports: 1}) {
		t.Fatalf("the staff member's usage: %+v", u)
	}
	if u, _ := s.ExportUsage(ctx, acme.ID, admin.ID, 0, day.AddDate(0, 0, 1), day.AddDate(0, 0, 1)); u != (export.Usage{}) {
		t.Fatalf("usage of the next day: %+v", u)
	}

	// crossings: one claim per account, actor, threshold and window
	c := export.Crossing{Account: acme.ID, Actor: "user:1", Threshold: export.RowsPerDay, Window: day, Limit: 10, Total: 11, Export: recs[0].ID, Time: at(9, 0)}
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.ClaimCrossing(ctx, c)
			if err != nil {
				t.Error(err)
			}
			if ok {
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d of 4 claims of one crossing went through, want 1", won.Load())
	}
	for _, x := range []export.Crossing{
		{Account: acme.ID, Actor: "user:1", Threshold: export.BytesPerDay, Window: day, Limit: 1, Total: 2, Export: recs[0].ID, Time: at(9, 0)},
		{Account: acme.ID, Actor: "user:1", Threshold: export.RowsPerDay, Window: day.AddDate(0, 0, 1), Limit: 10, Total: 12, Export: recs[1].ID, Time: at(10, 5)},
		{Account: acme.ID, Actor: "staff:2", Threshold: export.RowsPerDay, Window: day, Limit: 10, Total: 50, Export: recs[2].ID, Time: at(10, 30)},
		{Account: other.ID, Actor: "user:1", Threshold: export.RowsPerDay, Window: day, Limit: 10, Total: 11, Export: recs[4].ID, Time: at(10, 41)},
	} {
		if ok, err := s.ClaimCrossing(ctx, x); !ok || err != nil {
			t.Fatalf("claim of %+v: %v %v, want it stored", x, ok, err)
		}
	}
	cs, err := s.Crossings(ctx, acme.ID, 100)
	if err != nil || len(cs) != 4 || cs[0].Actor != "staff:2" || cs[0].Total != 50 || !cs[0].Window.Equal(day) || !cs[0].Time.Equal(at(10, 30)) {
		t.Fatalf("Acme's crossings: %+v %v", cs, err)
	}
	if cs, _ := s.Crossings(ctx, other.ID, 100); len(cs) != 1 || cs[0].Export != recs[4].ID {
		t.Fatalf("Other's crossings: %+v", cs)
	}

	// purge: records and crossings before a time go
	if n, err := s.PurgeExports(ctx, at(10, 30)); err != nil || n != 2 {
		t.Fatalf("purge: %d %v, want 2", n, err)
	}
	if got, _ := s.Exports(ctx, acme.ID, 100); len(got) != 2 || got[1].ID != recs[2].ID {
		t.Fatalf("after the purge: %+v", got)
	}
	if cs, _ := s.Crossings(ctx, acme.ID, 100); len(cs) != 1 || cs[0].Actor != "staff:2" {
		t.Fatalf("crossings after the purge: %+v", cs)
	}
}
