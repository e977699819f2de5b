package web

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fjord/internal/account"
	"fjord/internal/audit"
	"fjord/internal/auth"
	"fjord/internal/collect"
	"fjord/internal/enrich"
	"fjord/internal/export"
	"fjord/internal/ingest"
	"fjord/internal/ingest/journal"
	"fjord/internal/metrics"
	"fjord/internal/secmon"
	"fjord/internal/staff"
	"fjord/internal/store"
	"fjord/internal/store/duckdb"
	"fjord/internal/store/sqlite"
	"fjord/internal/testnet"
)

const ffUA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

type testEnv struct {
	srv  *Server
	http *httptest.Server
	j    *journal.Journal
	dir  string // holds accounts.db
	// cookie is the session of Acme's Administrator, which get sends
	cookie string
	// key is an API key of Acme's Administrator for site.test and
	// hidden.test, which query and apiGet send
	key string
	// clock is the server's time: the real time, moved on by tests
	clock *testClock
	// logs is everything the server logged, at every level
	logs *syncBuffer
}

// testClock is the real time plus an offset that tests move.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// syncBuffer is a bytes.Buffer that handlers may write concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testPassword is every test user's password.
const testPassword = "correct horse battery"

// newEnv builds a server on real SQLite, DuckDB and journal files.
func newEnv(t testing.TB, opts journal.Options) *testEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	acc, err := sqlite.Open(ctx, filepath.Join(dir, "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := duckdb.Open(ctx, filepath.Join(dir, "events.duckdb"), duckdb.Options{MemoryLimit: "256MB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	opts.Dir = filepath.Join(dir, "journal")
	j, err := journal.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(LogRequestIDs(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	loader := &ingest.Loader{J: j, Store: ev, Log: log, Interval: 10 * time.Millisecond}
	lctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loader.Run(lctx) }()
	// Acme has site.test (granted to its User) and hidden.test (not);
	// Other has other.test.
	pw, err := auth.HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	acme, _, err := acc.CreateAccount(ctx, store.Account{Name: "Acme"}, store.User{Email: "admin@acme.test", PasswordHash: pw})
	if err != nil {
		t.Fatal(err)
	}
	user, err := acc.AddUser(ctx, store.User{AccountID: acme.ID, Email: "user@acme.test", Role: store.RoleUser, PasswordHash: pw})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := acc.CreateAccount(ctx, store.Account{Name: "Other"}, store.User{Email: "admin@other.test", PasswordHash: pw})
	if err != nil {
		t.Fatal(err)
	}
	site, err := account.AddSite(ctx, acc, acme.ID, "site.test", "Europe/Helsinki")
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.Grant(ctx, user.ID, site.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := account.AddSite(ctx, acc, acme.ID, "hidden.test", "UTC"); err != nil {
		t.Fatal(err)
	}
	if _, err := account.AddSite(ctx, acc, other.ID, "other.test", "UTC"); err != nil {
		t.Fatal(err)
	}
	salts := &collect.SaltKeeper{Store: ev}
	sites := &collect.SiteCache{Store: acc}
	clock := &testClock{}
	met := metrics.New()
	srv := &Server{Log: log, Accounts: acc, Events: ev, Journal: j, Loader: loader, Salts: salts,
		Collector: &collect.Collector{Sites: sites, Salts: salts, UA: enrich.NewUAParser(100)},
		Reports:   met.Engine(ev), Auth: &auth.Service{Store: acc, Now: clock.now}, Metrics: met, DataDir: dir,
		Now: clock.now, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}
	_, auditKey, _ := ed25519.GenerateKey(rand.Reader)
	srv.Audit = &audit.Log{Store: acc, Key: auditKey}
	srv.Feeds = acc
	srv.Security = &secmon.Monitor{Store: acc, Accounts: acc, Audit: srv.Audit, Log: log, Key: []byte("test pseudonym key"), Now: clock.now}
	srv.Exports = &export.Recorder{Store: acc, Now: clock.now}
	srv.Usage = acc
	met.Watch(metrics.Sources{Journal: j, Loader: loader, DataDir: dir, OpenAlerts: srv.Security.OpenAlerts})
	srv.SetReady(true)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		stop()
		<-done
		j.Close()
		ev.Close()
		acc.Close()
	})
	e := &testEnv{srv: srv, http: hs, j: j, dir: dir, clock: clock, logs: logs}
	t.Cleanup(func() { checkLogSecrets(t, logs.String(), testPassword, e.cookie, e.key) })
	e.cookie = e.signIn(t, "admin@acme.test")
	admin, err := acc.UserByEmail(ctx, "admin@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	hidden, _ := acc.SiteByDomain(ctx, "hidden.test")
	if e.key, _, err = srv.Auth.CreateKey(ctx, admin, auth.NewKey{Name: "tests", Sites: []int64{site.ID, hidden.ID}, Life: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	return e
}

// checkLogSecrets fails a test whose server logged a secret: the given
// ones (the password, the session's token, the API key every test
// starts with), a client's address or an API key. Every test of this
// package that builds a testEnv runs it (the log-secrets test, PRODUCT
// §9.3).
func checkLogSecrets(t testing.TB, logs string, secrets ...string) {
	for _, f := range testnet.LogSecrets(logs, secrets...) {
		t.Errorf("the server's log holds %s", f)
	}
}

func (e *testEnv) post(t *testing.T, body string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", e.http.URL+"/api/event", strings.NewReader(body))
	req.Header.Set("User-Agent", ffUA)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (e *testEnv) pageviews(t *testing.T) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Loader.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	n, err := e.srv.Events.CountEvents(ctx, site.ID, time.Now().Add(-48*time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEveryRouteDeclaresPermission(t *testing.T) {
	// every route of both tables registered (the guard refuses an unknown
	// permission, so getting here means each one is known; what each guard
	// does is TestRoutesEnforcePermissions)
	s := &Server{}
	for _, m := range []*Mux{s.Handler(), s.ControlHandler(), s.MetricsPortHandler()} {
		if len(m.Routes) == 0 {
			t.Fatal("empty route table")
		}
	}
	for _, perm := range []Permission{"", "made-up"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("registering a route with permission %q did not panic", perm)
				}
			}()
			newMux(s.guard).Handle("GET /x", perm, func(http.ResponseWriter, *http.Request) {})
		}()
	}
}

func TestCollectAnswers(t *testing.T) {
	e := newEnv(t, journal.Options{})
	now := time.Now()
	cases := []struct {
		name, body string
		hdr        []string
		code       int
		errHas     string
		dropped    bool
	}{
		{"plausible pageview", `{"n":"pageview","u":"https://site.test/a","d":"site.test","r":"https://www.google.com/"}`, nil, 202, "", false},
		{"fjord event with props", `{"name":"Signup","url":"https://site.test/a","domain":"site.test","props":{"plan":"pro","n":3}}`, nil, 202, "", false},
		{"plausible props as string", `{"n":"Signup","u":"https://site.test/a","d":"site.test","p":"{\"plan\":\"pro\"}"}`, nil, 202, "", false},
		{"engagement", `{"n":"engagement","u":"https://site.test/a","d":"site.test","sd":55,"e":4200}`, nil, 202, "", false},
		{"bot is dropped", `{"n":"pageview","u":"https://site.test/a","d":"site.test"}`, []string{"User-Agent", "curl/8.5.0"}, 202, "", true},
		{"spam referrer is dropped", `{"n":"pageview","u":"https://site.test/a","d":"site.test","r":"http://semalt.com/"}`, nil, 202, "", true},
		{"unknown site", `{"n":"pageview","u":"https://nope.test/a","d":"nope.test"}`, nil, 400, "no site is registered", false},
		{"malformed json", `{"n":"pageview",`, nil, 400, "not a JSON object", false},
		{"not an object", `[1,2]`, nil, 400, "not a JSON object", false},
		{"trailing data", `{"n":"pageview","u":"https://site.test/","d":"site.test"} {}`, nil, 400, "after the JSON", false},
		{"invalid utf-8", "{\"n\":\"page\xff\",\"u\":\"https://site.test/\",\"d\":\"site.test\"}", nil, 400, "UTF-8", false},
		{"missing name", `{"u":"https://site.test/","d":"site.test"}`, nil, 400, "name", false},
		{"relative url", `{"n":"pageview","u":"/a","d":"site.test"}`, nil, 400, "url", false},
		{"javascript url", `{"n":"pageview","u":"javascript:alert(1)","d":"site.test"}`, nil, 400, "url", false},
		{"ts too old", `{"name":"pageview","url":"https://site.test/","domain":"site.test","ts":` + itoa(now.Add(-25*time.Hour).UnixMilli()) + `}`, nil, 400, "timestamp", false},
		{"ts in the future", `{"name":"pageview","url":"https://site.test/","domain":"site.test","ts":` + itoa(now.Add(time.Hour).UnixMilli()) + `}`, nil, 400, "timestamp", false},
		{"ts absurd", `{"name":"pageview","url":"https://site.test/","domain":"site.test","ts":-99999999999999999}`, nil, 400, "timestamp", false},
		{"bad props", `{"n":"x","u":"https://site.test/","d":"site.test","p":{"a":{"b":1}}}`, nil, 400, "props", false},
		{"bad id", `{"name":"x","url":"https://site.test/","domain":"site.test","id":"zz"}`, nil, 400, "id", false},
		{"scroll depth out of range", `{"n":"engagement","u":"https://site.test/","d":"site.test","sd":101}`, nil, 400, "scroll", false},
	}
	accepted := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := e.post(t, c.body, c.hdr...)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.code, body)
			}
			if c.errHas != "" && !strings.Contains(string(body), c.errHas) {
				t.Fatalf("body %q does not say %q", body, c.errHas)
			}
			if got := resp.Header.Get("X-Plausible-Dropped") == "1"; got != c.dropped {
				t.Fatalf("x-plausible-dropped = %v, want %v", got, c.dropped)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Fatal("no CORS header on the collection endpoint")
			}
			if c.code == 202 && !c.dropped {
				accepted++
			}
		})
	}
	if n := e.pageviews(t); n != int64(accepted) {
		t.Fatalf("stored %d events, want %d", n, accepted)
	}
	ref := e.refused(t)
	if ref[collect.ReasonBadJSON] != 3 || ref[collect.ReasonUnknown] != 1 || ref[collect.ReasonBadTime] != 3 || ref[collect.ReasonBadUTF8] != 1 {
		t.Fatalf("refusal counters: %v", ref)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, journal.Options{})
	pad := strings.Repeat("x", collect.MaxBody)
	resp := e.post(t, `{"n":"pageview","u":"https://site.test/`+pad+`","d":"site.test"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize body: %d", resp.StatusCode)
	}
	// exactly at the limit is read (and refused only for its content)
	body := `{"n":"pageview","u":"https://site.test/","d":"site.test","r":"` + strings.Repeat("y", collect.MaxBody) + `"}`
	body = body[:collect.MaxBody-2] + `"}`
	resp = e.post(t, body)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("body at the limit with an over-long referrer: %d", resp.StatusCode)
	}
	if ref := e.refused(t); ref[collect.ReasonTooLarge] != 1 {
		t.Fatalf("counters: %v", ref)
	}
}

func TestPixel(t *testing.T) {
	e := newEnv(t, journal.Options{})
	req, _ := http.NewRequest("GET", e.http.URL+"/api/event?n=pageview&u=https%3A%2F%2Fsite.test%2Fnojs&d=site.test", nil)
	req.Header.Set("User-Agent", ffUA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" || len(b) != len(pixelGIF) {
		t.Fatalf("pixel: %d %s %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
	if n := e.pageviews(t); n != 1 {
		t.Fatalf("stored %d", n)
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}
	cases := []struct{ remote, xff, want string }{
		{"198.51.100.7:1234", "", "198.51.100.7"},
		{"198.51.100.7:1234", "1.2.3.4", "198.51.100.7"},           // untrusted peer: header ignored
		{"10.9.0.1:1234", "1.2.3.4", "1.2.3.4"},                    // trusted proxy
		{"10.9.0.1:1234", "6.6.6.6, 1.2.3.4, 10.9.0.2", "1.2.3.4"}, // right-most untrusted
		{"10.9.0.1:1234", "garbage", "10.9.0.1"},
		{"[::ffff:198.51.100.7]:1", "", "198.51.100.7"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := ClientIP(r, trusted).String(); got != c.want {
			t.Errorf("%s / %q: got %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

// TestFullQueueSheds: with a write queue of one record, concurrent clients
// cross the limit; those over it get 503 with Retry-After (never a hang or
// unbounded memory), and exactly the acknowledged events are stored.
func TestFullQueueSheds(t *testing.T) {
	e := newEnv(t, journal.Options{QueueLen: 1})
	var acked, shed atomic.Int64
	for round := 0; round < 20 && shed.Load() == 0; round++ {
		var wg sync.WaitGroup
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp := e.post(t, `{"n":"pageview","u":"https://site.test/q","d":"site.test"}`)
				resp.Body.Close()
				switch resp.StatusCode {
				case 202:
					acked.Add(1)
				case 503:
					if resp.Header.Get("Retry-After") == "" {
						t.Error("503 without Retry-After")
					}
					shed.Add(1)
				default:
					t.Errorf("status %d", resp.StatusCode)
				}
			}()
		}
		wg.Wait()
	}
	if shed.Load() == 0 {
		t.Fatal("2000 concurrent requests never filled a queue of one")
	}
	if got := e.pageviews(t); got != acked.Load() {
		t.Fatalf("stored %d, acknowledged %d", got, acked.Load())
	}
	if n := e.refused(t)[collect.ReasonQueueFull]; n != uint64(shed.Load()) {
		t.Fatalf("queue_full counter %d, shed %d", n, shed.Load())
	}
	t.Logf("acknowledged %d, shed %d", acked.Load(), shed.Load())
}

// TestAcknowledgedIsStorable: inputs that decode but would not survive the
// journal record or the stores (invalid UTF-8 after percent-decoding, NUL,
// HTML characters that JSON escaping would inflate) are stored cleaned,
// never acknowledged and then dropped.
func TestAcknowledgedIsStorable(t *testing.T) {
	e := newEnv(t, journal.Options{})
	big := strings.Repeat("<", 1400)
	bodies := []string{
		`{"n":"pageview","u":"https://site.test/%ff%fe","d":"site.test"}`,
		`{"n":"pageview","u":"https://site.test/a%00b","d":"site.test"}`,
		`{"n":"Sign\u0000up","u":"https://site.test/","d":"site.test"}`,
		`{"n":"x","u":"https://site.test/","d":"site.test","p":{"a":"` + big + `","b":"` + big + `","c":"` + big + `"}}`,
	}
	acked := 0
	for _, b := range bodies {
		resp := e.post(t, b)
		resp.Body.Close()
		if resp.StatusCode == 202 {
			acked++
		}
	}
	if got := e.pageviews(t); got != int64(acked) || acked < 3 {
		t.Fatalf("acknowledged %d, stored %d", acked, got)
	}
	if e.srv.Loader.Corrupt.Load() != 0 {
		t.Fatal("the loader met records it could not read")
	}
}

// TestRoutesEnforcePermissions walks the public port's route table and
// asks every route as someone its permission keeps out: no credentials,
// a session that still owes the second factor, a User on Administrator
// routes, a session on the Stats API. None of them gets a 2xx; each gets
// its permission's refusal. A route added with a weaker guard than it
// declares fails here.
func TestRoutesEnforcePermissions(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	userSession := e.signIn(t, "user@acme.test")
	u := e.user(t, "user@acme.test")
	pendingToken, _, err := e.srv.Auth.StartSession(ctx, u.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	// staff: one signed in and acting in no account, one acting in Acme's
	// under a read grant
	e.withStaff("127.0.0.0/8")
	_, idleStaff := e.staffMember(t, "idle@fjord.test", staff.Support, e.clock.now())
	_, actingStaff := e.staffMember(t, "acting@fjord.test", staff.Support, e.clock.now())
	_, approver := e.staffMember(t, "hod@fjord.test", staff.HeadOfDevelopment, e.clock.now())
	g := e.askGrant(t, actingStaff, u.AccountID, "read", 2)
	if code, body := e.staffPost(t, approver, fmt.Sprintf("/staff/grants/%d/approve", g), url.Values{}); code != 200 {
		t.Fatalf("approve: %d\n%s", code, body)
	}
	if code, body := e.staffPost(t, actingStaff, fmt.Sprintf("/staff/grants/%d/act", g), url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("act: %d\n%s", code, body)
	}
	fill := strings.NewReplacer("{domain}", "site.test", "{id}", "1", "{token}", "x", "{file}", "dashboard.css", "{$}", "")
	ask := func(method, path string, cookies ...*http.Cookie) (int, string) {
		req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			if c != nil {
				req.AddCookie(c)
			}
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	type probe struct {
		who      string
		cookie   *http.Cookie
		code     int
		location string // its prefix
	}
	routes := func(fn func(method, path string, perm Permission)) {
		for _, r := range e.srv.Handler().Routes {
			method, pattern, ok := strings.Cut(r.Pattern, " ")
			if !ok { // a pattern for every method
				method, pattern = "GET", r.Pattern
			}
			fn(method, fill.Replace(pattern), r.Perm)
		}
	}
	checked := 0
	routes(func(method, path string, perm Permission) {
		// signed-in routes send a GET to the sign-in and refuse the rest
		refused := func(who string, cookie *http.Cookie, to string) probe {
			if method == "GET" {
				return probe{who, cookie, http.StatusSeeOther, to}
			}
			return probe{who, cookie, http.StatusUnauthorized, ""}
		}
		var probes []probe
		switch perm {
		case PermSignedIn, PermAccount, PermReadSite, PermAdmin:
			probes = append(probes, refused("nobody", nil, "/signin?next="), refused("a pending session", sessionOf(pendingToken), "/signin/2fa?next="))
			if perm == PermAdmin && method == "GET" {
				probes = append(probes, probe{"a User", sessionOf(userSession), http.StatusNotFound, ""})
			}
			if perm == PermSignedIn {
				// a user's own things are never staff's, grant or not
				probes = append(probes, refused("staff acting in no account", idleStaff, "/signin?next="), refused("staff acting under a grant", actingStaff, "/signin?next="))
			} else {
				probes = append(probes, probe{"staff acting in no account", idleStaff, http.StatusForbidden, ""})
			}
		case PermSecondFactor:
			probes = append(probes, probe{"nobody", nil, http.StatusSeeOther, "/signin"}, probe{"a full session", sessionOf(userSession), http.StatusSeeOther, "/signin"})
		case PermStatsAPI:
			probes = append(probes, probe{"a session without a key", sessionOf(e.cookie), http.StatusUnauthorized, ""})
		case PermStaff:
			if method == "GET" {
				probes = append(probes, probe{"a customer's session", sessionOf(e.cookie), http.StatusSeeOther, "/staff/signin"})
			} else {
				probes = append(probes, probe{"a customer's session", sessionOf(e.cookie), http.StatusUnauthorized, ""},
					probe{"staff without the CSRF token", idleStaff, http.StatusForbidden, ""})
			}
		case PermMetrics:
			// no token and an address outside the ranges: as if there
			// were no such page (TestMetricsGuard tries tokens and ranges)
			probes = append(probes, probe{"nobody", nil, http.StatusNotFound, ""}, probe{"a customer's session", sessionOf(e.cookie), http.StatusNotFound, ""})
		case PermCollector:
			// no collectors file here: as if there were no such routes
			// (TestCollectorEndpoints tries tokens with one)
			probes = append(probes, probe{"nobody", nil, http.StatusNotFound, ""}, probe{"a customer's session", sessionOf(e.cookie), http.StatusNotFound, ""})
		case PermPublic, PermPage, PermStaffPage:
			return
		default:
			t.Fatalf("%s %s: permission %q has no check here", method, path, perm)
		}
		for _, p := range probes {
			code, loc := ask(method, path, p.cookie)
			if code != p.code || !strings.HasPrefix(loc, p.location) {
				t.Errorf("%s %s as %s: %d to %q, want %d to %q…", method, path, p.who, code, loc, p.code, p.location)
			}
			checked++
		}
	})
	// POST routes of Administrators: a User (with the session's CSRF
	// token) gets 404, and so does staff under a read grant
	csrf, _ := e.form(t, "/account/2fa", sessionOf(userSession))
	staffCSRF, _ := e.form(t, "/staff/", actingStaff)
	routes(func(method, path string, perm Permission) {
		if perm != PermAdmin || method != "POST" {
			return
		}
		if resp, _ := e.submit(t, path, url.Values{"csrf": {csrf}}, sessionOf(userSession)); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s as a User: %d, want 404", path, resp.StatusCode)
		}
		if resp, _ := e.submit(t, path, url.Values{"csrf": {staffCSRF}}, actingStaff); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s as staff under a read grant: %d, want 404", path, resp.StatusCode)
		}
		checked += 2
	})
	// from outside the staff ranges every staff route is a plain 404
	e.withStaff("10.8.0.0/16")
	routes(func(method, path string, perm Permission) {
		if perm != PermStaff && perm != PermStaffPage {
			return
		}
		if code, _ := ask(method, path, idleStaff); code != http.StatusNotFound {
			t.Errorf("%s %s from outside the staff ranges: %d, want 404", method, path, code)
		}
		checked++
	})
	if checked < 190 {
		t.Fatalf("only %d checks: the route table is smaller than expected", checked)
	}
	// the Exports page and its settings form are the account's
	// Administrators' (each probed above as every other such route)
	perms := map[string]Permission{}
	for _, r := range e.srv.Handler().Routes {
		perms[r.Pattern] = r.Perm
	}
	for _, p := range []string{"GET /admin/exports", "POST /admin/exports"} {
		if perms[p] != PermAdmin {
			t.Errorf("%s: permission %q, want %q", p, perms[p], PermAdmin)
		}
	}
}
