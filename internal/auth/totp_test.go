package auth

import (
	"context"
	"encoding/base32"
	"errors"
	"strings"
	"testing"
	"time"

	"fjord/internal/store"
)

// RFC 6238 appendix B, SHA-1 key "12345678901234567890": the last six of
// the eight digits it lists.
func TestTOTPVectors(t *testing.T) {
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))
	for _, c := range []struct {
		unix int64
		code string
	}{{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"}} {
		if got := TOTPCode(secret, time.Unix(c.unix, 0)); got != c.code {
			t.Errorf("t=%d: %s, want %s", c.unix, got, c.code)
		}
	}
}

func TestSecondFactor(t *testing.T) {
	ctx := context.Background()
	s, u, c := newService(t)
	from := addr("192.0.2.7")
	secret := NewTOTPSecret()
	if _, err := s.Enrol(ctx, u.ID, secret, "000000x"); !errors.Is(err, ErrBadCode) {
		t.Fatalf("enrol with a bad code: %v", err)
	}
	if _, err := s.Enrol(ctx, u.ID, "not-a-secret", TOTPCode(secret, c.now())); err == nil {
		t.Fatal("enrol with a damaged secret worked")
	}
	enrolCode := TOTPCode(secret, c.now())
	codes, err := s.Enrol(ctx, u.ID, secret, enrolCode)
	if err != nil || len(codes) != RecoveryCodes {
		t.Fatalf("enrol: %v %v", codes, err)
	}
	fresh, err := s.Store.UserByID(ctx, u.ID)
	if err != nil || fresh.TOTPSecret != secret {
		t.Fatalf("stored secret: %q %v", fresh.TOTPSecret, err)
	}
	// the enrolment's code does not work again
	if err := s.SecondFactor(ctx, fresh, enrolCode, from); !errors.Is(err, ErrBadCode) {
		t.Fatalf("replayed enrolment code: %v", err)
	}
	// next step's code: works once
	c.add(30 * time.Second)
	code := TOTPCode(secret, c.now())
	if err := s.SecondFactor(ctx, fresh, code, from); err != nil {
		t.Fatalf("fresh code: %v", err)
	}
	fresh, _ = s.Store.UserByID(ctx, u.ID)
	if err := s.SecondFactor(ctx, fresh, code, from); !errors.Is(err, ErrBadCode) {
		t.Fatalf("same code twice: %v", err)
	}
	// a clock half a minute off still works; a minute and a half does not
	c.add(5 * time.Minute)
	if err := s.SecondFactor(ctx, fresh, TOTPCode(secret, c.now().Add(-30*time.Second)), from); err != nil {
		t.Fatalf("code of the step before: %v", err)
	}
	fresh, _ = s.Store.UserByID(ctx, u.ID)
	if err := s.SecondFactor(ctx, fresh, TOTPCode(secret, c.now().Add(90*time.Second)), from); !errors.Is(err, ErrBadCode) {
		t.Fatalf("code three steps ahead: %v", err)
	}
	// recovery codes: each once, typed in any case, with or without dash
	typed := strings.ToUpper(strings.ReplaceAll(codes[0], "-", " "))
	if err := s.SecondFactor(ctx, fresh, typed, from); err != nil {
		t.Fatalf("recovery code %q: %v", typed, err)
	}
	if err := s.SecondFactor(ctx, fresh, codes[0], from); !errors.Is(err, ErrBadCode) {
		t.Fatalf("recovery code twice: %v", err)
	}
	if n, _ := s.Store.RecoveryCodesLeft(ctx, u.ID); n != RecoveryCodes-1 {
		t.Fatalf("%d recovery codes left, want %d", n, RecoveryCodes-1)
	}
	// new codes: the old ones die
	c.add(time.Minute)
	fresh, _ = s.Store.UserByID(ctx, u.ID)
	codes2, err := s.NewRecovery(ctx, fresh, TOTPCode(secret, c.now()), from)
	if err != nil || len(codes2) != RecoveryCodes {
		t.Fatalf("new recovery codes: %v", err)
	}
	if err := s.SecondFactor(ctx, fresh, codes[1], from); !errors.Is(err, ErrBadCode) {
		t.Fatalf("old recovery code after new ones: %v", err)
	}
	// a recovery code does not replace a code where a current one is asked
	if err := s.DisableTOTP(ctx, fresh, codes2[0], from); !errors.Is(err, ErrBadCode) {
		t.Fatalf("disable with a recovery code: %v", err)
	}
	c.add(time.Minute)
	if err := s.DisableTOTP(ctx, fresh, TOTPCode(secret, c.now()), from); err != nil {
		t.Fatalf("disable: %v", err)
	}
	if fresh, _ = s.Store.UserByID(ctx, u.ID); fresh.TOTPSecret != "" {
		t.Fatal("secret kept after disable")
	}
	if n, _ := s.Store.RecoveryCodesLeft(ctx, u.ID); n != 0 {
		t.Fatalf("%d recovery codes kept after disable", n)
	}
}

// Wrong codes lock the user like wrong passwords: the fifth in a row, for
// the right password in between neither counts nor resets the count.
func TestWrongCodesLockOut(t *testing.T) {
	ctx := context.Background()
	s, u, c := newService(t)
	from := addr("192.0.2.8")
	secret := NewTOTPSecret()
	if _, err := s.Enrol(ctx, u.ID, secret, TOTPCode(secret, c.now())); err != nil {
		t.Fatal(err)
	}
	var locked bool
	s.Locked = func(_ context.Context, _ store.User, _ time.Time, reason string) { locked = reason == LockCode }
	tries := 0
	for ; tries < 10; tries++ {
		got, err := s.SignIn(ctx, "boss@acme.example", "correct horse battery", from)
		if isLocked(err, false) {
			break
		}
		if err != nil {
			t.Fatalf("try %d: password: %v", tries, err)
		}
		err = s.SecondFactor(ctx, got, "000000", from)
		if isLocked(err, false) {
			break
		}
		if !errors.Is(err, ErrBadCode) {
			t.Fatalf("try %d: wrong code: %v", tries, err)
		}
	}
	if tries != LockAfter-1 || !locked {
		t.Fatalf("locked in round %d of right password and wrong code (notice sent: %v); want round %d", tries, locked, LockAfter-1)
	}
	// the right code is refused while locked, and works after the lock
	c.add(time.Minute)
	fresh, _ := s.Store.UserByID(ctx, u.ID)
	if err := s.SecondFactor(ctx, fresh, TOTPCode(secret, c.now()), from); !isLocked(err, false) {
		t.Fatalf("right code while locked: %v", err)
	}
	c.add(LockFor)
	got, err := s.SignIn(ctx, "boss@acme.example", "correct horse battery", from)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SecondFactor(ctx, got, TOTPCode(secret, c.now()), from); err != nil {
		t.Fatalf("right code after the lock: %v", err)
	}
}

// TestCodeGuessingOnTheSecurityPage: the codes asked to replace recovery
// codes or turn TOTP off are counted like a sign-in's, so a stolen session
// cannot guess them: the fifth wrong one locks the user.
func TestCodeGuessingOnTheSecurityPage(t *testing.T) {
	ctx := context.Background()
	s, u, c := newService(t)
	from := addr("192.0.2.9")
	secret := NewTOTPSecret()
	if _, err := s.Enrol(ctx, u.ID, secret, TOTPCode(secret, c.now())); err != nil {
		t.Fatal(err)
	}
	fresh, _ := s.Store.UserByID(ctx, u.ID)
	for i := 0; i < LockAfter-1; i++ {
		if err := s.DisableTOTP(ctx, fresh, "000000", from); !errors.Is(err, ErrBadCode) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, err := s.NewRecovery(ctx, fresh, "000000", from); !isLocked(err, false) {
		t.Fatalf("guess %d: %v, want locked", LockAfter, err)
	}
	c.add(time.Minute)
	if err := s.DisableTOTP(ctx, fresh, TOTPCode(secret, c.now()), from); !isLocked(err, false) {
		t.Fatalf("the right code while locked: %v", err)
	}
	if got, _ := s.Store.UserByID(ctx, u.ID); got.TOTPSecret != secret {
		t.Fatal("the second factor went while locked")
	}
}
