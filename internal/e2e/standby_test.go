package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// pgVersion is the PostgreSQL whose clusters the fail-over test makes
// (Debian 12's, as CI installs it).
const pgVersion = "15"

// clusterPrefix names the test's clusters: fjordsb-<pid of the test
// process>-{p,s}, so a leftover of an aborted run is told apart from the
// clusters of a run still going (its process is alive).
const clusterPrefix = "fjordsb-"

// pgCluster is one cluster made by pg_createcluster.
type pgCluster struct {
	name, port, dataDir string
}

func (c pgCluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%s/%s?sslmode=disable", c.port, db)
}

// run runs a command of postgresql-common or of PostgreSQL and fails the
// test with its output when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// asPostgres runs a command as the postgres user, as the files of a
// cluster's data dir must be its.
func asPostgres(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "runuser", append([]string{"-u", "postgres", "--"}, args...)...)
}

func pgctl(t *testing.T, c pgCluster, action string, extra ...string) {
	t.Helper()
	run(t, "pg_ctlcluster", append([]string{"--skip-systemctl-redirect", pgVersion, c.name, action}, extra...)...)
}

// dropLeftoverClusters drops the clusters of earlier runs whose test
// process is gone.
func dropLeftoverClusters(t *testing.T) {
	out := run(t, "pg_lsclusters", "--no-header")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != pgVersion || !strings.HasPrefix(f[1], clusterPrefix) {
			continue
		}
		pid, _ := strconv.Atoi(strings.Split(strings.TrimPrefix(f[1], clusterPrefix), "-")[0])
		if pid > 0 && syscall.Kill(pid, 0) == nil {
			continue // a run still going
		}
		t.Logf("dropping cluster %s left by an earlier run", f[1])
		exec.Command("pg_dropcluster", "--stop", pgVersion, f[1]).Run()
		os.RemoveAll(filepath.Join("/etc/postgresql", pgVersion, f[1]))
	}
}

// createCluster makes and configures a cluster on a free port on
// 127.0.0.1, trusting local TCP connections (replication included), and
// drops it when the test ends, also when it fails.
func createCluster(t *testing.T, name string) pgCluster {
	t.Helper()
	c := pgCluster{name: name, port: strings.TrimPrefix(freePort(t), "127.0.0.1:"),
		dataDir: filepath.Join("/var/lib/postgresql", pgVersion, name)}
	run(t, "pg_createcluster", pgVersion, name, "-p", c.port)
	etc := filepath.Join("/etc/postgresql", pgVersion, name)
	t.Cleanup(func() {
		if out, err := exec.Command("pg_dropcluster", "--stop", pgVersion, name).CombinedOutput(); err != nil {
			t.Errorf("pg_dropcluster %s: %v\n%s", name, err, out)
		}
		// pg_dropcluster leaves the directory of files it did not make
		os.RemoveAll(etc)
	})
	conf := "listen_addresses = '127.0.0.1'\nwal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nshared_buffers = 32MB\n"
	hba := "local all all peer\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(etc, "conf.d", "fjord-test.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "pg_hba.conf"), []byte(hba), 0o640); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitPG waits until a cluster accepts connections.
func waitPG(t *testing.T, c pgCluster) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for exec.Command("pg_isready", "-q", "-h", "127.0.0.1", "-p", c.port).Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("cluster %s does not accept connections", c.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func openPG(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// storedIDs are the ids of the events in the database, as hex.
func storedIDs(t *testing.T, db *sql.DB) (map[string]int, error) {
	rows, err := db.Query("SELECT replace(id::text, '-', '') FROM events")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := map[string]int{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id]++
	}
	return ids, rows.Err()
}

// TestStandbyFailover (PRODUCT §9.4): Fjord on a PostgreSQL primary with a
// streaming standby, made with pg_createcluster and pg_basebackup. Fjord
// reports the standby in /readyz and /metrics; events are acknowledged
// while the standby replicates, while it is down (so it falls behind:
// the asynchronous worst case) and after the primary is stopped (fast or
// immediate); the standby is promoted, Fjord restarted on it with the same
// data dir, and every acknowledged event is there exactly once, and new
// ones are stored. It logs the recovery point (acknowledged events lost)
// and the recovery time with its parts.
func TestStandbyFailover(t *testing.T) {
	if os.Getenv("FJORD_TEST_PGCLUSTER") == "" {
		t.Skip("set FJORD_TEST_PGCLUSTER=1 (as root, with PostgreSQL 15's pg_createcluster) to test fail-over to a streaming standby")
	}
	if _, err := exec.LookPath("pg_createcluster"); err != nil {
		t.Fatal("FJORD_TEST_PGCLUSTER is set but pg_createcluster is missing (Debian's postgresql-common)")
	}
	fjordBin(t) // build before the clock matters
	dropLeftoverClusters(t)
	for _, mode := range []string{"immediate", "fast"} {
		t.Run(mode, func(t *testing.T) { failover(t, mode) })
	}
}

func failover(t *testing.T, stopMode string) {
	ctx := context.Background()
	setup := time.Now()
	base := fmt.Sprintf("%s%d-%s", clusterPrefix, os.Getpid(), stopMode)
	primary := createCluster(t, base+"-p")
	pgctl(t, primary, "start")
	waitPG(t, primary)
	asPostgres(t, "psql", "-q", "-h", "127.0.0.1", "-p", primary.port, "-c", "CREATE DATABASE fjord")

	standby := createCluster(t, base+"-s")
	entries, err := os.ReadDir(standby.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		os.RemoveAll(filepath.Join(standby.dataDir, e.Name()))
	}
	asPostgres(t, "pg_basebackup", "-h", "127.0.0.1", "-p", primary.port, "-U", "postgres",
		"-D", standby.dataDir, "-R", "-X", "stream", "-C", "-S", "fjord_standby", "--checkpoint=fast")
	pgctl(t, standby, "start")
	waitPG(t, standby)
	t.Logf("%s: primary and standby made in %.1f s", stopMode, time.Since(setup).Seconds())

	token := strings.Repeat("standby-token-", 3)
	dir := t.TempDir()
	s := startServer(t, dir, "--database", primary.url("fjord"), "--standby-url", standby.url("fjord"),
		"--standby-region", "eu-fi-test", "--metrics-token", token, "--limit-collect", "off")
	fjord(t, "site", "add", "standby.test", "--data-dir", dir)

	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+s.Addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(what string, limit time.Duration, ok func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			done, last := ok()
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s; last: %s\n%s", what, limit, last, s.stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// ingest sends n events with ids from the batch's number on; each must
	// be acknowledged (202).
	var acked []string
	ingest := func(addr string, batch, n int) time.Time {
		t.Helper()
		const workers = 8
		var mu sync.Mutex
		var first time.Time
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				c := &http.Client{Timeout: 10 * time.Second}
				for i := w; i < n; i += workers {
					id := eventID(batch, i)
					ok, err := send(c, addr, "standby.test", id, i)
					if err != nil || !ok {
						t.Errorf("event %d/%d not acknowledged: %v", batch, i, err)
						return
					}
					mu.Lock()
					if first.IsZero() {
						first = time.Now()
					}
					acked = append(acked, fmt.Sprintf("%x", id))
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		return first
	}
	count := func(db *sql.DB) (int, string) {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
			return -1, err.Error()
		}
		return n, strconv.Itoa(n)
	}

	// 1. The standby replicates; Fjord reports it.
	waitFor("readyz reports the standby replaying", 30*time.Second, func() (bool, string) {
		code, body := get("/readyz")
		return code == 200 && strings.Contains(body, "\nstandby: replaying, "), fmt.Sprintf("%d %q", code, body)
	})
	const n1, n2, n3, n4 = 400, 300, 200, 100
	ingest(s.Addr, 1, n1)
	pdb, sdb := openPG(t, primary.url("fjord")), openPG(t, standby.url("fjord"))
	waitFor("the first events on the standby", 30*time.Second, func() (bool, string) {
		n, last := count(sdb)
		return n == n1, last
	})
	waitFor("metrics show the standby caught up", 30*time.Second, func() (bool, string) {
		_, body := get("/metrics")
		return strings.Contains(body, "fjord_standby_up 1") && strings.Contains(body, "fjord_standby_lag_bytes 0") &&
			strings.Contains(body, "fjord_standby_lag_seconds 0"), body[:min(len(body), 300)]
	})

	// 2. The standby goes down: the primary stays ready and says so. Events
	// acknowledged now reach the primary and not the standby.
	pgctl(t, standby, "stop", "-m", "fast")
	ingest(s.Addr, 2, n2)
	waitFor("the second events on the primary", 30*time.Second, func() (bool, string) {
		n, last := count(pdb)
		return n == n1+n2, last
	})
	waitFor("readyz reports the standby down, and stays 200", 30*time.Second, func() (bool, string) {
		code, body := get("/readyz")
		return code == 200 && strings.Contains(body, "\nstandby: DOWN since "), fmt.Sprintf("%d %q", code, body)
	})
	if _, body := get("/metrics"); !strings.Contains(body, "fjord_standby_up 0") {
		t.Fatalf("metrics with the standby down:\n%s", body)
	}

	// 3. The primary dies. Fjord keeps acknowledging: the events wait in
	// its journal.
	t0 := time.Now()
	pgctl(t, primary, "stop", "-m", stopMode)
	tStopped := time.Now()
	ingest(s.Addr, 3, n3)
	tAckedDown := time.Now()

	// 4. Promote the standby (started again: it stays in recovery, its
	// primary gone).
	pgctl(t, standby, "start")
	waitPG(t, standby)
	tStandbyUp := time.Now()
	var promoted bool
	if err := sdb.QueryRowContext(ctx, "SELECT pg_promote(true, 30)").Scan(&promoted); err != nil || !promoted {
		t.Fatalf("pg_promote: %v %v", promoted, err)
	}
	tPromoted := time.Now()
	if n, _ := count(sdb); n != n1 {
		t.Fatalf("the promoted standby holds %d events; the test expects it to lack the %d acknowledged while it was down", n, n2)
	}

	// 5. Fjord again, on the new primary, with the same data dir.
	s.Stop()
	tFjordStopped := time.Now()
	s.args = []string{"--database", standby.url("fjord"), "--metrics-token", token, "--limit-collect", "off"}
	s.Restart()
	tFjordUp := time.Now()
	total := n1 + n2 + n3
	waitFor("every acknowledged event on the new primary", 60*time.Second, func() (bool, string) {
		n, last := count(sdb)
		return n >= total, last
	})
	tReplayed := time.Now()
	first := ingest(s.Addr, 4, 1)
	var tFirstStored time.Time
	waitFor("the first new event on the new primary", 30*time.Second, func() (bool, string) {
		n, last := count(sdb)
		tFirstStored = time.Now()
		return n == total+1, last
	})
	ingest(s.Addr, 5, n4)
	waitFor("the new events on the new primary", 30*time.Second, func() (bool, string) {
		n, last := count(sdb)
		return n == total+1+n4, last
	})

	// 6. Every acknowledged event exactly once.
	ids, err := storedIDs(t, sdb)
	if err != nil {
		t.Fatal(err)
	}
	lost, doubled := 0, 0
	for _, id := range acked {
		switch ids[id] {
		case 0:
			lost++
		case 1:
		default:
			doubled++
		}
	}
	if lost != 0 || doubled != 0 || len(ids) != len(acked) {
		t.Fatalf("acknowledged %d: %d lost, %d stored more than once, %d distinct ids stored", len(acked), lost, doubled, len(ids))
	}
	code, body := get("/readyz")
	if code != 200 || strings.Contains(body, "standby") {
		t.Fatalf("readyz on the new primary without a standby: %d %q", code, body)
	}

	secs := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	t.Logf("%s stop: recovery point: %d of %d acknowledged events lost, %d stored twice (%d acknowledged while the standby was down, %d while no database was up)",
		stopMode, lost, len(acked), doubled, n2, n3)
	// the test's own steps in between: acknowledging the n3 events, and
	// starting the standby that it had stopped
	own := tStandbyUp.Sub(tStopped)
	t.Logf("%s stop: recovery time %s (%s with the test's own steps) from stopping the primary to the first new event stored on the new primary: "+
		"primary stop %s, pg_promote %s, fjord stop %s, fjord start on the new URL %s, replay of the %d journaled events the new primary lacked %s, "+
		"first new event acknowledged %s and stored %s later",
		stopMode, secs(tFirstStored.Sub(t0)-own), secs(tFirstStored.Sub(t0)), secs(tStopped.Sub(t0)), secs(tPromoted.Sub(tStandbyUp)),
		secs(tFjordStopped.Sub(tPromoted)), secs(tFjordUp.Sub(tFjordStopped)), n2+n3, secs(tReplayed.Sub(tFjordUp)),
		secs(first.Sub(tReplayed)), secs(tFirstStored.Sub(first)))
	t.Logf("%s stop: meanwhile %d events were acknowledged into the journal with no database up, in %s", stopMode, n3, secs(tAckedDown.Sub(tStopped)))
}
