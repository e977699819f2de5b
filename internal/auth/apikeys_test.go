package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"fjord/internal/store"
)

func TestParseKeyLife(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1h": time.Hour, "12h": 12 * time.Hour, "90d": 90 * 24 * time.Hour, "365d": MaxKeyLife, "8760h": MaxKeyLife, "1y": MaxKeyLife, " 7d ": 7 * 24 * time.Hour,
	} {
		if got, err := ParseKeyLife(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0h", "0d", "-1d", "+1d", "366d", "8761h", "2y", "90", "d", "1.5d", "90m", "1w", "99999999999d", "９0d"} {
		if got, err := ParseKeyLife(in); err == nil {
			t.Errorf("%q taken as %v", in, got)
		}
	}
}

func TestCreateAndCheckKey(t *testing.T) {
	ctx := context.Background()
	s, admin, c := newService(t)
	st := s.Store
	site, _ := st.AddSite(ctx, store.Site{Domain: "acme.example", TimeZone: "UTC", AccountID: admin.AccountID})
	site2, _ := st.AddSite(ctx, store.Site{Domain: "shop.acme.example", TimeZone: "UTC", AccountID: admin.AccountID})
	other, _, err := st.CreateAccount(ctx, store.Account{Name: "Other"}, store.User{Email: "x@other.example"})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := st.AddSite(ctx, store.Site{Domain: "other.example", TimeZone: "UTC", AccountID: other.ID})
	day := 24 * time.Hour

	// refusals: each a *KeyRequestError naming what is wrong
	for name, nk := range map[string]NewKey{
		"no name":       {Name: "  ", Sites: []int64{site.ID}, Life: day},
		"long name":     {Name: strings.Repeat("é", MaxKeyName+1), Sites: []int64{site.ID}, Life: day},
		"two lines":     {Name: "a\nb", Sites: []int64{site.ID}, Life: day},
		"no sites":      {Name: "x", Life: day},
		"short life":    {Name: "x", Sites: []int64{site.ID}, Life: time.Hour - time.Second},
		"long life":     {Name: "x", Sites: []int64{site.ID}, Life: MaxKeyLife + time.Second},
		"foreign site":  {Name: "x", Sites: []int64{site.ID, foreign.ID}, Life: day},
		"unknown site":  {Name: "x", Sites: []int64{999999}, Life: day},
		"operator site": {Name: "x", Sites: []int64{looseSite(t, st)}, Life: day},
	} {
		var bad *KeyRequestError
		if _, _, err := s.CreateKey(ctx, admin, nk); !errors.As(err, &bad) {
			t.Errorf("%s: %v, want a KeyRequestError", name, err)
		}
	}
	if keys, _ := st.APIKeys(ctx, admin.ID); len(keys) != 0 {
		t.Fatalf("refused keys were stored: %+v", keys)
	}
	// a User may scope only granted sites (or sites with a granted report)
	u, err := st.AddUser(ctx, store.User{AccountID: admin.AccountID, Email: "ann@acme.example", Role: store.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateKey(ctx, u, NewKey{Name: "x", Sites: []int64{site.ID}, Life: day}); err == nil || !strings.Contains(err.Error(), "not a site you may read") {
		t.Fatalf("a User's key for a site not granted: %v", err)
	}
	rep, _ := st.SaveReport(ctx, store.SavedReport{SiteID: site2.ID, Name: "r", Definition: "{}"})
	st.Grant(ctx, u.ID, site.ID, 0)
	st.Grant(ctx, u.ID, 0, rep.ID)
	if _, _, err := s.CreateKey(ctx, u, NewKey{Name: "x", Sites: []int64{site.ID, site2.ID}, Life: day}); err != nil {
		t.Fatalf("a User's key for a granted site and a site with a granted report: %v", err)
	}

	tok, k, err := s.CreateKey(ctx, admin, NewKey{Name: " Grafana ", Sites: []int64{site.ID, site2.ID}, Life: 30 * day})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, KeyPrefix) || len(tok) != keyLen || !wellFormedKey(tok) || k.Prefix != tok[:len(KeyPrefix)+keyShown] ||
		k.Name != "Grafana" || !k.Expires.Equal(c.now().Add(30*day).Truncate(time.Millisecond)) {
		t.Fatalf("key %q: %+v", tok, k)
	}
	// only the hash is stored, and the key is found by it
	if k.TokenHash != HashToken(tok) || strings.Contains(k.TokenHash, tok[len(KeyPrefix):]) {
		t.Fatal("the stored hash is not the key's SHA-256")
	}
	got, gu, err := s.CheckKey(ctx, tok)
	if err != nil || got.ID != k.ID || gu.ID != admin.ID || len(got.Sites) != 2 {
		t.Fatalf("check: %+v %+v %v", got, gu, err)
	}
	p, err := KeyPrincipal(ctx, st, gu, got)
	if err != nil || !p.Key || len(p.KeySites) != 2 || p.User != admin.ID {
		t.Fatalf("principal %+v %v", p, err)
	}
	// last use: recorded, at most once a minute
	if got.LastUsed != c.now() {
		t.Fatalf("last use %v", got.LastUsed)
	}
	c.add(30 * time.Second)
	if got, _, _ := s.CheckKey(ctx, tok); !got.LastUsed.Equal(c.now().Add(-30 * time.Second)) {
		t.Fatalf("recorded within the minute: %v", got.LastUsed)
	}
	c.add(30 * time.Second)
	if got, _, _ := s.CheckKey(ctx, tok); !got.LastUsed.Equal(c.now()) {
		t.Fatalf("not recorded after a minute: %v", got.LastUsed)
	}
	// refused: unknown, malformed, expired, revoked, a removed user's
	for _, bad := range []string{"", "fjk_", tok + "x", tok[:len(tok)-1] + "!", strings.ToUpper(tok), KeyPrefix + strings.Repeat("a", 43)} {
		if _, _, err := s.CheckKey(ctx, bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	c.add(30*day - time.Minute - time.Millisecond)
	if _, _, err := s.CheckKey(ctx, tok); err != nil {
		t.Fatalf("a millisecond before expiry: %v", err)
	}
	c.add(time.Millisecond)
	if _, _, err := s.CheckKey(ctx, tok); !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired: %v", err)
	}
	tok2, k2, _ := s.CreateKey(ctx, admin, NewKey{Name: "b", Sites: []int64{site.ID}, Life: day})
	if err := s.RevokeKey(ctx, u.ID, k2.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another user revoked it: %v", err)
	}
	if _, _, err := s.CheckKey(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, admin.ID, k2.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CheckKey(ctx, tok2); !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked: %v", err)
	}
	tok3, _, _ := s.CreateKey(ctx, u, NewKey{Name: "c", Sites: []int64{site.ID}, Life: day})
	if err := st.RemoveUser(ctx, u.ID, c.now()); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.CheckKey(ctx, tok3)
	if !errors.Is(err, ErrBadKey) || strings.Contains(err.Error(), tok3[len(KeyPrefix):]) {
		t.Fatalf("a removed user's key: %v", err)
	}
}

// looseSite adds a site of no account (only the operator sees it).
func looseSite(t *testing.T, st store.AccountStore) int64 {
	t.Helper()
	s, err := st.AddSite(context.Background(), store.Site{Domain: "loose.example", TimeZone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

// TestKeyLimit: at most MaxUserKeys active keys per user; a revoked or
// expired key makes room.
func TestKeyLimit(t *testing.T) {
	ctx := context.Background()
	s, admin, c := newService(t)
	site, _ := s.Store.AddSite(ctx, store.Site{Domain: "acme.example", TimeZone: "UTC", AccountID: admin.AccountID})
	var first store.APIKey
	for i := 0; i < MaxUserKeys; i++ {
		life := 48 * time.Hour
		if i == 1 {
			life = time.Hour
		}
		_, k, err := s.CreateKey(ctx, admin, NewKey{Name: "k", Sites: []int64{site.ID}, Life: life})
		if err != nil {
			t.Fatalf("key %d: %v", i+1, err)
		}
		if i == 0 {
			first = k
		}
	}
	var bad *KeyRequestError
	if _, _, err := s.CreateKey(ctx, admin, NewKey{Name: "k", Sites: []int64{site.ID}, Life: time.Hour}); !errors.As(err, &bad) || !strings.Contains(err.Error(), "revoke one") {
		t.Fatalf("one too many: %v", err)
	}
	s.RevokeKey(ctx, admin.ID, first.ID)
	if _, _, err := s.CreateKey(ctx, admin, NewKey{Name: "k", Sites: []int64{site.ID}, Life: time.Hour}); err != nil {
		t.Fatalf("after revoking one: %v", err)
	}
	c.add(time.Hour)
	if _, _, err := s.CreateKey(ctx, admin, NewKey{Name: "k", Sites: []int64{site.ID}, Life: time.Hour}); err != nil {
		t.Fatalf("after one expired: %v", err)
	}
}
