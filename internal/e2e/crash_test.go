package e2e

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fjord/internal/store/duckdb"
)

const browserUA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

type headline struct {
	Visitors, Visits, Pageviews, Events int64
	BounceRate                          float64 `json:"bounce_rate"`
	VisitDuration                       float64 `json:"visit_duration"`
}

func stats(t testing.TB, dataDir, site, period string, extra ...string) headline {
	t.Helper()
	var h headline
	out := fjord(t, append([]string{"stats", "--data-dir", dataDir, "--site", site, "--period", period, "--json"}, extra...)...)
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("stats output %q: %v", out, err)
	}
	return h
}

// send posts one pageview with the given event id; it reports whether the
// server acknowledged it (202).
func send(c *http.Client, addr, domain string, id [16]byte, n int) (bool, error) {
	body := fmt.Sprintf(`{"name":"pageview","url":"https://%s/p/%d","domain":"%s","id":"%x"}`, domain, n, domain, id)
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/event", strings.NewReader(body))
	req.Header.Set("User-Agent", browserUA)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusAccepted, nil
}

func eventID(worker, n int) [16]byte {
	var id [16]byte
	copy(id[:], fmt.Sprintf("w%03d-n%010d", worker, n))
	return id
}

// TestKillAfterAck: N acknowledged events survive a SIGKILL exactly once.
func TestKillAfterAck(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	fjord(t, "site", "add", "crash.test", "--data-dir", dir)
	const workers, each = 8, 60
	var wg sync.WaitGroup
	var acked atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for i := 0; i < each; i++ {
				ok, err := send(c, s.Addr, "crash.test", eventID(w, i), i)
				if err != nil || !ok {
					t.Errorf("event %d/%d not acknowledged: %v\n%s", w, i, err, s.stderr.String())
					return
				}
				acked.Add(1)
			}
		}(w)
	}
	wg.Wait()
	if acked.Load() != workers*each {
		t.Fatalf("acknowledged %d of %d", acked.Load(), workers*each)
	}
	s.Kill()
	s.Restart()
	if got := stats(t, dir, "crash.test", "today").Pageviews; got != workers*each {
		t.Fatalf("after SIGKILL and restart: %d pageviews, want exactly %d", got, workers*each)
	}
}

// TestKillUnderLoad: SIGKILL while clients are still sending; every event
// that was acknowledged is stored exactly once (some unacknowledged ones may
// be stored too: journaled, but the answer never left).
func TestKillUnderLoad(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	fjord(t, "site", "add", "crash.test", "--data-dir", dir)
	var mu sync.Mutex
	acked := map[[16]byte]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				id := eventID(w, i)
				if ok, err := send(c, s.Addr, "crash.test", id, i); err != nil {
					return // the server is gone
				} else if ok {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	// Kill once a fair number of events went through.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 3000 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Kill()
	cancel()
	wg.Wait()
	if len(acked) < 100 {
		t.Fatalf("only %d events acknowledged before the kill", len(acked))
	}
	s.Restart()
	s.Stop() // drains the replayed journal into the store
	stored := duckIDs(t, dir)
	missing, dup := 0, 0
	for id := range acked {
		switch stored[id] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing > 0 || dup > 0 {
		t.Fatalf("%d acknowledged events: %d missing, %d stored more than once", len(acked), missing, dup)
	}
	t.Logf("%d acknowledged, %d stored (the rest were journaled but not answered)", len(acked), len(stored))
}

// duckIDs counts the stored events of each id in the DuckDB event store
// of a data dir whose server is stopped.
func duckIDs(t testing.TB, dir string) map[[16]byte]int {
	t.Helper()
	st, err := duckdb.Open(context.Background(), filepath.Join(dir, "events.duckdb"), duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.DB.Query(`SELECT id, COUNT(*) FROM events GROUP BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	stored := map[[16]byte]int{}
	for rows.Next() {
		var id any
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		stored[uuidBytes(t, id)] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return stored
}

// uuidBytes reads a DuckDB UUID as scanned by database/sql.
func uuidBytes(t testing.TB, v any) [16]byte {
	var id [16]byte
	switch v := v.(type) {
	case []byte:
		copy(id[:], v)
	case string:
		b, err := hex.DecodeString(strings.ReplaceAll(v, "-", ""))
		if err != nil {
			t.Fatalf("uuid %q: %v", v, err)
		}
		copy(id[:], b)
	default:
		if s, ok := v.(fmt.Stringer); ok {
			return uuidBytes(t, s.String())
		}
		t.Fatalf("uuid of type %T", v)
	}
	return id
}
