package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"fjord/internal/secmon"
	"fjord/internal/store"
)

// securityMonitoring: the account store keeps security events (counted
// per kind, subject and time), alerts (found open by rule and subject
// until resolved or quiet) and incidents with their accounts and
// timelines, on both engines.
func securityMonitoring(t *testing.T, open func(t *testing.T) store.AccountStore) {
	ctx := context.Background()
	as := open(t)
	s, ok := as.(secmon.Store)
	if !ok {
		t.Fatal("the account store keeps no security events")
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	// events: counted by kind and subject within a window
	for i, e := range []secmon.Event{
		{Kind: secmon.SigninFailed, Account: 7, Actor: "net:aa", Time: t0},
		{Kind: secmon.SigninFailed, Account: 7, Actor: "net:bb", Time: t0.Add(time.Minute)},
		{Kind: secmon.SigninFailed, Account: 7, Actor: "net:aa", Time: t0.Add(20 * time.Minute)},
		{Kind: secmon.SigninFailed, Actor: "net:aa", Time: t0.Add(21 * time.Minute), Detail: "an unknown e-mail address"},
		{Kind: secmon.SigninThrottled, Account: 7, Actor: "net:aa", Time: t0.Add(22 * time.Minute)},
	} {
		got, err := s.AddSecurityEvent(ctx, e)
		if err != nil || got.ID == 0 {
			t.Fatalf("event %d: %+v %v", i, got, err)
		}
	}
	if n, first, err := s.CountSecurityEvents(ctx, secmon.SigninFailed, "account:7", t0); err != nil || n != 3 || !first.Equal(t0) {
		t.Fatalf("account 7 failures since t0: %d from %v (%v), want 3 from %v", n, first, err, t0)
	}
	if n, first, _ := s.CountSecurityEvents(ctx, secmon.SigninFailed, "account:7", t0.Add(time.Minute)); n != 2 || !first.Equal(t0.Add(time.Minute)) {
		t.Fatalf("account 7 failures since t0+1m: %d from %v, want 2", n, first)
	}
	if n, _, _ := s.CountSecurityEvents(ctx, secmon.SigninFailed, "net:aa", t0); n != 1 {
		t.Fatalf("failures without an account, under the network: %d, want 1", n)
	}
	if n, first, _ := s.CountSecurityEvents(ctx, secmon.AuditBroken, "system", t0); n != 0 || !first.IsZero() {
		t.Fatalf("no events: %d, %v", n, first)
	}
	if n, err := s.PurgeSecurityEvents(ctx, t0.Add(20*time.Minute)); err != nil || n != 2 {
		t.Fatalf("purge: %d %v, want 2", n, err)
	}
	if n, _, _ := s.CountSecurityEvents(ctx, secmon.SigninFailed, "account:7", t0); n != 1 {
		t.Fatalf("after the purge: %d, want 1", n)
	}

	// alerts: open until resolved, found only while seen recently
	a, err := s.AddAlert(ctx, secmon.Alert{Rule: "signin-failures", Kind: secmon.SigninFailed, Account: 7, Subject: "account:7", Count: 10, First: t0, Last: t0.Add(time.Minute)})
	if err != nil || a.ID == 0 {
		t.Fatalf("add alert: %+v %v", a, err)
	}
	other, err := s.AddAlert(ctx, secmon.Alert{Rule: "audit-broken", Kind: secmon.AuditBroken, Subject: "system", Count: 1, First: t0, Last: t0})
	if err != nil || other.ID == a.ID {
		t.Fatalf("second alert: %+v %v", other, err)
	}
	if got, err := s.LatestAlert(ctx, "signin-failures", "account:7"); err != nil || got.ID != a.ID || !got.Open() {
		t.Fatalf("latest alert: %+v %v", got, err)
	}
	if _, err := s.LatestAlert(ctx, "signin-failures", "account:8"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another subject's alert: %v, want ErrNotFound", err)
	}
	if err := s.AlertSeen(ctx, a.ID, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Alert(ctx, a.ID); err != nil || got.Count != 11 || !got.Last.Equal(t0.Add(5*time.Minute)) || !got.First.Equal(t0) || !got.Open() {
		t.Fatalf("seen alert: %+v %v", got, err)
	}
	if err := s.AlertSeen(ctx, 999999, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown alert seen: %v", err)
	}
	if l, err := s.Alerts(ctx, secmon.AlertFilter{Account: 7, OpenOnly: true}); err != nil || len(l) != 1 || l[0].ID != a.ID {
		t.Fatalf("account 7's open alerts: %+v %v", l, err)
	}
	if l, _ := s.Alerts(ctx, secmon.AlertFilter{}); len(l) != 2 || l[0].ID != other.ID {
		t.Fatalf("all alerts, newest first: %+v", l)
	}
	if err := s.ResolveAlert(ctx, a.ID, "user:3", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveAlert(ctx, a.ID, "user:3", t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("resolving twice: %v, want ErrNotFound", err)
	}
	if got, _ := s.Alert(ctx, a.ID); got.Open() || got.ResolvedBy != "user:3" || !got.Resolved.Equal(t0.Add(time.Hour)) {
		t.Fatalf("resolved alert: %+v", got)
	}
	if got, err := s.LatestAlert(ctx, "signin-failures", "account:7"); err != nil || got.ID != a.ID || got.Open() {
		t.Fatalf("the latest alert, resolved: %+v %v", got, err)
	}
	if l, _ := s.Alerts(ctx, secmon.AlertFilter{Account: 7, OpenOnly: true}); len(l) != 0 {
		t.Fatalf("open alerts after resolving: %+v", l)
	}

	// incidents: accounts and an ordered timeline; closed takes no more
	acc1, _, err := as.CreateAccount(ctx, store.Account{Name: "One"}, store.User{Email: "a@one.example"})
	if err != nil {
		t.Fatal(err)
	}
	acc2, _, err := as.CreateAccount(ctx, store.Account{Name: "Two"}, store.User{Email: "a@two.example"})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.AddIncident(ctx, secmon.Incident{Title: "Lost laptop", Accounts: []int64{acc1.ID, acc2.ID}, Opened: t0, OpenedBy: "staff:3",
		Entries: []secmon.Entry{{Time: t0, By: "staff:3", Kind: secmon.EntryOpened, Text: "A laptop with 'exports' was lost.\nSecond line."}}})
	if err != nil || in.ID == 0 {
		t.Fatalf("add incident: %+v %v", in, err)
	}
	in2, err := s.AddIncident(ctx, secmon.Incident{Title: "Only two", Accounts: []int64{acc2.ID}, Opened: t0, OpenedBy: "operator",
		Entries: []secmon.Entry{{Time: t0, By: "operator", Kind: secmon.EntryOpened, Text: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddIncidentEntry(ctx, in.ID, secmon.Entry{Time: t0.Add(time.Hour), By: "staff:3", Kind: secmon.EntryUpdate, Text: "Found."}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddIncidentEntry(ctx, in.ID, secmon.Entry{Time: t0.Add(2 * time.Hour), By: "staff:4", Kind: secmon.EntryClosed, Text: "Closed."}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddIncidentEntry(ctx, in.ID, secmon.Entry{Time: t0.Add(3 * time.Hour), By: "staff:4", Kind: secmon.EntryUpdate, Text: "late"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update of a closed incident: %v, want ErrConflict", err)
	}
	if err := s.AddIncidentEntry(ctx, 999999, secmon.Entry{Time: t0, By: "x", Kind: secmon.EntryUpdate, Text: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of an unknown incident: %v", err)
	}
	got, err := s.Incident(ctx, in.ID)
	if err != nil || got.Title != "Lost laptop" || len(got.Accounts) != 2 || !got.Closed.Equal(t0.Add(2*time.Hour)) || len(got.Entries) != 3 ||
		got.Entries[0].Kind != secmon.EntryOpened || got.Entries[0].Text != "A laptop with 'exports' was lost.\nSecond line." ||
		got.Entries[1].Text != "Found." || got.Entries[2].Kind != secmon.EntryClosed || got.Entries[2].By != "staff:4" {
		t.Fatalf("incident: %+v %v", got, err)
	}
	if _, err := s.Incident(ctx, 999999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown incident: %v", err)
	}
	if l, err := s.Incidents(ctx, acc1.ID); err != nil || len(l) != 1 || l[0].ID != in.ID || len(l[0].Entries) != 3 {
		t.Fatalf("account one's incidents: %+v %v", l, err)
	}
	if l, _ := s.Incidents(ctx, acc2.ID); len(l) != 2 || l[0].ID != in2.ID {
		t.Fatalf("account two's incidents, newest first: %+v", l)
	}
	if l, _ := s.Incidents(ctx, 0); len(l) != 2 {
		t.Fatalf("all incidents: %+v", l)
	}
}
