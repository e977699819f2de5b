package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"fjord/internal/store"
	"fjord/internal/store/postgres"
	"fjord/internal/store/storetest"
)

// TestTwoServersCountAnIDOnce: two servers loading into one database are
// each given the same event (two collectors, two receipt times) at the
// same moment; it is stored once. The database's default isolation is set
// to repeatable read, under which the look-up's snapshot would predate the
// other server's commit: Apply must not depend on the server's default.
func TestTwoServersCountAnIDOnce(t *testing.T) {
	ctx := context.Background()
	url := storetest.PostgresURL(t) + "&default_transaction_isolation=repeatable%20read"
	var servers [2]*postgres.Events
	for i := range servers {
		s, err := postgres.OpenEvents(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		servers[i] = s
	}
	const rounds = 40
	now := time.Now().UTC().Truncate(time.Millisecond)
	for r := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := store.Event{SiteID: 1, Time: now.Add(time.Duration(r*10+i) * time.Millisecond), Name: "pageview", Path: "/", VisitorID: 1}
				e.ID[0], e.ID[1] = 0xd0, byte(r)
				errs[i] = s.Apply(ctx, []store.Event{e}, store.JournalPos{Journal: []string{"a", "b"}[i], Segment: 1, Offset: int64(r + 1)})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	var n int
	if err := servers[0].DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != rounds {
		t.Fatalf("%d events stored of %d given twice each", n, rounds)
	}
}
