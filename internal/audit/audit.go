// Package audit is the tamper-evident audit log (PRODUCT §7.4): an
// append-only chain of entries, each holding the SHA-256 of the one before
// it over a canonical encoding, with checkpoints signed by an Ed25519 key
// now and then, so that editing, inserting, deleting or reordering entries
// breaks the chain, and cutting off the tail is caught by the last
// checkpoint, which signs an entry that is then missing.
//
// Entries never hold secrets or a visitor's data: who did what to what,
// and why (a staff grant), in words and ids.
package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Entry is one record of the log.
type Entry struct {
	Seq     int64     // 1, 2, 3, ... without gaps
	Time    time.Time // UTC, millisecond precision
	Actor   string    // "user:12", "staff:3", "operator", "system"
	Account int64     // the customer account concerned, 0 for none
	Action  string    // "signin", "user.remove", "grant.add", ...
	Target  string    // what it was done to: "user:14", "site:3", ...
	Detail  string    // a short text without secrets
	Grant   int64     // the staff access grant it happened under, 0 for none
	Prev    string    // hex SHA-256 of the entry before ("" for the first)
	Hash    string    // hex SHA-256 of Prev and this entry's fields
}

// Checkpoint signs the hash of one entry.
type Checkpoint struct {
	Seq       int64
	Hash      string
	Time      time.Time
	Signature []byte // Ed25519 over SignedBytes
}

// Store keeps the log. Append must store e only if no entry with its Seq
// exists (else ErrRace), so that two writers cannot fork the chain.
type Store interface {
	LastEntry(ctx context.Context) (Entry, error) // zero Entry when empty
	AppendEntry(ctx context.Context, e Entry) error
	// Entries calls fn for every entry in Seq order, from seq on.
	Entries(ctx context.Context, from int64, fn func(Entry) error) error
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	Checkpoints(ctx context.Context) ([]Checkpoint, error) // in Seq order
}

// ErrRace: another writer appended the same Seq first; read and try again.
var ErrRace = errors.New("audit: another entry took this place in the chain")

// field appends a length-prefixed field, so that no two different entries
// encode alike whatever their texts hold.
func field(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Canonical is the encoding an entry's hash covers: every field but Hash,
// in a fixed order, each length-prefixed.
func Canonical(e Entry) []byte {
	b := []byte("fjord-audit-v1\n")
	for _, s := range []string{strconv.FormatInt(e.Seq, 10), strconv.FormatInt(e.Time.UnixMilli(), 10), e.Actor,
		strconv.FormatInt(e.Account, 10), e.Action, e.Target, e.Detail, strconv.FormatInt(e.Grant, 10), e.Prev} {
		b = field(b, s)
	}
	return b
}

// HashOf is an entry's hash.
func HashOf(e Entry) string {
	h := sha256.Sum256(Canonical(e))
	return hex.EncodeToString(h[:])
}

// SignedBytes is what a checkpoint's signature covers.
func SignedBytes(c Checkpoint) []byte {
	b := []byte("fjord-audit-checkpoint-v1\n")
	for _, s := range []string{strconv.FormatInt(c.Seq, 10), c.Hash, strconv.FormatInt(c.Time.UnixMilli(), 10)} {
		b = field(b, s)
	}
	return b
}

// Log appends to the chain and signs checkpoints.
type Log struct {
	Store Store
	Key   ed25519.PrivateKey // signs checkpoints; nil: no checkpoints
	// Every: a checkpoint after this many entries (default 100); the
	// server also makes one at its hourly check.
	Every int64
	Now   func() time.Time

	// mu makes this process's writers take turns; writers of other
	// processes (servers on one PostgreSQL) are kept off the same place
	// by the store, and retry
	mu sync.Mutex
}

func (l *Log) now() time.Time {
	if l.Now != nil {
		return l.Now().UTC().Truncate(time.Millisecond)
	}
	return time.Now().UTC().Truncate(time.Millisecond)
}

// Record appends an entry (Seq, Time, Prev and Hash are filled in) and
// signs a checkpoint when one is due.
func (l *Log) Record(ctx context.Context, e Entry) (Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for try := 0; ; try++ {
		last, err := l.Store.LastEntry(ctx)
		if err != nil {
			return Entry{}, fmt.Errorf("audit: %w", err)
		}
		e.Seq, e.Time, e.Prev = last.Seq+1, l.now(), last.Hash
		e.Hash = HashOf(e)
		err = l.Store.AppendEntry(ctx, e)
		if errors.Is(err, ErrRace) && try < 50 {
			time.Sleep(time.Duration(mrand.IntN(5)+1) * time.Millisecond)
			continue
		}
		if err != nil {
			return Entry{}, fmt.Errorf("audit: %w", err)
		}
		break
	}
	every := l.Every
	if every <= 0 {
		every = 100
	}
	if l.Key != nil && e.Seq%every == 0 {
		// never sign over a tail rewritten since the last signature
		if _, err := VerifyTail(ctx, l.Store, l.Key.Public().(ed25519.PublicKey)); err != nil {
			return e, fmt.Errorf("audit: not signing entry %d: %w", e.Seq, err)
		}
		if err := l.sign(ctx, e); err != nil {
			return e, err
		}
	}
	return e, nil
}

// Checkpoint signs the last entry now, if it is not signed yet.
func (l *Log) Checkpoint(ctx context.Context) error {
	if l.Key == nil {
		return errors.New("audit: no signing key configured")
	}
	last, err := l.Store.LastEntry(ctx)
	if err != nil || last.Seq == 0 {
		return err
	}
	cps, err := l.Store.Checkpoints(ctx)
	if err != nil {
		return err
	}
	if n := len(cps); n > 0 && cps[n-1].Seq >= last.Seq {
		return nil
	}
	return l.sign(ctx, last)
}

func (l *Log) sign(ctx context.Context, e Entry) error {
	c := Checkpoint{Seq: e.Seq, Hash: e.Hash, Time: l.now()}
	c.Signature = ed25519.Sign(l.Key, SignedBytes(c))
	if err := l.Store.AddCheckpoint(ctx, c); err != nil {
		return fmt.Errorf("audit: checkpoint at %d: %w", e.Seq, err)
	}
	return nil
}

// BreakError names the first entry (or checkpoint) where the log is not
// what it should be.
type BreakError struct {
	Seq    int64
	Reason string
}

func (e *BreakError) Error() string {
	return fmt.Sprintf("audit log broken at entry %d: %s", e.Seq, e.Reason)
}

// Report is what Verify found.
type Report struct {
	Entries     int64
	Checkpoints int
	LastSigned  int64 // the Seq of the last valid checkpoint
}

// Verify checks the whole chain from the first entry and every checkpoint
// against pub; the first break is a *BreakError.
func Verify(ctx context.Context, st Store, pub ed25519.PublicKey) (Report, error) {
	return verify(ctx, st, pub, false)
}

// VerifyTail checks what no signature covers yet: the chain from the last
// signed checkpoint's entry (which must still be the one signed) to the
// end, with every checkpoint's signature. The server runs it at start and
// hourly, before it signs a new checkpoint, so that it never signs a tail
// that was rewritten; fjord audit verify checks the whole chain.
func VerifyTail(ctx context.Context, st Store, pub ed25519.PublicKey) (Report, error) {
	return verify(ctx, st, pub, true)
}

func verify(ctx context.Context, st Store, pub ed25519.PublicKey, tail bool) (Report, error) {
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return Report{}, err
	}
	bySeq := map[int64]Checkpoint{}
	var r Report
	for _, c := range cps {
		if pub != nil && !ed25519.Verify(pub, SignedBytes(c), c.Signature) {
			return r, &BreakError{c.Seq, "its checkpoint's signature does not verify"}
		}
		bySeq[c.Seq] = c
		r.LastSigned = max(r.LastSigned, c.Seq)
	}
	r.Checkpoints = len(cps)
	from := int64(1)
	// without a key, checkpoints are unsigned rows anyone could add: only
	// a verified signature lets the check start at one
	if tail && pub != nil && r.LastSigned > 0 {
		from = r.LastSigned
	}
	var prev Entry
	first := true
	err = st.Entries(ctx, from, func(e Entry) error {
		switch {
		case first && e.Seq != from:
			return &BreakError{from, fmt.Sprintf("missing (the next entry is %d)", e.Seq)}
		case first && from > 1:
			// the start of a tail: its link back is covered by the signature
		case e.Seq != prev.Seq+1:
			return &BreakError{prev.Seq + 1, fmt.Sprintf("missing (the next entry is %d)", e.Seq)}
		case e.Prev != prev.Hash:
			return &BreakError{e.Seq, "it does not follow the entry before it (an entry was changed, inserted, removed or moved)"}
		}
		if HashOf(e) != e.Hash {
			return &BreakError{e.Seq, "its content does not match its hash (it was changed)"}
		}
		if c, ok := bySeq[e.Seq]; ok && c.Hash != e.Hash {
			return &BreakError{e.Seq, "it differs from what its signed checkpoint holds"}
		}
		prev, first = e, false
		return nil
	})
	if err != nil {
		return r, err
	}
	if first && from > 1 {
		return r, &BreakError{from, fmt.Sprintf("missing: a signed checkpoint covers entry %d but the log ends before it (the tail was cut)", from)}
	}
	r.Entries = prev.Seq
	if r.LastSigned > prev.Seq {
		return r, &BreakError{prev.Seq + 1, fmt.Sprintf("missing: the log ends at %d but a signed checkpoint covers entry %d (the tail was cut)", prev.Seq, r.LastSigned)}
	}
	return r, nil
}

// LoadKey reads a checkpoint signing key: a file holding the 32-byte
// Ed25519 seed in hex (what KeyFile writes). The error names the file,
// never its content.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit key %s: want %d bytes in hex (make one with fjord audit keygen)", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// KeyFile writes a new signing key to path, readable by its owner only;
// an existing file is never replaced.
func KeyFile(path string) (ed25519.PublicKey, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if _, err := fmt.Fprintln(f, hex.EncodeToString(key.Seed())); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return pub, f.Close()
}
