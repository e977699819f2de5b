package web

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"fjord/internal/collect"
	"fjord/internal/ingest/journal"
	"fjord/internal/store/duckdb"
	"fjord/internal/store/postgres"
	"fjord/internal/store/storetest"
)

// metricsToken is the tests' metrics-token (32 characters or more, as
// config requires).
const metricsToken = "test-metrics-token-0123456789abcdef"

// scrape GETs /metrics on the public port with a bearer token and parses
// the exposition.
func (e *testEnv) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	e.srv.MetricsToken = metricsToken
	req, _ := http.NewRequest("GET", e.http.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the series of a family whose labels include
// want (nil: any; a counter's, a gauge's, or a histogram's count), and
// whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// refused reads the refusals by reason from the server's registry.
func (e *testEnv) refused(t *testing.T) map[string]uint64 {
	t.Helper()
	fams, err := e.srv.Metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, f := range fams {
		if f.GetName() != "fjord_events_refused_total" {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "reason" {
					out[l.GetValue()] = uint64(m.Counter.GetValue())
				}
			}
		}
	}
	return out
}

// TestMetricsAfterTraffic: after collection, a refusal, a Stats API call,
// a job run and a request seen by the middleware, /metrics shows each
// counter moved, with its labels, and the scrape-time gauges are there.
func TestMetricsAfterTraffic(t *testing.T) {
	e := newEnv(t, journal.Options{})
	acme := e.user(t, "admin@acme.test").AccountID
	for range 3 {
		resp := e.post(t, `{"n":"pageview","u":"https://site.test/a","d":"site.test"}`)
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("collect: %d", resp.StatusCode)
		}
	}
	resp := e.post(t, `{"n":"pageview","u":"https://nope.test/a","d":"nope.test"}`)
	resp.Body.Close()
	resp = e.post(t, `{"n":"pageview","u":"https://site.test/a","d":"site.test"}`, "User-Agent", "curl/8.5.0")
	resp.Body.Close()
	if code, body := e.query(t, `{"site_id":"site.test","metrics":["visitors"],"date_range":"7d"}`); code != 200 {
		t.Fatalf("query: %d %v", code, body)
	}
	// what serve's job loop calls
	e.srv.Metrics.JobDone("flush_counters", time.Now(), e.srv.FlushCounts(context.Background()))

	fams := e.scrape(t)
	site := map[string]string{"account": itoa(acme), "site": "site.test"}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64 // at least
	}{
		{"fjord_events_accepted_total", site, 3},
		{"fjord_events_refused_total", map[string]string{"reason": collect.ReasonUnknown}, 1},
		{"fjord_events_dropped_total", nil, 1},
		{"fjord_api_requests_total", map[string]string{"account": itoa(acme)}, 1},
		{"fjord_job_runs_total", map[string]string{"name": "flush_counters"}, 1},
		{"fjord_job_last_success_timestamp_seconds", map[string]string{"name": "flush_counters"}, float64(time.Now().Add(-time.Minute).Unix())},
		// the edge counts every request by class and status: 3 accepted
		// and a bot's dropped event answered 202, the unknown site 400
		{"fjord_http_requests_total", map[string]string{"class": "collect", "code": "202"}, 4},
		{"fjord_http_requests_total", map[string]string{"class": "collect", "code": "400"}, 1},
		{"fjord_http_requests_total", map[string]string{"class": "api", "code": "200"}, 1},
		{"fjord_http_request_duration_seconds", map[string]string{"class": "collect"}, 5},
		{"fjord_store_query_duration_seconds", map[string]string{"kind": "run"}, 1},
		{"fjord_journal_records_total", nil, 3},
		{"fjord_journal_commit_duration_seconds", nil, 1},
		{"fjord_journal_queue_capacity", nil, journal.DefaultQueueLen},
		{"fjord_data_dir_size_bytes", nil, 1},
		{"fjord_data_dir_free_bytes", nil, 1},
	}
	for _, c := range checks {
		got, ok := value(fams, c.name, c.labels)
		if !ok || got < c.want {
			t.Errorf("%s%v = %v (present %v), want at least %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if got, ok := value(fams, "fjord_job_failures_total", map[string]string{"name": "flush_counters"}); ok && got != 0 {
		t.Errorf("a successful job counted as failed: %v", got)
	}
	if got, ok := value(fams, "fjord_security_alerts_open", nil); !ok || got != 0 {
		t.Errorf("fjord_security_alerts_open = %v (present %v), want 0", got, ok)
	}
	// the site of the other account saw nothing
	if _, ok := value(fams, "fjord_events_accepted_total", map[string]string{"site": "other.test"}); ok {
		t.Error("other.test has an accepted count without traffic")
	}
	// the control socket serves the same registry, to the operator
	code, body := e.ctl(t, "GET", "/metrics", nil)
	if code != 200 || !strings.Contains(string(body), `fjord_events_accepted_total{account="`+itoa(acme)+`",site="site.test"} 3`) {
		t.Fatalf("control socket /metrics: %d\n%.2000s", code, body)
	}
}

// TestMetricsGuard: /metrics on the public port answers the right bearer
// token or a client in metrics-ranges, and 404 to everyone else (a wrong
// or missing token, an address outside the ranges, no metrics at all);
// the metrics-listen port's handler answers without a guard.
func TestMetricsGuard(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ask := func(auth string) (int, string) {
		req, _ := http.NewRequest("GET", e.http.URL+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	inside := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	outside := []netip.Prefix{netip.MustParsePrefix("10.8.0.0/16")}
	cases := []struct {
		name   string
		token  string
		ranges []netip.Prefix
		auth   string
		code   int
	}{
		{"nothing configured", "", nil, "", 404},
		{"nothing configured, a token sent", "", nil, "Bearer " + metricsToken, 404},
		{"right token", metricsToken, nil, "Bearer " + metricsToken, 200},
		{"right token, scheme in lower case", metricsToken, nil, "bearer " + metricsToken, 200},
		{"wrong token", metricsToken, nil, "Bearer " + metricsToken + "x", 404},
		{"a prefix of the token", metricsToken, nil, "Bearer " + metricsToken[:20], 404},
		{"token missing", metricsToken, nil, "", 404},
		{"token as Basic", metricsToken, nil, "Basic " + metricsToken, 404},
		{"range inside", "", inside, "", 200},
		{"range outside", "", outside, "", 404},
		{"range outside, wrong token", metricsToken, outside, "Bearer nope", 404},
		{"range outside, right token", metricsToken, outside, "Bearer " + metricsToken, 200},
	}
	for _, c := range cases {
		e.srv.MetricsToken, e.srv.MetricsRanges = c.token, c.ranges
		code, body := ask(c.auth)
		if code != c.code {
			t.Errorf("%s: %d, want %d", c.name, code, c.code)
		}
		if code == 200 && !strings.Contains(body, "fjord_journal_queue_depth") {
			t.Errorf("%s: no metrics in the answer", c.name)
		}
		if code == 404 && strings.Contains(body, "fjord_") {
			t.Errorf("%s: a 404 that shows metrics", c.name)
		}
	}
	// a client behind a trusted proxy is judged by its own address
	e.srv.MetricsToken, e.srv.MetricsRanges = "", inside
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.RemoteAddr = "10.9.0.1:4000" // a trusted proxy of newEnv's
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	w := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(w, req)
	if w.Code != 404 {
		t.Errorf("a client outside the ranges behind a trusted proxy: %d, want 404", w.Code)
	}
	// the metrics-listen port: no guard (it is loopback-only by config)
	e.srv.MetricsRanges = nil
	w = httptest.NewRecorder()
	e.srv.MetricsPortHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "fjord_") {
		t.Errorf("metrics port: %d", w.Code)
	}
	// a server without metrics has no /metrics, token or not
	e.srv.MetricsToken, e.srv.Metrics = metricsToken, nil
	if code, _ := ask("Bearer " + metricsToken); code != 404 {
		t.Errorf("no metrics: %d, want 404", code)
	}
}

func readyz(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadyzDisk: /readyz is 200 with the real free space, and 503
// "disk nearly full" when the threshold is above it, while /healthz
// stays 200 (the process is fine; it cannot take writes).
func TestReadyzDisk(t *testing.T) {
	e := newEnv(t, journal.Options{})
	if code, body := readyz(t, e.http.URL); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	e.srv.MinFreeDisk = func(size uint64) uint64 { return size + 1 }
	code, body := readyz(t, e.http.URL)
	if code != 503 || !strings.HasPrefix(body, "not ready: disk nearly full") {
		t.Fatalf("readyz with the threshold above the free space: %d %q", code, body)
	}
	if code, _ := e.get(t, "/healthz"); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	e.srv.MinFreeDisk = nil
	e.srv.SetReady(false)
	if code, body := readyz(t, e.http.URL); code != 503 || !strings.Contains(body, "starting") {
		t.Fatalf("readyz before start: %d %q", code, body)
	}
}

// TestReadyzSchema: a database migrated by a newer binary is not ready,
// and the reason names the store and the migration.
func TestReadyzSchema(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ev := e.srv.Events.(*duckdb.Store)
	if _, err := ev.DB.Exec(`INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_next.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	code, body := readyz(t, e.http.URL)
	if code != 503 || !strings.Contains(body, "event store") || !strings.Contains(body, "9999_next.sql") {
		t.Fatalf("readyz with an unknown migration: %d %q", code, body)
	}
}

// proxy is a TCP proxy on loopback that the test can cut (closing every
// connection and refusing new ones) and restore.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { io.Copy(u, c); u.Close() }()
		go func() { io.Copy(c, u); c.Close() }()
	}
}

// cut closes every proxied connection and refuses new ones.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestReadyzPostgres: with the event store on the real PostgreSQL behind
// a proxy, /readyz is 200; with the proxy cut it is 503 naming the event
// store (and no address or user name); restored, 200 again.
func TestReadyzPostgres(t *testing.T) {
	raw := storetest.PostgresURL(t) // skips, naming FJORD_TEST_POSTGRES, when unset
	e := newEnv(t, journal.Options{})
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	ev, err := postgres.OpenEvents(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	// only /readyz's questions go to it: the loader stays on DuckDB
	e.srv.Events = ev
	if code, body := readyz(t, e.http.URL); code != 200 {
		t.Fatalf("readyz on PostgreSQL: %d %q", code, body)
	}
	p.cut()
	code, body := readyz(t, e.http.URL)
	if code != 503 || !strings.HasPrefix(body, "not ready: event store: ") {
		t.Fatalf("readyz with PostgreSQL cut off: %d %q", code, body)
	}
	for _, secret := range []string{u.Host, "127.0.0.1", "postgres", u.User.Username()} {
		if secret != "" && strings.Contains(body, secret) {
			t.Fatalf("readyz's reason %q shows %q", body, secret)
		}
	}
	p.restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body = readyz(t, e.http.URL)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz after PostgreSQL came back: %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
