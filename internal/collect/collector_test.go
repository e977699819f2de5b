package collect

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"fjord/internal/store"
	"fjord/internal/store/duckdb"
	"fjord/internal/store/sqlite"
)

func TestSaltRotatesAtLocalMidnight(t *testing.T) {
	ctx := context.Background()
	ev, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "e.duckdb"), duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	k := &SaltKeeper{Store: ev}
	hel := store.Site{ID: 1, TimeZone: "Europe/Helsinki"}
	utc := store.Site{ID: 2, TimeZone: "UTC"}
	// 21:59 and 22:01 UTC straddle Helsinki's midnight (UTC+2 in winter)
	before := time.Date(2026, 11, 27, 21, 59, 0, 0, time.UTC)
	after := before.Add(2 * time.Minute)
	ip := netip.MustParseAddr("198.51.100.4")
	id := func(s store.Site, at time.Time) uint64 {
		salt, err := k.Salt(ctx, s, at)
		if err != nil {
			t.Fatal(err)
		}
		return VisitorID(salt, s.ID, ip, "ua")
	}
	if id(hel, before) == id(hel, after) {
		t.Fatal("visitor id survived Helsinki midnight")
	}
	if id(utc, before) != id(utc, after) {
		t.Fatal("visitor id changed within a UTC day")
	}
	if id(hel, before) != id(hel, before.Add(-time.Hour)) {
		t.Fatal("visitor id changed within a local day")
	}
	// a restart (new keeper) keeps today's salt: same visitor
	k2 := &SaltKeeper{Store: ev}
	s1, _ := k.Salt(ctx, hel, after)
	s2, _ := k2.Salt(ctx, hel, after)
	if string(s1) != string(s2) {
		t.Fatal("salt not kept across restart")
	}
	// destroyed after 48 hours: a new keeper gets a new salt for that day
	if _, err := k.Drop(ctx, time.Now().Add(49*time.Hour)); err != nil {
		t.Fatal(err)
	}
	k3 := &SaltKeeper{Store: ev}
	s4, _ := k3.Salt(ctx, hel, after)
	if string(s4) == string(s1) {
		t.Fatal("salt survived Drop")
	}
}

func TestSiteCacheSeesNewSites(t *testing.T) {
	ctx := context.Background()
	acc, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	c := &SiteCache{Store: acc}
	if _, err := c.Lookup(ctx, "a.test"); err == nil {
		t.Fatal("found a site that does not exist")
	}
	acc.AddSite(ctx, store.Site{Domain: "a.test", TimeZone: "UTC"})
	c.loaded = time.Time{} // as if a second passed
	if s, err := c.Lookup(ctx, "www.a.test"); err != nil || s.Domain != "a.test" {
		t.Fatalf("www. lookup: %+v %v", s, err)
	}
}
