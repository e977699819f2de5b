package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"fjord/internal/store"
)

// Limits of sign-in (PRODUCT §3.4), stated in the README.
const (
	// IdleTimeout ends a session not used for this long; AbsoluteTimeout
	// ends every session this long after sign-in, used or not.
	IdleTimeout     = 2 * time.Hour
	AbsoluteTimeout = 24 * time.Hour
	// LockAfter failed sign-ins in a row lock a user out for LockFor.
	LockAfter = 5
	LockFor   = 15 * time.Minute
	// AddrLimit failed sign-ins from one client address (an IPv6 /64)
	// within AddrWindow refuse further tries from it until the window
	// has passed.
	AddrLimit  = 20
	AddrWindow = 15 * time.Minute
	// WelcomeTTL and ResetTTL are how long one-time links work.
	WelcomeTTL = 72 * time.Hour
	ResetTTL   = time.Hour
	// touchEvery: a session's last use is written at most this often.
	touchEvery = time.Minute
)

// Why a user got locked out: wrong passwords, or wrong codes after the
// right password (so the password is known to whoever tried).
const (
	LockPassword = "password"
	LockCode     = "code"
)

var (
	// ErrBadCredentials is all a failed sign-in learns: an unknown address
	// and a wrong password read the same.
	ErrBadCredentials = errors.New("wrong e-mail address or password")
	// ErrNoSession: no session, or one that ended.
	ErrNoSession = errors.New("not signed in, or the session has ended")
)

// LockedError: sign-in is refused until Until, for the user (too many
// failures on the account) or for the client address.
type LockedError struct {
	Until   time.Time
	Address bool
}

func (e *LockedError) Error() string {
	who := "this account"
	if e.Address {
		who = "this address"
	}
	return fmt.Sprintf("Too many failed sign-ins: sign-in for %s is locked until %s UTC", who, e.Until.UTC().Format("15:04"))
}

// Service signs users in and keeps their sessions and one-time links.
type Service struct {
	Store store.AccountStore
	Now   func() time.Time
	// Locked is told when a user gets locked out (to send them a notice),
	// and why (LockPassword or LockCode); it may be nil.
	Locked func(ctx context.Context, u store.User, until time.Time, reason string)

	mu     sync.Mutex
	addrs  map[netip.Prefix]*addrFailures
	ghosts map[string]*ghost
	pruned time.Time
	dummy  string
}

type addrFailures struct {
	n     int
	since time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// NewToken returns a random token (256 bits, URL-safe) and its stored hash.
func NewToken() (token, hash string) {
	b := make([]byte, 32)
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is what the store keeps of a token.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// addrKey is the client address as throttling counts it: an IPv4 address,
// or the /64 of an IPv6 one (what one host usually has).
func addrKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// addrAttempt counts an attempt from an address before its password is
// checked, so parallel guesses cannot outrun the limit; it returns until
// when the address may not try (zero: counted, go ahead). A success gives
// the attempt back (addrRefund): only failures count.
func (s *Service) addrAttempt(a netip.Addr, now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addrs == nil {
		s.addrs = map[netip.Prefix]*addrFailures{}
	}
	s.prune(now)
	k := addrKey(a)
	f := s.addrs[k]
	if f == nil || now.Sub(f.since) >= AddrWindow {
		f = &addrFailures{since: now}
		s.addrs[k] = f
	}
	if f.n >= AddrLimit {
		return f.since.Add(AddrWindow)
	}
	f.n++
	return time.Time{}
}

func (s *Service) addrRefund(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.addrs[addrKey(a)]; f != nil && f.n > 0 {
		f.n--
	}
}

// prune forgets what has expired, at most once a minute, so that the maps
// stay small (the caller holds mu).
func (s *Service) prune(now time.Time) {
	if now.Sub(s.pruned) < time.Minute {
		return
	}
	s.pruned = now
	for k, f := range s.addrs {
		if now.Sub(f.since) >= AddrWindow {
			delete(s.addrs, k)
		}
	}
	for k, g := range s.ghosts {
		if now.Sub(g.seen) >= LockFor && !g.until.After(now) {
			delete(s.ghosts, k)
		}
	}
}

// ghost keeps the failures of an e-mail address no user has, counted as a
// user's are, so that a lock-out does not tell which addresses exist.
type ghost struct {
	n           int
	until, seen time.Time
}

// ghostFailed counts a failure for an unknown address and returns until
// when it is locked (zero: not locked).
func (s *Service) ghostFailed(email string, now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ghosts == nil {
		s.ghosts = map[string]*ghost{}
	}
	s.prune(now)
	k := HashToken(strings.ToLower(strings.TrimSpace(email)))
	g := s.ghosts[k]
	if g == nil {
		g = &ghost{}
		s.ghosts[k] = g
	}
	g.seen = now
	if g.until.After(now) {
		return g.until
	}
	if g.n++; g.n >= LockAfter {
		g.n, g.until = 0, now.Add(LockFor)
		return g.until
	}
	return time.Time{}
}

// dummyHash is verified against when the e-mail address is unknown, so
// that the answer takes as long as for a known one.
func (s *Service) dummyHash() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dummy == "" {
		b := make([]byte, 24)
		rand.Read(b)
		s.dummy, _ = HashPassword(base64.RawURLEncoding.EncodeToString(b))
	}
	return s.dummy
}

// SignIn checks an e-mail address and password from a client address. It
// returns the user, ErrBadCredentials, or a *LockedError. A user with a
// second factor is not signed in yet: SecondFactor must follow. Every path
// verifies one password hash, and an unknown address is counted and
// locked like a known one, so neither time nor answer tells which
// addresses have an account.
func (s *Service) SignIn(ctx context.Context, email, password string, from netip.Addr) (store.User, error) {
	now := s.now()
	if until := s.addrAttempt(from, now); !until.IsZero() {
		return store.User{}, &LockedError{Until: until, Address: true}
	}
	u, err := s.Store.UserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		VerifyPassword(s.dummyHash(), password)
		if until := s.ghostFailed(email, now); !until.IsZero() {
			return store.User{}, &LockedError{Until: until}
		}
		return store.User{}, ErrBadCredentials
	}
	if err != nil {
		return store.User{}, err
	}
	err = s.userAttempt(ctx, u, now, LockPassword, ErrBadCredentials, func() error {
		hash := u.PasswordHash
		if hash == "" {
			hash = s.dummyHash() // no password set yet: only the welcome link signs in
		}
		if VerifyPassword(hash, password) != nil || u.PasswordHash == "" {
			return ErrBadCredentials
		}
		return nil
	}, func() { VerifyPassword(s.dummyHash(), password) })
	if err != nil {
		return store.User{}, err
	}
	s.addrRefund(from)
	if u.TOTPSecret != "" {
		// not a failure, but no success either until the second factor is
		// given: a known password must not reset the count of wrong codes
		if err := s.Store.SigninRefund(ctx, u.ID); err != nil {
			return store.User{}, err
		}
		return u, nil
	}
	if err := s.Store.SigninSucceeded(ctx, u.ID); err != nil {
		return store.User{}, err
	}
	return u, nil
}

// userAttempt is one attempt of user u to prove who they are (a password,
// or a code): it is counted before check runs, so parallel guesses cannot
// outrun the lock. A locked user gets a *LockedError (whileLocked runs
// instead of check, to take as long); a check that fails with wrong is
// counted, and once LockAfter in a row have failed the user is locked and
// told (reason: what failed); other errors of check pass through. nil: the
// check passed (the caller then resets or refunds the count).
func (s *Service) userAttempt(ctx context.Context, u store.User, now time.Time, reason string, wrong error, check func() error, whileLocked func()) error {
	ok, err := s.Store.SigninAttempt(ctx, u.ID, LockAfter, now)
	if err != nil {
		return err
	}
	if !ok {
		// locked, or as many attempts in flight as the lock allows
		if whileLocked != nil {
			whileLocked()
		}
		until := u.LockedUntil
		if !until.After(now) {
			until = now.Add(LockFor)
		}
		return &LockedError{Until: until}
	}
	err = check()
	if err == nil || !errors.Is(err, wrong) {
		return err
	}
	until, ferr := s.Store.SigninFailed(ctx, u.ID, LockAfter, LockFor, now)
	if ferr != nil {
		return ferr
	}
	if !until.IsZero() {
		if s.Locked != nil {
			s.Locked(ctx, u, until, reason)
		}
		return &LockedError{Until: until}
	}
	return wrong
}

// StartSession opens a new session for a user who just proved who they
// are, and returns the token for the cookie. The caller ends the session
// the browser had before (rotation on sign-in).
// A pending session has passed the password only and owes the second
// factor; it serves nothing else and ends after PendingTimeout.
func (s *Service) StartSession(ctx context.Context, userID int64, pending bool) (string, store.Session, error) {
	token, hash := NewToken()
	csrf, _ := NewToken()
	now := s.now()
	sess := store.Session{TokenHash: hash, UserID: userID, CSRF: csrf, Created: now, Seen: now, Pending: pending}
	if err := s.Store.CreateSession(ctx, sess); err != nil {
		return "", store.Session{}, err
	}
	return token, sess, nil
}

// Check finds the live session of a cookie's token and its user; an idle
// or old session is ended and is ErrNoSession. With use, the request
// counts as use of the session (a background refresh does not).
func (s *Service) Check(ctx context.Context, token string, use bool) (store.Session, store.User, error) {
	if token == "" || len(token) > 100 {
		return store.Session{}, store.User{}, ErrNoSession
	}
	hash := HashToken(token)
	sess, err := s.Store.Session(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, store.User{}, ErrNoSession
	}
	if err != nil {
		return store.Session{}, store.User{}, err
	}
	now := s.now()
	if now.Sub(sess.Seen) >= IdleTimeout || now.Sub(sess.Created) >= AbsoluteTimeout || sess.Pending && now.Sub(sess.Created) >= PendingTimeout {
		if err := s.Store.DeleteSession(ctx, hash); err != nil {
			return store.Session{}, store.User{}, err
		}
		return store.Session{}, store.User{}, ErrNoSession
	}
	u, err := s.Store.UserByID(ctx, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, store.User{}, ErrNoSession
	}
	if err != nil {
		return store.Session{}, store.User{}, err
	}
	if use && now.Sub(sess.Seen) >= touchEvery {
		if err := s.Store.TouchSession(ctx, hash, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.Session{}, store.User{}, err
		}
		sess.Seen = now
	}
	return sess, u, nil
}

// SignOut ends the session of a token.
func (s *Service) SignOut(ctx context.Context, token string) error {
	return s.Store.DeleteSession(ctx, HashToken(token))
}

// NewLink makes a one-time link token of a purpose for a user.
func (s *Service) NewLink(ctx context.Context, userID int64, purpose string) (string, error) {
	ttl := ResetTTL
	if purpose == store.LinkWelcome {
		ttl = WelcomeTTL
	}
	token, hash := NewToken()
	now := s.now()
	if err := s.Store.CreateLink(ctx, store.Link{TokenHash: hash, UserID: userID, Purpose: purpose, Created: now, Expires: now.Add(ttl)}); err != nil {
		return "", err
	}
	return token, nil
}

// UseLink spends a link and returns its user; a link that is unknown,
// used or expired is store.ErrNotFound.
func (s *Service) UseLink(ctx context.Context, token, purpose string) (store.User, error) {
	if token == "" || len(token) > 100 {
		return store.User{}, fmt.Errorf("%s link: %w", purpose, store.ErrNotFound)
	}
	id, err := s.Store.UseLink(ctx, HashToken(token), purpose, s.now())
	if err != nil {
		return store.User{}, err
	}
	return s.Store.UserByID(ctx, id)
}

// Purge deletes the sessions and links that can no longer be used (the
// daily job; Check ends them too when they are presented).
func (s *Service) Purge(ctx context.Context) (int64, error) {
	now := s.now()
	return s.Store.PurgeSessions(ctx, now.Add(-IdleTimeout), now.Add(-AbsoluteTimeout), now.Add(-PendingTimeout), now)
}
