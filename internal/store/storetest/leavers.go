package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"fjord/internal/store"
)

// leavers: removing a user ends their access and moves their reports to
// the generic user; restore works until the retention period has passed
// (day 89 of 90), the purge at its end (day 90) keeps only the row's id.
func leavers(t *testing.T, open func(t *testing.T) store.AccountStore) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	acc, admin, err := s.CreateAccount(ctx, store.Account{Name: "Acme"}, store.User{Email: "boss@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	site, err := s.AddSite(ctx, store.Site{Domain: "acme.example", TimeZone: "UTC", AccountID: acc.ID})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.AddUser(ctx, store.User{AccountID: acc.ID, Email: "leaver@acme.example", Name: "Lea Ver", Role: store.RoleUser, PasswordHash: "$argon2id$lea"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Grant(ctx, u.ID, site.ID, 0); err != nil {
		t.Fatal(err)
	}
	rep, err := s.SaveReport(ctx, store.SavedReport{SiteID: site.ID, OwnerID: &u.ID, Name: "Lea's pages", Definition: "{}"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTOTP(ctx, u.ID, "SECRET", 1, []string{"r1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, store.Session{TokenHash: "s1", UserID: u.ID, CSRF: "c", Created: t0, Seen: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateLink(ctx, store.Link{TokenHash: "l1", UserID: u.ID, Purpose: store.LinkReset, Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	key, err := s.CreateAPIKey(ctx, store.APIKey{UserID: u.ID, Name: "Lea's key", TokenHash: "k1", Prefix: "fjk_lea", Sites: []int64{site.ID}, Created: t0, Expires: t0.Add(365 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.SavedReportByID(ctx, rep.ID); err != nil || r.SiteID != site.ID || r.Name != rep.Name {
		t.Fatalf("report by id: %+v %v", r, err)
	}
	if _, err := s.SavedReportByID(ctx, 999999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown report id: %v", err)
	}
	owner := func() int64 {
		t.Helper()
		r, err := s.SavedReport(ctx, site.ID, rep.ID)
		if err != nil || r.OwnerID == nil {
			t.Fatalf("report: %+v %v", r, err)
		}
		return *r.OwnerID
	}

	// the main contact cannot leave, even with another Administrator; the
	// last Administrator cannot either
	admin2, err := s.AddUser(ctx, store.User{AccountID: acc.ID, Email: "deputy@acme.example", Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveUser(ctx, admin.ID, t0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("removing the main contact: %v, want ErrConflict", err)
	}
	if err := s.RemoveUser(ctx, admin2.ID, t0); err != nil {
		t.Fatalf("removing a second Administrator: %v", err)
	}
	if err := s.RestoreUser(ctx, admin2.ID, t0); err != nil {
		t.Fatalf("restoring at once: %v", err)
	}
	if sites, err := s.AccountSites(ctx, acc.ID); err != nil || len(sites) != 1 || sites[0].ID != site.ID {
		t.Fatalf("the account's sites: %+v %v", sites, err)
	}
	ranges, _ := store.ParseRanges("192.0.2.0/24 2001:db8::/48")
	if err := s.SetSiteSettings(ctx, site.ID, true, ranges); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.SiteByID(ctx, site.ID); !got.RespectDNT || store.FormatRanges(got.Ignored) != "192.0.2.0/24 2001:db8::/48" {
		t.Fatalf("site settings: %+v", got)
	}
	if err := s.RemoveUser(ctx, u.ID, t0); err != nil {
		t.Fatal(err)
	}
	// access ends at once
	if _, err := s.Session(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a leaver's session: %v", err)
	}
	if _, err := s.UseLink(ctx, "l1", store.LinkReset, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a leaver's link: %v", err)
	}
	if _, err := s.APIKeyByHash(ctx, "k1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a leaver's key: %v", err)
	}
	if _, err := s.UserByEmail(ctx, "leaver@acme.example"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a leaver by e-mail: %v", err)
	}
	if err := s.RemoveUser(ctx, u.ID, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
	generic := owner()
	if generic == u.ID || generic == admin.ID {
		t.Fatalf("the report stayed with %d, want the generic user", generic)
	}
	gone, err := s.RemovedUsers(ctx, acc.ID)
	if err != nil || len(gone) != 1 || gone[0].ID != u.ID || !gone[0].Removed.Equal(t0) || !gone[0].PurgeAfter.Equal(t0.Add(90*24*time.Hour)) {
		t.Fatalf("removed users: %+v %v", gone, err)
	}
	if users, _ := s.Users(ctx, acc.ID); len(users) != 2 {
		t.Fatalf("users after removal: %+v", users)
	}

	// day 89: restore works, the report comes back, the key stays revoked
	day := 24 * time.Hour
	if n, err := s.PurgeLeavers(ctx, t0.Add(89*day)); n != 0 || err != nil {
		t.Fatalf("purge at day 89: %d %v", n, err)
	}
	if err := s.RestoreUser(ctx, u.ID, t0.Add(89*day)); err != nil {
		t.Fatalf("restore at day 89: %v", err)
	}
	if owner() != u.ID {
		t.Fatal("the report did not come back")
	}
	if k, err := s.APIKeyByHash(ctx, "k1"); err != nil || k.Revoked.IsZero() {
		t.Fatalf("the restored user's key: %+v %v, want revoked", k, err)
	}
	if got, err := s.UserByID(ctx, u.ID); err != nil || !got.Removed.IsZero() || got.TOTPSecret != "SECRET" {
		t.Fatalf("restored user %+v %v", got, err)
	}

	// leaves again; day 90 after that, restore is refused and the purge
	// runs even if the job is late
	t1 := t0.Add(89 * day)
	removeUser(t, s, u.ID, t1)
	if err := s.RestoreUser(ctx, u.ID, t1.Add(90*day)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("restore at day 90: %v", err)
	}
	if n, err := s.PurgeLeavers(ctx, t1.Add(90*day-time.Millisecond)); n != 0 || err != nil {
		t.Fatalf("purge a moment before day 90: %d %v", n, err)
	}
	if n, err := s.PurgeLeavers(ctx, t1.Add(90*day)); n != 1 || err != nil {
		t.Fatalf("purge at day 90: %d %v", n, err)
	}
	if n, err := s.PurgeLeavers(ctx, t1.Add(91*day)); n != 0 || err != nil {
		t.Fatalf("purge again: %d %v", n, err)
	}
	if gone, _ := s.RemovedUsers(ctx, acc.ID); len(gone) != 0 {
		t.Fatalf("purged users still listed: %+v", gone)
	}
	if err := s.RestoreUser(ctx, u.ID, t1.Add(day)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("restore after the purge: %v", err)
	}
	if owner() != generic {
		t.Fatal("the report left the generic user")
	}
	if keys, _ := s.APIKeys(ctx, u.ID); len(keys) != 0 || key.ID == 0 {
		t.Fatalf("a purged user's keys: %+v", keys)
	}
	if n, _ := s.RecoveryCodesLeft(ctx, u.ID); n != 0 {
		t.Fatalf("a purged user's recovery codes: %d", n)
	}
	if g, _ := s.Grants(ctx, u.ID); len(g.Sites)+len(g.Reports) != 0 {
		t.Fatalf("a purged user's grants: %+v", g)
	}
	// the address is free again
	if _, err := s.AddUser(ctx, store.User{AccountID: acc.ID, Email: "leaver@acme.example", Role: store.RoleUser}); err != nil {
		t.Fatalf("the address of a purged user: %v", err)
	}
	// a shorter retention is the account's choice; more than 90 is not
	if err := s.SetLeaverRetention(ctx, acc.ID, 91); err == nil {
		t.Fatal("retention of 91 days accepted")
	}
	if err := s.SetLeaverRetention(ctx, acc.ID, 7); err != nil {
		t.Fatal(err)
	}
	u2, err := s.AddUser(ctx, store.User{AccountID: acc.ID, Email: "short@acme.example", Role: store.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	removeUser(t, s, u2.ID, t0)
	// the period is fixed at removal: raising the setting later does not
	// stretch it
	if err := s.SetLeaverRetention(ctx, acc.ID, 90); err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreUser(ctx, u2.ID, t0.Add(8*day)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("restore at day 8 of a 7-day retention raised to 90 later: %v", err)
	}
	if n, _ := s.PurgeLeavers(ctx, t0.Add(7*day)); n != 1 {
		t.Fatalf("purge after 7 days of a 7-day retention: %d", n)
	}
}
