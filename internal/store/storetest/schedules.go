package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"fjord/internal/mail/schedule"
	"fjord/internal/store"
)

// schedules: the account store keeps e-mail schedules with their
// recipients (a user's address read from the user), fires a due schedule
// once however many runs race for it, keeps deliveries with their
// attempts and bounces (a soft bounce never replaces a hard one), finds an
// address's recent sends, suppresses addresses, and forgets a leaver's
// address at the purge, on both engines.
func schedules(t *testing.T, open func(t *testing.T) store.AccountStore) {
	ctx := context.Background()
	as := open(t)
	s, ok := as.(schedule.Store)
	if !ok {
		t.Fatal("the account store keeps no schedules")
	}
	acc, boss, err := as.CreateAccount(ctx, store.Account{Name: "Acme"}, store.User{Email: "boss@acme.example", Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	ann, err := as.AddUser(ctx, store.User{AccountID: acc.ID, Email: "ann@acme.example", Role: store.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	site, err := as.AddSite(ctx, store.Site{Domain: "mail.example", TimeZone: "Europe/Berlin", AccountID: acc.ID})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := as.SaveReport(ctx, store.SavedReport{SiteID: site.ID, Name: "pages", Definition: `{"metrics":["visitors"]}`})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	sc, err := s.CreateSchedule(ctx, schedule.Schedule{AccountID: acc.ID, ReportID: rep.ID, Frequency: schedule.Weekly, Weekday: time.Monday,
		Hour: 7, CreatedBy: boss.ID, Created: t0, Next: t0.Add(time.Hour),
		Recipients: []schedule.Recipient{{UserID: ann.ID}, {Email: "partner@example.org"}}})
	if err != nil || sc.ID == 0 || sc.Recipients[0].ID == 0 || sc.Recipients[1].ID == 0 {
		t.Fatalf("create: %+v %v", sc, err)
	}
	got, err := s.Schedule(ctx, sc.ID)
	if err != nil || got.Frequency != schedule.Weekly || got.Weekday != time.Monday || got.Hour != 7 || !got.Next.Equal(t0.Add(time.Hour)) ||
		!got.Last.IsZero() || len(got.Recipients) != 2 || got.Recipients[0].Email != "ann@acme.example" || got.Recipients[0].UserID != ann.ID ||
		got.Recipients[1].Email != "partner@example.org" || got.Recipients[1].UserID != 0 {
		t.Fatalf("read back: %+v %v", got, err)
	}
	if _, err := s.AddRecipient(ctx, schedule.Recipient{ScheduleID: sc.ID, UserID: ann.ID}); !errors.Is(err, store.ErrExists) {
		t.Errorf("the same user twice: %v", err)
	}
	if _, err := s.AddRecipient(ctx, schedule.Recipient{ScheduleID: sc.ID, Email: "partner@example.org"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("the same address twice: %v", err)
	}
	bossR, err := s.AddRecipient(ctx, schedule.Recipient{ScheduleID: sc.ID, UserID: boss.ID})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := s.Schedules(ctx, acc.ID); err != nil || len(l) != 1 || len(l[0].Recipients) != 3 {
		t.Fatalf("account's schedules: %+v %v", l, err)
	}
	if l, err := s.ReportSchedules(ctx, rep.ID); err != nil || len(l) != 1 {
		t.Fatalf("report's schedules: %+v %v", l, err)
	}
	if err := s.RemoveRecipient(ctx, sc.ID, bossR.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRecipient(ctx, sc.ID, bossR.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removing twice: %v", err)
	}

	// due and fired once
	if l, err := s.DueSchedules(ctx, t0); err != nil || len(l) != 0 {
		t.Fatalf("due before its time: %+v %v", l, err)
	}
	due, err := s.DueSchedules(ctx, t0.Add(time.Hour))
	if err != nil || len(due) != 1 || len(due[0].Recipients) != 2 {
		t.Fatalf("due: %+v %v", due, err)
	}
	from, to := t0.Add(-7*24*time.Hour), t0
	ds := []schedule.Delivery{
		{RecipientID: sc.Recipients[0].ID, AccountID: acc.ID, Email: "ann@acme.example", From: from, To: to, Status: schedule.Pending},
		{RecipientID: sc.Recipients[1].ID, AccountID: acc.ID, Email: "partner@example.org", From: from, To: to, Status: schedule.Skipped, Detail: "outside"},
	}
	fireAt := t0.Add(time.Hour)
	next := fireAt.Add(7 * 24 * time.Hour)
	if ok, err := s.FireSchedule(ctx, sc.ID, due[0].Next, next, fireAt, ds); !ok || err != nil {
		t.Fatalf("fire: %v %v", ok, err)
	}
	if ok, err := s.FireSchedule(ctx, sc.ID, due[0].Next, next, fireAt, ds); ok || err != nil {
		t.Fatalf("a second run firing the same time: %v %v", ok, err)
	}
	if got, _ := s.Schedule(ctx, sc.ID); !got.Next.Equal(next) || !got.Last.Equal(fireAt) {
		t.Errorf("after firing: next %s last %s", got.Next, got.Last)
	}
	pend, err := s.DueDeliveries(ctx, fireAt, 10)
	if err != nil || len(pend) != 1 || pend[0].Email != "ann@acme.example" || !pend[0].From.Equal(from) || !pend[0].To.Equal(to) ||
		pend[0].ScheduleID != sc.ID || pend[0].Status != schedule.Pending {
		t.Fatalf("due deliveries: %+v %v", pend, err)
	}
	d := pend[0]
	// one run claims it; another, having read it too, does not
	if ok, err := s.ClaimDelivery(ctx, d.ID, d.NextTry, fireAt.Add(15*time.Minute)); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if ok, _ := s.ClaimDelivery(ctx, d.ID, d.NextTry, fireAt.Add(15*time.Minute)); ok {
		t.Fatal("claimed twice")
	}
	if l, _ := s.DueDeliveries(ctx, fireAt.Add(time.Minute), 10); len(l) != 0 {
		t.Errorf("a claimed delivery is due: %+v", l)
	}
	d.Status, d.Attempts, d.NextTry, d.Detail = schedule.Retry, 1, fireAt.Add(5*time.Minute), "451 try later"
	if err := s.Attempted(ctx, d); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.DueDeliveries(ctx, fireAt.Add(4*time.Minute), 10); len(l) != 0 {
		t.Errorf("a retry before its time: %+v", l)
	}
	if l, _ := s.DueDeliveries(ctx, fireAt.Add(5*time.Minute), 10); len(l) != 1 || l[0].Attempts != 1 || l[0].Detail != "451 try later" {
		t.Errorf("a retry at its time: %+v", l)
	}
	d.Status, d.Attempts, d.Detail = schedule.Sent, 2, "250 ok"
	if err := s.Attempted(ctx, d); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Deliveries(ctx, sc.ID, 10); len(l) != 2 || l[0].ID < l[1].ID {
		t.Errorf("deliveries, newest first: %+v", l)
	}

	// bounces: soft, then hard over it, never soft over hard
	if ok, err := s.RecordBounce(ctx, d.ID, schedule.BounceSoft, "4.2.2 mailbox full", fireAt); !ok || err != nil {
		t.Fatalf("soft: %v %v", ok, err)
	}
	if ok, _ := s.RecordBounce(ctx, d.ID, schedule.BounceSoft, "again", fireAt); ok {
		t.Error("a second soft bounce recorded")
	}
	if ok, _ := s.RecordBounce(ctx, d.ID, schedule.BounceHard, "5.1.1 user unknown", fireAt); !ok {
		t.Error("hard over soft not recorded")
	}
	if ok, _ := s.RecordBounce(ctx, d.ID, schedule.BounceSoft, "late delay", fireAt); ok {
		t.Error("soft over hard recorded")
	}
	if got, _ := s.Delivery(ctx, d.ID); got.Bounce != schedule.BounceHard || got.BounceWhy != "5.1.1 user unknown" || !got.BounceAt.Equal(fireAt) {
		t.Errorf("bounce: %+v", got)
	}
	if l, err := s.RecentSends(ctx, acc.ID, "ann@acme.example", 5); err != nil || len(l) != 1 || l[0].ID != d.ID {
		t.Errorf("recent sends: %+v %v", l, err)
	}
	if l, _ := s.RecentSends(ctx, acc.ID, "partner@example.org", 5); len(l) != 0 {
		t.Errorf("recent sends of a skipped delivery: %+v", l)
	}

	// unsubscribe once
	if ok, err := s.Unsubscribe(ctx, sc.Recipients[1].ID, t0); !ok || err != nil {
		t.Fatalf("unsubscribe: %v %v", ok, err)
	}
	if ok, _ := s.Unsubscribe(ctx, sc.Recipients[1].ID, t0); ok {
		t.Error("unsubscribed twice")
	}
	if got, _ := s.Schedule(ctx, sc.ID); got.Recipients[1].Unsubscribed.IsZero() {
		t.Error("unsubscription not kept")
	}

	// suppression
	if ok, err := s.Suppress(ctx, schedule.Suppressed{AccountID: acc.ID, Email: "ann@acme.example", Since: t0, Why: "2 hard bounces"}); !ok || err != nil {
		t.Fatalf("suppress: %v %v", ok, err)
	}
	if ok, _ := s.Suppress(ctx, schedule.Suppressed{AccountID: acc.ID, Email: "ann@acme.example", Since: t0}); ok {
		t.Error("suppressed twice")
	}
	if yes, err := s.IsSuppressed(ctx, acc.ID, "ann@acme.example"); !yes || err != nil {
		t.Errorf("is suppressed: %v %v", yes, err)
	}
	if l, err := s.Suppressions(ctx, acc.ID); err != nil || len(l) != 1 || l[0].UserID != ann.ID || l[0].Why != "2 hard bounces" {
		t.Errorf("suppressions: %+v %v", l, err)
	}

	// settings and the key
	if n, err := s.HardBounces(ctx, acc.ID); n != schedule.DefaultHardBounces || err != nil {
		t.Errorf("default hard bounces: %d %v", n, err)
	}
	if err := s.SetHardBounces(ctx, acc.ID, 3); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.HardBounces(ctx, acc.ID); n != 3 {
		t.Errorf("hard bounces: %d", n)
	}
	if yes, _ := s.OutsideRecipients(ctx, acc.ID); yes {
		t.Error("outside recipients allowed by default")
	}
	if err := s.SetOutsideRecipients(ctx, acc.ID, true); err != nil {
		t.Fatal(err)
	}
	if yes, _ := s.OutsideRecipients(ctx, acc.ID); !yes {
		t.Error("outside recipients not allowed after setting")
	}
	k1, err := s.MailKey(ctx)
	k2, err2 := s.MailKey(ctx)
	if err != nil || err2 != nil || len(k1) != 32 || !bytes.Equal(k1, k2) {
		t.Errorf("mail key: %x %x %v %v", k1, k2, err, err2)
	}

	// a leaver's purge forgets their address in schedules
	if err := as.RemoveUser(ctx, ann.ID, t0); err != nil {
		t.Fatal(err)
	}
	if n, err := as.PurgeLeavers(ctx, t0.Add(91*24*time.Hour)); n != 1 || err != nil {
		t.Fatalf("purge: %d %v", n, err)
	}
	if got, _ := s.Schedule(ctx, sc.ID); len(got.Recipients) != 1 || got.Recipients[0].Email != "partner@example.org" {
		t.Errorf("after the purge: %+v", got.Recipients)
	}
	if yes, _ := s.IsSuppressed(ctx, acc.ID, "ann@acme.example"); yes {
		t.Error("a purged leaver's address still suppressed")
	}

	if err := s.DeleteSchedule(ctx, sc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Schedule(ctx, sc.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted: %v", err)
	}
	if n, err := s.PurgeDeliveries(ctx, t0.Add(time.Hour)); n != 0 || err != nil {
		t.Errorf("purge deliveries of a deleted schedule: %d %v", n, err)
	}
}
