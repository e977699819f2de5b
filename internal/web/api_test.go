package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"fjord/internal/ingest/journal"
	"fjord/internal/store"
)

// query POSTs a v2 query with the env's API key (or the Authorization
// header given in hdr).
func (e *testEnv) query(t *testing.T, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.http.URL+"/api/v2/query", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer is not JSON: %s", b)
	}
	return resp.StatusCode, m
}

func TestQueryAPIErrors(t *testing.T) {
	e := newEnv(t, journal.Options{})
	cases := []struct {
		body  string
		code  int
		names string
	}{
		{`{"site_id":"nope.test","metrics":["visitors"],"date_range":"7d"}`, 404, "site_id"},
		{`{"metrics":["visitors"],"date_range":"7d"}`, 400, "site_id"},
		{`{"site_id":"site.test","metrics":["visitors"],"date_range":"fortnight"}`, 400, "date_range"},
		{`{"site_id":"site.test","metrics":["visitors"],"date_range":["2026-01-05","2026-01-01"]}`, 400, "date_range"},
		{`{"site_id":"site.test","metrics":["visitors"],"date_range":["2026-01-01"]}`, 400, "date_range"},
		{`{"site_id":"site.test","metrics":["visitors"]}`, 400, "date_range"},
		{`{"site_id":"site.test","metrics":["happiness"],"date_range":"7d"}`, 400, "metrics"},
		{`{"site_id":"site.test","metrics":[],"date_range":"7d"}`, 400, "metrics"},
		{`{"site_id":"site.test","metrics":["visitors"],"date_range":"7d","dimensions":["visit:shoe_size"]}`, 400, "dimensions"},
		{`{"site_id":"site.test","metrics":["visitors"],"date_range":"7d","filters":[["is","visit:country"]]}`, 400, "filters[0]"},
		{`{"site_id":"site.test","metrics":["visitors"],"date_range":"7d","filters":[["resembles","visit:country",["FI"]]]}`, 400, "filters[0]"},
		{`{"site_id":"site.test","metrics":["visitors"],"date_range":"7d","filters":[["matches","event:page",["(["]]]}`, 400, "filters"},
		{`{"site_id":"site.test","metrics":["visitors"],"date_range":"7d","filters":[["and",[["is","nope",["x"]]]]]}`, 400, "filters[0][1][0]"},
		{`{"site_id":"site.test","metrics":["visitors"],"date_range":"7d","order_by":[["pageviews","desc"]]}`, 400, "order_by"},
		{`{"site_id":"site.test","metrics":["visitors"],"date_range":"7d","colour":"blue"}`, 400, "colour"},
		{`{"site_id":"site.test","metrics":["visitors"],"date_range":"7d","pagination":{"limit":100000}}`, 400, "pagination"},
		{`not json`, 400, "body"},
	}
	for _, c := range cases {
		code, m := e.query(t, c.body)
		msg, _ := m["error"].(string)
		if code != c.code || !strings.Contains(msg, c.names) {
			t.Errorf("%s\n  -> %d %q; want %d naming %q", c.body, code, msg, c.code, c.names)
		}
	}
}

// TestQueryAPIPlausibleShape replays requests written from Plausible's Stats
// API v2 documentation and checks the answers have the documented shape.
func TestQueryAPIPlausibleShape(t *testing.T) {
	e := newEnv(t, journal.Options{})
	for _, b := range []string{
		`{"n":"pageview","u":"https://site.test/","d":"site.test","r":"https://www.google.com/"}`,
		`{"n":"pageview","u":"https://site.test/blog","d":"site.test"}`,
		`{"n":"Signup","u":"https://site.test/blog","d":"site.test"}`,
	} {
		e.post(t, b).Body.Close()
	}
	// "Simple aggregate" from the docs
	code, m := e.query(t, `{"site_id":"site.test","metrics":["visitors","visits","pageviews","views_per_visit","bounce_rate","visit_duration","events"],"date_range":"7d"}`)
	if code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	res := m["results"].([]any)
	if len(res) != 1 {
		t.Fatalf("aggregate: %v", m)
	}
	row := res[0].(map[string]any)
	metrics := row["metrics"].([]any)
	if len(row["dimensions"].([]any)) != 0 || metrics[0].(float64) != 1 || metrics[2].(float64) != 2 || metrics[6].(float64) != 3 {
		t.Fatalf("aggregate row: %v", row)
	}
	if _, ok := m["meta"]; !ok {
		t.Fatal("no meta")
	}
	if q := m["query"].(map[string]any); q["site_id"] != "site.test" {
		t.Fatalf("query echo: %v", q)
	}
	// "Custom properties breakdown"-style: a breakdown with filters and order
	code, m = e.query(t, `{"site_id":"site.test","metrics":["visitors","pageviews"],"date_range":"7d","dimensions":["event:page"],
		"filters":[["is_not","event:page",["/nothing"]],["contains","visit:source",["Goo"]]],"order_by":[["pageviews","desc"]]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	rows := m["results"].([]any)
	if len(rows) != 2 || rows[0].(map[string]any)["dimensions"].([]any)[0] != "/" && rows[0].(map[string]any)["dimensions"].([]any)[0] != "/blog" {
		t.Fatalf("breakdown: %v", rows)
	}
	// "Timeseries" from the docs: time:day over a custom range
	code, m = e.query(t, `{"site_id":"site.test","metrics":["visitors"],"date_range":"7d","dimensions":["time:day"]}`)
	if code != 200 || len(m["results"].([]any)) != 1 {
		t.Fatalf("timeseries: %d %v", code, m)
	}
}

// apiGet GETs a Stats API path with the env's API key.
func (e *testEnv) apiGet(t *testing.T, path string) (int, string) {
	t.Helper()
	return e.apiAs(t, e.key, "GET", path, "")
}

// apiAs sends a Stats API request with an API key ("": none).
func (e *testEnv) apiAs(t *testing.T, key, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *testEnv) get(t *testing.T, path string) (int, string) {
	t.Helper()
	return e.getAs(t, e.cookie, path)
}

// getAs GETs a path with a session cookie ("": none), not following
// redirects.
func (e *testEnv) getAs(t *testing.T, cookie, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.http.URL+path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", sessionCookie+"="+cookie)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestV1AndRealtime(t *testing.T) {
	e := newEnv(t, journal.Options{})
	e.post(t, `{"n":"pageview","u":"https://site.test/","d":"site.test","r":"https://www.google.com/"}`).Body.Close()
	// a second visitor (another browser), arriving directly
	e.post(t, `{"n":"pageview","u":"https://site.test/blog","d":"site.test"}`, "User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15").Body.Close()
	code, body := e.apiGet(t, "/api/v1/stats/realtime/visitors?site_id=site.test")
	if code != 200 || strings.TrimSpace(body) != "2" {
		t.Fatalf("realtime: %d %q", code, body)
	}
	code, body = e.apiGet(t, "/api/v1/stats/aggregate?site_id=site.test&period=7d&metrics=visitors,pageviews,bounce_rate&compare=previous_period")
	var agg struct {
		Results map[string]struct {
			Value  float64
			Change *float64
		}
	}
	if code != 200 || json.Unmarshal([]byte(body), &agg) != nil || agg.Results["pageviews"].Value != 2 || agg.Results["pageviews"].Change == nil || *agg.Results["pageviews"].Change != 100 {
		t.Fatalf("aggregate: %d %s", code, body)
	}
	code, body = e.apiGet(t, "/api/v1/stats/breakdown?site_id=site.test&period=7d&property=event:page&metrics=visitors,pageviews&filters=visit:source%3D%3DGoogle")
	if code != 200 || !strings.Contains(body, `"page":"/"`) || strings.Contains(body, "/blog") {
		t.Fatalf("breakdown: %d %s", code, body)
	}
	code, body = e.apiGet(t, "/api/v1/stats/timeseries?site_id=site.test&period=7d&interval=date")
	if code != 200 || !strings.Contains(body, `"date":"`) || !strings.Contains(body, `"visitors":2`) {
		t.Fatalf("timeseries: %d %s", code, body)
	}
	for path, field := range map[string]string{
		"/api/v1/stats/aggregate?site_id=nope.test":                             "site_id",
		"/api/v1/stats/aggregate?site_id=site.test&period=forever":              "period",
		"/api/v1/stats/aggregate?site_id=site.test&period=custom":               "date",
		"/api/v1/stats/aggregate?site_id=site.test&metrics=fun":                 "metrics",
		"/api/v1/stats/breakdown?site_id=site.test":                             "property",
		"/api/v1/stats/breakdown?site_id=site.test&property=visit:nope":         "property",
		"/api/v1/stats/breakdown?site_id=site.test&property=event:page&limit=0": "limit",
		"/api/v1/stats/timeseries?site_id=site.test&interval=fortnight":         "interval",
		"/api/v1/stats/aggregate?site_id=site.test&filters=visit:country":       "filters",
	} {
		code, body := e.apiGet(t, path)
		if code/100 != 4 || !strings.Contains(body, field) {
			t.Errorf("%s: %d %s (want 4xx naming %s)", path, code, body, field)
		}
	}
	// v2 with the comparison extension
	code2, m := e.query(t, `{"site_id":"site.test","metrics":["pageviews"],"date_range":"7d","dimensions":["event:page"],"include":{"comparisons":{"mode":"previous_period"}}}`)
	if code2 != 200 {
		t.Fatalf("%d %v", code2, m)
	}
	row := m["results"].([]any)[0].(map[string]any)
	cmp := row["comparison"].(map[string]any)
	if cmp["metrics"].([]any)[0].(float64) != 0 || cmp["change"].([]any)[0].(float64) != 100 {
		t.Fatalf("comparison: %v", row)
	}
}

func TestSavedReportsAndFunnel(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	e.srv.Accounts.AddGoal(ctx, store.Goal{SiteID: site.ID, Kind: "page", Value: "/"})
	e.srv.Accounts.AddGoal(ctx, store.Goal{SiteID: site.ID, Kind: "event", Value: "Signup"})
	e.post(t, `{"n":"pageview","u":"https://site.test/","d":"site.test","r":"https://www.google.com/"}`).Body.Close()
	e.post(t, `{"n":"Signup","u":"https://site.test/","d":"site.test"}`).Body.Close()
	e.post(t, `{"n":"pageview","u":"https://site.test/","d":"site.test"}`, "User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15").Body.Close()

	code, m := e.query(t, `{"site_id":"site.test","date_range":"day","funnel":["Visit /","Signup"]}`)
	if code != 200 {
		t.Fatalf("funnel: %d %v", code, m)
	}
	rows := m["results"].([]any)
	first, second := rows[0].(map[string]any)["metrics"].([]any), rows[1].(map[string]any)["metrics"].([]any)
	if first[0].(float64) != 2 || second[0].(float64) != 1 || second[1].(float64) != 50 || second[2].(float64) != 1 {
		t.Fatalf("funnel rows: %v", rows)
	}
	for body, field := range map[string]string{
		`{"site_id":"site.test","date_range":"day","funnel":["Visit /"]}`:                                 "funnel",
		`{"site_id":"site.test","date_range":"day","funnel":["Visit /","Nope"]}`:                          "funnel",
		`{"site_id":"site.test","date_range":"day","funnel":["Visit /","Visit /"]}`:                       "funnel",
		`{"site_id":"site.test","date_range":"day","funnel":["Visit /","Signup"],"metrics":["visitors"]}`: "funnel",
	} {
		if code, m := e.query(t, body); code != 400 || !strings.Contains(m["error"].(string), field) {
			t.Errorf("%s: %d %v", body, code, m)
		}
	}

	// saved reports are made in the dashboard (here: the store); API keys
	// run and list them, and cannot save or delete them
	sr, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: site.ID, Name: "Sources",
		Definition: `{"metrics":["visitors"],"date_range":"7d","dimensions":["visit:source"]}`})
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(sr.ID, 10)
	code, m = e.query(t, `{"site_id":"site.test","saved_report":`+id+`,"date_range":"day"}`)
	if code != 200 || len(m["results"].([]any)) != 2 || m["query"].(map[string]any)["dimensions"].([]any)[0] != "visit:source" {
		t.Fatalf("run saved: %d %v", code, m)
	}
	if code, m := e.query(t, `{"site_id":"site.test","saved_report":999}`); code != 404 || !strings.Contains(m["error"].(string), "saved_report") {
		t.Fatalf("unknown saved report: %d %v", code, m)
	}
	if code, body := e.apiGet(t, "/api/v2/reports?site_id=site.test"); code != 200 || !strings.Contains(body, `"Sources"`) {
		t.Fatalf("list: %d %s", code, body)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v2/reports", `{"site_id":"site.test","name":"Pages","query":{"metrics":["visitors"],"date_range":"7d"}}`},
		{"POST", "/api/v2/reports", `{"site_id":"site.test","name":"","query":{}}`},
		{"DELETE", "/api/v2/reports/" + id + "?site_id=site.test", ""},
	} {
		if code, body := e.apiAs(t, e.key, c.method, c.path, c.body); code != 403 || !strings.Contains(body, "read-only") || !strings.Contains(body, "dashboard") {
			t.Errorf("%s %s with a key: %d %s, want 403 read-only", c.method, c.path, code, body)
		}
	}
	if list, _ := e.srv.Accounts.SavedReports(ctx, site.ID); len(list) != 1 {
		t.Fatalf("a key changed the saved reports: %+v", list)
	}
}

func TestQueryAPIIncludes(t *testing.T) {
	e := newEnv(t, journal.Options{})
	e.post(t, `{"n":"pageview","u":"https://site.test/a","d":"site.test"}`).Body.Close()
	e.post(t, `{"n":"pageview","u":"https://site.test/b","d":"site.test"}`).Body.Close()
	code, m := e.query(t, `{"site_id":"site.test","metrics":["visitors"],"date_range":"7d","dimensions":["time:day"],"include":{"time_labels":true,"total_rows":true}}`)
	if code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	meta := m["meta"].(map[string]any)
	if labels := meta["time_labels"].([]any); len(labels) != 7 || meta["total_rows"].(float64) != 1 {
		t.Fatalf("meta: %v", meta)
	}
	code, m = e.query(t, `{"site_id":"site.test","metrics":["pageviews","percentage"],"date_range":"7d","dimensions":["event:page"],"include":{"total_rows":true},"pagination":{"limit":1,"offset":1}}`)
	rows := m["results"].([]any)
	if code != 200 || len(rows) != 1 || m["meta"].(map[string]any)["total_rows"].(float64) != 2 {
		t.Fatalf("paged: %d %v", code, m)
	}
	if pct := rows[0].(map[string]any)["metrics"].([]any)[1].(float64); pct != 100 {
		t.Fatalf("percentage on page 2: %v (one visitor saw both pages)", pct)
	}
}
