package forward

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// TokenPrefix starts every collector token, so one found in a log or a
// repository is recognised (and the log checks of the tests find it).
const TokenPrefix = "fjc_"

// NewToken makes a collector's token and the line of the collectors file
// that admits it: the name and the token's SHA-256, never the token.
func NewToken(name string) (token, line string, err error) {
	if err := CheckName(name); err != nil {
		return "", "", err
	}
	b := make([]byte, 32)
	rand.Read(b)
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, name + " " + HashToken(token), nil
}

// HashToken is the hex SHA-256 of a token: a token is 256 random bits, so
// a plain hash is enough to keep the file useless to a reader.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

var collectorName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// CheckName: a collector's name is what logs and metrics show of it.
func CheckName(name string) error {
	if !collectorName.MatchString(name) {
		return fmt.Errorf("collector name %q: want 1 to 63 lower-case letters, digits and hyphens, like edge-fra-1", name)
	}
	return nil
}

// Tokens admits the edge collectors listed in a file of lines
// "NAME SHA256-OF-TOKEN" (# starts a comment). The file is read again when
// it changes (looked at most every 2 s), so adding or removing a collector
// needs no restart.
type Tokens struct {
	Path string

	mu      sync.Mutex
	checked time.Time
	modTime time.Time
	size    int64
	byHash  map[string]string
	err     error
}

// ParseTokens reads a collectors file; an error names the line.
func ParseTokens(data []byte) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want NAME SHA256, as `fjord collector add` prints", n)
		}
		if err := CheckName(f[0]); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if h, err := hex.DecodeString(f[1]); err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("line %d: the token's hash must be 64 hexadecimal digits", n)
		}
		m[strings.ToLower(f[1])] = f[0]
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// Check returns the name of the collector whose token this is. A file
// that cannot be read or parsed admits nobody, and Check says why (without
// the token).
func (t *Tokens) Check(token string) (name string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := time.Now(); now.Sub(t.checked) >= 2*time.Second || t.byHash == nil && t.err == nil {
		t.checked = now
		t.reload()
	}
	if t.err != nil {
		return "", t.err
	}
	if !strings.HasPrefix(token, TokenPrefix) {
		return "", ErrBadToken
	}
	name, ok := t.byHash[HashToken(token)]
	if !ok {
		return "", ErrBadToken
	}
	return name, nil
}

// ErrBadToken: no collector has this token.
var ErrBadToken = fmt.Errorf("not a collector token of this service (fjord collector add makes one)")

func (t *Tokens) reload() {
	fi, err := os.Stat(t.Path)
	if err != nil {
		t.byHash, t.err = nil, fmt.Errorf("collectors file: %w", err)
		return
	}
	if t.byHash != nil && fi.ModTime().Equal(t.modTime) && fi.Size() == t.size {
		return
	}
	data, err := os.ReadFile(t.Path)
	if err == nil {
		t.byHash, err = ParseTokens(data)
	}
	if err != nil {
		t.byHash, t.err = nil, fmt.Errorf("collectors file %s: %w", t.Path, err)
		return
	}
	t.modTime, t.size, t.err = fi.ModTime(), fi.Size(), nil
}
