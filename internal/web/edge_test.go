package web

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"fjord/internal/ingest/journal"
	"fjord/internal/secmon"
)

func TestRouteClasses(t *testing.T) {
	want := map[string]string{
		"POST /api/event":               ClassCollect,
		"GET /api/event":                ClassCollect,
		"OPTIONS /api/event":            ClassCollect,
		"GET /js/fjord.js":              ClassCollect,
		"POST /signin":                  ClassSignin,
		"POST /signin/2fa":              ClassSignin,
		"POST /signin/reset":            ClassSignin,
		"GET /signin/link/{token}":      ClassSignin,
		"POST /staff/signin":            ClassSignin,
		"POST /staff/setup":             ClassSignin,
		"POST /api/v2/query":            ClassAPI,
		"GET /api/v1/stats/aggregate":   ClassAPI,
		"GET /feeds/{file}":             ClassFeeds,
		"GET /healthz":                  ClassOps,
		"GET /readyz":                   ClassOps,
		"GET /dashboard/{domain}":       ClassPages,
		"GET /admin":                    ClassPages,
		"POST /unsubscribe/{token}":     ClassPages,
		"GET /static/{file}":            ClassPages,
		"GET /staff/{$}":                ClassPages,
		"GET /.well-known/security.txt": ClassPages,
	}
	m := (&Server{}).Handler()
	seen := map[string]bool{}
	for _, r := range m.Routes {
		c, ok := m.classes[r.Pattern]
		if !ok {
			t.Errorf("%s has no class", r.Pattern)
		}
		if w, ok := want[r.Pattern]; ok {
			seen[r.Pattern] = true
			if c != w {
				t.Errorf("%s is %s, want %s", r.Pattern, c, w)
			}
		}
	}
	for p := range want {
		if !seen[p] {
			t.Errorf("no route %s", p)
		}
	}
}

// edgeEnv is a test server whose clients are told apart by the
// X-Forwarded-For its loopback peer sets, as behind a proxy.
func edgeEnv(t *testing.T, l Limits) *testEnv {
	e := newEnv(t, journal.Options{})
	e.srv.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	e.srv.Limits = l
	return e
}

// from sends a request as client addr and returns the status and the
// Retry-After header.
func (e *testEnv) from(t *testing.T, addr, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	req.Header.Set("X-Forwarded-For", addr)
	req.Header.Set("User-Agent", ffUA)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

const pageview = `{"n":"pageview","u":"https://site.test/a","d":"site.test"}`

func TestLimitPerAddressAndBlock(t *testing.T) {
	e := edgeEnv(t, Limits{
		// a token every 1000 s: only the test's clock refills the buckets
		Collect: Limit{PerSecond: 0.001, Burst: 3},
		Signin:  Limit{PerSecond: 0.001, Burst: 2},
		Strikes: 5, StrikeWindow: time.Hour, Block: 10 * time.Minute,
	})
	const flooder, other = "203.0.113.7", "198.51.100.9"
	for i := 0; i < 3; i++ {
		if code, _ := e.from(t, flooder, "POST", "/api/event", pageview); code != 202 {
			t.Fatalf("request %d within the burst: %d", i+1, code)
		}
	}
	code, retry := e.from(t, flooder, "POST", "/api/event", pageview)
	if code != 429 || retry != "1000" {
		t.Fatalf("over the limit: %d, Retry-After %q; want 429 and 1000", code, retry)
	}
	if n := e.refused(t)["rate_limited"]; n != 1 {
		t.Fatalf("refused rate_limited = %d, want 1", n)
	}
	// another address has its own bucket; and the flooder's other
	// classes theirs
	if code, _ := e.from(t, other, "POST", "/api/event", pageview); code != 202 {
		t.Fatalf("another address: %d", code)
	}
	if code, _ := e.from(t, flooder, "GET", "/signin", ""); code != 200 {
		t.Fatalf("the sign-in page for the collection's flooder: %d", code)
	}
	// 1000 s pass: one more token
	e.clock.advance(1000 * time.Second)
	if code, _ := e.from(t, flooder, "POST", "/api/event", pageview); code != 202 {
		t.Fatalf("1000 s later: %d", code)
	}
	// four more refusals make five: blocked, for every class
	for i := 0; i < 4; i++ {
		e.from(t, flooder, "POST", "/api/event", pageview)
	}
	code, retry = e.from(t, flooder, "GET", "/signin", "")
	if code != 429 || retry != "600" {
		t.Fatalf("a blocked address's sign-in page: %d, Retry-After %q; want 429 and 600", code, retry)
	}
	if code, _ := e.from(t, other, "GET", "/signin", ""); code != 200 {
		t.Fatalf("another address while one is blocked: %d", code)
	}
	// the block is a security event of the address's network, with one alert
	waitFor(t, "the block's security alert", func() bool {
		l, _ := e.srv.Security.Store.Alerts(context.Background(), secmon.AlertFilter{OpenOnly: true})
		return len(l) == 1 && l[0].Rule == "address-blocked" && strings.HasPrefix(l[0].Subject, "net:")
	})
	if strings.Contains(e.logs.String(), flooder) {
		t.Fatalf("the log names the address:\n%s", e.logs.String())
	}
	// blocked again later: the same alert counts it, no second one (the
	// clock moves less than the quiet hour since the block)
	e.clock.advance(11 * time.Minute)
	if code, _ := e.from(t, flooder, "GET", "/signin", ""); code != 200 {
		t.Fatalf("after the block: %d", code)
	}
	for i := 0; i < 3+5; i++ {
		e.from(t, flooder, "POST", "/api/event", pageview)
	}
	if code, _ := e.from(t, flooder, "POST", "/api/event", pageview); code != 429 {
		t.Fatalf("blocked again: %d", code)
	}
	waitFor(t, "the second block counted by the open alert", func() bool {
		l, _ := e.srv.Security.Store.Alerts(context.Background(), secmon.AlertFilter{})
		return len(l) == 1 && l[0].Count == 2
	})
}

func TestLimitIPv6PerSlash64(t *testing.T) {
	e := edgeEnv(t, Limits{Pages: Limit{PerSecond: 0.001, Burst: 2}})
	if c, _ := e.from(t, "2001:db8:1:2::1", "GET", "/signin/reset", ""); c != 200 {
		t.Fatal(c)
	}
	if c, _ := e.from(t, "2001:db8:1:2:aaaa::9", "GET", "/signin/reset", ""); c != 200 {
		t.Fatal(c)
	}
	if c, _ := e.from(t, "2001:db8:1:2:ffff::3", "GET", "/signin/reset", ""); c != 200 {
		// /signin/reset is the sign-in class, not pages: unlimited here
		t.Fatal(c)
	}
	if c, _ := e.from(t, "2001:db8:1:2::1", "GET", "/no-such-page", ""); c != 404 {
		t.Fatalf("first page of the /64: %d", c)
	}
	if c, _ := e.from(t, "2001:db8:1:2:ffff::3", "GET", "/no-such-page", ""); c != 404 {
		t.Fatalf("second page of the /64: %d", c)
	}
	if c, _ := e.from(t, "2001:db8:1:2:1234::5", "GET", "/no-such-page", ""); c != 429 {
		t.Fatalf("third page of the same /64: %d, want 429", c)
	}
	if c, _ := e.from(t, "2001:db8:1:3::1", "GET", "/no-such-page", ""); c != 404 {
		t.Fatalf("another /64: %d", c)
	}
}

func TestLimitPerSite(t *testing.T) {
	e := edgeEnv(t, Limits{SiteEvents: Limit{PerSecond: 0.001, Burst: 2}})
	for i := 0; i < 2; i++ {
		if c, _ := e.from(t, fmt.Sprintf("203.0.113.%d", i+1), "POST", "/api/event", pageview); c != 202 {
			t.Fatalf("event %d: %d", i+1, c)
		}
	}
	code, retry := e.from(t, "203.0.113.50", "POST", "/api/event", pageview)
	if code != 429 || retry == "" {
		t.Fatalf("third event of the site from a third address: %d, Retry-After %q", code, retry)
	}
	if n := e.refused(t)["site_rate_limited"]; n != 1 {
		t.Fatalf("refused site_rate_limited = %d", n)
	}
	other := `{"n":"pageview","u":"https://other.test/","d":"other.test"}`
	if c, _ := e.from(t, "203.0.113.50", "POST", "/api/event", other); c != 202 {
		t.Fatalf("another site: %d", c)
	}
	if n := e.pageviews(t); n != 2 {
		t.Fatalf("site.test stored %d events, want 2", n)
	}
}

func TestLimitTablesBounded(t *testing.T) {
	e := edgeEnv(t, Limits{Collect: Limit{PerSecond: 0.001, Burst: 1}, MaxAddresses: 10})
	// 50 addresses: the table keeps 10, the rest share one bucket, so
	// only one of them gets through
	ok := 0
	for i := 0; i < 50; i++ {
		if c, _ := e.from(t, fmt.Sprintf("198.51.100.%d", i), "POST", "/api/event", pageview); c == 202 {
			ok++
		}
	}
	if n := len(e.srv.classBuckets(ClassCollect).m); n > 10 {
		t.Fatalf("the table holds %d addresses, bound 10", n)
	}
	if ok != 11 {
		t.Fatalf("%d addresses got through, want 10 in the table and 1 on the shared bucket", ok)
	}
	// once their buckets are full again, the addresses are swept
	e.clock.advance(1001 * time.Second)
	if c, _ := e.from(t, "192.0.2.1", "POST", "/api/event", pageview); c != 202 {
		t.Fatalf("a new address after the sweep: %d", c)
	}
	if n := len(e.srv.classBuckets(ClassCollect).m); n != 1 {
		t.Fatalf("after the sweep the table holds %d addresses, want 1", n)
	}
}

func TestCollectSheds(t *testing.T) {
	e := edgeEnv(t, Limits{CollectInFlight: 1})
	// a request whose body trickles in holds no slot: slow senders
	// cannot shut collection down
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.http.URL+"/api/event", pr)
		req.Header.Set("User-Agent", ffUA)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	pw.Write([]byte(`{"n":"pageview",`))
	if code, _ := e.from(t, "203.0.113.1", "POST", "/api/event", pageview); code != 202 {
		t.Fatalf("while another body trickles in: %d", code)
	}
	pw.Write([]byte(`"u":"https://site.test/","d":"site.test"}`))
	pw.Close()
	if c := <-done; c != 202 {
		t.Fatalf("the slow request: %d", c)
	}
	// with the only slot taken by a request being processed, the next
	// one is shed, the pixel too
	slots := e.srv.collectSlots()
	slots <- struct{}{}
	code, retry := e.from(t, "203.0.113.1", "POST", "/api/event", pageview)
	if code != 503 || retry != "1" {
		t.Fatalf("while the slot is taken: %d, Retry-After %q; want 503 and 1", code, retry)
	}
	if code, _ := e.from(t, "203.0.113.1", "GET", "/api/event?n=pageview&u=https%3A%2F%2Fsite.test%2F&d=site.test", ""); code != 503 {
		t.Fatalf("the pixel while the slot is taken: %d", code)
	}
	if n := e.refused(t)["queue_full"]; n != 2 {
		t.Fatalf("refused queue_full = %d, want 2", n)
	}
	<-slots
	if c, _ := e.from(t, "203.0.113.1", "POST", "/api/event", pageview); c != 202 {
		t.Fatalf("after the slot is free: %d", c)
	}
}

// TestCollectDiskFull: while the journal refuses for lack of space (here
// its Reserve is above any free space), collection answers 503 with
// Retry-After, counts the refusal by reason and logs it once, not per
// request; what was acknowledged before stays in the journal, and
// collection resumes without a restart once space is back.
func TestCollectDiskFull(t *testing.T) {
	e := edgeEnv(t, Limits{})
	const pixel = "/api/event?n=pageview&u=https%3A%2F%2Fsite.test%2F&d=site.test"
	for i := 0; i < 3; i++ {
		if code, _ := e.from(t, "203.0.113.1", "POST", "/api/event", pageview); code != 202 {
			t.Fatalf("before the disk fills: %d", code)
		}
	}
	end := e.j.End()
	e.j.SetReserve(math.MaxInt64)
	req, _ := http.NewRequest("POST", e.http.URL+"/api/event", strings.NewReader(pageview))
	req.Header.Set("User-Agent", ffUA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "30" || !strings.Contains(string(body), "the collector's disk is full; retry later") {
		t.Fatalf("with the disk full: %d, Retry-After %q, %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if code, retry := e.from(t, "203.0.113.1", "GET", pixel, ""); code != 503 || retry != "30" {
		t.Fatalf("the pixel with the disk full: %d, Retry-After %q", code, retry)
	}
	if n := e.refused(t)["disk_full"]; n != 2 {
		t.Fatalf("refused disk_full = %d, want 2", n)
	}
	if st := e.j.Stats(); st.NoSpace != 2 {
		t.Fatalf("journal NoSpace = %d, want 2", st.NoSpace)
	}
	if n := strings.Count(e.logs.String(), "disk is full"); n != 1 {
		t.Fatalf("%d log lines about the full disk, want 1:\n%s", n, e.logs.String())
	}
	if got := e.j.End(); got != end {
		t.Fatalf("the journal's end moved from %v to %v while refusing", end, got)
	}
	recs, _, err := e.j.Read(journal.Pos{}, 100, 1<<20)
	if err != nil || len(recs) != 3 {
		t.Fatalf("the journal holds %d records (%v), want the 3 acknowledged", len(recs), err)
	}
	e.j.SetReserve(0)
	if code, _ := e.from(t, "203.0.113.1", "POST", "/api/event", pageview); code != 202 {
		t.Fatalf("after space is back: %d", code)
	}
	if n := e.pageviews(t); n != 4 {
		t.Fatalf("stored %d events, want 4", n)
	}
}

func TestConnsPerAddress(t *testing.T) {
	s := &Server{Limits: Limits{ConnsPerAddress: 2}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	el := s.Listener(ln)
	defer el.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := el.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := dial(), dial()
	<-accepted
	sc := <-accepted
	third := dial()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := third.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a third connection from the address: read %v, want EOF (closed at once)", err)
	}
	select {
	case <-accepted:
		t.Fatal("the third connection reached the server")
	default:
	}
	// a closed connection frees its place, once however often closed
	sc.Close()
	sc.Close()
	fourth := dial()
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a connection after one closed was not accepted")
	}
	fifth := dial()
	fifth.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := fifth.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a third open connection after a double close: read %v, want EOF", err)
	}
	for _, c := range []net.Conn{a, b, third, fourth, fifth} {
		c.Close()
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, journal.Options{})
	for _, c := range []struct{ method, path, class string }{
		{"POST", "/api/event", ClassCollect},
		{"GET", "/js/fjord.js", ClassCollect},
		{"GET", "/signin", ClassSignin},
		{"GET", "/", ClassPages},
		{"GET", "/dashboard/site.test", ClassPages},
		{"GET", "/no-such-page", ClassPages},
		{"GET", "/api/openapi.json", ClassPages},
		{"GET", "/api/v1/stats/realtime/visitors?site_id=site.test", ClassAPI},
		{"GET", "/healthz", ClassOps},
	} {
		req, _ := http.NewRequest(c.method, e.http.URL+c.path, strings.NewReader(pageview))
		req.Header.Set("Cookie", sessionCookie+"="+e.cookie)
		req.Header.Set("Authorization", "Bearer "+e.key)
		req.Header.Set("User-Agent", ffUA)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s %s: CSP %q", c.method, c.path, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cross-Origin-Opener-Policy": "same-origin"} {
			if h.Get(k) != v {
				t.Errorf("%s %s: %s = %q, want %q", c.method, c.path, k, h.Get(k), v)
			}
		}
		if !strings.Contains(h.Get("Permissions-Policy"), "camera=()") {
			t.Errorf("%s %s: Permissions-Policy %q", c.method, c.path, h.Get("Permissions-Policy"))
		}
		if len(h.Get("X-Request-Id")) != 16 {
			t.Errorf("%s %s: X-Request-Id %q", c.method, c.path, h.Get("X-Request-Id"))
		}
		cors := h.Get("Access-Control-Allow-Origin") != ""
		if cors != (c.path == "/api/event") {
			t.Errorf("%s %s: CORS %v; only the collection endpoint allows other origins", c.method, c.path, cors)
		}
		if (c.class == ClassPages || c.class == ClassSignin) != (csp == pageCSP) {
			t.Errorf("%s %s (%s): CSP %q", c.method, c.path, c.class, csp)
		}
	}
	// each request's log line: its id and route pattern, no path tokens
	req, _ := http.NewRequest("GET", e.http.URL+"/unsubscribe/secret-token-in-path", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	logs := e.logs.String()
	if !strings.Contains(logs, "request_id="+id) || !strings.Contains(logs, `route="GET /unsubscribe/{token}"`) {
		t.Fatalf("no log line of request %s with its route:\n%s", id, logs)
	}
	if strings.Contains(logs, "secret-token-in-path") {
		t.Fatal("the log holds a path's token")
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("waited 10 s for %s", what)
}

// TestMetricsHidden: refused, /metrics answers exactly as a path that
// does not exist, for every method.
func TestMetricsHidden(t *testing.T) {
	e := newEnv(t, journal.Options{})
	e.srv.MetricsToken = strings.Repeat("m", 40)
	ask := func(method, path string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, e.http.URL+path, nil)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Header.Del("X-Request-Id")
		resp.Header.Del("Date")
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, method := range []string{"GET", "HEAD", "POST", "DELETE"} {
		c1, h1, b1 := ask(method, "/metrics")
		c2, h2, b2 := ask(method, "/metricz")
		if c1 != 404 || c1 != c2 || b1 != b2 || fmt.Sprint(h1) != fmt.Sprint(h2) {
			t.Errorf("%s /metrics: %d %v %q; a path that does not exist: %d %v %q", method, c1, h1, b1, c2, h2, b2)
		}
	}
}
