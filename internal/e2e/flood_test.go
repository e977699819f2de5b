package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The flood and slow-client tests: a real server, one abusive client at
// 127.0.0.2 and one normal client at 127.0.0.1 (Linux routes all of
// 127.0.0.0/8 to loopback, so the server sees two peer addresses).

// floodBound is the server's stated memory bound under these tests: its
// peak resident set (VmHWM) in bytes. Measured peaks are in BENCHMARKS.md.
const floodBound = 200 << 20

// clientFrom is an HTTP client whose connections come from local address
// ip; keep-alive as browsers and bots do.
func clientFrom(ip string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// normalClient sends what a visitor's browser and a person do, until ctx
// ends: a pageview every 100 ms and the sign-in page every 2.5 s. It
// returns the latencies and every failure.
func normalClient(ctx context.Context, addr, domain string) (lat []time.Duration, failures []string) {
	c := clientFrom("127.0.0.1", 10*time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return lat, failures
		case <-tick.C:
		}
		var req *http.Request
		want := http.StatusAccepted
		if i%25 == 0 {
			req, _ = http.NewRequest("GET", "http://"+addr+"/signin", nil)
			want = http.StatusOK
		} else {
			body := fmt.Sprintf(`{"n":"pageview","u":"https://%s/normal/%d","d":%q}`, domain, i, domain)
			req, _ = http.NewRequest("POST", "http://"+addr+"/api/event", strings.NewReader(body))
		}
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s %s: %v", req.Method, req.URL.Path, err))
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(start))
		if resp.StatusCode != want {
			failures = append(failures, fmt.Sprintf("%s %s: %d", req.Method, req.URL.Path, resp.StatusCode))
		}
	}
}

func p99(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// peakRSS is a process's VmHWM in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// webhook counts the alerts the server posts, by rule.
type webhook struct {
	mu    sync.Mutex
	rules []string
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var a struct {
		Rule string `json:"rule"`
	}
	json.NewDecoder(r.Body).Decode(&a)
	h.mu.Lock()
	h.rules = append(h.rules, a.Rule)
	h.mu.Unlock()
}

func (h *webhook) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.rules)
}

func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20-second flood")
	}
	hook := &webhook{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	dir := t.TempDir()
	const domain = "flooded.example"
	fjord(t, "site", "add", domain, "--data-dir", dir)
	srv := startServer(t, dir, "--limit-collect", "20:100", "--limit-signin", "0.5:10",
		"--block-after", "300", "--block-for", "10m", "--alert-webhook", hs.URL+"/alerts")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type tally struct{ accepted, limited, blocked, closed atomic.Int64 }
	var fl tally
	// blockedAt: when the flooder first saw its block (unix nanos); a
	// request it starts after that must not be accepted
	var blockedAt, acceptedAfterBlock atomic.Int64
	var wg sync.WaitGroup
	// four goroutines flood as fast as they can: pageviews and sign-ins
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clientFrom("127.0.0.2", 5*time.Second)
			for i := 0; ctx.Err() == nil; i++ {
				var req *http.Request
				if i%2 == 0 {
					req, _ = http.NewRequestWithContext(ctx, "POST", "http://"+srv.Addr+"/api/event",
						strings.NewReader(`{"n":"pageview","u":"https://`+domain+`/flood","d":"`+domain+`"}`))
				} else {
					req, _ = http.NewRequestWithContext(ctx, "POST", "http://"+srv.Addr+"/signin",
						strings.NewReader("email=admin%40example.com&password=guess"+strconv.Itoa(i)))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
				start := time.Now().UnixNano()
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						fl.closed.Add(1)
						blockedAt.CompareAndSwap(0, time.Now().UnixNano())
					}
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusTooManyRequests && strings.Contains(string(b), "blocked"):
					fl.blocked.Add(1)
					blockedAt.CompareAndSwap(0, time.Now().UnixNano())
				case resp.StatusCode == http.StatusTooManyRequests:
					fl.limited.Add(1)
				case resp.StatusCode == http.StatusAccepted:
					fl.accepted.Add(1)
					if b := blockedAt.Load(); b != 0 && start > b {
						acceptedAfterBlock.Add(1)
					}
				}
			}
		}()
	}
	lat, failures := normalClient(ctx, srv.Addr, domain)
	wg.Wait()
	peak := peakRSS(t, srv.cmd.Process.Pid)
	t.Logf("normal client: %d requests, p99 %s; flooder: %d accepted, %d limited, %d answered blocked, %d connections refused; server peak RSS %.1f MB",
		len(lat), p99(lat), fl.accepted.Load(), fl.limited.Load(), fl.blocked.Load(), fl.closed.Load(), float64(peak)/1e6)

	if len(failures) > 0 {
		t.Errorf("%d of the normal client's requests failed, e.g. %s", len(failures), failures[0])
	}
	if len(lat) < 150 {
		t.Errorf("the normal client made only %d requests in 20 s", len(lat))
	}
	if p := p99(lat); p >= 100*time.Millisecond {
		t.Errorf("the normal client's p99 is %s, over 100 ms", p)
	}
	if fl.limited.Load() == 0 || fl.blocked.Load()+fl.closed.Load() == 0 {
		t.Errorf("the flooder was not limited and then blocked: %d limited, %d blocked, %d refused", fl.limited.Load(), fl.blocked.Load(), fl.closed.Load())
	}
	// the burst of 100 and 20 a second until the block, a few seconds in
	if n := fl.accepted.Load(); n > 100+20*20 || acceptedAfterBlock.Load() > 0 {
		t.Errorf("the flooder got %d events accepted, %d after its block", n, acceptedAfterBlock.Load())
	}
	if peak > floodBound {
		t.Errorf("the server's memory peaked at %.1f MB, over the bound of %.1f MB", float64(peak)/1e6, float64(floodBound)/1e6)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(hook.got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // a second alert would come within this
	if got := hook.got(); len(got) != 1 || got[0] != "address-blocked" {
		t.Errorf("alerts sent: %q, want one address-blocked", got)
	}
	if strings.Contains(srv.stderr.String(), "127.0.0.2") {
		t.Error("the server's log names the flooder's address")
	}
}

func TestSlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("a 12-second slow-client attack")
	}
	dir := t.TempDir()
	const domain = "slow.example"
	fjord(t, "site", "add", domain, "--data-dir", dir)
	srv := startServer(t, dir, "--conns-per-address", "64")

	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	var open, refused atomic.Int64
	var wg sync.WaitGroup
	// 300 connections from one address, each sending its headers a byte
	// a second and never finishing them; a closed one is opened again a
	// second later, as slowloris does
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
			for first := true; ctx.Err() == nil; first = false {
				if !first {
					time.Sleep(time.Second)
				}
				c, err := d.DialContext(ctx, "tcp", srv.Addr)
				if err != nil {
					continue
				}
				if _, err := io.WriteString(c, "POST /api/event HTTP/1.1\r\nHost: x\r\n"); err != nil {
					c.Close()
					continue
				}
				open.Add(1)
				for ctx.Err() == nil {
					if _, err := c.Write([]byte("X")); err != nil {
						break
					}
					// a closed connection shows on read, not on write
					c.SetReadDeadline(time.Now().Add(time.Second))
					if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						refused.Add(1)
						break
					}
				}
				c.Close()
			}
		}()
	}
	time.Sleep(time.Second) // the attack is in place
	lat, failures := normalClient(ctx, srv.Addr, domain)
	wg.Wait()
	t.Logf("normal client: %d requests, p99 %s; attacker: %d connections opened, %d closed by the server", len(lat), p99(lat), open.Load(), refused.Load())
	if len(failures) > 0 {
		t.Errorf("%d of the normal client's requests failed, e.g. %s", len(failures), failures[0])
	}
	if len(lat) < 80 {
		t.Errorf("the normal client made only %d requests in 11 s", len(lat))
	}
	if p := p99(lat); p >= 100*time.Millisecond {
		t.Errorf("the normal client's p99 is %s, over 100 ms", p)
	}
	if refused.Load() < 236 {
		t.Errorf("the server closed only %d of the slow connections: the 236 over the 64 allowed should have been closed at once", refused.Load())
	}
}

// TestServerTimeouts crosses the public port's header limits: 16 KiB of
// headers, and 5 seconds to send them.
func TestServerTimeouts(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	req, _ := http.NewRequest("GET", "http://"+srv.Addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 24<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("24 KiB of headers (net/http allows 4 KiB over MaxHeaderBytes): %d, want 431", resp.StatusCode)
	}
	c, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("a request whose headers never end: %v after %s (not closed by the server)", err, time.Since(start))
	}
	if d := time.Since(start); d < 4*time.Second || d > 15*time.Second {
		t.Fatalf("the server closed the unfinished request after %s (%q), want its 5-second header timeout", d, b)
	}
}
