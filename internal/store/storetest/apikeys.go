package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"fjord/internal/store"
)

// removeUser makes a user a leaver.
func removeUser(t *testing.T, s store.AccountStore, id int64, at time.Time) {
	t.Helper()
	if err := s.RemoveUser(context.Background(), id, at); err != nil {
		t.Fatal(err)
	}
}

// RemoveUser is removeUser for the tests of other packages.
func RemoveUser(t *testing.T, s store.AccountStore, id int64, at time.Time) { removeUser(t, s, id, at) }

func apiKeys(t *testing.T, open func(t *testing.T) store.AccountStore) {
	ctx := context.Background()
	s := open(t)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	acc, admin, err := s.CreateAccount(ctx, store.Account{Name: "Acme"}, store.User{Email: "boss@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.CreateAccount(ctx, store.Account{Name: "Other"}, store.User{Email: "boss@other.example"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.AddUser(ctx, store.User{AccountID: acc.ID, Email: "ann@acme.example", Role: store.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.AddSite(ctx, store.Site{Domain: "a.example", TimeZone: "UTC", AccountID: acc.ID})
	b, _ := s.AddSite(ctx, store.Site{Domain: "b.example", TimeZone: "UTC", AccountID: acc.ID})
	foreign, _ := s.AddSite(ctx, store.Site{Domain: "x.example", TimeZone: "UTC", AccountID: other.ID})

	k := store.APIKey{UserID: admin.ID, Name: "CI", TokenHash: "h1", Prefix: "fjk_abc", Sites: []int64{b.ID, a.ID, b.ID},
		Created: now, Expires: now.Add(90 * 24 * time.Hour)}
	k, err = s.CreateAPIKey(ctx, k)
	if err != nil || k.ID == 0 {
		t.Fatalf("create: %+v %v", k, err)
	}
	got, err := s.APIKeyByHash(ctx, "h1")
	if err != nil || got.ID != k.ID || got.UserID != admin.ID || got.Name != "CI" || got.Prefix != "fjk_abc" ||
		!slices.Equal(got.Sites, []int64{a.ID, b.ID}) || !got.Created.Equal(now) || !got.Expires.Equal(k.Expires) ||
		!got.LastUsed.IsZero() || !got.Revoked.IsZero() {
		t.Fatalf("by hash: %+v (%v), want %+v", got, err, k)
	}
	if _, err := s.APIKeyByHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	// the same hash twice, a site of another account, no site, an unknown
	// user: refused, and nothing stored
	if _, err := s.CreateAPIKey(ctx, store.APIKey{UserID: admin.ID, Name: "dup", TokenHash: "h1", Prefix: "p", Sites: []int64{a.ID}, Created: now, Expires: now}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate hash: %v", err)
	}
	if _, err := s.CreateAPIKey(ctx, store.APIKey{UserID: admin.ID, Name: "foreign", TokenHash: "h2", Prefix: "p", Sites: []int64{a.ID, foreign.ID}, Created: now, Expires: now}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another account's site: %v", err)
	}
	if _, err := s.APIKeyByHash(ctx, "h2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused key was stored: %v", err)
	}
	if _, err := s.CreateAPIKey(ctx, store.APIKey{UserID: admin.ID, Name: "none", TokenHash: "h3", Prefix: "p", Created: now, Expires: now}); err == nil {
		t.Fatal("a key without sites was stored")
	}
	if _, err := s.CreateAPIKey(ctx, store.APIKey{UserID: 999999, Name: "ghost", TokenHash: "h4", Prefix: "p", Sites: []int64{a.ID}, Created: now, Expires: now}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	// a second key of the admin, one of the User
	k2, err := s.CreateAPIKey(ctx, store.APIKey{UserID: admin.ID, Name: "Laptop", TokenHash: "h5", Prefix: "fjk_def", Sites: []int64{a.ID}, Created: now, Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateAPIKey(ctx, store.APIKey{UserID: u.ID, Name: "Ann's", TokenHash: "h6", Prefix: "fjk_ghi", Sites: []int64{b.ID}, Created: now, Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.APIKeys(ctx, admin.ID)
	if err != nil || len(list) != 2 || list[0].ID != k2.ID || list[1].ID != k.ID || !slices.Equal(list[1].Sites, []int64{a.ID, b.ID}) ||
		!slices.Equal(list[0].Sites, []int64{a.ID}) || list[0].TokenHash != "" {
		t.Fatalf("list: %+v (%v)", list, err)
	}
	// last use: recorded, then not again within the minute
	if err := s.TouchAPIKey(ctx, k.ID, now.Add(time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchAPIKey(ctx, k.ID, now.Add(time.Minute+59*time.Second), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.APIKeyByHash(ctx, "h1"); !got.LastUsed.Equal(now.Add(time.Minute)) {
		t.Fatalf("last used %v, want the first use", got.LastUsed)
	}
	if err := s.TouchAPIKey(ctx, k.ID, now.Add(2*time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.APIKeyByHash(ctx, "h1"); !got.LastUsed.Equal(now.Add(2 * time.Minute)) {
		t.Fatalf("last used %v, want a minute later", got.LastUsed)
	}
	// revocation: only one's own key; a second one keeps the first time
	if err := s.RevokeAPIKey(ctx, u.ID, k.ID, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another user's key revoked: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, admin.ID, 999999, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, admin.ID, k.ID, now.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(ctx, 0, k.ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.APIKeyByHash(ctx, "h1"); err != nil || !got.Revoked.Equal(now.Add(3*time.Minute)) {
		t.Fatalf("revoked: %+v %v", got, err)
	}
	// grants: withdrawn one by one
	rep, err := s.SaveReport(ctx, store.SavedReport{SiteID: a.ID, Name: "Top", Definition: "{}"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Grant(ctx, u.ID, b.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Grant(ctx, u.ID, 0, rep.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Ungrant(ctx, u.ID, b.ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Ungrant(ctx, u.ID, b.ID, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("withdrawing twice: %v", err)
	}
	if g, _ := s.Grants(ctx, u.ID); len(g.Sites) != 0 || len(g.Reports) != 1 {
		t.Fatalf("grants after withdrawing the site: %+v", g)
	}
	if err := s.Ungrant(ctx, u.ID, 0, rep.ID); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Grants(ctx, u.ID); len(g.Sites)+len(g.Reports) != 0 {
		t.Fatalf("grants after withdrawing all: %+v", g)
	}
	if err := s.Ungrant(ctx, u.ID, b.ID, rep.ID); err == nil {
		t.Fatal("withdrawing a site and a report at once was taken")
	}
	// a leaver's keys are not found, whatever their state
	if _, err := s.APIKeyByHash(ctx, "h6"); err != nil {
		t.Fatal(err)
	}
	removeUser(t, s, u.ID, now)
	if _, err := s.APIKeyByHash(ctx, "h6"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a removed user's key: %v", err)
	}
	if _, err := s.CreateAPIKey(ctx, store.APIKey{UserID: u.ID, Name: "late", TokenHash: "h7", Prefix: "p", Sites: []int64{b.ID}, Created: now, Expires: now.Add(time.Hour)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a key for a removed user: %v", err)
	}
}
