package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fjord/internal/audit"
	"fjord/internal/store/sqlite"
)

// newLog is a log of n entries (a checkpoint every 10) in a real SQLite
// file, and a second handle on the file for tampering.
func newLog(t *testing.T, n int) (*audit.Log, *sql.DB, ed25519.PublicKey) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "accounts.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l := &audit.Log{Store: st, Key: key, Every: 10, Now: func() time.Time { clock = clock.Add(time.Second); return clock }}
	for i := 1; i <= n; i++ {
		if _, err := l.Record(context.Background(), audit.Entry{Actor: fmt.Sprintf("user:%d", i%3+1), Account: 1, Action: "signin", Target: "session", Detail: fmt.Sprintf("sign-in %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return l, raw, pub
}

func TestCleanChainVerifies(t *testing.T) {
	l, _, pub := newLog(t, 25)
	r, err := audit.Verify(context.Background(), l.Store, pub)
	if err != nil || r.Entries != 25 || r.Checkpoints != 2 || r.LastSigned != 20 {
		t.Fatalf("%+v %v", r, err)
	}
	// the hourly checkpoint signs the tail
	if err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, err := audit.Verify(context.Background(), l.Store, pub); err != nil || r.LastSigned != 25 {
		t.Fatalf("after a checkpoint: %+v %v", r, err)
	}
}

// TestTamperingIsNamed: each way of changing the stored log is found, and
// the first entry affected is named.
func TestTamperingIsNamed(t *testing.T) {
	for _, c := range []struct {
		name   string
		sql    []string
		seq    int64
		reason string
	}{
		{"edit an entry's text", []string{`UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 7`}, 7, "changed"},
		{"edit and re-hash an entry", nil, 12, "follow"},
		{"delete an entry", []string{`DELETE FROM audit_log WHERE seq = 13`}, 13, "missing"},
		{"insert an entry", []string{`UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5`, `UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1005`,
			`INSERT INTO audit_log SELECT 5, at, actor, account_id, 'user.remove', target, detail, grant_id, prev, hash FROM audit_log WHERE seq = 4`}, 5, ""},
		{"swap two entries", []string{`UPDATE audit_log SET seq = -1 WHERE seq = 3`, `UPDATE audit_log SET seq = 3 WHERE seq = 4`, `UPDATE audit_log SET seq = 4 WHERE seq = -1`}, 3, ""},
		{"cut the tail before the last checkpoint", []string{`DELETE FROM audit_log WHERE seq >= 18`}, 18, "tail was cut"},
		{"forge a checkpoint", []string{`UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_log WHERE seq = 9) WHERE seq = 10`}, 10, "signature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, raw, pub := newLog(t, 25)
			for _, q := range c.sql {
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if c.sql == nil {
				// a careful forger recomputes the entry's own hash: the
				// next entry's link still tells
				var e audit.Entry
				l.Store.Entries(context.Background(), 11, func(x audit.Entry) error {
					if x.Seq == 11 {
						e = x
					}
					return nil
				})
				e.Detail = "nothing happened"
				if _, err := raw.Exec(`UPDATE audit_log SET detail = ?, hash = ? WHERE seq = 11`, e.Detail, audit.HashOf(e)); err != nil {
					t.Fatal(err)
				}
			}
			_, err := audit.Verify(context.Background(), l.Store, pub)
			var b *audit.BreakError
			if !errors.As(err, &b) || b.Seq != c.seq || !strings.Contains(b.Reason, c.reason) {
				t.Fatalf("verify: %v, want a break at %d (%q)", err, c.seq, c.reason)
			}
		})
	}
}

// TestOtherKeyFails: checkpoints signed by another key do not verify.
func TestOtherKeyFails(t *testing.T) {
	l, _, _ := newLog(t, 10)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := audit.Verify(context.Background(), l.Store, other); err == nil {
		t.Fatal("verified with another key")
	}
}

// TestParallelWritersKeepOneChain: writers of two processes (two Logs on
// one store, as two servers on one database) racing for the same place
// do not fork the chain.
func TestParallelWritersKeepOneChain(t *testing.T) {
	l, _, pub := newLog(t, 0)
	logs := []*audit.Log{l, {Store: l.Store}}
	done := make(chan error, 8)
	for w := 0; w < 8; w++ {
		go func() {
			var err error
			for i := 0; i < 10 && err == nil; i++ {
				_, err = logs[w%2].Record(context.Background(), audit.Entry{Actor: "system", Action: "test"})
			}
			done <- err
		}()
	}
	for w := 0; w < 8; w++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if r, err := audit.Verify(context.Background(), l.Store, pub); err != nil || r.Entries != 80 {
		t.Fatalf("%+v %v", r, err)
	}
}

// TestVerifyTail: the tail check reads from the last signed checkpoint on
// and finds what happened there (edits, deletions, a cut, a changed
// checkpointed entry, a forged signature); what lies before it is the whole
// check's (fjord audit verify).
func TestVerifyTail(t *testing.T) {
	for _, c := range []struct {
		name   string
		sql    string
		seq    int64 // 0: the tail check passes
		reason string
	}{
		{"clean", ``, 0, ""},
		{"edit in the tail", `UPDATE audit_log SET detail = 'x' WHERE seq = 23`, 23, "changed"},
		{"delete in the tail", `DELETE FROM audit_log WHERE seq = 22`, 22, "missing"},
		{"edit the checkpointed entry", `UPDATE audit_log SET detail = 'x' WHERE seq = 20`, 20, "changed"},
		{"delete the checkpointed entry", `DELETE FROM audit_log WHERE seq = 20`, 20, "missing"},
		{"cut before the last checkpoint", `DELETE FROM audit_log WHERE seq >= 19`, 20, "missing"},
		{"forge the last checkpoint", `UPDATE audit_checkpoints SET hash = 'x' WHERE seq = 20`, 20, "signature"},
		{"edit before the last checkpoint", `UPDATE audit_log SET detail = 'x' WHERE seq = 5`, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, raw, pub := newLog(t, 25)
			if c.sql != "" {
				if _, err := raw.Exec(c.sql); err != nil {
					t.Fatal(err)
				}
			}
			r, err := audit.VerifyTail(context.Background(), l.Store, pub)
			if c.seq == 0 {
				if err != nil || r.Entries != 25 || r.LastSigned != 20 {
					t.Fatalf("tail: %+v %v", r, err)
				}
				return
			}
			var b *audit.BreakError
			if !errors.As(err, &b) || b.Seq != c.seq || !strings.Contains(b.Reason, c.reason) {
				t.Fatalf("tail: %v, want a break at %d (%q)", err, c.seq, c.reason)
			}
		})
	}
	// without a key the tail check trusts no checkpoint row: it reads all
	l0, raw0, _ := newLog(t, 25)
	raw0.Exec(`UPDATE audit_log SET detail = 'x' WHERE seq = 5`)
	if _, err := audit.VerifyTail(context.Background(), l0.Store, nil); err == nil {
		t.Fatal("the tail check without a key skipped to an unsigned checkpoint")
	}
	// the edit before the checkpoint is the whole check's to find
	l, raw, pub := newLog(t, 25)
	raw.Exec(`UPDATE audit_log SET detail = 'x' WHERE seq = 5`)
	if _, err := audit.Verify(context.Background(), l.Store, pub); err == nil {
		t.Fatal("the whole check missed an edit")
	}
}

// TestNoSigningOverARewrittenTail: the checkpoint every Every entries is
// signed only after the tail since the last one verifies.
func TestNoSigningOverARewrittenTail(t *testing.T) {
	l, raw, pub := newLog(t, 25)
	if _, err := raw.Exec(`UPDATE audit_log SET detail = 'x' WHERE seq = 23`); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		_, err = l.Record(context.Background(), audit.Entry{Actor: "user:1", Action: "signin"})
	}
	var b *audit.BreakError
	if !errors.As(err, &b) || b.Seq != 23 {
		t.Fatalf("recording entry 30: %v, want a refusal naming entry 23", err)
	}
	if r, _ := audit.VerifyTail(context.Background(), l.Store, pub); r.LastSigned != 20 {
		t.Fatalf("a checkpoint was signed over the rewritten tail: %+v", r)
	}
}
