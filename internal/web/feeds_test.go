package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"fjord/internal/feed"
	"fjord/internal/ingest/journal"
	"fjord/internal/report"
	"fjord/internal/secmon"
	"fjord/internal/store"
)

// feedURLRE finds a feed's address (without its extension) on the page
// that shows it once.
var feedURLRE = regexp.MustCompile(`value="(http://[^"]+/feeds/[A-Za-z0-9_-]+)\.csv"`)

// savedReport saves a report of site.test owned by the Administrator.
func (e *testEnv) savedReport(t *testing.T, name, def string) store.SavedReport {
	t.Helper()
	ctx := context.Background()
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	owner := e.user(t, "admin@acme.test").ID
	rep, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: site.ID, Name: name, Definition: def, OwnerID: &owner})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// publish makes a feed of rep through the page, as the holder of
// session, and returns its address without the extension.
func (e *testEnv) publish(t *testing.T, session string, rep store.SavedReport, form url.Values) string {
	t.Helper()
	csrf, _ := e.form(t, "/datafeeds", sessionOf(session))
	f := url.Values{"csrf": {csrf}, "report": {fmt.Sprint(rep.ID)}, "name": {"Feed of " + rep.Name},
		"max_days": {"366"}, "per_hour": {"60"}, "addresses": {"5"}}
	for k, v := range form {
		f[k] = v
	}
	resp, body := e.submit(t, "/datafeeds", f, sessionOf(session))
	m := feedURLRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusCreated || m == nil {
		t.Fatalf("publish: %d\n%s", resp.StatusCode, body)
	}
	return m[1]
}

// fetch asks for a feed from a client address (through the trusted
// proxy the test server sits behind).
func fetch(t *testing.T, u, client string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if client != "" {
		req.Header.Set("X-Forwarded-For", client)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// feedEnv is a test server behind a trusted proxy (loopback), so that
// X-Forwarded-For names the client, with a few pageviews on site.test.
func feedEnv(t *testing.T, e *testEnv) {
	e.srv.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	e.srv.PublicURL = e.http.URL
	// the first pageview of the visit brings a campaign a spreadsheet
	// would run as a formula
	for _, p := range []string{"/?utm_campaign=%3DSUM(1%2C2)", "/pricing", "/", "/pricing"} {
		resp := e.post(t, fmt.Sprintf(`{"n":"pageview","u":"https://site.test%s","d":"site.test"}`, p))
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("pageview %s: %d", p, resp.StatusCode)
		}
	}
}

const pagesReport = `{"metrics":["visitors","pageviews"],"dimensions":["event:page"],"date_range":"7d"}`

// TestFeedToken: a feed answers its token and nothing else. A wrong token,
// the old token after rotation and a malformed one get the same 404; the
// feed's CSV has its report's rows, a formula neutralised; its JSON the
// same rows; a disabled feed answers 410 saying who can undo it.
func TestFeedToken(t *testing.T) {
	e := newEnv(t, journal.Options{})
	feedEnv(t, e)
	rep := e.savedReport(t, "Pages", pagesReport)
	u := e.publish(t, e.cookie, rep, nil)
	id := e.feedID(t)

	code, body := fetch(t, u+".csv", "192.0.2.10")
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if code != 200 || err != nil || len(recs) != 3 || strings.Join(recs[0], ",") != "event:page,visitors,pageviews" ||
		strings.Join(recs[1], ",") != "/,1,2" || strings.Join(recs[2], ",") != "/pricing,1,2" {
		t.Fatalf("csv: %d %v\n%s", code, err, body)
	}
	code, body = fetch(t, u+".json?period=30d", "192.0.2.10")
	var rows []map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &rows) != nil || len(rows) != 2 || rows[1]["event:page"] != "/pricing" || rows[1]["pageviews"] != 2.0 {
		t.Fatalf("json: %d\n%s", code, body)
	}
	// a campaign that looks like a formula reaches the spreadsheet as text
	cu := e.publish(t, e.cookie, e.savedReport(t, "Campaigns", `{"metrics":["visitors"],"dimensions":["visit:utm_campaign"],"date_range":"7d"}`), nil)
	if code, body := fetch(t, cu+".csv", "192.0.2.10"); code != 200 || !strings.Contains(body, "\n'=SUM(1,2)") && !strings.Contains(body, "\n\"'=SUM(1,2)\"") {
		t.Fatalf("campaigns: %d\n%s", code, body)
	}

	wrong, _ := feed.NewToken()
	malformed := u[:strings.LastIndex(u, "/")+1] + "short"
	_, wantBody := fetch(t, e.http.URL+"/feeds/"+wrong+".csv", "192.0.2.10")
	// rotate: the page shows the new address once; the old one is dead
	csrf, _ := e.form(t, fmt.Sprintf("/datafeeds/%d", id), sessionOf(e.cookie))
	resp, page := e.submit(t, fmt.Sprintf("/datafeeds/%d/rotate", id), url.Values{"csrf": {csrf}}, sessionOf(e.cookie))
	m := feedURLRE.FindStringSubmatch(page)
	if resp.StatusCode != 200 || m == nil || m[1] == u {
		t.Fatalf("rotate: %d\n%s", resp.StatusCode, page)
	}
	for name, addr := range map[string]string{"wrong token": e.http.URL + "/feeds/" + wrong + ".csv", "old token": u + ".csv",
		"malformed": malformed + ".csv", "no extension": u, "other extension": u + ".xlsx"} {
		code, body := fetch(t, addr, "192.0.2.10")
		if code != 404 || body != wantBody {
			t.Errorf("%s: %d %q, want 404 %q", name, code, body, wantBody)
		}
	}
	if code, _ := fetch(t, m[1]+".csv", "192.0.2.10"); code != 200 {
		t.Fatalf("new token: %d", code)
	}
	// bad queries name the field and are recorded
	for q, want := range map[string]string{"?period=5y": "period", "?from=2026-01-01": "to", "?from=2026-02-01&to=2026-01-01": "to",
		"?limit=5": "unknown parameter", "?period=7d&from=2026-01-01&to=2026-01-02": "not both", "?from=2025-01-01&to=2026-06-01": "limit of 366 days"} {
		code, body := fetch(t, m[1]+".csv"+q, "192.0.2.10")
		if code != 400 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %q, want 400 naming %q", q, code, body, want)
		}
	}
	// disabled by hand: 410, saying an Administrator can enable it again
	csrf, _ = e.form(t, fmt.Sprintf("/datafeeds/%d", id), sessionOf(e.cookie))
	if resp, body := e.submit(t, fmt.Sprintf("/datafeeds/%d/disable", id), url.Values{"csrf": {csrf}}, sessionOf(e.cookie)); resp.StatusCode != 200 {
		t.Fatalf("disable: %d\n%s", resp.StatusCode, body)
	}
	if code, body := fetch(t, m[1]+".csv", "192.0.2.10"); code != 410 || !strings.Contains(body, "An Administrator of the account can enable it again") {
		t.Fatalf("disabled: %d %q", code, body)
	}
	// the page shows every request: time, address, status, rows, bytes
	_, page = e.getAs(t, e.cookie, fmt.Sprintf("/datafeeds/%d", id))
	for _, want := range []string{"192.0.2.10", "<td>410</td>", "<td>400</td>", "<td>200</td><td>2</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the feed's page lacks %q", want)
		}
	}
	// no token reached the log
	for _, tok := range []string{u[strings.LastIndex(u, "/")+1:], m[1][strings.LastIndex(m[1], "/")+1:]} {
		if strings.Contains(e.logs.String(), tok) {
			t.Errorf("the log holds a feed token:\n%s", e.logs.String())
		}
	}
	// and the audit log has it all
	var actions []string
	for _, en := range e.auditSince(t, 0) {
		if strings.HasPrefix(en.Action, "feed.") {
			actions = append(actions, en.Action)
		}
	}
	if got := strings.Join(actions, " "); got != "feed.create feed.read feed.read feed.create feed.read feed.rotate feed.read feed.disable" {
		t.Errorf("audit: %s", got)
	}
}

// feedID is the id of the newest feed of Acme.
func (e *testEnv) feedID(t *testing.T) int64 {
	t.Helper()
	acc := e.user(t, "admin@acme.test").AccountID
	fs, err := e.srv.Feeds.Feeds(context.Background(), acc)
	if err != nil || len(fs) == 0 {
		t.Fatalf("feeds: %v %v", fs, err)
	}
	return fs[0].ID
}

// TestFeedRanges: a feed limited to address ranges answers inside them,
// IPv4 and IPv6, and refuses others with 403, each a security event.
func TestFeedRanges(t *testing.T) {
	e := newEnv(t, journal.Options{})
	feedEnv(t, e)
	u := e.publish(t, e.cookie, e.savedReport(t, "Pages", pagesReport), url.Values{"ranges": {"192.0.2.0/24, 2001:db8:1::/48 198.51.100.7"}, "addresses": {"100"}})
	for client, want := range map[string]int{
		"192.0.2.1": 200, "192.0.2.254": 200, "198.51.100.7": 200, "2001:db8:1::1": 200, "2001:db8:1:ffff::9": 200, "::ffff:192.0.2.3": 200,
		"192.0.3.1": 403, "198.51.100.8": 403, "2001:db8:2::1": 403, "10.0.0.1": 403, "::1": 403,
	} {
		if code, body := fetch(t, u+".csv", client); code != want {
			t.Errorf("from %s: %d %q, want %d", client, code, body, want)
		}
	}
	acc := e.user(t, "admin@acme.test").AccountID
	n, _, err := e.srv.Security.Store.CountSecurityEvents(context.Background(), secmon.IPRefused, fmt.Sprintf("account:%d", acc), time.Time{})
	if err != nil || n != 5 {
		t.Errorf("%d address-refused events (%v), want 5", n, err)
	}
	// the settings form refuses a range it cannot read, naming it
	id := e.feedID(t)
	csrf, _ := e.form(t, fmt.Sprintf("/datafeeds/%d", id), sessionOf(e.cookie))
	resp, page := e.submit(t, fmt.Sprintf("/datafeeds/%d/settings", id), url.Values{"csrf": {csrf}, "name": {"x"}, "ranges": {"192.0.2.0/33"},
		"max_days": {"30"}, "per_hour": {"5"}, "addresses": {"2"}}, sessionOf(e.cookie))
	if resp.StatusCode != 400 || !strings.Contains(page, "192.0.2.0/33") {
		t.Errorf("bad range: %d\n%s", resp.StatusCode, page)
	}
}

// TestFeedExpiry: with the clock moved, a feed unused for 29 days still
// answers; one unused for 30 days is disabled by the job (on record, the
// owner and Administrators told), answers 410, and only an Administrator
// can enable it again.
func TestFeedExpiry(t *testing.T) {
	e := newMailEnv(t)
	feedEnv(t, e.testEnv)
	ctx := context.Background()
	acme := e.user(t, "admin@acme.test").AccountID
	if err := e.srv.Feeds.SetUsersPublishFeeds(ctx, acme, true); err != nil {
		t.Fatal(err)
	}
	user := e.signIn(t, "user@acme.test")
	rep := e.savedReport(t, "Pages", pagesReport)
	// the Administrator's feed is used once and left: the job disables it
	other := e.publish(t, e.cookie, rep, nil)
	otherID := e.feedID(t)
	// the User's is used on and off: disabled by its request at 30 days
	u := e.publish(t, user, rep, nil)
	id := e.feedID(t)
	for _, addr := range []string{u, other} {
		if code, _ := fetch(t, addr+".csv", "192.0.2.1"); code != 200 {
			t.Fatal(code)
		}
	}
	e.clock.advance(29 * 24 * time.Hour)
	if err := e.srv.FeedJobs(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ := fetch(t, u+".csv", "192.0.2.1"); code != 200 {
		t.Fatalf("after 29 days: %d", code)
	}
	seq := e.lastSeq(t)
	e.clock.advance(30*24*time.Hour - time.Minute)
	if err := e.srv.FeedJobs(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ := fetch(t, u+".csv", "192.0.2.1"); code != 200 {
		t.Fatalf("a minute short of 30 days unused: %d", code)
	}
	// the job found the Administrator's feed unused for 59 days
	if code, body := fetch(t, other+".csv", "192.0.2.1"); code != 410 || !strings.Contains(body, feed.WhyIdle) {
		t.Fatalf("the feed the job disabled: %d %q", code, body)
	}
	// 30 days after its last use, the User's feed dies at its request,
	// before any job ran
	e.clock.advance(30 * 24 * time.Hour)
	if code, body := fetch(t, u+".csv", "192.0.2.1"); code != 410 || !strings.Contains(body, feed.WhyIdle) {
		t.Fatalf("after 30 days unused: %d %q", code, body)
	}
	if err := e.srv.FeedJobs(ctx); err != nil {
		t.Fatal(err)
	}
	var disabled []string
	for _, en := range e.auditSince(t, seq) {
		if en.Action == "feed.disable" && en.Actor == "system" && en.Detail == feed.WhyIdle {
			disabled = append(disabled, en.Target)
		}
	}
	if want := fmt.Sprintf("feed:%d feed:%d", otherID, id); strings.Join(disabled, " ") != want {
		t.Fatalf("disabled on record: %v, want %s", disabled, want)
	}
	e.flush(t)
	// each feed's notice went to its owner and the Administrators
	for to, n := range map[string]int{"admin@acme.test": 2, "user@acme.test": 1} {
		ms := e.mp.To(t, to)
		if len(ms) != n {
			t.Errorf("%s: %d mails, want %d", to, len(ms), n)
		}
		for _, m := range ms {
			if !strings.Contains(m.Subject, "is disabled") {
				t.Errorf("%s: %q", to, m.Subject)
			}
		}
	}
	if ms := e.mp.To(t, "admin@other.test"); len(ms) != 0 {
		t.Errorf("another account's Administrator was told: %+v", ms)
	}
	// the owner, a User, cannot enable it; an Administrator can (both
	// sign in again: their sessions ended while the clock moved)
	user = e.signIn(t, "user@acme.test")
	e.cookie = e.signIn(t, "admin@acme.test")
	path := fmt.Sprintf("/datafeeds/%d/enable", id)
	csrf, _ := e.form(t, fmt.Sprintf("/datafeeds/%d", id), sessionOf(user))
	if resp, _ := e.submit(t, path, url.Values{"csrf": {csrf}}, sessionOf(user)); resp.StatusCode != 403 {
		t.Fatalf("a User enabling: %d", resp.StatusCode)
	}
	if code, _ := fetch(t, u+".csv", "192.0.2.1"); code != 410 {
		t.Fatalf("after a User's try: %d", code)
	}
	csrf, _ = e.form(t, fmt.Sprintf("/datafeeds/%d", id), sessionOf(e.cookie))
	if resp, body := e.submit(t, path, url.Values{"csrf": {csrf}}, sessionOf(e.cookie)); resp.StatusCode != 200 || !strings.Contains(body, "answers again") {
		t.Fatalf("an Administrator enabling: %d\n%s", resp.StatusCode, body)
	}
	if code, _ := fetch(t, u+".csv", "192.0.2.1"); code != 200 {
		t.Fatalf("enabled again: %d", code)
	}
	// another account's Administrator learns nothing of it
	stranger := e.signIn(t, "admin@other.test")
	if code, _ := e.getAs(t, stranger, fmt.Sprintf("/datafeeds/%d", id)); code != 404 {
		t.Errorf("another account's Administrator: %d", code)
	}
}

// TestFeedLimits: past its requests an hour a feed answers 429, and at
// twice as many it is disabled; the same for distinct addresses a day.
// Each way one security alert mail reaches the Administrators.
func TestFeedLimits(t *testing.T) {
	for _, c := range []struct {
		name   string
		form   url.Values
		client func(i int) string
		want   []int
		why    string
	}{
		{"requests an hour", url.Values{"per_hour": {"3"}}, func(int) string { return "192.0.2.1" },
			[]int{200, 200, 200, 429, 429, 410, 410}, feed.WhyRate},
		{"addresses a day", url.Values{"addresses": {"2"}}, func(i int) string { return fmt.Sprintf("2001:db8::%d", i%5+1) },
			[]int{200, 200, 429, 410, 410}, feed.WhyAddresses},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newMailEnv(t)
			feedEnv(t, e.testEnv)
			u := e.publish(t, e.cookie, e.savedReport(t, "Pages", pagesReport), c.form)
			for i, want := range c.want {
				code, body := fetch(t, u+".csv", c.client(i))
				if code != want {
					t.Fatalf("request %d: %d %q, want %d", i+1, code, body, want)
				}
				if code == 429 && !strings.Contains(body, "over its limits") {
					t.Fatalf("429 says %q", body)
				}
			}
			f, _ := e.srv.Feeds.Feed(context.Background(), e.feedID(t))
			if f.DisabledWhy != c.why {
				t.Errorf("disabled for %q, want %q", f.DisabledWhy, c.why)
			}
			if err := e.srv.Security.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			e.flush(t)
			var alerts, notices int
			for _, m := range e.mp.To(t, "admin@acme.test") {
				switch {
				case strings.Contains(m.Subject, "security alert"):
					alerts++
				case strings.Contains(m.Subject, "is disabled"):
					notices++
				default:
					t.Errorf("unexpected mail %q", m.Subject)
				}
			}
			if alerts != 1 || notices != 1 {
				t.Errorf("%d alert mails and %d notices, want one each", alerts, notices)
			}
			n, _, _ := e.srv.Security.Store.CountSecurityEvents(context.Background(), secmon.FeedAbuse, fmt.Sprintf("account:%d", f.AccountID), time.Time{})
			if n != 2 { // the first refusal, and the disabling
				t.Errorf("%d feed-abuse events, want 2", n)
			}
			// an hour and a day later it stays disabled: only an
			// Administrator brings it back
			e.clock.advance(25 * time.Hour)
			if code, _ := fetch(t, u+".csv", c.client(0)); code != 410 {
				t.Errorf("a day later: %d", code)
			}
			// enabled again, it starts afresh: the traffic that disabled
			// it no longer counts
			e.clock.advance(-25 * time.Hour)
			admin := e.signIn(t, "admin@acme.test")
			page := fmt.Sprintf("/datafeeds/%d", f.ID)
			csrf, _ := e.form(t, page, sessionOf(admin))
			if resp, body := e.submit(t, page+"/enable", url.Values{"csrf": {csrf}}, sessionOf(admin)); resp.StatusCode != 200 {
				t.Fatalf("enable: %d\n%s", resp.StatusCode, body)
			}
			if code, body := fetch(t, u+".csv", c.client(0)); code != 200 {
				t.Errorf("enabled again after abuse: %d %q", code, body)
			}
		})
	}
}

// TestFeedConcurrent: requests arriving together are judged one after
// the other, so no more pass than the limit allows, and no more than
// maxFeedStreams are answered at once.
func TestFeedConcurrent(t *testing.T) {
	e := newEnv(t, journal.Options{})
	feedEnv(t, e)
	u := e.publish(t, e.cookie, e.savedReport(t, "Pages", pagesReport), url.Values{"per_hour": {"3"}})
	const n = 24
	codes := make(chan int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			code, _ := fetch(t, u+".csv", "192.0.2.1")
			codes <- code
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[200] < 1 || count[200] > 3 || count[200]+count[429]+count[410] != n {
		t.Fatalf("answers %v: at most 3 may pass, the rest refused", count)
	}
	f, _ := e.srv.Feeds.Feed(context.Background(), e.feedID(t))
	if f.DisabledWhy != feed.WhyRate {
		t.Errorf("after %d requests at once with a limit of 3 an hour: disabled %q", n, f.DisabledWhy)
	}
	ev, _, _ := e.srv.Security.Store.CountSecurityEvents(context.Background(), secmon.FeedAbuse, fmt.Sprintf("account:%d", f.AccountID), time.Time{})
	if ev < 1 || ev > 2 {
		t.Errorf("%d feed-abuse events, want the first refusal and the disabling at most", ev)
	}
}

// TestFeedPublishRights: a User publishes only where the account allows
// it and only reports they read; a feed whose owner lost access is
// disabled at its next request. (Staff never reach /datafeeds:
// TestRoutesEnforcePermissions, as for every signed-in route.)
func TestFeedPublishRights(t *testing.T) {
	e := newEnv(t, journal.Options{})
	feedEnv(t, e)
	ctx := context.Background()
	rep := e.savedReport(t, "Pages", pagesReport)
	user := e.signIn(t, "user@acme.test")
	csrf, _ := e.form(t, "/datafeeds", sessionOf(user))
	form := url.Values{"csrf": {csrf}, "report": {fmt.Sprint(rep.ID)}, "name": {"mine"}, "max_days": {"30"}, "per_hour": {"10"}, "addresses": {"2"}}
	if resp, body := e.submit(t, "/datafeeds", form, sessionOf(user)); resp.StatusCode != 400 || !strings.Contains(body, "not one you may publish") {
		t.Fatalf("a User where the account does not allow it: %d\n%s", resp.StatusCode, body)
	}
	csrf, _ = e.form(t, "/datafeeds", sessionOf(e.cookie))
	if resp, _ := e.submit(t, "/datafeeds/settings", url.Values{"csrf": {csrf}, "users_publish": {"1"}}, sessionOf(e.cookie)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("allow users: %d", resp.StatusCode)
	}
	if code, _ := e.getAs(t, user, "/datafeeds"); code != 200 {
		t.Fatal(code)
	}
	// a User cannot change the account's rule
	csrf, _ = e.form(t, "/datafeeds", sessionOf(user))
	if resp, _ := e.submit(t, "/datafeeds/settings", url.Values{"csrf": {csrf}}, sessionOf(user)); resp.StatusCode != 404 {
		t.Fatalf("a User changing the rule: %d", resp.StatusCode)
	}
	u := e.publish(t, user, rep, nil)
	hidden, _ := e.srv.Accounts.SiteByDomain(ctx, "hidden.test")
	hiddenRep, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: hidden.ID, Name: "Hidden", Definition: pagesReport})
	if err != nil {
		t.Fatal(err)
	}
	form.Set("report", fmt.Sprint(hiddenRep.ID))
	form.Set("csrf", csrf)
	if resp, _ := e.submit(t, "/datafeeds", form, sessionOf(user)); resp.StatusCode != 400 {
		t.Fatalf("a User publishing a report they cannot read: %d", resp.StatusCode)
	}
	if code, _ := fetch(t, u+".csv", "192.0.2.1"); code != 200 {
		t.Fatal(code)
	}
	// the owner loses the site: the feed is disabled at its next request
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	if err := e.srv.Accounts.Ungrant(ctx, e.user(t, "user@acme.test").ID, site.ID, 0); err != nil {
		t.Fatal(err)
	}
	if code, body := fetch(t, u+".csv", "192.0.2.1"); code != 410 || !strings.Contains(body, feed.WhyOwner) {
		t.Fatalf("owner without access: %d %q", code, body)
	}
	// and the User no longer sees it to manage
	if code, _ := e.getAs(t, user, fmt.Sprintf("/datafeeds/%d", e.feedID(t))); code != 404 {
		t.Errorf("a User managing a feed of a report they lost: %d", code)
	}
}

// FuzzFeedURL: whatever the path and query of a feed request, ParseFile
// and ParseQuery either refuse it or give a token of the right form and
// a period the report engine accepts.
func FuzzFeedURL(f *testing.F) {
	tok, _ := feed.NewToken()
	for _, s := range []string{tok + ".csv", tok + ".json?period=30d", tok + ".csv?from=2026-01-01&to=2026-01-31", "x.csv", tok + ".csv?period=7d&period=30d", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		file, rawq, _ := strings.Cut(s, "?")
		if token, format, err := feed.ParseFile(file); err == nil {
			if len(token) != len(tok) || (format != "csv" && format != "json") {
				t.Fatalf("%q: token %q format %q", s, token, format)
			}
		}
		q, err := url.ParseQuery(rawq)
		if err != nil {
			return
		}
		p, err := feed.ParseQuery(q)
		if err != nil {
			if !strings.Contains(err.Error(), ":") {
				t.Fatalf("%q: an error that names no field: %v", s, err)
			}
			return
		}
		// what ParseQuery accepts, the report engine takes (or refuses
		// only a range over its five years)
		dr := p.DateRange()
		if dr == nil {
			return
		}
		req := &report.APIRequest{SiteID: "site.test", Metrics: []string{report.MVisitors}, DateRange: dr}
		site := store.Site{ID: 1, Domain: "site.test", TimeZone: "Europe/Helsinki"}
		if _, err := req.Build(site, nil, time.Now()); err != nil && !strings.Contains(err.Error(), "longer than five years") {
			t.Fatalf("%q: the engine refuses the period %s: %v", s, dr, err)
		}
	})
}

// FuzzFeedForm: the feed settings form either is refused with a message
// or gives settings within the bounds.
// fuzz-count: 10000x
func FuzzFeedForm(f *testing.F) {
	f.Add("Pages", "192.0.2.0/24 2001:db8::/32", "30", "60", "5")
	f.Add("", "300.0.0.1", "-1", "x", "1e9")
	f.Fuzz(func(t *testing.T, name, ranges, days, perHour, addrs string) {
		r := &http.Request{PostForm: url.Values{"name": {name}, "ranges": {ranges}, "max_days": {days}, "per_hour": {perHour}, "addresses": {addrs}}}
		ff, rs, err := decodeFeedForm(r)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		if len(rs) > store.MaxRanges || ff.MaxDays < 1 || ff.MaxDays > feed.MaxMaxDays || ff.PerHour < 1 || ff.Addresses < 1 || strings.TrimSpace(ff.Name) == "" {
			t.Fatalf("accepted %+v %v", ff, rs)
		}
	})
}

// BenchmarkFeedMiss: the 404 of a wrong token and of a rotated one take
// the same path (one lookup of the token's hash), so their times should
// not differ beyond noise. BENCHMARKS.md has the figures.
func BenchmarkFeedMiss(b *testing.B) {
	e := newEnv(b, journal.Options{})
	ctx := context.Background()
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	admin, _ := e.srv.Accounts.UserByEmail(ctx, "admin@acme.test")
	rep, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: site.ID, Name: "Pages", Definition: pagesReport, OwnerID: &admin.ID})
	if err != nil {
		b.Fatal(err)
	}
	old, oldHash := feed.NewToken()
	f, err := e.srv.Feeds.CreateFeed(ctx, feed.Feed{AccountID: admin.AccountID, ReportID: rep.ID, OwnerID: admin.ID, Name: "bench", TokenHash: oldHash,
		Limits: feed.Limits{MaxDays: 30, PerHour: feed.MaxPerHour, Addresses: 10}, Created: e.clock.now()})
	if err != nil {
		b.Fatal(err)
	}
	_, hash := feed.NewToken()
	if err := e.srv.Feeds.SetFeedToken(ctx, f.ID, hash); err != nil {
		b.Fatal(err)
	}
	h := e.srv.Handler()
	// guesses made beforehand, so that making them is not timed
	guesses := make([]string, 4096)
	for i := range guesses {
		guesses[i], _ = feed.NewToken()
	}
	// the two kinds alternate request by request, so that the machine's
	// drift (it is shared and noisy) falls on both alike
	ask := func(tok string) time.Duration {
		req := httptest.NewRequest("GET", "/feeds/"+tok+".csv", nil)
		req.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, req)
		d := time.Since(start)
		if w.Code != 404 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
		return d
	}
	var wrong, rotated time.Duration
	i := 0
	for b.Loop() {
		wrong += ask(guesses[i%len(guesses)]) // a new guess each time, as an attacker's
		rotated += ask(old)
		i++
	}
	b.ReportMetric(float64(wrong.Nanoseconds())/float64(i), "wrong-ns/op")
	b.ReportMetric(float64(rotated.Nanoseconds())/float64(i), "rotated-ns/op")
	b.ReportMetric(float64(rotated)/float64(wrong), "rotated/wrong")
}

// TestFeedStreamsAtOnce: no more than maxFeedStreams answers of one feed
// are under way at once; a further request is refused (429) until one
// ends.
func TestFeedStreamsAtOnce(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	rep := e.savedReport(t, "Pages", pagesReport)
	admin := e.user(t, "admin@acme.test")
	_, hash := feed.NewToken()
	f, err := e.srv.Feeds.CreateFeed(ctx, feed.Feed{AccountID: admin.AccountID, ReportID: rep.ID, OwnerID: admin.ID, Name: "at once", TokenHash: hash,
		Limits: feed.Limits{MaxDays: 30, PerHour: 100, Addresses: 10}, Created: e.clock.now()})
	if err != nil {
		t.Fatal(err)
	}
	judge := func() (feed.Verdict, int) {
		use := feed.Use{FeedID: f.ID, Time: e.clock.now(), Client: "192.0.2.1"}
		v, err := e.srv.judgeFeed(httptest.NewRequest("GET", "/feeds/x.csv", nil), f, &use)
		if err != nil {
			t.Fatal(err)
		}
		return v, use.Status
	}
	for i := 0; i < maxFeedStreams; i++ {
		if v, status := judge(); v.Throttle || status != 0 {
			t.Fatalf("answer %d: %+v %d", i+1, v, status)
		}
	}
	if v, status := judge(); !v.Throttle || v.Disable != "" || status != 429 {
		t.Fatalf("one answer too many: %+v %d", v, status)
	}
	e.srv.feedGate.done(f.ID)
	if v, _ := judge(); v.Throttle {
		t.Fatalf("after one ended: %+v", v)
	}
}
