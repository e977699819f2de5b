package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"fjord/internal/store/duckdb"
)

// TestBrowserTracker runs the real tracker (/js/fjord.js) in headless
// Chromium against a running `fjord serve`, on pages served by another
// origin as a customer's site would be, and checks what the server stored:
// pageviews with referrer and user-agent enrichment, a single-page-app
// navigation, a custom event with props, and the fail-over from a dead
// collector endpoint to a live one.
func TestBrowserTracker(t *testing.T) {
	chromium := os.Getenv("FJORD_TEST_CHROMIUM")
	if chromium == "" {
		t.Skip("set FJORD_TEST_CHROMIUM=/usr/bin/chromium (or any Chromium binary) to run the browser test")
	}
	const domain = "shop.test"

	// fjord, with the site registered while it runs.
	dataDir := t.TempDir()
	srv := startServer(t, dataDir)
	fjord(t, "site", "add", domain, "--data-dir", dataDir)
	fjordURL := "http://" + srv.Addr
	collectURL := fjordURL + "/api/event"
	// A port that was listened on and closed: connecting to it is refused,
	// which the tracker must treat as a network error and move on.
	deadURL := "http://" + freePort(t) + "/api/event"

	// The customer's site: another origin than fjord's. The same server
	// reached as "localhost" stands in for the referring site: another host
	// name, so another origin and, to fjord, an external referrer (fjord
	// ignores the port when it compares the referrer's host with the page's).
	shop := httptest.NewUnstartedServer(nil)
	shop.Config.Handler = browserShopPages(fjordURL, deadURL, "http://"+shop.Listener.Addr().String())
	shop.Start()
	t.Cleanup(shop.Close)
	_, shopPort, _ := net.SplitHostPort(shop.Listener.Addr().String())
	shopURL := shop.URL // http://127.0.0.1:PORT
	refOrigin := "http://localhost:" + shopPort

	b := startChromium(t, chromium)
	ctx := b.ctx

	// What the tracker really sent, as the browser saw it.
	netlog := &browserNetLog{reqs: map[network.RequestID]*browserRequest{}}
	if err := chromedp.Listen(ctx, netlog.event); err != nil {
		t.Fatalf("listen to the browser's events: %v", err)
	}
	failf := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n\nrequests to collectors seen by the browser:\n%s\npage errors:\n%s\nbrowser output:\n%s",
			append(args, netlog.String(), netlog.errorsString(), b.out.tail(4000))...)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			failf("%s: %v", what, err)
		}
	}
	// clickLink clicks a link and waits until the page it leads to loads.
	clickLink := func(what, sel string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		resp, err := chromedp.RunResponse(sctx, chromedp.Click(chromedp.CSS(sel)))
		if err != nil {
			failf("%s: %v", what, err)
		}
		if resp.Status != 200 {
			failf("%s: %s answered %d", what, resp.URL, resp.Status)
		}
	}
	stats := func(what string, done func(browserStats) bool) browserStats {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			out := fjord(t, "stats", "--data-dir", dataDir, "--site", domain, "--period", "today", "--json")
			var h browserStats
			if err := json.Unmarshal([]byte(out), &h); err != nil {
				t.Fatalf("fjord stats --json: %v\n%s", err, out)
			}
			if done(h) {
				return h
			}
			if time.Now().After(deadline) {
				failf("%s: not there after 30 s; last stats: %s", what, strings.TrimSpace(out))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	want := func(step string, got browserStats, w browserStats) {
		t.Helper()
		if got != w {
			failf("%s: stats are %+v, want %+v", step, got, w)
		}
	}

	// Headless Chromium says "HeadlessChrome" in its User-Agent, which fjord
	// rightly counts as a bot (automated browser) and keeps out of the
	// numbers (checked below, in a tab of its own). This tab overrides the
	// UA with the same string as a normal desktop Chrome
	// (emulation.SetUserAgentOverride), so that its events are counted.
	ver, err := chromedp.CallBrowser(ctx, browser.GetVersion, cdp.Empty{})
	if err != nil {
		failf("browser version: %v", err)
	}
	t.Logf("browser: %s, User-Agent %q", ver.Product, ver.UserAgent)
	headless := strings.Contains(ver.UserAgent, "HeadlessChrome/")
	ua := strings.ReplaceAll(ver.UserAgent, "HeadlessChrome/", "Chrome/")
	if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua}); err != nil {
		failf("override the User-Agent: %v", err)
	}

	// 1-2. From a page on another site, follow a link to the landing page:
	// one pageview of /landing with that site as referrer.
	do("open the referring page", chromedp.Navigate(refOrigin+"/from"))
	clickLink("follow the link to /landing", "#to-landing")
	h := stats("the pageview of /landing", func(h browserStats) bool { return h.Pageviews >= 1 })
	want("after /landing", h, browserStats{Visitors: 1, Visits: 1, Pageviews: 1, Bounces: 1, BounceRate: 100})

	// 3. A single-page-app navigation: history.pushState is a pageview of
	// /second in the same visit.
	do("click the pushState button", chromedp.Click(chromedp.CSS("#spa")))
	h = stats("the pageview of /second", func(h browserStats) bool { return h.Pageviews >= 2 })
	if h.Visitors != 1 || h.Visits != 1 || h.Pageviews != 2 || h.Events != 0 || h.Bounces != 0 {
		failf("after pushState: stats are %+v, want 1 visitor, 1 visit, 2 pageviews, no bounce", h)
	}

	// 4. A custom event with a property.
	do("click the Signup button", chromedp.Click(chromedp.CSS("#signup")))
	h = stats("the Signup event", func(h browserStats) bool { return h.Events >= 1 })
	if h.Visitors != 1 || h.Visits != 1 || h.Pageviews != 2 || h.Events != 1 {
		failf("after Signup: stats are %+v, want 1 visitor, 1 visit, 2 pageviews, 1 event", h)
	}

	// A pageview from a second tab that keeps the headless User-Agent:
	// fjord accepts it (2xx) and counts it as a bot, not as a pageview.
	// (This comes after the first stored event: `fjord stats` on a journal
	// that never had a record waits 30 s and fails, see the report.) Bot
	// counts reach the store every 10 s or at shutdown, so they are
	// checked in the store at the end.
	if headless {
		tab, closeTab := chromedp.NewContext(ctx)
		tabLog := &browserNetLog{reqs: map[network.RequestID]*browserRequest{}}
		tctx, cancel := context.WithTimeout(tab, 30*time.Second)
		err := chromedp.Listen(tctx, tabLog.event)
		if err == nil {
			err = chromedp.Do(tctx, chromedp.Navigate(shopURL+"/headless"))
		}
		if err != nil {
			failf("load a page with the headless User-Agent: %v", err)
		}
		browserWaitFor(t, 10*time.Second, func() bool {
			r := tabLog.find(collectURL, "/headless")
			return len(r) == 1 && r[0].finished
		}, func() { failf("the headless tab's pageview did not reach fjord:\n%s", tabLog) })
		cancel()
		closeTab()
		h = stats("nothing new after the headless pageview", func(browserStats) bool { return true })
		if h.Pageviews != 2 || h.Events != 1 || h.Visitors != 1 {
			failf("after the headless pageview: stats are %+v, want 2 pageviews, 1 event, 1 visitor as before", h)
		}
	}

	// 5. Fail-over: the tracker of /failover has a dead endpoint first and
	// fjord second. The referring page's link asks for the full referrer
	// (referrerpolicy="unsafe-url"), query included, which fjord must not
	// store.
	do("open the referring page again", chromedp.Navigate(refOrigin+"/from?token=secret"))
	clickLink("follow the link to /failover", "#to-failover")
	h = stats("the pageview of /failover", func(h browserStats) bool { return h.Pageviews >= 3 })
	if h.Visitors != 1 || h.Pageviews != 3 || h.Events != 1 {
		failf("after /failover: stats are %+v, want 1 visitor, 3 pageviews, 1 event", h)
	}
	// The browser tried the dead endpoint, failed, and sent the same event
	// (same id) to fjord, once.
	var failoverID string
	browserWaitFor(t, 10*time.Second, func() bool {
		dead := netlog.find(deadURL, "/failover")
		live := netlog.find(collectURL, "/failover")
		if len(dead) != 1 || len(live) != 1 || dead[0].failed == "" || live[0].failed != "" || !live[0].finished {
			return false
		}
		failoverID = live[0].id
		return dead[0].id != "" && dead[0].id == live[0].id
	}, func() {
		failf("fail-over: want one failed request to %s and one finished request to %s, same event id", deadURL, collectURL)
	})
	// Every other event went straight to fjord, each exactly once: the
	// pageview of /landing, and the pageview and the Signup of /second.
	for page, n := range map[string]int{"/landing": 1, "/second": 2} {
		if got := len(netlog.find(collectURL, page)); got != n {
			failf("%d requests to %s from %s, want %d", got, collectURL, page, n)
		}
	}
	if n := len(netlog.find(deadURL, "")); n != 1 {
		failf("%d requests to the dead endpoint, want 1 (only /failover lists it)", n)
	}

	// Close the browser (nothing more in flight), stop fjord (SIGTERM drains
	// the journal into the store), and read the stored rows.
	b.close()
	srv.Stop()
	st, err := duckdb.Open(context.Background(), filepath.Join(dataDir, "events.duckdb"), duckdb.Options{})
	if err != nil {
		t.Fatalf("open the event store after stopping fjord: %v", err)
	}
	defer st.Close()
	rows, err := st.DB.QueryContext(context.Background(), `SELECT replace(id::VARCHAR, '-', ''), name, hostname, path,
		referrer, source, channel, browser, device, props, visitor_id FROM events ORDER BY ts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []browserEvent
	for rows.Next() {
		var e browserEvent
		if err := rows.Scan(&e.ID, &e.Name, &e.Hostname, &e.Path, &e.Referrer, &e.Source, &e.Channel,
			&e.Browser, &e.Device, &e.Props, &e.VisitorID); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for i, e := range got {
		t.Logf("stored %d: %+v", i, e)
	}

	// Chromium's default referrer policy (strict-origin-when-cross-origin)
	// sends only the origin of the referring page across origins.
	landingRef := refOrigin + "/"
	wantRows := []browserEvent{
		{Name: "pageview", Path: "/landing", Referrer: landingRef},
		// document.referrer does not change on pushState.
		{Name: "pageview", Path: "/second", Referrer: landingRef},
		{Name: "Signup", Path: "/second", Referrer: landingRef, Props: `{"plan":"pro"}`},
		// Full referrer sent (unsafe-url); fjord keeps scheme, host and path.
		{Name: "pageview", Path: "/failover", Referrer: refOrigin + "/from", ID: failoverID},
	}
	if len(got) != len(wantRows) {
		t.Fatalf("%d events stored, want %d (%v)", len(got), len(wantRows), got)
	}
	for i, w := range wantRows {
		e := got[i]
		w.Hostname, w.Source, w.Channel, w.Browser, w.Device = "127.0.0.1", "localhost", "Referral", "Chrome", "desktop"
		w.VisitorID = got[0].VisitorID
		if w.ID == "" {
			w.ID = e.ID
		}
		if w.Props != "" {
			// compare as JSON, not as text
			var gotProps, wantProps any
			if json.Unmarshal([]byte(e.Props), &gotProps) != nil || json.Unmarshal([]byte(w.Props), &wantProps) != nil ||
				fmt.Sprint(gotProps) != fmt.Sprint(wantProps) {
				t.Errorf("event %d (%s): props %q, want %s", i, e.Name, e.Props, w.Props)
			}
			w.Props = e.Props
		}
		if e != w {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, e, w)
		}
	}
	if got[0].VisitorID == 0 {
		t.Errorf("visitor_id is 0")
	}
	var bots int64
	if err := st.DB.QueryRowContext(context.Background(),
		`SELECT COALESCE(SUM(n), 0) FROM counts WHERE name = 'bot'`).Scan(&bots); err != nil {
		t.Fatal(err)
	}
	if wantBots := map[bool]int64{true: 1}[headless]; bots != wantBots {
		t.Errorf("bot count in the store is %d, want %d", bots, wantBots)
	}
}

// browserStats is the part of `fjord stats --json` that the test reads.
type browserStats struct {
	Visitors   int64   `json:"visitors"`
	Visits     int64   `json:"visits"`
	Pageviews  int64   `json:"pageviews"`
	Events     int64   `json:"events"`
	Bounces    int64   `json:"bounces"`
	BounceRate float64 `json:"bounce_rate"`
	Bots       int64   `json:"bots"`
}

type browserEvent struct {
	ID, Name, Hostname, Path, Referrer, Source, Channel, Browser, Device, Props string
	VisitorID                                                                   int64
}

var browserPage = template.Must(template.New("").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title>
{{if .Tracker}}<script defer data-domain="shop.test" data-allow-local data-allow-automation {{if .API}}data-api="{{.API}}" {{end}}src="{{.Fjord}}/js/fjord.js"></script>{{end}}
</head><body>
<h1>{{.Title}}</h1>
{{if .Links}}<p><a id="to-landing" href="{{.Shop}}/landing">Visit the shop</a></p>
<p><a id="to-failover" referrerpolicy="unsafe-url" href="{{.Shop}}/failover">Another shop page</a></p>{{end}}
{{if .Buttons}}<button id="spa" onclick="history.pushState({}, '', '/second')">Next step</button>
<button id="signup" onclick="fjord('event', 'Signup', {props: {plan: 'pro'}})">Sign up</button>{{end}}
</body></html>
`))

// browserShopPages serves the customer's site. Links point to shopOrigin
// (127.0.0.1), whatever host name the referring page was loaded under.
func browserShopPages(fjordURL, deadURL, shopOrigin string) http.Handler {
	page := func(title string, tracker, links, buttons bool, api string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			browserPage.Execute(w, map[string]any{
				"Title": title, "Tracker": tracker, "Links": links, "Buttons": buttons,
				"API": api, "Fjord": fjordURL, "Shop": shopOrigin,
			})
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /from", page("News about shops", false, true, false, ""))
	mux.HandleFunc("GET /headless", page("Shop (headless)", true, false, false, ""))
	mux.HandleFunc("GET /landing", page("Shop", true, false, true, ""))
	mux.HandleFunc("GET /second", page("Shop, second step", true, false, true, ""))
	mux.HandleFunc("GET /failover", page("Shop, fail-over", true, false, false, deadURL+","+fjordURL+"/api/event"))
	return mux
}

type browserSession struct {
	ctx   context.Context
	out   *browserOutput
	close func()
}

// startChromium starts headless Chromium with a fresh profile. It fails the
// test (not skips) when the browser cannot start.
func startChromium(t *testing.T, execPath string) *browserSession {
	t.Helper()
	out := &browserOutput{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(out),
	)
	root, cancelRoot := context.WithTimeout(context.Background(), 3*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(root, opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	var once sync.Once
	b := &browserSession{ctx: ctx, out: out, close: func() {
		once.Do(func() {
			cancelCtx()
			cancelAlloc() // waits for the browser process to exit
			cancelRoot()
		})
	}}
	t.Cleanup(b.close)
	// The first action starts the browser.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v\n%s", execPath, err, out.String())
	}
	return b
}

type browserOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *browserOutput) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// tail is the end of the output, at most n bytes.
func (s *browserOutput) tail(n int) string {
	out := s.String()
	if len(out) > n {
		out = "..." + out[len(out)-n:]
	}
	return out
}

func (s *browserOutput) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// browserRequest is a request of a page to a collector endpoint.
type browserRequest struct {
	url, page, id string
	failed        string // the browser's error text
	finished      bool
}

// browserNetLog records the requests to /api/event endpoints and the errors of
// the pages. Its event func runs on chromedp's reading goroutine.
type browserNetLog struct {
	mu     sync.Mutex
	order  []*browserRequest
	reqs   map[network.RequestID]*browserRequest
	errors []string
}

func (l *browserNetLog) event(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if !strings.HasSuffix(ev.Request.URL, "/api/event") {
			return
		}
		r := &browserRequest{url: ev.Request.URL, page: ev.DocumentURL}
		var body []byte
		for _, e := range ev.Request.PostDataEntries {
			body = append(body, e.Bytes...)
		}
		var p struct {
			ID  string `json:"id"`
			URL string `json:"url"`
		}
		if json.Unmarshal(body, &p) == nil {
			r.id = p.ID
			if p.URL != "" {
				r.page = p.URL
			}
		}
		l.reqs[ev.RequestID] = r
		l.order = append(l.order, r)
	case *network.EventLoadingFailed:
		if r := l.reqs[ev.RequestID]; r != nil {
			r.failed = ev.ErrorText
		}
	case *network.EventLoadingFinished:
		if r := l.reqs[ev.RequestID]; r != nil {
			r.finished = true
		}
	case *runtime.EventExceptionThrown:
		l.errors = append(l.errors, fmt.Sprintf("%s %s", ev.ExceptionDetails.URL, ev.ExceptionDetails.Text))
		if ex := ev.ExceptionDetails.Exception; ex != nil {
			l.errors = append(l.errors, "  "+ex.Description)
		}
	}
}

// find returns copies of the requests to url from pages whose path ends
// with pagePath ("" for any page).
func (l *browserNetLog) find(url, pagePath string) []browserRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []browserRequest
	for _, r := range l.order {
		if r.url == url && strings.HasSuffix(r.page, pagePath) {
			out = append(out, *r)
		}
	}
	return out
}

func (l *browserNetLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.order {
		fmt.Fprintf(&b, "  %s from %s id=%s failed=%q finished=%v\n", r.url, r.page, r.id, r.failed, r.finished)
	}
	return b.String()
}

func (l *browserNetLog) errorsString() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.errors, "\n")
}

// browserWaitFor polls cond until it holds or the timeout passes, then calls fail.
func browserWaitFor(t *testing.T, timeout time.Duration, cond func() bool, fail func()) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			fail()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
