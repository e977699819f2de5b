package e2e

import (
	"database/sql"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fjord/internal/store/storetest"
)

// TestBackupCommands: a running server under continuous ingest is backed
// up with fjord backup create (through its control socket) and the
// backup drilled; list shows it; restore fills a fresh data dir that
// answers reports with the snapshot's events (never more than were
// acknowledged, and at least those acknowledged before the backup began)
// and refuses to replace it again without --force; a corrupted backup
// fails verify with a reason and raises the operator's alert.
func TestBackupCommands(t *testing.T) {
	dir := t.TempDir()
	keys := t.TempDir()
	key := filepath.Join(keys, "backup.key")
	if out := fjord(t, "backup", "keygen", key); !strings.Contains(out, "public key: age1") {
		t.Fatalf("keygen: %s", out)
	}
	auditKey := filepath.Join(keys, "audit.key")
	fjord(t, "audit", "keygen", auditKey)
	bdir := filepath.Join(t.TempDir(), "backups")
	conf := []string{"--backup-dir", bdir, "--backup-key", key, "--backup-region", "eu-test", "--audit-key", auditKey}
	s := startServer(t, dir, append([]string{"--backup-every", "off"}, conf...)...)
	fjord(t, "site", "add", "backup.test", "--data-dir", dir)

	before, acked, out := backupUnderIngest(t, s, append([]string{"backup", "create", "--data-dir", dir}, conf...))
	list := fjord(t, append([]string{"backup", "list", "--data-dir", dir}, conf...)...)
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "eu-test") || !strings.Contains(lines[1], "passed") {
		t.Fatalf("backup list:\n%s", list)
	}
	id := strings.Fields(lines[1])[0]
	s.Stop()

	restored := t.TempDir()
	out = fjord(t, append([]string{"backup", "restore", id, "--data-dir", restored}, conf...)...)
	if !strings.Contains(out, "restored "+id) {
		t.Fatalf("restore: %s", out)
	}
	got := stats(t, restored, "backup.test", "today").Pageviews
	if got < before || got > acked {
		t.Fatalf("the restored data dir counts %d pageviews; %d were acknowledged before the backup began, %d in all", got, before, acked)
	}
	t.Logf("%d acknowledged before the backup, %d in all, %d in the backup", before, acked, got)
	if out := fjordFails(t, nil, append([]string{"backup", "restore", id, "--data-dir", restored}, conf...)...); !strings.Contains(out, "--force") {
		t.Fatalf("a second restore without --force: %s", out)
	}

	// a corrupted backup fails its drill, and the operator is alerted
	s.Restart()
	p := filepath.Join(bdir, id, "events.duckdb.zst.age")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o600)
	if out := fjordFails(t, nil, append([]string{"backup", "verify", id, "--data-dir", dir}, conf...)...); !strings.Contains(out, "FAILED") || !strings.Contains(out, "corrupted") {
		t.Fatalf("verify of a corrupted backup: %s", out)
	}
	if out := fjord(t, "alerts", "list", "--open", "--data-dir", dir); !strings.Contains(out, "backup-drill-failed") {
		t.Fatalf("no open backup alert:\n%s", out)
	}
	if out := fjord(t, append([]string{"backup", "list", "--data-dir", dir}, conf...)...); !strings.Contains(out, "FAILED") {
		t.Fatalf("list after the failed drill:\n%s", out)
	}
}

// backupUnderIngest sends pageviews of backup.test from two clients
// while it runs fjord with args (a backup create), and returns how many
// were acknowledged before the command began and in all, and its output.
func backupUnderIngest(t *testing.T, s *server, args []string) (before, acked int64, out string) {
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if ok, err := send(c, s.Addr, "backup.test", eventID(w, i), i); err == nil && ok {
					n.Add(1)
				}
			}
		}()
	}
	for n.Load() < 200 {
		time.Sleep(10 * time.Millisecond)
	}
	before = n.Load()
	out = fjord(t, args...)
	close(stop)
	wg.Wait()
	if !strings.Contains(out, "drill of fjord-") || !strings.Contains(out, "passed") {
		t.Fatalf("backup create: %s", out)
	}
	return before, n.Load(), out
}

// TestBackupPostgres: the same on PostgreSQL: a server on a database
// under continuous ingest is backed up (pg_dump from an exported
// snapshot), the dump drilled in a scratch database, and restored into a
// new database that answers reports with every event acknowledged before
// the backup began.
func TestBackupPostgres(t *testing.T) {
	src := storetest.PostgresURL(t)
	dir := t.TempDir()
	key := filepath.Join(t.TempDir(), "backup.key")
	fjord(t, "backup", "keygen", key)
	bdir := filepath.Join(t.TempDir(), "backups")
	conf := []string{"--database", src, "--backup-dir", bdir, "--backup-key", key, "--backup-region", "eu-test"}
	s := startServer(t, dir, append([]string{"--backup-every", "off"}, conf...)...)
	fjord(t, "site", "add", "backup.test", "--data-dir", dir, "--database", src)
	before, acked, _ := backupUnderIngest(t, s, append([]string{"backup", "create", "--data-dir", dir}, conf...))
	s.Stop()
	ids, err := os.ReadDir(bdir)
	if err != nil || len(ids) != 1 {
		t.Fatalf("backups: %v %v", ids, err)
	}
	id := ids[0].Name()

	// a new database, the stores in the schema the dump names
	base := os.Getenv("FJORD_TEST_POSTGRES")
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	name := "fjord_restore_" + strings.ToLower(strings.TrimPrefix(id, "fjord-"))
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		db.Close()
	})
	u, _ := url.Parse(src)
	u.Path = "/" + name
	restored := u.String()
	rconf := []string{"--database", restored, "--backup-dir", bdir, "--backup-key", key, "--backup-region", "eu-test"}
	if out := fjord(t, append([]string{"backup", "restore", id, "--data-dir", t.TempDir()}, rconf...)...); !strings.Contains(out, "restored "+id) {
		t.Fatalf("restore: %s", out)
	}
	got := stats(t, t.TempDir(), "backup.test", "today", "--database", restored).Pageviews
	if got < before || got > acked {
		t.Fatalf("the restored database counts %d pageviews; %d were acknowledged before the backup began, %d in all", got, before, acked)
	}
	t.Logf("%d acknowledged before the backup, %d in all, %d in the backup", before, acked, got)
	if out := fjordFails(t, nil, append([]string{"backup", "restore", id, "--data-dir", t.TempDir()}, rconf...)...); !strings.Contains(out, "--force") {
		t.Fatalf("a second restore without --force: %s", out)
	}
}

// TestBackupConfigCheck: config check explains a backup set-up that
// cannot work: no key, a key others can read, a key that is not one.
func TestBackupConfigCheck(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "backup.key")
	fjord(t, "backup", "keygen", key)
	base := []string{"config", "check", "--data-dir", filepath.Join(dir, "d"), "--backup-dir", filepath.Join(dir, "b"), "--backup-region", "eu-test"}
	if out := fjord(t, append(base, "--backup-key", key)...); !strings.Contains(out, "configuration is valid") {
		t.Fatalf("a good backup set-up: %s", out)
	}
	if out := fjordFails(t, nil, base...); !strings.Contains(out, "backup-key is empty") {
		t.Errorf("no key: %s", out)
	}
	os.Chmod(key, 0o644)
	if out := fjordFails(t, nil, append(base, "--backup-key", key)...); !strings.Contains(out, "readable by others") {
		t.Errorf("a key others can read: %s", out)
	}
	notKey := filepath.Join(dir, "not.key")
	os.WriteFile(notKey, []byte("AGE-SECRET-KEY-1NOTAKEY\n"), 0o600)
	out := fjordFails(t, nil, append(base, "--backup-key", notKey)...)
	if !strings.Contains(out, "not an age identity") || strings.Contains(out, "NOTAKEY") {
		t.Errorf("a file that is no key (and must not be repeated): %s", out)
	}
}
