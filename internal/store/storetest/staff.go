package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"fjord/internal/staff"
	"fjord/internal/store"
)

// staffStore: staff members, their set-up links and console sessions, and
// access grants, as the staff package relies on them (both engines).
func staffStore(t *testing.T, open func(t *testing.T) store.AccountStore) {
	ctx := context.Background()
	as := open(t)
	s, ok := as.(staff.Store)
	if !ok {
		t.Fatal("the account store keeps no staff")
	}
	acc, _, err := as.CreateAccount(ctx, store.Account{Name: "Acme"}, store.User{Email: "boss@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ann, err := s.AddStaff(ctx, staff.Member{Email: "Ann@Fjord.example", Name: "Ann", Role: staff.Support, TrainedAt: now.AddDate(0, -1, 0), Created: now})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.AddStaff(ctx, staff.Member{Email: "bob@fjord.example", Role: staff.DPO, TrainedAt: now, Created: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddStaff(ctx, staff.Member{Email: "ann@fjord.example", Role: staff.Engineer, TrainedAt: now, Created: now}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second member with Ann's address: %v, want ErrExists", err)
	}
	if m, err := s.StaffByEmail(ctx, "ANN@fjord.example"); err != nil || m.ID != ann.ID || m.Role != staff.Support || !m.TrainedAt.Equal(ann.TrainedAt) || m.Ready() {
		t.Fatalf("Ann by e-mail: %+v %v", m, err)
	}

	// set-up link: once, not after expiry
	if err := s.CreateStaffLink(ctx, "h1", ann.ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateStaffLink(ctx, "h2", ann.ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if id, err := s.StaffLinkMember(ctx, "h1", now); err != nil || id != ann.ID {
		t.Fatalf("link's member: %d %v", id, err)
	}
	if _, err := s.UseStaffLink(ctx, "h2", now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired link: %v", err)
	}
	if id, err := s.UseStaffLink(ctx, "h1", now); err != nil || id != ann.ID {
		t.Fatalf("use link: %d %v", id, err)
	}
	if _, err := s.UseStaffLink(ctx, "h1", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("spent link: %v", err)
	}
	if err := s.SetStaffSignin(ctx, ann.ID, "hash", "SECRET", 7); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.UseStaffStep(ctx, ann.ID, 7); ok || err != nil {
		t.Fatalf("step 7 again: %v %v", ok, err)
	}
	if ok, err := s.UseStaffStep(ctx, ann.ID, 8); !ok || err != nil {
		t.Fatalf("step 8: %v %v", ok, err)
	}

	// lock-out counting, as for users
	for i := 0; i < 3; i++ {
		if ok, err := s.StaffAttempt(ctx, ann.ID, 3, now); !ok || err != nil {
			t.Fatalf("attempt %d: %v %v", i, ok, err)
		}
	}
	if ok, _ := s.StaffAttempt(ctx, ann.ID, 3, now); ok {
		t.Fatal("a fourth attempt in flight was allowed")
	}
	if until, err := s.StaffFailed(ctx, ann.ID, 3, time.Minute, now); err != nil || !until.Equal(now.Add(time.Minute)) {
		t.Fatalf("lock: %v %v", until, err)
	}
	if m, _ := s.Staff(ctx, ann.ID); !m.LockedUntil.Equal(now.Add(time.Minute)) || !m.Ready() {
		t.Fatalf("Ann after lock: %+v", m)
	}
	if ok, _ := s.StaffAttempt(ctx, ann.ID, 3, now.Add(time.Minute)); !ok {
		t.Fatal("no attempt after the lock ended")
	}
	if err := s.StaffSucceeded(ctx, ann.ID); err != nil {
		t.Fatal(err)
	}

	// sessions and the grant they act under
	sess := staff.Session{TokenHash: "s1", Staff: ann.ID, CSRF: "c", Created: now, Seen: now}
	if err := s.CreateStaffSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.SetActing(ctx, "s1", 42); err != nil {
		t.Fatal(err)
	}
	if got, err := s.StaffSession(ctx, "s1"); err != nil || got.Acting != 42 || got.Staff != ann.ID || !got.Created.Equal(now) {
		t.Fatalf("session: %+v %v", got, err)
	}

	// grants: only for an account that exists; approved once, never by
	// the asker, never after the request lapsed
	if _, err := s.RequestGrant(ctx, staff.Grant{Staff: ann.ID, Account: acc.ID + 100, Reason: "T-1", Scope: staff.Read, Duration: time.Hour, Requested: now}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("grant for no account: %v", err)
	}
	g, err := s.RequestGrant(ctx, staff.Grant{Staff: ann.ID, Account: acc.ID, Reason: "T-1 'quoted'", Scope: staff.Read, Duration: 2 * time.Hour, Requested: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApproveGrant(ctx, g.ID, ann.ID, now.Add(-time.Hour), now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("own approval: %v", err)
	}
	if _, err := s.ApproveGrant(ctx, g.ID, bob.ID, now, now.Add(time.Minute)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("approval of a lapsed request: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ApproveGrant(ctx, g.ID, bob.ID, now.Add(-time.Hour), now.Add(time.Minute)); err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d parallel approvals went through, want 1", won)
	}
	got, err := s.StaffGrant(ctx, g.ID)
	if err != nil || got.ApprovedBy != bob.ID || !got.Approved.Equal(now.Add(time.Minute)) || !got.Expires.Equal(now.Add(time.Minute+2*time.Hour)) ||
		got.Reason != "T-1 'quoted'" || got.Scope != staff.Read || !got.Active(now.Add(time.Hour)) || got.Active(now.Add(3*time.Hour)) {
		t.Fatalf("approved grant: %+v %v", got, err)
	}
	g2, _ := s.RequestGrant(ctx, staff.Grant{Staff: bob.ID, Account: acc.ID, Reason: "T-2", Scope: staff.ReadWrite, Duration: time.Hour, Requested: now.Add(time.Hour)})
	if gs, err := s.StaffGrants(ctx, ann.ID, time.Time{}); err != nil || len(gs) != 1 || gs[0].ID != g.ID {
		t.Fatalf("Ann's grants: %+v %v", gs, err)
	}
	if gs, err := s.StaffGrants(ctx, 0, now.Add(time.Minute)); err != nil || len(gs) != 1 || gs[0].ID != g2.ID {
		t.Fatalf("grants asked for since: %+v %v", gs, err)
	}

	// removal: sessions end, grants are revoked, the row and name stay,
	// and the address may be given to a new member
	if err := s.RemoveStaff(ctx, ann.ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StaffSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of a removed member: %v", err)
	}
	if got, _ := s.StaffGrant(ctx, g.ID); got.State(now.Add(time.Hour)) != "revoked" {
		t.Fatalf("grant of a removed member: %+v", got)
	}
	if m, err := s.Staff(ctx, ann.ID); err != nil || m.Removed.IsZero() || m.Name != "Ann" {
		t.Fatalf("removed member: %+v %v", m, err)
	}
	if _, err := s.StaffByEmail(ctx, "ann@fjord.example"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removed member by e-mail: %v", err)
	}
	if _, err := s.AddStaff(ctx, staff.Member{Email: "ann@fjord.example", Role: staff.Engineer, TrainedAt: now, Created: now}); err != nil {
		t.Fatalf("re-adding Ann's address: %v", err)
	}
	if err := s.RemoveStaff(ctx, ann.ID, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
}
