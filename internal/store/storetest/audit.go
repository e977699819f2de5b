package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"fjord/internal/audit"
	"fjord/internal/store"
)

// auditLog: the account store keeps the audit chain and its checkpoints
// (both engines), refuses a second entry at the same place, and a chain
// written through it verifies.
func auditLog(t *testing.T, open func(t *testing.T) store.AccountStore) {
	ctx := context.Background()
	s, ok := open(t).(audit.Store)
	if !ok {
		t.Fatal("the account store keeps no audit log")
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	l := &audit.Log{Store: s, Key: key, Every: 3}
	for i := 0; i < 7; i++ {
		if _, err := l.Record(ctx, audit.Entry{Actor: "user:1", Account: 1, Action: "signin", Target: "user:1", Detail: "a 'quoted' ünïcode detail"}); err != nil {
			t.Fatal(err)
		}
	}
	last, err := s.LastEntry(ctx)
	if err != nil || last.Seq != 7 || last.Detail != "a 'quoted' ünïcode detail" {
		t.Fatalf("last entry %+v %v", last, err)
	}
	if err := s.AppendEntry(ctx, audit.Entry{Seq: 7, Time: last.Time, Actor: "x", Action: "fork", Prev: last.Prev, Hash: "h"}); !errors.Is(err, audit.ErrRace) {
		t.Fatalf("a second entry 7: %v, want ErrRace", err)
	}
	if err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := audit.Verify(ctx, s, pub)
	if err != nil || r.Entries != 7 || r.Checkpoints != 3 || r.LastSigned != 7 {
		t.Fatalf("verify: %+v %v", r, err)
	}
	var seqs []int64
	s.Entries(ctx, 5, func(e audit.Entry) error { seqs = append(seqs, e.Seq); return nil })
	if len(seqs) != 3 || seqs[0] != 5 || seqs[2] != 7 {
		t.Fatalf("entries from 5: %v", seqs)
	}
}
