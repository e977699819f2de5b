package storetest

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"fjord/internal/feed"
	"fjord/internal/store"
)

// feeds: the account store keeps datafeeds found by their token's hash
// alone, their settings, disabling and enabling, their requests (counted
// for the limits) and which feeds went idle, on both engines.
func feeds(t *testing.T, open func(t *testing.T) store.AccountStore) {
	ctx := context.Background()
	as := open(t)
	s, ok := as.(feed.Store)
	if !ok {
		t.Fatal("the account store keeps no datafeeds")
	}
	acc, boss, err := as.CreateAccount(ctx, store.Account{Name: "Acme"}, store.User{Email: "boss@acme.example", Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	site, err := as.AddSite(ctx, store.Site{Domain: "feeds.example", TimeZone: "UTC", AccountID: acc.ID})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := as.SaveReport(ctx, store.SavedReport{SiteID: site.ID, Name: "pages", Definition: `{"metrics":["visitors"]}`})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	_, hash := feed.NewToken()
	f, err := s.CreateFeed(ctx, feed.Feed{AccountID: acc.ID, ReportID: rep.ID, OwnerID: boss.ID, Name: "Pages", TokenHash: hash,
		Ranges: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}, Limits: feed.DefaultLimits, Created: t0})
	if err != nil || f.ID == 0 {
		t.Fatalf("create: %+v %v", f, err)
	}
	got, err := s.FeedByHash(ctx, hash)
	if err != nil || got.ID != f.ID || len(got.Ranges) != 2 || got.Limits != feed.DefaultLimits || !got.Since.Equal(t0) || !got.LastUsed.IsZero() || !got.Disabled.IsZero() {
		t.Fatalf("by hash: %+v %v", got, err)
	}
	if _, err := s.FeedByHash(ctx, feed.HashToken("wrong")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("wrong hash: %v", err)
	}
	// rotation: the old hash finds nothing at once
	_, hash2 := feed.NewToken()
	if err := s.SetFeedToken(ctx, f.ID, hash2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FeedByHash(ctx, hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old hash after rotation: %v", err)
	}
	if err := s.SetFeedToken(ctx, 9999, hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rotating a feed that does not exist: %v", err)
	}
	l := feed.Limits{MaxDays: 31, PerHour: 3, Addresses: 2}
	if err := s.SetFeedSettings(ctx, f.ID, "Pages, daily", nil, l); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Feed(ctx, f.ID); got.Name != "Pages, daily" || len(got.Ranges) != 0 || got.Limits != l {
		t.Fatalf("after settings: %+v", got)
	}
	// requests: counted per hour, addresses per day; 403s count for neither
	for i, u := range []feed.Use{
		{Time: t0.Add(-2 * time.Hour), Client: "192.0.2.1", Status: 200, Rows: 5, Bytes: 100},
		{Time: t0.Add(-30 * time.Minute), Client: "192.0.2.2", Status: 200, Rows: 5, Bytes: 100},
		{Time: t0.Add(-20 * time.Minute), Client: "192.0.2.3", Status: 429},
		{Time: t0.Add(-10 * time.Minute), Client: "198.51.100.1", Status: 403},
		{Time: t0.Add(-25 * time.Hour), Client: "192.0.2.9", Status: 200},
	} {
		u.FeedID = f.ID
		if _, err := s.StartFeedUse(ctx, u); err != nil {
			t.Fatalf("use %d: %v", i, err)
		}
	}
	// a request under way counts as answered for the limits; ended, it
	// is the last use; a refusal for being disabled counts for nothing
	id, err := s.StartFeedUse(ctx, feed.Use{FeedID: f.ID, Time: t0.Add(-5 * time.Minute), Client: "192.0.2.4"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartFeedUse(ctx, feed.Use{FeedID: f.ID, Time: t0.Add(-4 * time.Minute), Client: "192.0.2.5", Status: 410}); err != nil {
		t.Fatal(err)
	}
	tr, err := s.FeedTraffic(ctx, f.ID, "192.0.2.4", t0.Add(-time.Hour), t0.Add(-24*time.Hour))
	if err != nil || tr != (feed.Traffic{Hour: 3, Throttled: 1, Served: 3, Known: true, Asking: 4}) {
		t.Fatalf("traffic with a request under way: %+v %v", tr, err)
	}
	if err := s.FinishFeedUse(ctx, feed.Use{ID: id, FeedID: f.ID, Time: t0.Add(-5 * time.Minute), Status: 500}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Feed(ctx, f.ID); !got.LastUsed.Equal(t0.Add(-30 * time.Minute)) {
		t.Fatalf("a failed answer became the last use: %v", got.LastUsed)
	}
	if err := s.FinishFeedUse(ctx, feed.Use{ID: id, FeedID: f.ID, Time: t0.Add(-5 * time.Minute), Status: 200, Rows: 1, Bytes: 10}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Feed(ctx, f.ID); !got.LastUsed.Equal(t0.Add(-5 * time.Minute)) {
		t.Fatalf("last used %v after an answer", got.LastUsed)
	}
	tr, err = s.FeedTraffic(ctx, f.ID, "192.0.2.1", t0.Add(-time.Hour), t0.Add(-24*time.Hour))
	if err != nil || tr != (feed.Traffic{Hour: 3, Throttled: 1, Served: 3, Known: true, Asking: 4}) {
		t.Fatalf("traffic for a known address: %+v %v", tr, err)
	}
	tr, _ = s.FeedTraffic(ctx, f.ID, "192.0.2.7", t0.Add(-time.Hour), t0.Add(-24*time.Hour))
	if tr.Known || tr.Asking != 5 {
		t.Fatalf("traffic for a new address: %+v", tr)
	}
	uses, err := s.FeedUses(ctx, f.ID, 3)
	if err != nil || len(uses) != 3 || uses[0].Status != 410 || uses[1].Status != 200 || uses[1].Bytes != 10 || uses[2].Client != "198.51.100.1" {
		t.Fatalf("uses: %+v %v", uses, err)
	}
	// idle: neither used nor enabled since the cutoff
	if idle, err := s.IdleFeeds(ctx, t0.Add(-10*time.Minute)); err != nil || len(idle) != 0 {
		t.Fatalf("idle before its last use: %+v %v", idle, err)
	}
	if idle, _ := s.IdleFeeds(ctx, t0); len(idle) != 1 || idle[0].ID != f.ID {
		t.Fatalf("idle after its last use: %+v", idle)
	}
	if ok, err := s.DisableFeed(ctx, f.ID, feed.WhyIdle, t0); !ok || err != nil {
		t.Fatalf("disable: %v %v", ok, err)
	}
	if ok, _ := s.DisableFeed(ctx, f.ID, feed.WhyRate, t0.Add(time.Minute)); ok {
		t.Fatal("a disabled feed was disabled again")
	}
	if got, _ := s.Feed(ctx, f.ID); !got.Disabled.Equal(t0) || got.DisabledWhy != feed.WhyIdle {
		t.Fatalf("disabled: %+v", got)
	}
	if idle, _ := s.IdleFeeds(ctx, t0.Add(time.Hour)); len(idle) != 0 {
		t.Fatalf("a disabled feed is idle again: %+v", idle)
	}
	admin2, err := as.AddUser(ctx, store.User{AccountID: acc.ID, Email: "second@acme.example", Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnableFeed(ctx, f.ID, admin2.ID, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Feed(ctx, f.ID); !got.Disabled.IsZero() || got.OwnerID != admin2.ID || !got.Since.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("enabled: %+v", got)
	}
	if list, err := s.Feeds(ctx, acc.ID); err != nil || len(list) != 1 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if n, err := s.PurgeFeedUses(ctx, t0.Add(-time.Hour)); err != nil || n != 2 {
		t.Fatalf("purge: %d %v", n, err)
	}
	// the account's setting, off until set
	if allow, err := s.UsersPublishFeeds(ctx, acc.ID); allow || err != nil {
		t.Fatalf("users publish by default: %v %v", allow, err)
	}
	for _, want := range []bool{true, false, true} {
		if err := s.SetUsersPublishFeeds(ctx, acc.ID, want); err != nil {
			t.Fatal(err)
		}
		if allow, _ := s.UsersPublishFeeds(ctx, acc.ID); allow != want {
			t.Fatalf("users publish: %v, want %v", allow, want)
		}
	}
	// a feed dies with its report
	if err := as.DeleteSavedReport(ctx, site.ID, rep.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Feed(ctx, f.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the feed of a deleted report: %v", err)
	}
}
