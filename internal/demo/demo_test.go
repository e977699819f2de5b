package demo_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"fjord/internal/collect"
	"fjord/internal/demo"
	"fjord/internal/enrich"
	"fjord/internal/ingest/journal"
	"fjord/internal/store/sqlite"
	"fjord/internal/usage"
)

// TestEnsure: the demo makes its account and sites once, and its usage
// counts exactly the events it wrote, on the UTC days they happened.
func TestEnsure(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	acc, err := sqlite.Open(ctx, filepath.Join(dir, "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	j, err := journal.Open(journal.Options{Dir: filepath.Join(dir, "journal")})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	deps := demo.Deps{Accounts: acc, Journal: j, Usage: acc,
		Collector: &collect.Collector{Sites: &collect.SiteCache{Store: acc}, UA: enrich.NewUAParser(100)}}
	now := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	res, err := demo.Ensure(ctx, deps, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sites) != 3 || res.Events < 10000 {
		t.Fatalf("the demo made %d sites and %d events", len(res.Sites), res.Events)
	}
	rep, err := usage.Read(ctx, acc, res.Sites[0].AccountID, now.AddDate(0, 0, -95), now)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Accounts[res.Sites[0].AccountID].Events; got != int64(res.Events) {
		t.Fatalf("usage counts %d events, the demo wrote %d", got, res.Events)
	}
	if len(rep.Rows) != 3 {
		t.Fatalf("usage rows %+v, want one per site", rep.Rows)
	}
	if last := rep.Days[len(rep.Days)-1]; last.Day != "2026-12-01" || last.Events == 0 {
		t.Fatalf("today's usage: %+v", last)
	}
	again, err := demo.Ensure(ctx, deps, now)
	if err != nil || again.Events != 0 || len(again.Sites) != 0 {
		t.Fatalf("a second run: %+v %v, want nothing done", again, err)
	}
}
