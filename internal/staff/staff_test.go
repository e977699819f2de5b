package staff_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fjord/internal/auth"
	"fjord/internal/staff"
	"fjord/internal/store"
	"fjord/internal/store/sqlite"
	"fjord/internal/store/sqlstore"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type env struct {
	s       *staff.Service
	a       *auth.StaffSignin
	st      *sqlstore.Accounts
	c       *clock
	account int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	acc, _, err := st.CreateAccount(context.Background(), store.Account{Name: "Acme"}, store.User{Email: "boss@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	return &env{s: &staff.Service{Store: st, Now: c.now}, a: &auth.StaffSignin{Store: st, Now: c.now}, st: st, c: c, account: acc.ID}
}

// member adds a staff member trained at trained who has set up their
// sign-in; it returns them and their TOTP secret.
func (e *env) member(t *testing.T, email string, role staff.Role, trained time.Time) (staff.Member, string) {
	t.Helper()
	ctx := context.Background()
	_, tok, err := e.a.Add(ctx, email, "", role, trained)
	if err != nil {
		t.Fatal(err)
	}
	secret := auth.NewTOTPSecret()
	m, err := e.a.Setup(ctx, tok, "correct horse battery", secret, auth.TOTPCode(secret, e.c.t))
	if err != nil {
		t.Fatal(err)
	}
	return m, secret
}

func TestTrainingRule(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	now := e.c.t
	ann, _ := e.member(t, "ann@fjord.example", staff.Support, now.AddDate(0, 0, -91))
	hod, _ := e.member(t, "hod@fjord.example", staff.HeadOfDevelopment, now)
	if _, err := e.s.Request(ctx, ann, e.account, "T-1", staff.Read, time.Hour); err != nil {
		t.Fatalf("trained 91 days ago: %v", err)
	}
	// a day later, 92 days: a quarter has passed
	e.c.t = now.Add(24 * time.Hour)
	if _, err := e.s.Request(ctx, ann, e.account, "T-1", staff.Read, time.Hour); !errors.Is(err, staff.ErrUntrained) {
		t.Fatalf("trained 92 days ago: %v, want ErrUntrained", err)
	}
	// an untrained approver cannot approve either, and a trained one cannot
	// approve an untrained requester's grant
	g, err := e.s.Request(ctx, hod, e.account, "T-2", staff.Read, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dpo, _ := e.member(t, "dpo@fjord.example", staff.DPO, now.AddDate(0, 0, -100))
	if _, err := e.s.Approve(ctx, dpo, g.ID); !errors.Is(err, staff.ErrUntrained) {
		t.Fatalf("approval by an untrained DPO: %v", err)
	}
	e.c.t = now.Add(time.Hour)
	g1, err := e.s.Request(ctx, ann, e.account, "T-3", staff.Read, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.c.t = now.Add(24 * time.Hour)
	if _, err := e.s.Approve(ctx, hod, g1.ID); !errors.Is(err, staff.ErrUntrained) {
		t.Fatalf("approval of an untrained requester: %v", err)
	}
	// and an active grant stops working when the training lapses
	e.c.t = now.Add(2 * time.Hour)
	g1, err = e.s.Approve(ctx, hod, g1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Acting(ctx, ann, g1.ID); err != nil {
		t.Fatal(err)
	}
	// a configured shorter validity
	e.s.Rules.Training = 30 * 24 * time.Hour
	if _, err := e.s.Acting(ctx, ann, g1.ID); !errors.Is(err, staff.ErrUntrained) {
		t.Fatalf("training older than the configured 30 days: %v", err)
	}
	if err := (staff.Rules{Training: 93 * 24 * time.Hour}).Check(); err == nil {
		t.Fatal("a validity above a quarter was accepted")
	}
}

func TestReminders(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	now := e.c.t
	ann, _ := e.member(t, "ann@fjord.example", staff.Support, now.AddDate(0, 0, -77))
	e.member(t, "bob@fjord.example", staff.Support, now.AddDate(0, 0, -70))
	due, err := e.s.DueReminders(ctx)
	if err != nil || len(due) != 0 {
		t.Fatalf("due 15 days before the lapse: %+v %v", due, err)
	}
	e.c.t = now.Add(24 * time.Hour) // Ann: 78 days, 14 to go
	due, _ = e.s.DueReminders(ctx)
	if len(due) != 1 || due[0].ID != ann.ID {
		t.Fatalf("due 14 days before the lapse: %+v", due)
	}
	if err := e.st.SetStaffReminded(ctx, ann.ID, due[0].TrainedAt); err != nil {
		t.Fatal(err)
	}
	if due, _ = e.s.DueReminders(ctx); len(due) != 0 {
		t.Fatalf("reminded twice: %+v", due)
	}
	// a new training date: a new reminder in its time
	if err := e.st.SetStaffTrained(ctx, ann.ID, e.c.t); err != nil {
		t.Fatal(err)
	}
	e.c.t = e.c.t.AddDate(0, 0, 78)
	if due, _ = e.s.DueReminders(ctx); len(due) != 2 {
		t.Fatalf("due after the new training: %+v", due)
	}
}

func TestFourEyes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	now := e.c.t
	hod, _ := e.member(t, "hod@fjord.example", staff.HeadOfDevelopment, now)
	dpo, _ := e.member(t, "dpo@fjord.example", staff.DPO, now)
	eng, _ := e.member(t, "eng@fjord.example", staff.Engineer, now)
	con, _ := e.member(t, "con@fjord.example", staff.Consultant, now)

	g, err := e.s.Request(ctx, hod, e.account, "T-9", staff.ReadWrite, 4*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Approve(ctx, hod, g.ID); !errors.Is(err, staff.ErrOwnGrant) {
		t.Fatalf("own approval: %v", err)
	}
	if _, err := e.s.Approve(ctx, eng, g.ID); !errors.Is(err, staff.ErrNoApprove) {
		t.Fatalf("approval by an engineer: %v", err)
	}
	if _, err := e.s.Acting(ctx, hod, g.ID); !errors.Is(err, staff.ErrNoGrant) {
		t.Fatalf("acting before approval: %v", err)
	}
	e.c.t = now.Add(time.Hour)
	g, err = e.s.Approve(ctx, dpo, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Expires.Equal(now.Add(5 * time.Hour)) {
		t.Fatalf("expiry %v: the duration runs from the approval", g.Expires)
	}
	if _, err := e.s.Approve(ctx, dpo, g.ID); !errors.Is(err, staff.ErrNotPending) {
		t.Fatalf("second approval: %v", err)
	}
	if _, err := e.s.Acting(ctx, hod, g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Acting(ctx, dpo, g.ID); !errors.Is(err, staff.ErrNoGrant) {
		t.Fatalf("someone else's grant: %v", err)
	}
	e.c.t = now.Add(5 * time.Hour)
	if _, err := e.s.Acting(ctx, hod, g.ID); !errors.Is(err, staff.ErrNoGrant) {
		t.Fatalf("expired grant: %v", err)
	}

	// limits per role: 24 hours, a consultant 14 days, configurable lower
	if _, err := e.s.Request(ctx, eng, e.account, "T-10", staff.Read, 25*time.Hour); err == nil || !strings.Contains(err.Error(), "at most 24h") {
		t.Fatalf("25 hours for an engineer: %v", err)
	}
	if _, err := e.s.Request(ctx, con, e.account, "T-11", staff.Read, 14*24*time.Hour); err != nil {
		t.Fatalf("14 days for a consultant: %v", err)
	}
	if _, err := e.s.Request(ctx, con, e.account, "T-11", staff.Read, 15*24*time.Hour); err == nil {
		t.Fatal("15 days for a consultant was accepted")
	}
	e.s.Rules.MaxGrant = 8 * time.Hour
	if _, err := e.s.Request(ctx, eng, e.account, "T-12", staff.Read, 9*time.Hour); err == nil {
		t.Fatal("9 hours under an 8-hour limit was accepted")
	}
	for _, bad := range []struct {
		reason string
		scope  staff.Scope
	}{{"", staff.Read}, {"T-1\nsecond line", staff.Read}, {"T-1", "write"}, {strings.Repeat("x", 501), staff.Read}} {
		if _, err := e.s.Request(ctx, eng, e.account, bad.reason, bad.scope, time.Hour); err == nil {
			t.Fatalf("request %+v accepted", bad)
		}
	}
	// a request nobody approves lapses after a day
	g2, _ := e.s.Request(ctx, eng, e.account, "T-13", staff.Read, time.Hour)
	e.c.t = e.c.t.Add(staff.RequestTTL)
	if _, err := e.s.Approve(ctx, dpo, g2.ID); !errors.Is(err, staff.ErrNotPending) {
		t.Fatalf("approval of a lapsed request: %v", err)
	}
	// revoked: its holder or an approver ends it early
	g3, _ := e.s.Request(ctx, eng, e.account, "T-14", staff.Read, time.Hour)
	e.s.Approve(ctx, hod, g3.ID)
	if _, err := e.s.Revoke(ctx, con, g3.ID); err == nil {
		t.Fatal("a consultant revoked someone else's grant")
	}
	if _, err := e.s.Revoke(ctx, dpo, g3.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Acting(ctx, eng, g3.ID); !errors.Is(err, staff.ErrNoGrant) {
		t.Fatalf("revoked grant: %v", err)
	}
}

func TestStaffSignIn(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	m, secret := e.member(t, "ann@fjord.example", staff.Support, e.c.t)
	e.c.t = e.c.t.Add(time.Minute)
	code := auth.TOTPCode(secret, e.c.t)
	if _, err := e.a.SignIn(ctx, "ann@fjord.example", "correct horse battery", ""); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("no code: %v", err)
	}
	if got, err := e.a.SignIn(ctx, "ANN@fjord.example", "correct horse battery", code); err != nil || got.ID != m.ID {
		t.Fatalf("sign-in: %+v %v", got, err)
	}
	if _, err := e.a.SignIn(ctx, "ann@fjord.example", "correct horse battery", code); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("the same code twice: %v", err)
	}
	e.c.t = e.c.t.Add(time.Minute)
	for i := 0; i < auth.LockAfter; i++ {
		e.a.SignIn(ctx, "ann@fjord.example", "wrong password!!", auth.TOTPCode(secret, e.c.t))
	}
	var locked *auth.LockedError
	if _, err := e.a.SignIn(ctx, "ann@fjord.example", "correct horse battery", auth.TOTPCode(secret, e.c.t)); !errors.As(err, &locked) {
		t.Fatalf("after %d failures: %v, want locked", auth.LockAfter, err)
	}
	if _, err := e.a.SignIn(ctx, "nobody@fjord.example", "correct horse battery", "123456"); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("unknown member: %v", err)
	}
	// a member who has not set up their sign-in cannot sign in
	if _, _, err := e.a.Add(ctx, "new@fjord.example", "", staff.Support, e.c.t); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.SignIn(ctx, "new@fjord.example", "", ""); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("member without set-up: %v", err)
	}

	// sessions: idle and absolute limits, none for a removed member
	tok, _, err := e.a.StartSession(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.c.t = e.c.t.Add(auth.StaffSessionIdle - time.Second)
	if _, _, err := e.a.Check(ctx, tok); err != nil {
		t.Fatal(err)
	}
	e.c.t = e.c.t.Add(auth.StaffSessionIdle)
	if _, _, err := e.a.Check(ctx, tok); !errors.Is(err, auth.ErrNoStaffSession) {
		t.Fatalf("idle session: %v", err)
	}
	tok, _, _ = e.a.StartSession(ctx, m.ID)
	if err := e.st.RemoveStaff(ctx, m.ID, e.c.t); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.a.Check(ctx, tok); !errors.Is(err, auth.ErrNoStaffSession) {
		t.Fatalf("session of a removed member: %v", err)
	}
}

func TestSetupLink(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, tok, err := e.a.Add(ctx, "ann@fjord.example", "Ann", staff.Engineer, e.c.t)
	if err != nil {
		t.Fatal(err)
	}
	secret := auth.NewTOTPSecret()
	if _, err := e.a.Setup(ctx, tok, "short", secret, auth.TOTPCode(secret, e.c.t)); err == nil {
		t.Fatal("a short password was accepted")
	}
	if _, err := e.a.Setup(ctx, tok, "correct horse battery", secret, "000000"); !errors.Is(err, auth.ErrBadCode) && auth.TOTPCode(secret, e.c.t) != "000000" {
		t.Fatalf("wrong code: %v", err)
	}
	if _, err := e.a.Setup(ctx, tok, "correct horse battery", secret, auth.TOTPCode(secret, e.c.t)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.Setup(ctx, tok, "correct horse battery", secret, auth.TOTPCode(secret, e.c.t.Add(30*time.Second))); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("link used twice: %v", err)
	}
	for _, bad := range []struct {
		email string
		role  staff.Role
		at    time.Time
	}{{"no-at-sign", staff.Support, e.c.t}, {"x@fjord.example", "boss", e.c.t}, {"y@fjord.example", staff.DPO, time.Time{}}, {"z@fjord.example", staff.DPO, e.c.t.Add(48 * time.Hour)}} {
		if _, _, err := e.a.Add(ctx, bad.email, "", bad.role, bad.at); err == nil {
			t.Fatalf("added %+v", bad)
		}
	}
}
