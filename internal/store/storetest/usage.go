package storetest

import (
	"context"
	"reflect"
	"testing"

	"fjord/internal/store"
	"fjord/internal/usage"
)

// usageCounts: counts add up per account, site, day and kind; a read
// keeps to its days and its account.
func usageCounts(t *testing.T, open func(t *testing.T) store.AccountStore) {
	ctx := context.Background()
	as := open(t)
	s, ok := as.(usage.Store)
	if !ok {
		t.Fatal("the account store keeps no usage")
	}
	if got, err := s.Usage(ctx, 0, "2026-01-01", "2026-12-31"); err != nil || len(got) != 0 {
		t.Fatalf("usage of an empty store: %v %v", got, err)
	}
	add := []usage.Count{
		{Account: 1, Site: 10, Day: "2026-11-30", Kind: usage.Events, N: 5},
		{Account: 1, Site: 10, Day: "2026-12-01", Kind: usage.Events, N: 7},
		{Account: 1, Site: 0, Day: "2026-12-01", Kind: usage.APICalls, N: 2},
		{Account: 1, Site: 11, Day: "2026-12-01", Kind: usage.Exports, N: 1},
		{Account: 2, Site: 20, Day: "2026-12-01", Kind: usage.Events, N: 100},
	}
	if err := s.AddUsage(ctx, add); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUsage(ctx, []usage.Count{{Account: 1, Site: 10, Day: "2026-12-01", Kind: usage.Events, N: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUsage(ctx, nil); err != nil {
		t.Fatalf("adding nothing: %v", err)
	}
	got, err := s.Usage(ctx, 1, "2026-12-01", "2026-12-01")
	if err != nil {
		t.Fatal(err)
	}
	want := []usage.Count{
		{Account: 1, Site: 0, Day: "2026-12-01", Kind: usage.APICalls, N: 2},
		{Account: 1, Site: 10, Day: "2026-12-01", Kind: usage.Events, N: 10},
		{Account: 1, Site: 11, Day: "2026-12-01", Kind: usage.Exports, N: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("account 1 on 2026-12-01:\n got %+v\nwant %+v", got, want)
	}
	all, err := s.Usage(ctx, 0, "2026-11-01", "2026-12-31")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 || all[4].Account != 2 || all[4].N != 100 {
		t.Fatalf("every account: %+v", all)
	}
	// an unknown kind is refused, and nothing of its batch is stored
	err = s.AddUsage(ctx, []usage.Count{{Account: 3, Site: 30, Day: "2026-12-01", Kind: usage.Events, N: 1}, {Account: 3, Day: "2026-12-01", Kind: "bogus", N: 1}})
	if err == nil {
		t.Fatal("an unknown kind was stored")
	}
	if got, _ := s.Usage(ctx, 3, "2026-01-01", "2026-12-31"); len(got) != 0 {
		t.Fatalf("a failed batch left %+v", got)
	}
}
