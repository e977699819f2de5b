package collect

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
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

// TestVisitorIDIsHMAC: the spelled-out HMAC equals crypto/hmac's, for
// salts shorter and longer than a block and user agents of any length, and
// costs no allocation for an ordinary user agent.
func TestVisitorIDIsHMAC(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	for i := 0; i < 300; i++ {
		salt := make([]byte, []int{16, 32, 64, 65, 100}[i%5])
		for j := range salt {
			salt[j] = byte(r.IntN(256))
		}
		ua := strings.Repeat("Mozilla/5.0 ", r.IntN(60))
		ip := netip.AddrFrom4([4]byte{10, byte(i), 0, 1})
		if i%2 == 1 {
			ip = netip.MustParseAddr("2001:db8::1")
		}
		m := hmac.New(sha256.New, salt)
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		m.Write(b[:])
		a := ip.As16()
		m.Write(a[:])
		m.Write([]byte(ua))
		if want := binary.BigEndian.Uint64(m.Sum(nil)); VisitorID(salt, int64(i), ip, ua) != want {
			t.Fatalf("salt %d bytes, ua %d bytes: differs from crypto/hmac", len(salt), len(ua))
		}
	}
	salt := make([]byte, 32)
	ua := "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	if n := testing.AllocsPerRun(100, func() { VisitorID(salt, 1, netip.MustParseAddr("10.0.0.1"), ua) }); n != 0 {
		t.Errorf("%v allocations per visitor id, want 0", n)
	}
}

// TestSiteCacheConcurrentMisses: a site added by another process is found
// by every one of many requests that miss the cache at once: those that
// come while one of them reloads wait for it instead of answering "no such
// site".
func TestSiteCacheConcurrentMisses(t *testing.T) {
	ctx := context.Background()
	acc, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	c := &SiteCache{Store: slowSites{acc}}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.AddSite(ctx, store.Site{Domain: "new.example", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the once-a-second bound
	errs := make(chan error, 32)
	for range 32 {
		go func() {
			_, err := c.Lookup(ctx, "new.example")
			errs <- err
		}()
	}
	for range 32 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Lookup(ctx, "unknown.example"); err == nil {
		t.Fatal("an unknown domain was found")
	}
}

// slowSites is an account store whose list of sites takes a while, so that
// other misses arrive while a reload runs.
type slowSites struct{ store.AccountStore }

func (s slowSites) Sites(ctx context.Context) ([]store.Site, error) {
	time.Sleep(100 * time.Millisecond)
	return s.AccountStore.Sites(ctx)
}
