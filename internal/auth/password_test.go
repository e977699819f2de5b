package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q does not state the documented parameters", h)
	}
	if err := VerifyPassword(h, "correct horse battery"); err != nil {
		t.Fatalf("the right password: %v", err)
	}
	for _, wrong := range []string{"correct horse batter", "Correct horse battery", "", strings.Repeat("x", 2000)} {
		if err := VerifyPassword(h, wrong); !errors.Is(err, ErrMismatch) {
			t.Errorf("%.20q: %v, want a mismatch", wrong, err)
		}
	}
	// composed and decomposed forms of one text are one password
	hu, _ := HashPassword("caf\u00e9 au lait!")
	if err := VerifyPassword(hu, "cafe\u0301 au lait!"); err != nil {
		t.Errorf("the decomposed form of the password: %v", err)
	}
	h2, _ := HashPassword("correct horse battery")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

// TestPasswordBounds crosses each bound of an acceptable password.
func TestPasswordBounds(t *testing.T) {
	cases := []struct {
		pw   string
		want error
	}{
		{strings.Repeat("a", MinPasswordLen-1), ErrPasswordTooShort},
		{strings.Repeat("a", MinPasswordLen), nil},
		{strings.Repeat("é", MinPasswordLen), nil}, // characters, not bytes
		{strings.Repeat("a", MaxPasswordBytes), nil},
		{strings.Repeat("a", MaxPasswordBytes+1), ErrPasswordTooLong},
		{"abcdefghij\xff", ErrPasswordInvalid},
	}
	for _, c := range cases {
		if err := CheckPassword(c.pw); !errors.Is(err, c.want) {
			t.Errorf("%.20q (%d bytes): %v, want %v", c.pw, len(c.pw), err, c.want)
		}
		if _, err := HashPassword(c.pw); !errors.Is(err, c.want) {
			t.Errorf("hash %.20q: %v, want %v", c.pw, err, c.want)
		}
	}
	if err := CheckPassword("short"); err == nil || !strings.Contains(err.Error(), "at least 10") {
		t.Errorf("the error should name the bound: %v", err)
	}
}

// TestStoredHashBounds: a stored hash with parameters no hash of ours has
// (a tampered row) is refused before any work, and never matches.
func TestStoredHashBounds(t *testing.T) {
	good, _ := HashPassword("correct horse battery")
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string{}, parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	for _, h := range []string{
		"", "plain", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		with(2, "v=16"),
		with(3, "m=4194304,t=2,p=1"), // 4 GiB
		with(3, "m=262144,t=10,p=8"), // 70 times our work
		with(3, "m=19456,t=1000,p=1"),
		with(3, "m=19456,t=2,p=1,x=1"),
		with(3, "m=019456,t=2,p=1"),
		with(4, "!!"),
		with(4, parts[4][:4]+"\n"+parts[4][4:]),
		with(5, ""),
	} {
		if err := VerifyPassword(h, "correct horse battery"); err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("%q: %v, want a malformed-hash error", h, err)
		}
	}
	// other parameters within bounds are read and used (here they do not
	// reproduce the key, made with ours): a mismatch, not a malformed hash
	older := with(3, "m=16384,t=2,p=1")
	if err := VerifyPassword(older, "correct horse battery"); !errors.Is(err, ErrMismatch) {
		t.Errorf("%s: %v, want a plain mismatch", older, err)
	}
}

// FuzzParseHash: any stored string parses without panic, only within the
// bounds of hashes we make, and an unparsable one never verifies. (The
// argon2 work itself is left to the tests above: at ~25 ms a run it would
// starve the fuzzer.)
func FuzzParseHash(f *testing.F) {
	good, _ := HashPassword("correct horse battery")
	f.Add(good, "correct horse battery")
	f.Add("$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "x")
	f.Add("$$$$$", "\xff")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		p, err := parseHash(hash)
		if err != nil {
			if VerifyPassword(hash, pw) == nil {
				t.Fatalf("an unparsable hash %q verified", hash)
			}
			return
		}
		if p.memory < 8*1024 || p.memory > 4*argonMemory || p.time < 1 || p.time > 2*argonTime || p.threads < 1 || p.threads > 4 ||
			len(p.salt) < 8 || len(p.key) < 16 {
			t.Fatalf("%q parsed to out-of-bounds parameters %+v", hash, p)
		}
	})
}
