package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"fjord/internal/staff"
	"fjord/internal/store"
)

// Staff sign-in on the console (PRODUCT §7.1): always password and TOTP
// together, set up through a one-time link, with sessions shorter than
// customers' (staff hold the keys to every account).
const (
	StaffSessionIdle     = 30 * time.Minute
	StaffSessionAbsolute = 12 * time.Hour
	StaffSetupTTL        = 72 * time.Hour
)

// StaffSignin signs staff in; the rules of their access are package staff's.
type StaffSignin struct {
	Store staff.Store
	Now   func() time.Time

	once  sync.Once
	dummy string
}

func (s *StaffSignin) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Add makes a staff member and returns the one-time link path's token with
// which they set their password and second factor.
func (s *StaffSignin) Add(ctx context.Context, email, name string, role staff.Role, trained time.Time) (staff.Member, string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if !strings.Contains(email, "@") || len(email) > 254 || strings.ContainsAny(email, " \t\r\n<>,;") {
		return staff.Member{}, "", fmt.Errorf("%q is not an e-mail address", email)
	}
	if _, err := staff.ParseRole(string(role)); err != nil {
		return staff.Member{}, "", err
	}
	if trained.IsZero() {
		return staff.Member{}, "", errors.New("the date of the member's last security and privacy training is required")
	}
	if trained.After(s.now()) {
		return staff.Member{}, "", errors.New("the training date is in the future")
	}
	m, err := s.Store.AddStaff(ctx, staff.Member{Email: email, Name: strings.TrimSpace(name), Role: role, TrainedAt: trained.UTC(), Created: s.now()})
	if err != nil {
		return staff.Member{}, "", err
	}
	tok, err := s.NewSetupLink(ctx, m.ID)
	return m, tok, err
}

// NewSetupLink makes a link that (re)sets a member's password and second
// factor; it works once, for StaffSetupTTL.
func (s *StaffSignin) NewSetupLink(ctx context.Context, id int64) (string, error) {
	tok, hash := NewToken()
	if err := s.Store.CreateStaffLink(ctx, hash, id, s.now().Add(StaffSetupTTL)); err != nil {
		return "", err
	}
	return tok, nil
}

// SetupMember is the member a set-up link is for, without spending it.
func (s *StaffSignin) SetupMember(ctx context.Context, token string) (staff.Member, error) {
	id, err := s.Store.StaffLinkMember(ctx, HashToken(token), s.now())
	if err != nil {
		return staff.Member{}, err
	}
	return s.Store.Staff(ctx, id)
}

// Setup spends a set-up link: the member's new password, and a TOTP
// secret proven by a current code.
func (s *StaffSignin) Setup(ctx context.Context, token, password, secret, code string) (staff.Member, error) {
	if err := CheckPassword(password); err != nil {
		return staff.Member{}, err
	}
	if _, err := ParseTOTPSecret(secret); err != nil {
		return staff.Member{}, err
	}
	step := MatchTOTP(secret, code, s.now(), 0)
	if step == 0 {
		return staff.Member{}, ErrBadCode
	}
	hash, err := HashPassword(password)
	if err != nil {
		return staff.Member{}, err
	}
	id, err := s.Store.UseStaffLink(ctx, HashToken(token), s.now())
	if err != nil {
		return staff.Member{}, err
	}
	if err := s.Store.SetStaffSignin(ctx, id, hash, secret, step); err != nil {
		return staff.Member{}, err
	}
	return s.Store.Staff(ctx, id)
}

func (s *StaffSignin) dummyHash() string {
	s.once.Do(func() {
		tok, _ := NewToken()
		s.dummy, _ = HashPassword(tok)
	})
	return s.dummy
}

// SignIn checks e-mail address, password and TOTP code at once (staff
// always give both). Every path verifies one password hash; wrong
// passwords and codes count towards the same lock-out as a customer's
// (LockAfter failures lock for LockFor). It returns the member,
// ErrBadCredentials or a *LockedError.
func (s *StaffSignin) SignIn(ctx context.Context, email, password, code string) (staff.Member, error) {
	now := s.now()
	m, err := s.Store.StaffByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	if errors.Is(err, store.ErrNotFound) {
		VerifyPassword(s.dummyHash(), password)
		return staff.Member{}, ErrBadCredentials
	}
	if err != nil {
		return staff.Member{}, err
	}
	ok, err := s.Store.StaffAttempt(ctx, m.ID, LockAfter, now)
	if err != nil {
		return staff.Member{}, err
	}
	if !ok {
		VerifyPassword(s.dummyHash(), password)
		until := m.LockedUntil
		if !until.After(now) {
			until = now.Add(LockFor)
		}
		return staff.Member{}, &LockedError{Until: until}
	}
	hash := m.PasswordHash
	if hash == "" {
		hash = s.dummyHash()
	}
	good := VerifyPassword(hash, password) == nil && m.Ready()
	if good {
		step := MatchTOTP(m.TOTPSecret, code, now, m.TOTPLastStep)
		good = step != 0
		if good {
			if good, err = s.Store.UseStaffStep(ctx, m.ID, step); err != nil {
				return staff.Member{}, err
			}
		}
	}
	if !good {
		until, err := s.Store.StaffFailed(ctx, m.ID, LockAfter, LockFor, now)
		if err != nil {
			return staff.Member{}, err
		}
		if !until.IsZero() {
			return staff.Member{}, &LockedError{Until: until}
		}
		return staff.Member{}, ErrBadCredentials
	}
	return m, s.Store.StaffSucceeded(ctx, m.ID)
}

// StartSession opens a console session and returns its cookie's token.
func (s *StaffSignin) StartSession(ctx context.Context, id int64) (string, staff.Session, error) {
	tok, hash := NewToken()
	csrf, _ := NewToken()
	now := s.now()
	sess := staff.Session{TokenHash: hash, Staff: id, CSRF: csrf, Created: now, Seen: now}
	return tok, sess, s.Store.CreateStaffSession(ctx, sess)
}

// ErrNoStaffSession: no such session, or it ended.
var ErrNoStaffSession = errors.New("no staff session, or it has ended")

// Check finds a live session and its member (not removed), and marks it
// used now.
func (s *StaffSignin) Check(ctx context.Context, token string) (staff.Session, staff.Member, error) {
	if token == "" || len(token) > 100 {
		return staff.Session{}, staff.Member{}, ErrNoStaffSession
	}
	sess, err := s.Store.StaffSession(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return staff.Session{}, staff.Member{}, ErrNoStaffSession
	}
	if err != nil {
		return staff.Session{}, staff.Member{}, err
	}
	now := s.now()
	if now.Sub(sess.Seen) >= StaffSessionIdle || now.Sub(sess.Created) >= StaffSessionAbsolute {
		s.Store.DeleteStaffSession(ctx, sess.TokenHash)
		return staff.Session{}, staff.Member{}, ErrNoStaffSession
	}
	m, err := s.Store.Staff(ctx, sess.Staff)
	if errors.Is(err, store.ErrNotFound) || err == nil && !m.Removed.IsZero() {
		return staff.Session{}, staff.Member{}, ErrNoStaffSession
	}
	if err != nil {
		return staff.Session{}, staff.Member{}, err
	}
	if now.Sub(sess.Seen) >= time.Minute {
		if err := s.Store.TouchStaffSession(ctx, sess.TokenHash, now); err != nil {
			return staff.Session{}, staff.Member{}, err
		}
		sess.Seen = now
	}
	return sess, m, nil
}

// SignOut ends a session.
func (s *StaffSignin) SignOut(ctx context.Context, token string) error {
	return s.Store.DeleteStaffSession(ctx, HashToken(token))
}

// Purge deletes ended sessions and spent or expired links.
func (s *StaffSignin) Purge(ctx context.Context) (int64, error) {
	now := s.now()
	return s.Store.PurgeStaffSessions(ctx, now.Add(-StaffSessionIdle), now.Add(-StaffSessionAbsolute), now)
}
