package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"fjord/internal/store/duckdb"
)

// TestDemo: serve --demo makes three sites with 90 days of traffic through
// the write path, and a restart reuses them instead of adding more.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "--demo")
	if !strings.Contains(s.stderr.String(), "http://"+s.Addr+"/") {
		t.Fatalf("serve --demo did not print where to look:\n%s", s.stderr.String())
	}
	first := map[string]headline{}
	for _, site := range []string{"demo-shop.example", "demo-blog.example", "demo-docs.example"} {
		h := stats(t, dir, site, "30d")
		if h.Visitors < 1000 || h.Pageviews <= h.Visits || h.Visits < h.Visitors || h.Events == 0 ||
			h.BounceRate < 20 || h.BounceRate > 70 || h.VisitDuration < 10 {
			t.Errorf("%s: implausible demo numbers %+v", site, h)
		}
		first[site] = h
	}
	s.Stop()
	s.Restart()
	if again := stats(t, dir, "demo-shop.example", "30d"); again != first["demo-shop.example"] {
		t.Fatalf("restart changed the demo data: %+v, was %+v", again, first["demo-shop.example"])
	}
	s.Stop()

	st, err := duckdb.Open(context.Background(), filepath.Join(dir, "events.duckdb"), duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var days, channels, countries, devices, paths, campaigns int
	err = st.DB.QueryRow(`SELECT COUNT(DISTINCT ts // 86400000), COUNT(DISTINCT channel), COUNT(DISTINCT country),
		COUNT(DISTINCT device), COUNT(DISTINCT path), COUNT(DISTINCT utm_campaign) FROM events WHERE site_id = 1`).
		Scan(&days, &channels, &countries, &devices, &paths, &campaigns)
	if err != nil {
		t.Fatal(err)
	}
	if days < 89 || channels < 5 || countries < 8 || devices < 3 || paths < 10 || campaigns < 2 {
		t.Fatalf("demo lacks variety: days=%d channels=%d countries=%d devices=%d paths=%d campaigns=%d",
			days, channels, countries, devices, paths, campaigns)
	}
}
