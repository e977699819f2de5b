package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"fjord/internal/store"
)

// integrations: an integration starts unapproved; approval and withdrawal
// are recorded with who, when and what; sites of other accounts are
// refused.
func integrations(t *testing.T, open func(t *testing.T) store.AccountStore) {
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
	site, _ := s.AddSite(ctx, store.Site{Domain: "acme.example", TimeZone: "UTC", AccountID: acc.ID})
	foreign, _ := s.AddSite(ctx, store.Site{Domain: "other.example", TimeZone: "UTC", AccountID: other.ID})
	in := store.Integration{AccountID: acc.ID, SiteID: foreign.ID, Kind: "webhook", URL: "https://hooks.example/x", CreatedBy: admin.ID, Created: now}
	if _, err := s.AddIntegration(ctx, in); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an integration of another account's site: %v", err)
	}
	in.SiteID = site.ID
	i, err := s.AddIntegration(ctx, in)
	if err != nil || i.ID == 0 {
		t.Fatal(err)
	}
	if got, _ := s.Integration(ctx, i.ID); got.ApprovedBy != 0 || !got.Approved.IsZero() || got.URL != in.URL {
		t.Fatalf("new integration %+v", got)
	}
	if l, _ := s.ApprovedIntegrations(ctx); len(l) != 0 {
		t.Fatalf("approved before approval: %+v", l)
	}
	if err := s.WithdrawIntegration(ctx, i.ID, admin.ID, now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("withdraw an unapproved integration: %v", err)
	}
	if err := s.ApproveIntegration(ctx, i.ID, admin.ID, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.ApproveIntegration(ctx, i.ID, admin.ID, now.Add(time.Minute)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("approve twice: %v", err)
	}
	if l, _ := s.ApprovedIntegrations(ctx); len(l) != 1 || l[0].ApprovedBy != admin.ID || !l[0].Approved.Equal(now.Add(time.Minute)) {
		t.Fatalf("approved: %+v", l)
	}
	if err := s.IntegrationSent(ctx, i.ID, "2026-11-30", "200 OK"); err != nil {
		t.Fatal(err)
	}
	if err := s.WithdrawIntegration(ctx, i.ID, admin.ID, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Integration(ctx, i.ID)
	if got.ApprovedBy != 0 || got.LastSentDay != "2026-11-30" || got.LastStatus != "200 OK" {
		t.Fatalf("after withdrawal %+v", got)
	}
	aps, err := s.Approvals(ctx, i.ID)
	if err != nil || len(aps) != 2 || aps[0].Action != store.Approved || aps[1].Action != store.Withdrawn ||
		aps[0].UserID != admin.ID || !aps[1].At.Equal(now.Add(2*time.Minute)) || aps[0].What != i.What() {
		t.Fatalf("approvals %+v %v", aps, err)
	}
	if l, _ := s.Integrations(ctx, acc.ID); len(l) != 1 {
		t.Fatalf("integrations of the account: %+v", l)
	}
	if l, _ := s.Integrations(ctx, other.ID); len(l) != 0 {
		t.Fatalf("integrations of the other account: %+v", l)
	}
	if err := s.ApproveIntegration(ctx, i.ID, admin.ID, now.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIntegration(ctx, i.ID, admin.ID, now.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Integration(ctx, i.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted integration: %v", err)
	}
	if l, _ := s.ApprovedIntegrations(ctx); len(l) != 0 {
		t.Fatalf("a deleted integration is still approved: %+v", l)
	}
	if err := s.ApproveIntegration(ctx, i.ID, admin.ID, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("approve a deleted integration: %v", err)
	}
	// the record of approvals outlives the integration
	if aps, _ := s.Approvals(ctx, i.ID); len(aps) != 4 || aps[3].Action != "deleted" {
		t.Fatalf("approvals after deletion: %+v", aps)
	}
}
