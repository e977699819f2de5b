package backup_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fjord/internal/audit"
	"fjord/internal/backup"
	"fjord/internal/store"
	"fjord/internal/store/duckdb"
	"fjord/internal/store/postgres"
	"fjord/internal/store/sqlite"
	"fjord/internal/store/storetest"
)

// source is what a test backs up: both stores, an audit log, and a
// writer that keeps applying batches of events while the backup runs.
type source struct {
	accounts store.AccountStore
	events   store.EventStore
	auditPub ed25519.PublicKey
	sources  []backup.Source
	dir      string // of embedded stores

	mu      sync.Mutex
	batches [][][16]byte // the ids of batch i, applied at journal offset i+1
}

func newKey(t *testing.T) backup.Key {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.key")
	if _, err := backup.KeyGen(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	k, err := backup.LoadKey(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fill makes an account with an audit log and a first batch of events.
func (s *source) fill(t *testing.T) {
	ctx := context.Background()
	acc, _, err := s.accounts.CreateAccount(ctx, store.Account{Name: "Acme"}, store.User{Email: "boss@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.accounts.AddSite(ctx, store.Site{AccountID: acc.ID, Domain: "acme.example", TimeZone: "Europe/Helsinki"}); err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	s.auditPub = pub
	log := &audit.Log{Store: s.accounts.(audit.Store), Key: key, Every: 5}
	for i := range 12 {
		if _, err := log.Record(ctx, audit.Entry{Actor: "operator", Account: acc.ID, Action: "test", Target: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	s.apply(t, 50)
}

// apply stores a batch of n events at the next journal position.
func (s *source) apply(t *testing.T, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([][16]byte, n)
	evs := make([]store.Event, n)
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for i := range evs {
		rand.Read(ids[i][:])
		evs[i] = store.Event{ID: ids[i], SiteID: 1, Time: base.Add(time.Duration(len(s.batches)*n+i) * time.Second), Name: "pageview",
			VisitorID: binary.LittleEndian.Uint64(ids[i][:8]), Hostname: "acme.example", Path: fmt.Sprintf("/p/%d", i%7), Props: "{}"}
	}
	pos := store.JournalPos{Journal: "test", Segment: 1, Offset: int64(len(s.batches) + 1)}
	if err := s.events.Apply(context.Background(), evs, pos); err != nil {
		t.Errorf("apply: %v", err)
		return
	}
	s.batches = append(s.batches, ids)
}

// ingest keeps applying batches until stop is closed.
func (s *source) ingest(t *testing.T, stop chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				s.apply(t, 20)
			}
		}
	}()
	return &wg
}

// checkBackup backs the source up under continuous ingest, drills the
// backup, and checks that its events are exactly the batches applied up
// to the position it holds.
func checkBackup(t *testing.T, s *source, key backup.Key, check backup.Check, restoredEvents func(backup.Target, backup.Manifest) store.EventStore) (backup.Target, backup.Manifest) {
	ctx := context.Background()
	target := backup.Dir(filepath.Join(t.TempDir(), "backups"))
	stop := make(chan struct{})
	wg := s.ingest(t, stop)
	m, err := backup.Create(ctx, backup.Options{Target: target, Sources: s.sources, Recipients: key.Recipients, Region: "eu-test", WorkDir: t.TempDir()})
	time.Sleep(50 * time.Millisecond) // ingest goes on after the snapshot
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if m.Audit != 12 {
		t.Fatalf("the manifest counts %d audit entries, want 12", m.Audit)
	}
	d := backup.Verify(ctx, target, m.ID, check)
	if !d.OK {
		t.Fatalf("drill of a good backup failed: %s", d.Reason)
	}
	list, err := backup.List(target)
	if err != nil || len(list) != 1 || list[0].Drill == nil || !list[0].Drill.OK || list[0].ID != m.ID {
		t.Fatalf("list: %+v %v", list, err)
	}
	ev := restoredEvents(target, m)
	pos, err := ev.Position(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos.Offset < 1 || int(pos.Offset) >= len(s.batches) {
		t.Fatalf("the backup holds batches up to %d of %d: the snapshot was not taken under ingest", pos.Offset, len(s.batches))
	}
	var want int64
	for _, b := range s.batches[:pos.Offset] {
		want += int64(len(b))
	}
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	got, err := ev.CountEvents(ctx, 1, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("the restored store holds %d events; the %d batches up to its position hold %d", got, pos.Offset, want)
	}
	return target, m
}

// embedded is a filled source on SQLite and DuckDB files in dir.
func embedded(t *testing.T) *source {
	ctx := context.Background()
	dir := t.TempDir()
	acc, err := sqlite.Open(ctx, filepath.Join(dir, "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acc.Close() })
	ev, err := duckdb.Open(ctx, filepath.Join(dir, "events.duckdb"), duckdb.Options{MemoryLimit: "256MB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	s := &source{accounts: acc, events: ev, dir: dir, sources: []backup.Source{
		{Name: "accounts", Engine: backup.SQLite, DB: acc.DB},
		{Name: "events", Engine: backup.DuckDB, DB: ev.DB},
	}}
	s.fill(t)
	return s
}

// TestEmbedded: SQLite and DuckDB backed up under ingest, drilled, and
// restored into a fresh data dir whose every table equals the snapshot's
// and whose audit chain verifies; a second restore is refused without
// force.
func TestEmbedded(t *testing.T) {
	ctx := context.Background()
	s := embedded(t)
	key := newKey(t)
	check := backup.Check{Key: key, Scratch: t.TempDir(), AuditKey: s.auditPub}
	restored := filepath.Join(t.TempDir(), "restored")
	target, m := checkBackup(t, s, key, check, func(target backup.Target, m backup.Manifest) store.EventStore {
		if _, err := backup.Restore(ctx, target, m.ID, key, backup.RestoreTo{DataDir: restored}); err != nil {
			t.Fatal(err)
		}
		rev, err := duckdb.Open(ctx, filepath.Join(restored, "events.duckdb"), duckdb.Options{MemoryLimit: "256MB", Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rev.Close() })
		return rev
	})
	racc, err := sqlite.Open(ctx, filepath.Join(restored, "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer racc.Close()
	if rep, err := audit.Verify(ctx, racc, s.auditPub); err != nil || rep.Entries != 12 {
		t.Fatalf("the restored audit chain: %+v %v", rep, err)
	}
	if site, err := racc.SiteByDomain(ctx, "acme.example"); err != nil || site.TimeZone != "Europe/Helsinki" {
		t.Fatalf("the restored site: %+v %v", site, err)
	}
	_, err = backup.Restore(ctx, target, m.ID, key, backup.RestoreTo{DataDir: restored})
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("a restore over existing stores: %v, want a refusal naming --force", err)
	}
}

// TestPostgres: both stores in one PostgreSQL database, dumped under
// ingest, drilled in a scratch database, restored into another.
func TestPostgres(t *testing.T) {
	ctx := context.Background()
	url := storetest.PostgresURL(t)
	acc, err := postgres.OpenAccounts(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	ev, err := postgres.OpenEvents(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	s := &source{accounts: acc, events: ev, sources: []backup.Source{{Name: "database", Engine: backup.Postgres, DB: acc.DB, URL: url}}}
	s.fill(t)
	key := newKey(t)
	check := backup.Check{Key: key, Scratch: t.TempDir(), AuditKey: s.auditPub, Postgres: acc.DB, PostgresURL: url}
	restoreURL := scratchDB(t, url)
	checkBackup(t, s, key, check, func(target backup.Target, m backup.Manifest) store.EventStore {
		if _, err := backup.Restore(ctx, target, m.ID, key, backup.RestoreTo{Databases: map[string]string{"database": restoreURL}, DataDir: t.TempDir()}); err != nil {
			t.Fatal(err)
		}
		rev, err := postgres.OpenEvents(ctx, restoreURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rev.Close() })
		return rev
	})
	_, err = backup.Restore(ctx, backup.Dir("/nonexistent"), "fjord-x", key, backup.RestoreTo{Databases: map[string]string{"database": restoreURL}})
	if err == nil {
		t.Fatal("a restore of a backup that is not there succeeded")
	}
}

// scratchDB makes an empty database on the test server, dropped at the
// end, and returns its URL with the schema of url (a dump restores into
// the schema it was taken from).
func scratchDB(t *testing.T, url string) string {
	t.Helper()
	base := os.Getenv("FJORD_TEST_POSTGRES")
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := fmt.Sprintf("fjord_restore_%x", b)
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		db.Close()
	})
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
