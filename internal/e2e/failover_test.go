package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"fjord/internal/testnet"
)

// Collection fail-over (PRODUCT §1.3, §1.7, §9.5): a main service and an
// edge collector (fjord collect) that spools what it accepts and forwards
// it to the main service.

// startNode runs a fjord sub-command that keeps its address across
// restarts.
func startNode(t testing.TB, command, dataDir string, args ...string) *server {
	t.Helper()
	s := &server{t: t, DataDir: dataDir, args: args, command: command, samePort: true}
	s.start()
	t.Cleanup(func() {
		s.Kill()
		s.checkLog()
		if t.Failed() {
			t.Logf("fjord %s's log (end):\n%s", command, tail(s.stderr.String(), 4000))
		}
	})
	return s
}

// addCollector makes a collector's token in the collectors file and writes
// it to a token file; it returns the token file.
func addCollector(t testing.TB, collectorsFile, name string) string {
	t.Helper()
	out := fjord(t, "collector", "add", name, "--file", collectorsFile)
	tok := regexp.MustCompile(`fjc_[A-Za-z0-9_-]+`).FindString(out)
	if tok == "" {
		t.Fatalf("no token in %q", out)
	}
	path := filepath.Join(t.TempDir(), name+".token")
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var spoolLine = regexp.MustCompile(`spool: (\d+) bytes waiting`)

// spoolPending reads the spool's backlog from the edge's /readyz.
func spoolPending(t testing.TB, addr string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return -1
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := spoolLine.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("edge /readyz has no spool line: %q", body)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// waitDrained waits until the edge's spool is empty and returns how long
// that took.
func waitDrained(t testing.TB, edge *server, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if spoolPending(t, edge.Addr) == 0 {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the edge's spool did not drain within %s (%d bytes left)\nedge log:\n%s", within, spoolPending(t, edge.Addr), tail(edge.stderr.String(), 3000))
	return 0
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// sendAll sends events numbered from..to-1 to addr with 8 workers and
// returns the ids acknowledged.
func sendAll(t testing.TB, addr, domain string, worker, from, to int) [][16]byte {
	t.Helper()
	var mu sync.Mutex
	var acked [][16]byte
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for i := range next {
				id := eventID(worker, i)
				if ok, err := send(c, addr, domain, id, i); err != nil || !ok {
					t.Errorf("event %d not acknowledged by %s: %v", i, addr, err)
					continue
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return acked
}

// exactlyOnce fails unless every acknowledged id is stored once and no id
// is stored twice.
func exactlyOnce(t testing.TB, stored map[[16]byte]int, acked map[[16]byte]bool) {
	t.Helper()
	missing, dup := 0, 0
	for id := range acked {
		if stored[id] == 0 {
			missing++
		}
	}
	for _, n := range stored {
		if n > 1 {
			dup++
		}
	}
	if missing > 0 || dup > 0 {
		t.Fatalf("%d acknowledged events: %d missing, %d ids stored more than once (%d ids stored)", len(acked), missing, dup, len(stored))
	}
}

// TestEdgeCollector: events sent to an edge collector reach the main
// service; while the main service is away the edge acknowledges from its
// spool, survives a SIGKILL and a restart without the main service (from
// its saved copy of the sites and salts), and its spool drains once the
// main service is back: every acknowledged event stored exactly once.
func TestEdgeCollector(t *testing.T) {
	mainDir, edgeDir := t.TempDir(), t.TempDir()
	collectors := filepath.Join(t.TempDir(), "collectors")
	tokenFile := addCollector(t, collectors, "edge-1")
	main := startNode(t, "serve", mainDir, "--collectors-file", collectors, "--limit-collect", "off")
	fjord(t, "site", "add", "edge.test", "--data-dir", mainDir)
	edge := startNode(t, "collect", edgeDir, "--main", "http://"+main.Addr, "--token-file", tokenFile, "--limit-collect", "off")

	acked := map[[16]byte]bool{}
	add := func(ids [][16]byte) {
		for _, id := range ids {
			acked[id] = true
		}
	}
	add(sendAll(t, edge.Addr, "edge.test", 1, 0, 200))
	waitDrained(t, edge, 30*time.Second)

	// the main service away: the edge acknowledges from its spool
	main.Stop()
	add(sendAll(t, edge.Addr, "edge.test", 1, 200, 500))
	if n := spoolPending(t, edge.Addr); n <= 0 {
		t.Fatalf("spool holds %d bytes while the main service is away", n)
	}
	// killed and started again while the main service is still away
	edge.Kill()
	edge.Restart()
	add(sendAll(t, edge.Addr, "edge.test", 1, 500, 600))

	// a larger backlog, to measure the spool's throughput both ways
	start := time.Now()
	add(sendAll(t, edge.Addr, "edge.test", 2, 0, 3000))
	in := time.Since(start)
	pending := spoolPending(t, edge.Addr)

	restart := time.Now()
	main.Restart()
	up := time.Since(restart)
	drain := waitDrained(t, edge, 60*time.Second)
	t.Logf("spool: 3000 events acknowledged in %s (%.0f/s, 8 clients); %d bytes spooled in all; main service healthy %s after its start; spool drained %s later (%.0f events/s forwarded)",
		in.Round(time.Millisecond), 3000/in.Seconds(), pending, up.Round(time.Millisecond), drain.Round(time.Millisecond), float64(len(acked)-200)/(up+drain).Seconds())

	if got := stats(t, mainDir, "edge.test", "today").Pageviews; got != int64(len(acked)) {
		t.Errorf("main service counts %d pageviews, want %d", got, len(acked))
	}
	main.Stop()
	exactlyOnce(t, duckIDs(t, mainDir), acked)
}

// failoverClient sends an event as the tracker does with two endpoints:
// the main service first, the edge collector when the main one fails
// (network error, 429, 5xx), with the same id on both.
func failoverClient(c *http.Client, endpoints []string, domain string, id [16]byte, n int) bool {
	for _, addr := range endpoints {
		if ok, err := send(c, addr, domain, id, n); err == nil && ok {
			return true
		}
	}
	return false
}

// TestChaos is the chaos harness: numbered events go through the tracker's
// fail-over logic to a main service and an edge collector, while the main
// service is killed (SIGKILL) and restarted, the edge's way to it is cut,
// delayed and reset (a userspace TCP proxy), and the edge is killed and
// restarted. At the end every acknowledged event is counted exactly once
// and the spool is empty. FJORD_CHAOS_DURATION sets how long (default 20s;
// BENCHMARKS.md has a longer run).
func TestChaos(t *testing.T) {
	duration := 20 * time.Second
	if v := os.Getenv("FJORD_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("FJORD_CHAOS_DURATION=%q: %v", v, err)
		}
		duration = d
	}
	mainDir, edgeDir := t.TempDir(), t.TempDir()
	collectors := filepath.Join(t.TempDir(), "collectors")
	tokenFile := addCollector(t, collectors, "edge-chaos")
	main := startNode(t, "serve", mainDir, "--collectors-file", collectors, "--limit-collect", "off")
	fjord(t, "site", "add", "chaos.test", "--data-dir", mainDir)
	proxy, err := testnet.NewProxy(main.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	edge := startNode(t, "collect", edgeDir, "--main", "http://"+proxy.Addr, "--token-file", tokenFile, "--limit-collect", "off")

	var mu sync.Mutex
	acked := map[[16]byte]bool{}
	sent := 0
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 3 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				id := eventID(100+w, i)
				ok := failoverClient(c, []string{main.Addr, edge.Addr}, "chaos.test", id, i)
				mu.Lock()
				sent++
				if ok {
					acked[id] = true
				}
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}

	type action struct {
		name string
		do   func()
	}
	var recoveries []time.Duration
	actions := []action{
		{"kill -9 the main service, restart it", func() {
			main.Kill()
			time.Sleep(time.Second)
			start := time.Now()
			main.Restart()
			recoveries = append(recoveries, time.Since(start))
		}},
		{"cut the edge off the main service for 2 s", func() {
			proxy.Down(true)
			time.Sleep(2 * time.Second)
			proxy.Down(false)
		}},
		{"delay the edge's traffic to the main service by 300 ms for 2 s", func() {
			proxy.Delay(300 * time.Millisecond)
			time.Sleep(2 * time.Second)
			proxy.Delay(0)
		}},
		{"reset the edge's connections to the main service", proxy.Reset},
		{"kill -9 the edge collector, restart it", func() {
			edge.Kill()
			time.Sleep(500 * time.Millisecond)
			edge.Restart()
		}},
	}
	done := map[string]int{}
	end := time.Now().Add(duration)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; time.Now().Before(end); i++ {
		a := actions[i%len(actions)]
		if i >= len(actions) {
			a = actions[rng.IntN(len(actions))]
		}
		a.do()
		done[a.name]++
		time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
	}
	cancel()
	wg.Wait()

	drain := waitDrained(t, edge, 90*time.Second)
	mu.Lock()
	n, total := len(acked), sent
	mu.Unlock()
	if n < total/2 {
		t.Fatalf("only %d of %d events acknowledged", n, total)
	}
	pageviews := stats(t, mainDir, "chaos.test", "today").Pageviews
	main.Stop()
	stored := duckIDs(t, mainDir)
	exactlyOnce(t, stored, acked)
	// some events are stored without an acknowledgement (the answer was
	// lost); each counts once too
	if pageviews != int64(len(stored)) {
		t.Errorf("the main service counts %d pageviews of %d distinct events stored", pageviews, len(stored))
	}
	var b strings.Builder
	for name, k := range done {
		fmt.Fprintf(&b, "\n  %dx %s", k, name)
	}
	var worst time.Duration
	for _, r := range recoveries {
		worst = max(worst, r)
	}
	t.Logf("chaos for %s: %d events sent, %d acknowledged, %d stored (each once); main service healthy again at most %s after a restart; spool drained %s after the last fault%s",
		duration, total, n, len(stored), worst.Round(time.Millisecond), drain.Round(time.Millisecond), b.String())
}

// TestEdgeDiskFull: an edge collector whose spool's disk fills (a real
// 2 MiB tmpfs) answers 503 (not a crash), keeps what it acknowledged, and
// once the main service is back and the spool drains, collects again.
func TestEdgeDiskFull(t *testing.T) {
	if os.Getenv("FJORD_TEST_TMPFS") == "" {
		t.Skip("set FJORD_TEST_TMPFS=1 to run this test: it mounts a small tmpfs and needs root")
	}
	edgeDir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", edgeDir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs on %s: %v: %s", edgeDir, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", edgeDir).Run() })
	mainDir := t.TempDir()
	collectors := filepath.Join(t.TempDir(), "collectors")
	tokenFile := addCollector(t, collectors, "edge-full")
	main := startNode(t, "serve", mainDir, "--collectors-file", collectors, "--limit-collect", "off")
	fjord(t, "site", "add", "full.test", "--data-dir", mainDir)
	edge := startNode(t, "collect", edgeDir, "--main", "http://"+main.Addr, "--token-file", tokenFile, "--limit-collect", "off", "--disk-reserve", "0")
	main.Stop()

	// four clients, so that the spool commits requests in groups (one at
	// a time, filling 2 MiB took half a minute)
	acked := map[[16]byte]bool{}
	c := &http.Client{Timeout: 10 * time.Second}
	var mu sync.Mutex
	full := 0
	var fail error
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				mu.Lock()
				stop := full >= 20 || fail != nil
				mu.Unlock()
				if stop {
					return
				}
				if i > 50000 {
					mu.Lock()
					fail = errors.New("the 2 MiB disk never filled")
					mu.Unlock()
					return
				}
				id := eventID(70+w, i)
				body := fmt.Sprintf(`{"name":"pageview","url":"https://full.test/%d","domain":"full.test","id":"%x"}`, i, id)
				req, _ := http.NewRequest("POST", "http://"+edge.Addr+"/api/event", strings.NewReader(body))
				req.Header.Set("User-Agent", browserUA)
				resp, err := c.Do(req)
				if err != nil {
					mu.Lock()
					fail = fmt.Errorf("event %d: %v (the edge crashed?)", i, err)
					mu.Unlock()
					return
				}
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				switch resp.StatusCode {
				case http.StatusAccepted:
					acked[id] = true
				case http.StatusServiceUnavailable:
					if !strings.Contains(string(msg), "disk is full") || resp.Header.Get("Retry-After") == "" {
						fail = fmt.Errorf("503 without the reason: %s", msg)
					}
					full++
				default:
					fail = fmt.Errorf("event %d: %d %s", i, resp.StatusCode, msg)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if fail != nil {
		t.Fatalf("%v\n%s", fail, tail(edge.stderr.String(), 2000))
	}
	if resp, err := http.Get("http://" + edge.Addr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the edge is not healthy with a full disk: %v", err)
	}
	t.Logf("%d events acknowledged before the disk was full", len(acked))

	main.Restart()
	waitDrained(t, edge, 60*time.Second)
	// the released segments gave the space back: the edge collects again
	if ok, err := send(c, edge.Addr, "full.test", eventID(8, 0), 0); err != nil || !ok {
		t.Fatalf("after draining, the edge still refuses: %v", err)
	}
	acked[eventID(8, 0)] = true
	waitDrained(t, edge, 30*time.Second)
	main.Stop()
	exactlyOnce(t, duckIDs(t, mainDir), acked)
}

// TestEdgeJetStream (PRODUCT §9.5 at scale): the edge publishes its spool
// to a NATS JetStream stream and the main service's writer consumes it.
// The main service is stopped while the edge publishes a backlog, then
// killed (SIGKILL) while it consumes the backlog, between a batch's commit
// to its journal and its acknowledgement at some point: redelivered, the
// events still count once.
func TestEdgeJetStream(t *testing.T) {
	url := os.Getenv("FJORD_TEST_NATS")
	if url == "" {
		t.Skip("set FJORD_TEST_NATS=nats://127.0.0.1:4222 to run this test against a real NATS server with JetStream")
	}
	stream := fmt.Sprintf("FJORD_E2E_%d", time.Now().UnixNano())
	t.Cleanup(func() { deleteStream(t, url, stream) })
	natsArgs := []string{"--nats-url", url, "--nats-stream", stream, "--limit-collect", "off"}
	mainDir, edgeDir := t.TempDir(), t.TempDir()
	collectors := filepath.Join(t.TempDir(), "collectors")
	tokenFile := addCollector(t, collectors, "edge-js")
	main := startNode(t, "serve", mainDir, append([]string{"--collectors-file", collectors}, natsArgs...)...)
	fjord(t, "site", "add", "js.test", "--data-dir", mainDir)
	edge := startNode(t, "collect", edgeDir, append([]string{"--main", "http://" + main.Addr, "--token-file", tokenFile}, natsArgs...)...)

	acked := map[[16]byte]bool{}
	add := func(ids [][16]byte) {
		for _, id := range ids {
			acked[id] = true
		}
	}
	add(sendAll(t, edge.Addr, "js.test", 3, 0, 300))
	waitCount(t, mainDir, "js.test", 300, 60*time.Second)

	main.Stop()
	add(sendAll(t, edge.Addr, "js.test", 3, 300, 4300))
	waitDrained(t, edge, 60*time.Second) // all of it is in the stream now
	// kill it while it consumes the backlog: the stream keeps a message
	// until it is acknowledged (work-queue retention), so its count tells
	// when the first batch was taken and that some were still left
	msgs := streamMessages(t, url, stream)
	backlog := msgs()
	main.Restart()
	deadline := time.Now().Add(60 * time.Second)
	for msgs() == backlog && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	main.Kill()
	if left := msgs(); left == 0 || left >= backlog {
		t.Fatalf("the kill did not come while the backlog was consumed: %d of %d messages left", left, backlog)
	} else {
		t.Logf("killed with %d of %d messages left in the stream", left, backlog)
	}
	main.Restart()
	waitCount(t, mainDir, "js.test", int64(len(acked)), 90*time.Second)
	main.Stop()
	exactlyOnce(t, duckIDs(t, mainDir), acked)
}

// waitCount waits until the site counts want pageviews today.
func waitCount(t testing.TB, dir, site string, want int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got int64
	for time.Now().Before(deadline) {
		if got = stats(t, dir, site, "today").Pageviews; got == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s counts %d pageviews, want %d", site, got, want)
}

// streamMessages returns a function counting the messages the stream
// holds.
func streamMessages(t testing.TB, url, stream string) func() uint64 {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return func() uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		return info.State.Msgs
	}
}

// deleteStream removes a test's stream from the NATS server.
func deleteStream(t testing.TB, url, stream string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("nats: %v", err)
		return
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = js.DeleteStream(ctx, stream)
	}
	if err != nil {
		t.Errorf("delete stream %s: %v", stream, err)
	}
}
