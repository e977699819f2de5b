// Package auth holds how people prove who they are: passwords now;
// sessions, second factors, API keys and CSRF tokens as they arrive
// (PRODUCT §3.4).
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Argon2id parameters of new hashes: OWASP's first recommendation (19 MiB,
// two passes, one lane), about 25 ms of one core here. A stored hash keeps
// its own parameters, so raising these later needs no migration: a hash
// with older parameters still verifies.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Password length bounds, in characters (and at most 1,024 bytes: the hash
// reads every byte, so the bound caps the work a request can ask for).
const (
	MinPasswordLen   = 10
	MaxPasswordBytes = 1024
)

var (
	ErrPasswordTooShort = fmt.Errorf("the password is too short: at least %d characters", MinPasswordLen)
	ErrPasswordTooLong  = fmt.Errorf("the password is too long: at most %d bytes", MaxPasswordBytes)
	ErrPasswordInvalid  = errors.New("the password is not valid UTF-8 text")
	// ErrMismatch: the password is not the one the hash was made from.
	ErrMismatch = errors.New("wrong password")
	errBadHash  = errors.New("stored password hash is malformed")
)

// argonSlots bounds the hashes computed at once (each takes up to 4x our
// 19 MiB): sign-in bursts queue instead of taking the memory.
var argonSlots = make(chan struct{}, 2*runtime.NumCPU())

// CheckPassword tells whether a new password is acceptable.
func CheckPassword(pw string) error {
	pw = norm.NFC.String(pw)
	switch {
	case len(pw) > MaxPasswordBytes:
		return ErrPasswordTooLong
	case !utf8.ValidString(pw):
		return ErrPasswordInvalid
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return ErrPasswordTooShort
	}
	return nil
}

// HashPassword returns the PHC-format argon2id hash of an acceptable
// password: $argon2id$v=19$m=...,t=...,p=...$salt$key.
func HashPassword(pw string) (string, error) {
	if err := CheckPassword(pw); err != nil {
		return "", err
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	argonSlots <- struct{}{}
	key := argon2.IDKey([]byte(norm.NFC.String(pw)), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	<-argonSlots
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// hashParams are a stored hash's parts.
type hashParams struct {
	memory    uint32
	time      uint32
	threads   uint8
	salt, key []byte
}

// parseHash reads a stored hash, refusing parameters no hash of ours has
// (so a tampered row cannot make a sign-in burn a gigabyte).
func parseHash(h string) (hashParams, error) {
	var p hashParams
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, errBadHash
	}
	var m, t, th uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &th); err != nil || n != 3 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", m, t, th) != parts[3] {
		return p, errBadHash
	}
	// within a few times our own parameters: a tampered row may not make
	// a sign-in cost seconds
	if m < 8*1024 || m > 4*argonMemory || t < 1 || t > 2*argonTime || th < 1 || th > 4 {
		return p, errBadHash
	}
	enc := base64.RawStdEncoding.Strict()
	if strings.ContainsAny(parts[4]+parts[5], "\r\n") {
		return p, errBadHash
	}
	salt, err := enc.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, errBadHash
	}
	key, err := enc.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, errBadHash
	}
	return hashParams{memory: m, time: t, threads: uint8(th), salt: salt, key: key}, nil
}

// VerifyPassword checks a password against a stored hash: nil when it
// matches, ErrMismatch when not, another error when the hash is unusable.
// The comparison takes the same time however much of the key matches.
func VerifyPassword(hash, pw string) error {
	p, err := parseHash(hash)
	if err != nil {
		return err
	}
	if len(pw) > MaxPasswordBytes {
		return ErrMismatch
	}
	// the same text typed as composed or decomposed characters is the
	// same password
	argonSlots <- struct{}{}
	key := argon2.IDKey([]byte(norm.NFC.String(pw)), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	<-argonSlots
	if subtle.ConstantTimeCompare(key, p.key) != 1 {
		return ErrMismatch
	}
	return nil
}
