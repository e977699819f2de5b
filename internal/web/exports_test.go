package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"fjord/internal/export"
	"fjord/internal/ingest/journal"
	"fjord/internal/report"
	"fjord/internal/secmon"
	"fjord/internal/staff"
	"fjord/internal/store"
	"fjord/internal/store/sqlstore"
	"fjord/internal/store/storetest"
)

// exportsOf lists an account's export records, newest first.
func (e *testEnv) exportsOf(t *testing.T, account int64) []export.Record {
	t.Helper()
	recs, err := e.srv.Exports.Store.Exports(context.Background(), account, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// exporter is the client of the export tests: from 127.0.0.77, so that
// the tests can tell its address from others' in what the server keeps.
var exporter = fromLoopback(77)

// fetch GETs a path with a session cookie or an API key (either may be
// empty) and returns the status and the body as received.
func (e *testEnv) fetch(t *testing.T, cookie, key, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.http.URL+path, nil)
	if cookie != "" {
		req.AddCookie(sessionOf(cookie))
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := exporter.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode, b
}

// apiPost POSTs a Stats API query with a key.
func (e *testEnv) apiPost(t *testing.T, key, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.http.URL+"/api/v2/query", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := exporter.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// rowsIn counts the rows of an answer: CSV lines after the header, the
// entries of a JSON array, or of an API answer's "results".
func rowsIn(t *testing.T, format string, body []byte) int64 {
	t.Helper()
	if format == export.CSV {
		recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil || len(recs) == 0 {
			t.Fatalf("not CSV (%v):\n%s", err, body)
		}
		return int64(len(recs) - 1)
	}
	var arr []json.RawMessage
	if json.Unmarshal(body, &arr) == nil {
		return int64(len(arr))
	}
	var obj struct {
		Results json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatalf("not JSON (%v):\n%s", err, body)
	}
	if json.Unmarshal(obj.Results, &arr) == nil {
		return int64(len(arr))
	}
	return 1 // v1 aggregate: one object of figures
}

// someVisits posts pageviews of three pages of site.test.
func someVisits(t *testing.T, e *testEnv) {
	t.Helper()
	for i, p := range []string{"/", "/pricing", "/blog/=cmd()", "/pricing"} {
		e.post(t, fmt.Sprintf(`{"n":"pageview","u":"https://site.test%s","d":"site.test"}`, p), "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i+1)).Body.Close()
	}
}

// TestExportRecords: each way report data leaves (a dashboard panel as CSV
// and JSON, a saved report as CSV and JSON, the Stats API's v2 query and
// v1 answers, a staff member's download under a grant) is recorded once,
// with who, what, the rows sent and the bytes the client received, and
// has one audit entry naming the same numbers. The realtime count is no
// export.
func TestExportRecords(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	someVisits(t, e)
	admin, user := e.user(t, "admin@acme.test"), e.user(t, "user@acme.test")
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	rep, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: site.ID, Name: "Pages", Definition: `{"metrics":["visitors","pageviews"],"dimensions":["event:page"],"date_range":"7d"}`})
	if err != nil {
		t.Fatal(err)
	}
	userSession := e.signIn(t, "user@acme.test")
	key, k := e.newKey(t, "admin@acme.test", time.Hour, "site.test")

	type want struct {
		via, format, panel string
		report, user, key  int64
	}
	check := func(name string, code int, body []byte, w want) {
		t.Helper()
		if code != 200 {
			t.Fatalf("%s: %d\n%s", name, code, body)
		}
		recs := e.exportsOf(t, admin.AccountID)
		if len(recs) == 0 {
			t.Fatalf("%s: no record", name)
		}
		r := recs[0]
		rows := rowsIn(t, w.format, body)
		if r.Via != w.via || r.Format != w.format || !strings.HasPrefix(r.Panel, w.panel) || r.Report != w.report || r.Site != site.ID ||
			r.User != w.user || r.Staff != 0 || r.APIKey != w.key || !r.Complete || r.Period == "" {
			t.Errorf("%s: record %+v, want %+v", name, r, w)
		}
		if r.Rows != rows || r.Bytes != int64(len(body)) || rows == 0 {
			t.Errorf("%s: recorded %d rows, %d bytes; the client got %d rows, %d bytes", name, r.Rows, r.Bytes, rows, len(body))
		}
		last, err := e.srv.Audit.Store.LastEntry(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if last.Action != "export" || last.Actor != fmt.Sprintf("user:%d", w.user) || last.Account != admin.AccountID ||
			!strings.Contains(last.Detail, fmt.Sprintf("%d rows, %d bytes", rows, len(body))) {
			t.Errorf("%s: audit entry %+v", name, last)
		}
	}
	n := len(e.exportsOf(t, admin.AccountID))
	for _, c := range []struct {
		name, cookie, key, path string
		w                       want
	}{
		{"dashboard CSV", e.cookie, "", "/dashboard/site.test/export?panel=pages&format=csv", want{export.ViaDashboard, export.CSV, "pages", 0, admin.ID, 0}},
		{"dashboard JSON", e.cookie, "", "/dashboard/site.test/export?panel=pages&period=7d&format=json", want{export.ViaDashboard, export.JSON, "pages", 0, admin.ID, 0}},
		{"saved report CSV", userSession, "", fmt.Sprintf("/reports/%d?format=csv", rep.ID), want{export.ViaReport, export.CSV, "", rep.ID, user.ID, 0}},
		{"saved report JSON", userSession, "", fmt.Sprintf("/reports/%d?format=json&period=30d", rep.ID), want{export.ViaReport, export.JSON, "", rep.ID, user.ID, 0}},
		{"v1 breakdown", "", key, "/api/v1/stats/breakdown?site_id=site.test&property=event:page", want{export.ViaAPI, export.JSON, "v1 breakdown event:page", 0, admin.ID, k.ID}},
		{"v1 timeseries", "", key, "/api/v1/stats/timeseries?site_id=site.test&period=7d", want{export.ViaAPI, export.JSON, "v1 timeseries", 0, admin.ID, k.ID}},
		{"v1 aggregate", "", key, "/api/v1/stats/aggregate?site_id=site.test&metrics=visitors,pageviews", want{export.ViaAPI, export.JSON, "v1 aggregate", 0, admin.ID, k.ID}},
	} {
		code, body := e.fetch(t, c.cookie, c.key, c.path)
		check(c.name, code, body, c.w)
		n++
	}
	code, body := e.apiPost(t, key, `{"site_id":"site.test","metrics":["visitors"],"dimensions":["event:page"],"date_range":"7d"}`)
	check("v2 query", code, body, want{export.ViaAPI, export.JSON, "v2 query event:page", 0, admin.ID, k.ID})
	code, body = e.apiPost(t, key, fmt.Sprintf(`{"site_id":"site.test","saved_report":%d,"pagination":{"limit":1}}`, rep.ID))
	check("v2 saved report", code, body, want{export.ViaAPI, export.JSON, "v2 query", rep.ID, admin.ID, k.ID})
	n += 2
	if got := len(e.exportsOf(t, admin.AccountID)); got != n {
		t.Fatalf("%d records, want %d: one per export", got, n)
	}
	// not exports: the realtime count, refused and bad requests
	e.fetch(t, "", key, "/api/v1/stats/realtime/visitors?site_id=site.test")
	e.fetch(t, e.cookie, "", "/dashboard/site.test/export?panel=pages&format=xls")
	e.fetch(t, userSession, "", "/dashboard/hidden.test/export?panel=pages&format=csv")
	e.apiPost(t, key, `{"site_id":"hidden.test","metrics":["visitors"],"date_range":"7d"}`)
	if got := len(e.exportsOf(t, admin.AccountID)); got != n {
		t.Fatalf("%d records after requests that exported nothing, want %d", got, n)
	}

	// a staff member acting under a read grant: their export, in the
	// request's one audit entry
	annID, ann, g := e.actingStaff(t, admin.AccountID, "read")
	code, page := e.staffGet(t, ann, "/dashboard/site.test/export?panel=pages&format=csv")
	recs := e.exportsOf(t, admin.AccountID)
	r := recs[0]
	if code != 200 || len(recs) != n+1 || r.Staff != annID || r.User != 0 || r.Via != export.ViaDashboard || r.Bytes != int64(len(page)) || r.Rows != rowsIn(t, export.CSV, []byte(page)) {
		t.Fatalf("staff export: %d, record %+v (%d bytes sent)", code, r, len(page))
	}
	last, _ := e.srv.Audit.Store.LastEntry(ctx)
	if last.Action != "staff.read" || last.Actor != fmt.Sprintf("staff:%d", annID) || last.Grant != g ||
		!strings.Contains(last.Detail, fmt.Sprintf("export site:%d dashboard pages, csv", site.ID)) || !strings.Contains(last.Detail, fmt.Sprintf("%d rows, %d bytes", r.Rows, r.Bytes)) {
		t.Fatalf("the staff request's entry: %+v", last)
	}
}

// failingEngine is the real report engine with a fault injected after its
// rows: Stream hands out every real row and then fails, as a database
// that goes away in the middle of an export would. (The real engines
// cannot be made to fail half-way on demand.)
type failingEngine struct{ report.Engine }

func (f failingEngine) Stream(ctx context.Context, q *report.Query, emit func(report.Row) error) error {
	if err := f.Engine.Stream(ctx, q, emit); err != nil {
		return err
	}
	return errors.New("the event store went away")
}

// TestExportBreaksOff: an export whose query fails before anything went
// out is a 500 and recorded as broken off with nothing sent; one that
// fails after part of it went out is cut off (the client sees an error,
// not a short file that looks whole) and recorded as broken off with the
// bytes the client got.
func TestExportBreaksOff(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	admin := e.user(t, "admin@acme.test")
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	hidden, _ := e.srv.Accounts.SiteByDomain(ctx, "hidden.test")
	// 2,000 pages on site.test (more than the export's 32 KiB buffer),
	// one on hidden.test, written straight into the event store
	now := e.clock.now().Add(-time.Hour)
	var evs []store.Event
	for i := 0; i < 2000; i++ {
		evs = append(evs, storetest.Ev(site.ID, uint64(i+1), now, "pageview", fmt.Sprintf("/page/%04d", i)))
	}
	evs = append(evs, storetest.Ev(hidden.ID, 1, now, "pageview", "/only"))
	if err := e.srv.Events.Apply(ctx, evs, store.JournalPos{Journal: "exports-test", Segment: 1, Offset: 1}); err != nil {
		t.Fatal(err)
	}
	e.srv.Reports = failingEngine{e.srv.Reports}

	code, body := e.fetch(t, e.cookie, "", "/dashboard/hidden.test/export?panel=pages&format=csv")
	r := e.exportsOf(t, admin.AccountID)[0]
	if code != 500 || strings.Contains(string(body), "/only") || r.Complete || r.Rows != 0 || r.Bytes != 0 || r.Site != hidden.ID {
		t.Fatalf("a failure before anything went out: %d %q, record %+v", code, body, r)
	}

	req, _ := http.NewRequest("GET", e.http.URL+"/dashboard/site.test/export?panel=pages&format=csv", nil)
	req.AddCookie(sessionOf(e.cookie))
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err == nil {
		t.Fatalf("a failure half-way: %d, %d bytes, read error %v; want the connection cut", resp.StatusCode, len(got), err)
	}
	r = e.exportsOf(t, admin.AccountID)[0]
	if r.Complete || r.Site != site.ID || r.Bytes != int64(len(got)) || r.Bytes < 32<<10 || r.Rows < 1000 || r.Rows > 2000 {
		t.Fatalf("record %+v; the client got %d bytes", r, len(got))
	}
	last, _ := e.srv.Audit.Store.LastEntry(ctx)
	if last.Action != "export" || !strings.Contains(last.Detail, "broke off") || !strings.Contains(last.Detail, fmt.Sprintf("%d bytes", len(got))) {
		t.Fatalf("audit entry %+v", last)
	}
}

// midWindow moves the server's clock to half past the next hour (not
// 23:30), so that a test's exports share one UTC hour and day, and signs
// Acme's Administrator in again (the old session would be idle too long).
func (e *testEnv) midWindow(t *testing.T) {
	t.Helper()
	now := e.clock.now()
	target := now.UTC().Truncate(time.Hour).Add(90 * time.Minute)
	if target.Hour() == 23 {
		target = target.Add(time.Hour)
	}
	e.clock.advance(target.Sub(now))
	e.cookie = e.signIn(t, "admin@acme.test")
}

// TestExportThresholdAlerts: for each threshold, the export that takes
// Acme's Administrator over it raises exactly one security event (naming
// the threshold and the person by id, no address) and one mail, to the
// account's Administrator; further exports the same day or hour raise
// none. The exports are served all the same, and the crossing shows on
// the Exports page.
func TestExportThresholdAlerts(t *testing.T) {
	for _, c := range []struct {
		threshold string
		export    func(t *testing.T, e *mailEnv, key string) (int, []byte)
		set       func(th *export.Thresholds, first export.Record)
	}{
		{export.RowsPerDay,
			func(t *testing.T, e *mailEnv, _ string) (int, []byte) {
				return e.fetch(t, e.cookie, "", "/dashboard/site.test/export?panel=pages&format=csv")
			},
			func(th *export.Thresholds, first export.Record) { th.RowsPerDay = first.Rows }},
		{export.BytesPerDay,
			func(t *testing.T, e *mailEnv, key string) (int, []byte) {
				return e.apiPost(t, key, `{"site_id":"site.test","metrics":["visitors","pageviews"],"dimensions":["event:page"],"date_range":"7d"}`)
			},
			func(th *export.Thresholds, first export.Record) { th.BytesPerDay = first.Bytes }},
		{export.ExportsPerHour,
			func(t *testing.T, e *mailEnv, _ string) (int, []byte) {
				return e.fetch(t, e.cookie, "", "/dashboard/site.test/export?panel=sources&format=json")
			},
			func(th *export.Thresholds, _ export.Record) { th.ExportsPerHour = 1 }},
	} {
		t.Run(c.threshold, func(t *testing.T) {
			e := newMailEnv(t)
			ctx := context.Background()
			e.midWindow(t)
			someVisits(t, e.testEnv)
			admin := e.user(t, "admin@acme.test")
			key, _ := e.newKey(t, "admin@acme.test", time.Hour, "site.test")
			events := func() int {
				t.Helper()
				if err := e.srv.Security.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				e.flush(t)
				n, _, err := e.srv.Security.Store.CountSecurityEvents(ctx, secmon.ExportLarge, fmt.Sprintf("account:%d", admin.AccountID), time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			// the first export, under the defaults, sets the measure: the
			// threshold is what it sent, so the second goes over
			if code, body := c.export(t, e, key); code != 200 {
				t.Fatalf("first export: %d\n%s", code, body)
			}
			first := e.exportsOf(t, admin.AccountID)[0]
			th := export.Defaults
			c.set(&th, first)
			if err := e.srv.Exports.Store.SetExportThresholds(ctx, admin.AccountID, th); err != nil {
				t.Fatal(err)
			}
			if n := events(); n != 0 {
				t.Fatalf("%d events at the threshold", n)
			}
			for i := 2; i <= 4; i++ {
				if code, body := c.export(t, e, key); code != 200 {
					t.Fatalf("export %d, over the threshold, was not served: %d\n%s", i, code, body)
				}
				if n := events(); n != 1 {
					t.Fatalf("after export %d: %d events, want 1", i, n)
				}
			}
			msgs := e.mp.Messages(t)
			if len(msgs) != 1 || len(e.mp.To(t, "admin@acme.test")) != 1 {
				t.Fatalf("%d mails, want one to admin@acme.test", len(msgs))
			}
			mail := e.mp.Message(t, msgs[0].ID)
			if !strings.Contains(mail.Text, "export threshold") || !strings.Contains(mail.Text, "/admin/exports") {
				t.Errorf("the mail does not say what happened or where to look:\n%s", mail.Text)
			}
			db := e.srv.Accounts.(*sqlstore.Accounts).DB
			var stored string
			var n int
			if err := db.QueryRow(`SELECT COUNT(*), COALESCE(MAX(actor || ' ' || detail), '') FROM security_events WHERE kind = ?`, secmon.ExportLarge).Scan(&n, &stored); err != nil {
				t.Fatal(err)
			}
			wantActor := fmt.Sprintf("user:%d", admin.ID)
			if n != 1 || !strings.HasPrefix(stored, wantActor+" ") || !strings.Contains(stored, c.threshold) || !strings.Contains(stored, "crossed by "+wantActor) {
				t.Fatalf("stored events: %d, %q", n, stored)
			}
			// the exporting client's address, the key and the person's
			// address are in no event, mail or log line
			for _, text := range []string{stored, mail.Text, mail.Subject, e.logs.String()} {
				for _, secret := range []string{"127.0.0.77", key} {
					if strings.Contains(text, secret) {
						t.Errorf("%q appears in:\n%s", secret, text)
					}
				}
			}
			if strings.Contains(stored, "admin@acme.test") {
				t.Errorf("the event names the person by address: %q", stored)
			}
			_, page := e.getAs(t, e.cookie, "/admin/exports")
			if !strings.Contains(page, `id="export-crossings"`) || strings.Count(page, "<td>admin@acme.test") < 5 {
				t.Errorf("the Exports page does not show the crossing and the exports:\n%s", page)
			}
		})
	}
}

// TestExportsPage: an Administrator sees their account's exports, newest
// first, with who, what, rows and bytes, and the thresholds; another
// account's Administrator sees only theirs; a User and the signed-out get
// no page (404 and the sign-in).
func TestExportsPage(t *testing.T) {
	e := newEnv(t, journal.Options{})
	someVisits(t, e)
	other := e.signIn(t, "admin@other.test")
	userSession := e.signIn(t, "user@acme.test")
	if code, _ := e.fetch(t, e.cookie, "", "/dashboard/site.test/export?panel=pages&format=csv"); code != 200 {
		t.Fatal("Acme's export")
	}
	if code, _ := e.fetch(t, userSession, "", "/dashboard/site.test/export?panel=sources&format=json"); code != 200 {
		t.Fatal("the User's export")
	}
	if code, _ := e.fetch(t, other, "", "/dashboard/other.test/export?panel=pages&format=json"); code != 200 {
		t.Fatal("Other's export")
	}
	code, page := e.getAs(t, e.cookie, "/admin/exports")
	if code != 200 {
		t.Fatalf("Acme's page: %d", code)
	}
	user := strings.Index(page, "<td>user@acme.test</td><td>site.test: dashboard panel sources, JSON</td>")
	admin := strings.Index(page, "<td>admin@acme.test</td><td>site.test: dashboard panel pages, CSV</td>")
	if user < 0 || admin < 0 || user > admin || strings.Contains(page, "other.test") || strings.Contains(page, "admin@other.test") {
		t.Fatalf("Acme's page does not list Acme's two exports, newest first, and nothing else:\n%s", page)
	}
	for _, want := range []string{`name="rows_per_day"`, `value="1000000"`, `value="100"`, `value="60"`, "default 1,000,000"} {
		if !strings.Contains(page, want) {
			t.Errorf("the thresholds form lacks %q", want)
		}
	}
	if _, page := e.getAs(t, other, "/admin/exports"); !strings.Contains(page, "other.test: dashboard panel pages, JSON") || strings.Contains(page, "site.test") {
		t.Fatalf("Other's page:\n%s", page)
	}
	if code, _ := e.getAs(t, userSession, "/admin/exports"); code != 404 {
		t.Fatalf("a User: %d, want 404", code)
	}
	if code, _ := e.getAs(t, "", "/admin/exports"); code != http.StatusSeeOther {
		t.Fatalf("signed out: %d, want the sign-in", code)
	}
	if _, page := e.getAs(t, e.cookie, "/admin"); !strings.Contains(page, `href="/admin/exports"`) {
		t.Fatal("/admin does not link the Exports page")
	}
}

// TestExportSettingsForm: an Administrator sets the thresholds; each
// bound is accepted and each value just past it refused (400, the page
// naming the field and its range, nothing changed); the change is on
// record; another account's Administrator changes only their own.
func TestExportSettingsForm(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	admin := e.user(t, "admin@acme.test")
	otherAdmin := e.user(t, "admin@other.test")
	thresholds := func(account int64) export.Thresholds {
		th, err := e.srv.Exports.Store.ExportThresholds(ctx, account)
		if err != nil {
			t.Fatal(err)
		}
		return th
	}
	post := func(session, rows, mb, exports string) (int, string) {
		return e.adminPost(t, session, "/admin/exports", url.Values{"rows_per_day": {rows}, "mb_per_day": {mb}, "exports_per_hour": {exports}})
	}
	for _, c := range []struct {
		rows, mb, exports string
		want              export.Thresholds
	}{
		{"1", "1", "1", export.Thresholds{RowsPerDay: 1, BytesPerDay: 1e6, ExportsPerHour: 1}},
		{"1000000000", "1000000", "100000", export.Thresholds{RowsPerDay: 1e9, BytesPerDay: 1e12, ExportsPerHour: 1e5}},
		{"250,000", "50", "30", export.Thresholds{RowsPerDay: 250000, BytesPerDay: 50e6, ExportsPerHour: 30}},
	} {
		seq := e.lastSeq(t)
		if code, body := post(e.cookie, c.rows, c.mb, c.exports); code != 200 || !strings.Contains(body, "Thresholds saved") {
			t.Fatalf("%v: %d\n%s", c, code, body)
		}
		if got := thresholds(admin.AccountID); got != c.want {
			t.Fatalf("%v: stored %+v, want %+v", c, got, c.want)
		}
		entries := e.auditSince(t, seq)
		if len(entries) != 1 || entries[0].Action != "export.thresholds" || entries[0].Actor != fmt.Sprintf("user:%d", admin.ID) ||
			!strings.Contains(entries[0].Detail, fmt.Sprintf("rows per day %d, bytes per day %d, exports per hour %d", c.want.RowsPerDay, c.want.BytesPerDay, c.want.ExportsPerHour)) {
			t.Fatalf("%v: audit entries %+v", c, entries)
		}
	}
	kept := thresholds(admin.AccountID)
	for _, c := range []struct{ rows, mb, exports, want string }{
		{"0", "50", "30", "Rows per person per day: want a whole number from 1 to 1,000,000,000"},
		{"1000000001", "50", "30", "Rows per person per day: want a whole number from 1 to 1,000,000,000"},
		{"10", "0", "30", "Megabytes per person per day: want a whole number from 1 to 1,000,000"},
		{"10", "1000001", "30", "Megabytes per person per day: want a whole number from 1 to 1,000,000"},
		{"10", "50", "0", "Exports per person per hour: want a whole number from 1 to 100,000"},
		{"10", "50", "100001", "Exports per person per hour: want a whole number from 1 to 100,000"},
		{"ten", "50", "30", "Rows per person per day"},
		{"10", "", "30", "Megabytes per person per day"},
		{"10", "50", "3.5", "Exports per person per hour"},
	} {
		seq := e.lastSeq(t)
		code, body := post(e.cookie, c.rows, c.mb, c.exports)
		if code != 400 || !strings.Contains(body, c.want) {
			t.Errorf("%q %q %q: %d, want 400 saying %q\n%s", c.rows, c.mb, c.exports, code, c.want, body)
		}
		if got := thresholds(admin.AccountID); got != kept {
			t.Fatalf("a refused form changed the thresholds to %+v", got)
		}
		if n := len(e.auditSince(t, seq)); n != 0 {
			t.Fatalf("a refused form left %d audit entries", n)
		}
	}
	// without the CSRF token: refused
	resp, _ := e.submit(t, "/admin/exports", url.Values{"rows_per_day": {"5"}, "mb_per_day": {"5"}, "exports_per_hour": {"5"}}, sessionOf(e.cookie))
	if resp.StatusCode != http.StatusForbidden || thresholds(admin.AccountID) != kept {
		t.Fatalf("without the CSRF token: %d", resp.StatusCode)
	}
	// another account's Administrator: their own account's thresholds
	other := e.signIn(t, "admin@other.test")
	if code, _ := post(other, "7", "7", "7"); code != 200 {
		t.Fatalf("Other's Administrator: %d", code)
	}
	if thresholds(admin.AccountID) != kept || thresholds(otherAdmin.AccountID) != (export.Thresholds{RowsPerDay: 7, BytesPerDay: 7e6, ExportsPerHour: 7}) {
		t.Fatal("Other's form changed Acme's thresholds, or not Other's")
	}
	// a User: 404
	if code, _ := post(e.signIn(t, "user@acme.test"), "5", "5", "5"); code != 404 || thresholds(admin.AccountID) != kept {
		t.Fatalf("a User: %d", code)
	}
}

// FuzzExportSettings posts arbitrary bodies (with the right CSRF token)
// to the thresholds form as Acme's Administrator: the answer is the page
// (200) or a refusal (400), never a panic or a 5xx, and the stored
// thresholds are always within the form's ranges.
// fuzz-count: 2000x
func FuzzExportSettings(f *testing.F) {
	e := newEnv(f, journal.Options{})
	ctx := context.Background()
	account := e.user(f, "admin@acme.test").AccountID
	csrf, _ := e.form(f, "/account/2fa", sessionOf(e.cookie))
	f.Add("rows_per_day=1000&mb_per_day=10&exports_per_hour=5")
	f.Add("rows_per_day=0&mb_per_day=-1&exports_per_hour=%2B1")
	f.Add("rows_per_day=1%2C000%2C000&mb_per_day=1+000&exports_per_hour=1_0")
	f.Add("rows_per_day=%ZZ&&")
	f.Add("rows_per_day=1&rows_per_day=2&mb_per_day=99999999999999999999&exports_per_hour=")
	f.Fuzz(func(t *testing.T, body string) {
		req, _ := http.NewRequest("POST", e.http.URL+"/admin/exports", strings.NewReader("csrf="+url.QueryEscape(csrf)+"&"+body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(sessionOf(e.cookie))
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 && resp.StatusCode != 400 {
			t.Fatalf("%q: status %d", body, resp.StatusCode)
		}
		th, err := e.srv.Exports.Store.ExportThresholds(ctx, account)
		if err != nil {
			t.Fatal(err)
		}
		if th.RowsPerDay < export.MinRowsPerDay || th.RowsPerDay > export.MaxRowsPerDay ||
			th.BytesPerDay < export.MinMBPerDay*export.MB || th.BytesPerDay > export.MaxMBPerDay*export.MB ||
			th.ExportsPerHour < export.MinExportsPerHour || th.ExportsPerHour > export.MaxExportsPerHour {
			t.Fatalf("%q stored %+v", body, th)
		}
	})
}

// TestStaffLeaveExportThresholds: a staff member acting under a
// read-write grant (which may change the account's settings) still may
// not move the thresholds that watch their own exports.
func TestStaffLeaveExportThresholds(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	admin := e.user(t, "admin@acme.test")
	_, ann, _ := e.actingStaff(t, admin.AccountID, "read-write")
	code, body := e.staffPost(t, ann, "/admin/exports", url.Values{"rows_per_day": {"1000000000"}, "mb_per_day": {"1000000"}, "exports_per_hour": {"100000"}})
	if code != http.StatusForbidden || !strings.Contains(body, "Administrators&#39; to change") {
		t.Fatalf("staff moving the thresholds: %d\n%s", code, body)
	}
	th, err := e.srv.Exports.Store.ExportThresholds(ctx, admin.AccountID)
	if err != nil || th != export.Defaults {
		t.Fatalf("thresholds after the refusal: %+v %v", th, err)
	}
}

// actingStaff signs in a support member, Ann, from the staff ranges and
// has her act in an account under a grant of scope (approved by a head of
// development): her id, her console cookie and the grant's id.
func (e *testEnv) actingStaff(t *testing.T, account int64, scope string) (int64, *http.Cookie, int64) {
	t.Helper()
	e.withStaff("127.0.0.0/8")
	annID, ann := e.staffMember(t, "ann@fjord.test", staff.Support, e.clock.now())
	_, hod := e.staffMember(t, "hod@fjord.test", staff.HeadOfDevelopment, e.clock.now())
	g := e.askGrant(t, ann, account, scope, 2)
	if code, body := e.staffPost(t, hod, fmt.Sprintf("/staff/grants/%d/approve", g), url.Values{}); code != 200 {
		t.Fatalf("approve: %d\n%s", code, body)
	}
	if code, body := e.staffPost(t, ann, fmt.Sprintf("/staff/grants/%d/act", g), url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("act: %d\n%s", code, body)
	}
	return annID, ann, g
}
