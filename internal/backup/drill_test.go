package backup_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fjord/internal/backup"
)

// TestDrillFailures: a corrupted, truncated, wrong-key, tampered or
// unfinished backup fails its drill with a reason that says which and
// why; the good one beside them passes.
func TestDrillFailures(t *testing.T) {
	ctx := context.Background()
	s := embedded(t)
	key := newKey(t)
	target := backup.Dir(filepath.Join(t.TempDir(), "backups"))
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	make := func() string {
		at = at.Add(time.Minute)
		now := at
		m, err := backup.Create(ctx, backup.Options{Target: target, Sources: s.sources, Recipients: key.Recipients, WorkDir: t.TempDir(), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	file := func(id, name string) string { return filepath.Join(string(target), id, name) }
	check := backup.Check{Key: key, Scratch: t.TempDir(), AuditKey: s.auditPub}

	cases := []struct {
		name, want string
		spoil      func(id string)
		check      backup.Check
	}{
		{"good", "", func(string) {}, check},
		{"corrupted", "events.duckdb.zst.age: checksum", func(id string) {
			p := file(id, "events.duckdb.zst.age")
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x40
			os.WriteFile(p, b, 0o600)
		}, check},
		{"truncated", "accounts.sqlite.zst.age: ", func(id string) {
			p := file(id, "accounts.sqlite.zst.age")
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()/3)
		}, check},
		{"wrong key", "the backup key does not open it", func(string) {}, backup.Check{Key: newKey(t), Scratch: t.TempDir(), AuditKey: s.auditPub}},
		{"tampered manifest", "table sites: 1 rows, the manifest says 2", func(id string) {
			// the manifest claims a site more than the snapshot holds
			p := file(id, "manifest.json")
			var m map[string]any
			b, _ := os.ReadFile(p)
			json.Unmarshal(b, &m)
			tables := m["files"].([]any)[0].(map[string]any)["tables"].(map[string]any)
			tables["sites"].(map[string]any)["rows"] = 2
			b, _ = json.Marshal(m)
			os.WriteFile(p, b, 0o600)
		}, check},
		{"no manifest", "no manifest", func(id string) { os.Remove(file(id, "manifest.json")) }, check},
		{"other audit key", "audit chain", func(string) {}, backup.Check{Key: key, Scratch: t.TempDir(), AuditKey: newAuditKey()}},
	}
	for _, c := range cases {
		id := make()
		c.spoil(id)
		d := backup.Verify(ctx, target, id, c.check)
		if c.want == "" {
			if !d.OK {
				t.Errorf("%s: drill failed: %s", c.name, d.Reason)
			}
			continue
		}
		if d.OK || !strings.Contains(d.Reason, c.want) {
			t.Errorf("%s: drill ok=%v reason %q, want a failure saying %q", c.name, d.OK, d.Reason, c.want)
		}
		if strings.Contains(d.Reason, "AGE-SECRET-KEY") {
			t.Errorf("%s: the reason holds the key", c.name)
		}
	}
	// the drills are recorded; list shows each with its result
	list, err := backup.List(target)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(cases) {
		t.Fatalf("list holds %d backups, want %d", len(list), len(cases))
	}
	for i, e := range list {
		wantOK := cases[i].want == ""
		if e.Drill == nil || e.Drill.OK != wantOK {
			t.Errorf("%s: listed drill %+v", cases[i].name, e.Drill)
		}
	}
	if !list[5].Incomplete {
		t.Error("a backup without a manifest is not listed as incomplete")
	}
}

// newAuditKey is a public key that signed none of the checkpoints.
func newAuditKey() ed25519.PublicKey {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	return pub
}

// TestServiceStatus: the failure shown is the newest backup's: drilling
// an older good one again does not hide it, and a restart finds it; a
// crash's scratch copies go at start; a restore that may not replace one
// store writes none.
func TestServiceStatus(t *testing.T) {
	ctx := context.Background()
	s := embedded(t)
	dir := s.dir
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	flushed := 0
	svc := &backup.Service{Target: backup.Dir(filepath.Join(t.TempDir(), "b")), Key: newKey(t), WorkDir: dir,
		Keep: backup.Keep{Daily: 7}, Check: backup.Check{Scratch: dir, AuditKey: s.auditPub}, Now: func() time.Time { return at },
		Before:  func(context.Context) error { flushed++; return nil },
		Sources: s.sources}
	stale := filepath.Join(dir, "backup-123")
	os.Mkdir(stale, 0o700)
	if err := svc.Load(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("a crash's scratch copy is still there after Load")
	}
	first, d, err := svc.Run(ctx)
	if err != nil || !d.OK {
		t.Fatalf("first backup: %v %+v", err, d)
	}
	at = at.Add(24 * time.Hour)
	second, _, err := svc.Run(ctx)
	if err != nil || flushed != 2 {
		t.Fatalf("second backup: %v, Before ran %d times", err, flushed)
	}
	p := filepath.Join(string(svc.Target.(backup.Dir)), second.ID, "accounts.sqlite.zst.age")
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o600)
	if d := svc.Verify(ctx, second.ID); d.OK {
		t.Fatal("the drill of a corrupted backup passed")
	}
	if d := svc.Verify(ctx, first.ID); !d.OK {
		t.Fatalf("the older backup's drill: %s", d.Reason)
	}
	st := svc.Status()
	if st.LastFailure == "" || st.LastGoodID != first.ID {
		t.Fatalf("status after drilling the older one: %+v", st)
	}
	again := &backup.Service{Target: svc.Target, WorkDir: dir, Check: backup.Check{Scratch: dir}}
	if err := again.Load(); err != nil {
		t.Fatal(err)
	}
	if st := again.Status(); st.LastFailure == "" || st.LastGoodID != first.ID || st.LastSize == 0 {
		t.Fatalf("status after a restart: %+v", st)
	}

	// a data dir that holds an event store: without --force nothing at all
	// is restored, not even the accounts
	dest := t.TempDir()
	os.WriteFile(filepath.Join(dest, "events.duckdb"), []byte("mine"), 0o600)
	if _, err := backup.Restore(ctx, svc.Target, first.ID, svc.Key, backup.RestoreTo{DataDir: dest}); err == nil {
		t.Fatal("a restore over an event store without force succeeded")
	}
	if _, err := os.Stat(filepath.Join(dest, "accounts.db")); err == nil {
		t.Fatal("a refused restore wrote the accounts")
	}
}
