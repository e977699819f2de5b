package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"fjord/internal/store"
)

// The second factor (PRODUCT §3.4): TOTP as RFC 6238 with the parameters
// every authenticator app takes by default (HMAC-SHA1, 6 digits, 30 s
// steps), and single-use recovery codes for a lost device.
const (
	totpStep   = 30 // seconds
	totpDigits = 6
	// totpSkew: a code of the step before or after now is accepted too,
	// for clocks that differ by up to half a minute.
	totpSkew = 1
	// RecoveryCodes is how many a user gets; each works once.
	RecoveryCodes = 10
	// PendingTimeout: a sign-in that passed the password must give its
	// second factor within this time.
	PendingTimeout = 5 * time.Minute
)

var (
	// ErrBadCode: a wrong, old or already used code (or recovery code).
	ErrBadCode = errors.New("wrong or already used code")
	b32        = base32.StdEncoding.WithPadding(base32.NoPadding)
)

// NewTOTPSecret returns a random 160-bit secret in base32, as the apps
// take it.
func NewTOTPSecret() string {
	b := make([]byte, 20)
	rand.Read(b)
	return b32.EncodeToString(b)
}

// ParseTOTPSecret checks a base32 secret of 160 bits.
func ParseTOTPSecret(s string) ([]byte, error) {
	k, err := b32.DecodeString(s)
	if err != nil || len(k) != 20 {
		return nil, errors.New("not a TOTP secret (32 base32 characters)")
	}
	return k, nil
}

// TOTPURL is the otpauth:// URL an app reads from the enrolment QR code.
func TOTPURL(issuer, account, secret string) string {
	label := url.PathEscape(issuer + ":" + account)
	q := url.Values{"secret": {secret}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// totpCode is the code of one time step (RFC 4226 dynamic truncation).
func totpCode(key []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1000000)
}

// TOTPCode is the code for a time; tests use it as an app would.
func TOTPCode(secret string, t time.Time) string {
	k, err := ParseTOTPSecret(secret)
	if err != nil {
		return ""
	}
	return totpCode(k, t.Unix()/totpStep)
}

// MatchTOTP returns the time step whose code is code, within the skew of
// now and after the step last used (so a code works once); 0 when none.
func MatchTOTP(secret, code string, now time.Time, lastUsed int64) int64 {
	k, err := ParseTOTPSecret(secret)
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if err != nil || len(code) != totpDigits {
		return 0
	}
	cur := now.Unix() / totpStep
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		if step > lastUsed && hmac.Equal([]byte(totpCode(k, step)), []byte(code)) {
			return step
		}
	}
	return 0
}

// recoveryAlphabet leaves out characters that read alike (0/o, 1/l/i).
const recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// NewRecoveryCodes returns fresh codes ("xxxxx-xxxxx", about 49 bits
// each) and the hashes the store keeps.
func NewRecoveryCodes() (codes, hashes []string) {
	for range RecoveryCodes {
		b := make([]byte, 10)
		rand.Read(b)
		var sb strings.Builder
		for i, c := range b {
			if i == 5 {
				sb.WriteByte('-')
			}
			// 256 % 31 leaves a bias of under 1%; the codes are
			// throttled like passwords, so it costs nothing that matters
			sb.WriteByte(recoveryAlphabet[int(c)%len(recoveryAlphabet)])
		}
		codes = append(codes, sb.String())
		hashes = append(hashes, hashRecovery(sb.String()))
	}
	return codes, hashes
}

// hashRecovery hashes a recovery code as typed: case, spaces and the dash
// do not matter.
func hashRecovery(code string) string {
	code = strings.ToLower(code)
	code = strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, code)
	return HashToken("recovery:" + code)
}

// Enrol checks the first code of a new secret and makes it the user's
// second factor with fresh recovery codes, which it returns to be shown
// once.
func (s *Service) Enrol(ctx context.Context, userID int64, secret, code string) ([]string, error) {
	if _, err := ParseTOTPSecret(secret); err != nil {
		return nil, err
	}
	step := MatchTOTP(secret, code, s.now(), 0)
	if step == 0 {
		return nil, ErrBadCode
	}
	codes, hashes := NewRecoveryCodes()
	if err := s.Store.SetTOTP(ctx, userID, secret, step, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}

// NewRecovery replaces a user's recovery codes, after a current code
// (counted like a sign-in's, so a stolen session cannot guess codes).
func (s *Service) NewRecovery(ctx context.Context, u store.User, code string, from netip.Addr) ([]string, error) {
	if err := s.counted(ctx, u, from, func() error { return s.checkCode(ctx, u, code, false) }); err != nil {
		return nil, err
	}
	codes, hashes := NewRecoveryCodes()
	if err := s.Store.SetRecoveryCodes(ctx, u.ID, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}

// checkCode spends a TOTP code, or (with recovery) a recovery code.
func (s *Service) checkCode(ctx context.Context, u store.User, code string, recovery bool) error {
	if u.TOTPSecret == "" {
		return ErrBadCode
	}
	if step := MatchTOTP(u.TOTPSecret, code, s.now(), u.TOTPLastStep); step != 0 {
		ok, err := s.Store.UseTOTPStep(ctx, u.ID, step)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		return ErrBadCode // the same code, used at the same moment
	}
	if !recovery || len(code) > 40 {
		return ErrBadCode
	}
	ok, err := s.Store.UseRecoveryCode(ctx, u.ID, hashRecovery(code), s.now())
	if err != nil {
		return err
	}
	if !ok {
		return ErrBadCode
	}
	return nil
}

// SecondFactor completes a sign-in that passed the password: a TOTP code
// or a recovery code. Failures count towards the same lock-out as wrong
// passwords, per user and per client address.
func (s *Service) SecondFactor(ctx context.Context, u store.User, code string, from netip.Addr) error {
	return s.counted(ctx, u, from, func() error { return s.checkCode(ctx, u, code, true) })
}

// counted runs a code check as one sign-in attempt of the user and of the
// client address: a wrong code (ErrBadCode) counts towards the lock-out
// (the user is told, with LockCode as the reason: whoever tried knew the
// password), a right one starts the count again.
func (s *Service) counted(ctx context.Context, u store.User, from netip.Addr, check func() error) error {
	now := s.now()
	if until := s.addrAttempt(from, now); !until.IsZero() {
		return &LockedError{Until: until, Address: true}
	}
	if err := s.userAttempt(ctx, u, now, LockCode, ErrBadCode, check, nil); err != nil {
		return err
	}
	s.addrRefund(from)
	return s.Store.SigninSucceeded(ctx, u.ID)
}

// DisableTOTP removes a user's second factor, after a current code
// (counted like a sign-in's).
func (s *Service) DisableTOTP(ctx context.Context, u store.User, code string, from netip.Addr) error {
	if err := s.counted(ctx, u, from, func() error { return s.checkCode(ctx, u, code, false) }); err != nil {
		return err
	}
	return s.Store.ClearTOTP(ctx, u.ID)
}
