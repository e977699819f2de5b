package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fjord/internal/store"
	"fjord/internal/store/sqlite"
)

// clock is an injected time that tests move.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)} }
func addr(s string) netip.Addr       { return netip.MustParseAddr(s) }
func isLocked(err error, address bool) bool {
	var l *LockedError
	return errors.As(err, &l) && l.Address == address
}

func newService(t *testing.T) (*Service, store.User, *clock) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hash, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	_, u, err := st.CreateAccount(context.Background(), store.Account{Name: "Acme"}, store.User{Email: "boss@acme.example", PasswordHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	return &Service{Store: st, Now: c.now}, u, c
}

func TestSignIn(t *testing.T) {
	ctx := context.Background()
	s, u, _ := newService(t)
	from := addr("192.0.2.1")
	if got, err := s.SignIn(ctx, "Boss@Acme.example", "correct horse battery", from); err != nil || got.ID != u.ID {
		t.Fatalf("sign-in: %+v %v", got, err)
	}
	for _, c := range [][2]string{{"boss@acme.example", "wrong password!"}, {"nobody@acme.example", "correct horse battery"}, {"", ""}} {
		if _, err := s.SignIn(ctx, c[0], c[1], from); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%q: %v, want ErrBadCredentials", c[0], err)
		}
	}
}

func TestLockOutPerUser(t *testing.T) {
	ctx := context.Background()
	s, u, c := newService(t)
	var noticed time.Time
	s.Locked = func(_ context.Context, who store.User, until time.Time, _ string) {
		if who.ID == u.ID {
			noticed = until
		}
	}
	// from different addresses, so only the account's count matters
	for i := 1; i < LockAfter; i++ {
		if _, err := s.SignIn(ctx, u.Email, "wrong password!", addr("192.0.2."+string(rune('0'+i)))); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if _, err := s.SignIn(ctx, u.Email, "wrong password!", addr("198.51.100.1")); !isLocked(err, false) {
		t.Fatalf("failure %d: %v, want locked", LockAfter, err)
	}
	if noticed.IsZero() {
		t.Fatal("the user was not told of the lock")
	}
	// locked: even the right password is refused until the lock ends
	c.add(LockFor - time.Second)
	if _, err := s.SignIn(ctx, u.Email, "correct horse battery", addr("198.51.100.2")); !isLocked(err, false) {
		t.Fatalf("during the lock: %v", err)
	}
	c.add(time.Second)
	if _, err := s.SignIn(ctx, u.Email, "correct horse battery", addr("198.51.100.3")); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
}

func TestThrottlePerAddress(t *testing.T) {
	ctx := context.Background()
	s, u, c := newService(t)
	from := addr("2001:db8::1")
	for i := range AddrLimit {
		// a new unknown address each time: no account gets locked
		if _, err := s.SignIn(ctx, fmt.Sprintf("nobody%d@acme.example", i), "x", from); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	// the same /64 is the same client; the right password does not help
	if _, err := s.SignIn(ctx, u.Email, "correct horse battery", addr("2001:db8::2")); !isLocked(err, true) {
		t.Fatalf("after %d failures: %v, want the address throttled", AddrLimit, err)
	}
	if _, err := s.SignIn(ctx, u.Email, "correct horse battery", addr("2001:db8:0:1::1")); err != nil {
		t.Fatalf("another /64: %v", err)
	}
	c.add(AddrWindow)
	if _, err := s.SignIn(ctx, u.Email, "correct horse battery", from); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	s, u, c := newService(t)
	tok1, sess, err := s.StartSession(ctx, u.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	tok2, _, _ := s.StartSession(ctx, u.ID, false)
	if tok1 == tok2 || sess.CSRF == "" || sess.TokenHash == tok1 {
		t.Fatal("sessions must have their own token and CSRF token, and store only a hash")
	}
	if _, got, err := s.Check(ctx, tok1, true); err != nil || got.ID != u.ID {
		t.Fatalf("check: %+v %v", got, err)
	}
	for _, bad := range []string{"", "nonsense", tok1 + "x"} {
		if _, _, err := s.Check(ctx, bad, true); !errors.Is(err, ErrNoSession) {
			t.Fatalf("token %q: %v", bad, err)
		}
	}
	// idle: used now and then, a session lives; left alone, it ends
	for range 4 {
		c.add(IdleTimeout - time.Minute)
		if _, _, err := s.Check(ctx, tok1, true); err != nil {
			t.Fatalf("in use: %v", err)
		}
	}
	if _, _, err := s.Check(ctx, tok2, true); !errors.Is(err, ErrNoSession) {
		t.Fatalf("idle for %v: %v", 4*(IdleTimeout-time.Minute), err)
	}
	// absolute: however much it is used
	for c.t.Sub(sess.Created) < AbsoluteTimeout-IdleTimeout {
		c.add(IdleTimeout / 2)
		if _, _, err := s.Check(ctx, tok1, true); err != nil {
			t.Fatalf("at %v: %v", c.t.Sub(sess.Created), err)
		}
	}
	c.t = sess.Created.Add(AbsoluteTimeout - time.Minute)
	if _, _, err := s.Check(ctx, tok1, true); err != nil {
		t.Fatalf("a minute before the end: %v", err)
	}
	c.add(time.Minute)
	if _, _, err := s.Check(ctx, tok1, true); !errors.Is(err, ErrNoSession) {
		t.Fatalf("after %v: %v, want ended", c.t.Sub(sess.Created), err)
	}
	// sign-out
	tok3, _, _ := s.StartSession(ctx, u.ID, false)
	if err := s.SignOut(ctx, tok3); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Check(ctx, tok3, true); !errors.Is(err, ErrNoSession) {
		t.Fatalf("after sign-out: %v", err)
	}
}

func TestLinks(t *testing.T) {
	ctx := context.Background()
	s, u, c := newService(t)
	tok, err := s.NewLink(ctx, u.ID, store.LinkReset)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.UseLink(ctx, tok, store.LinkReset); err != nil || got.ID != u.ID {
		t.Fatalf("use: %+v %v", got, err)
	}
	if _, err := s.UseLink(ctx, tok, store.LinkReset); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second use: %v", err)
	}
	tok, _ = s.NewLink(ctx, u.ID, store.LinkReset)
	c.add(ResetTTL)
	if _, err := s.UseLink(ctx, tok, store.LinkReset); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after %v: %v", ResetTTL, err)
	}
	tok, _ = s.NewLink(ctx, u.ID, store.LinkWelcome)
	c.add(WelcomeTTL - time.Minute)
	if _, err := s.UseLink(ctx, tok, store.LinkReset); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a welcome link used as a reset link: %v", err)
	}
	if _, err := s.UseLink(ctx, tok, store.LinkWelcome); err != nil {
		t.Fatalf("welcome link within %v: %v", WelcomeTTL, err)
	}
}

// TestUnknownAddressLocksAlike: an address no one has is locked after the
// same failures, with the same answer, as a real one.
func TestUnknownAddressLocksAlike(t *testing.T) {
	ctx := context.Background()
	s, u, c := newService(t)
	answers := func(email string) []string {
		var out []string
		for i := range LockAfter + 1 {
			_, err := s.SignIn(ctx, email, "wrong password!", addr(fmt.Sprintf("192.0.2.%d", 10+i)))
			out = append(out, err.Error())
		}
		return out
	}
	known, unknown := answers(u.Email), answers("ghost@acme.example")
	if fmt.Sprint(known) != fmt.Sprint(unknown) {
		t.Fatalf("a known address answers\n%q\nan unknown one\n%q", known, unknown)
	}
	if !strings.Contains(known[LockAfter-1], "locked") {
		t.Fatalf("no lock after %d failures: %q", LockAfter, known)
	}
	c.add(LockFor)
	if _, err := s.SignIn(ctx, "ghost@acme.example", "x", addr("192.0.2.99")); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after the lock: %v", err)
	}
}

// TestParallelGuesses: a burst of guesses at once is held to the lock's
// count; the right password sent among them does not get through once the
// attempts are used up.
func TestParallelGuesses(t *testing.T) {
	ctx := context.Background()
	s, u, _ := newService(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	checked := 0
	for i := range 4 * LockAfter {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.SignIn(ctx, u.Email, "wrong password!", addr(fmt.Sprintf("198.51.100.%d", i)))
			if errors.Is(err, ErrBadCredentials) {
				mu.Lock()
				checked++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if checked > LockAfter-1 {
		t.Fatalf("%d guesses were checked against the password; at most %d may be before the lock", checked, LockAfter-1)
	}
	if _, err := s.SignIn(ctx, u.Email, "correct horse battery", addr("203.0.113.1")); !isLocked(err, false) {
		t.Fatalf("after the burst: %v, want locked", err)
	}
}
