package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"fjord/internal/auth"
	"fjord/internal/ingest/journal"
	"fjord/internal/store"
	"fjord/internal/store/storetest"
)

// apiRoutes are a request to every Stats API route about a site (its
// site_id in the query or the body), which a key must be allowed to read.
func apiRoutes(site string) []struct{ method, path, body string } {
	q := url.QueryEscape(site)
	return []struct{ method, path, body string }{
		{"POST", "/api/v2/query", `{"site_id":"` + site + `","metrics":["visitors"],"date_range":"day"}`},
		{"POST", "/api/v2/query", `{"site_id":"` + site + `","saved_report":1,"date_range":"day"}`},
		{"GET", "/api/v2/reports?site_id=" + q, ""},
		{"POST", "/api/v2/reports", `{"site_id":"` + site + `","name":"x","query":{"metrics":["visitors"],"date_range":"7d"}}`},
		{"DELETE", "/api/v2/reports/1?site_id=" + q, ""},
		{"DELETE", "/api/v2/reports/nan?site_id=" + q, ""},
		{"GET", "/api/v1/stats/aggregate?site_id=" + q, ""},
		{"GET", "/api/v1/stats/timeseries?site_id=" + q, ""},
		{"GET", "/api/v1/stats/breakdown?property=visit:source&site_id=" + q, ""},
		{"GET", "/api/v1/stats/realtime/visitors?site_id=" + q, ""},
	}
}

// notFoundLike: a refusal of a site must read exactly as an unknown site.
func notFoundLike(t *testing.T, e *testEnv, key, site, why string) {
	t.Helper()
	unknown := apiRoutes("nope.test")
	for i, c := range apiRoutes(site) {
		code, body := e.apiAs(t, key, c.method, c.path, c.body)
		ucode, ubody := e.apiAs(t, key, unknown[i].method, unknown[i].path, unknown[i].body)
		if code != 404 || code != ucode || strings.ReplaceAll(body, site, "nope.test") != ubody {
			t.Errorf("%s: %s %s: %d %s; an unknown site: %d %s", why, c.method, c.path, code, body, ucode, ubody)
		}
	}
}

func (e *testEnv) siteID(t *testing.T, domain string) int64 {
	t.Helper()
	s, err := e.srv.Accounts.SiteByDomain(context.Background(), domain)
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

func (e *testEnv) newKey(t *testing.T, email string, life time.Duration, sites ...string) (string, store.APIKey) {
	t.Helper()
	var ids []int64
	for _, d := range sites {
		ids = append(ids, e.siteID(t, d))
	}
	tok, k, err := e.srv.Auth.CreateKey(context.Background(), e.user(t, email), auth.NewKey{Name: "test key", Sites: ids, Life: life})
	if err != nil {
		t.Fatal(err)
	}
	return tok, k
}

const okQuery = `{"site_id":"site.test","metrics":["visitors"],"date_range":"day"}`

// TestAPIKeyGuard: the Stats API answers a valid key given as Bearer, and
// 401 (with WWW-Authenticate) without one, with a malformed header, or
// with a key that is unknown, expired, revoked or of a removed user.
func TestAPIKeyGuard(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	send := func(hdr ...string) (int, http.Header, string) {
		req, _ := http.NewRequest("POST", e.http.URL+"/api/v2/query", strings.NewReader(okQuery))
		for _, h := range hdr {
			req.Header.Add("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, resp.Header, m.Error
	}
	if code, _, msg := send("Bearer " + e.key); code != 200 {
		t.Fatalf("a valid key: %d %s", code, msg)
	}
	if code, _, msg := send("bearer  " + e.key); code != 200 {
		t.Fatalf("the scheme in lower case, two spaces: %d %s", code, msg)
	}
	code, h, msg := send()
	if code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(msg, "API key") || !strings.Contains(msg, "Bearer") {
		t.Fatalf("no key: %d %q %q", code, h.Get("WWW-Authenticate"), msg)
	}
	for _, bad := range [][]string{{"Basic dXNlcjpwYXNz"}, {"Bearer"}, {"Bearer " + e.key + " x"}, {"Bearer " + e.key, "Bearer " + e.key}, {e.key}} {
		if code, h, msg := send(bad...); code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "invalid_request") || strings.Contains(msg, e.key) {
			t.Errorf("%q: %d %q %q", bad, code, h.Get("WWW-Authenticate"), msg)
		}
	}
	badKey := func(why, key string) {
		t.Helper()
		code, h, msg := send("Bearer " + key)
		if code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "invalid_token") || msg != "the API key is unknown, expired or revoked" {
			t.Errorf("%s: %d %q %q", why, code, h.Get("WWW-Authenticate"), msg)
		}
	}
	badKey("unknown", auth.KeyPrefix+strings.Repeat("A", 43))
	badKey("not a key's shape", "0123456789abcdef0123456789abcdef-test")
	badKey("one character changed", e.key[:len(e.key)-1]+map[bool]string{true: "B", false: "A"}[e.key[len(e.key)-1] == 'A'])

	// expiry, with the server's clock moved on
	short, _ := e.newKey(t, "admin@acme.test", time.Hour, "site.test")
	if code, _, _ := send("Bearer " + short); code != 200 {
		t.Fatal("a fresh key refused")
	}
	e.clock.advance(time.Hour - time.Second)
	if code, _, _ := send("Bearer " + short); code != 200 {
		t.Fatal("a key refused a second before its expiry")
	}
	e.clock.advance(time.Second)
	badKey("expired", short)

	// revoked through the dashboard: refused at the next request
	tok, k := e.newKey(t, "admin@acme.test", 24*time.Hour, "site.test")
	if code, _, _ := send("Bearer " + tok); code != 200 {
		t.Fatal("a fresh key refused")
	}
	csrf, _ := e.form(t, "/keys", &http.Cookie{Name: sessionCookie, Value: e.cookie})
	resp, _ := e.submit(t, "/keys/"+strconv.FormatInt(k.ID, 10)+"/revoke", url.Values{"csrf": {csrf}}, &http.Cookie{Name: sessionCookie, Value: e.cookie})
	if resp.StatusCode != 303 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	badKey("revoked", tok)

	// a removed user's key
	utok, _ := e.newKey(t, "user@acme.test", 24*time.Hour, "site.test")
	if code, _, _ := send("Bearer " + utok); code != 200 {
		t.Fatal("the User's key refused")
	}
	storetest.RemoveUser(t, e.srv.Accounts, e.user(t, "user@acme.test").ID, time.Now())
	badKey("a removed user's", utok)

	// the key is never logged, nor repeated in an answer
	for _, tk := range []string{e.key, short, tok, utok} {
		if strings.Contains(e.logs.String(), tk) || strings.Contains(e.logs.String(), tk[len(auth.KeyPrefix):]) {
			t.Fatal("a key is in the log")
		}
	}
	if !strings.Contains(e.logs.String(), "API key refused") {
		t.Fatalf("refusals are not logged (at debug):\n%s", e.logs.String())
	}
	_ = ctx
}

// TestAPIKeyScope: a key reads only its sites, and of them only what its
// user may read at the moment; everything else is 404 as for a site that
// does not exist, on every route. Writes are 403.
func TestAPIKeyScope(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	a, _ := e.newKey(t, "admin@acme.test", 24*time.Hour, "site.test")
	// an Administrator's key for site A, asking for site B of the same
	// account, and for another account's site (by domain and by id)
	notFoundLike(t, e, a, "hidden.test", "a site of the account not among the key's")
	notFoundLike(t, e, a, "other.test", "another account's site")
	notFoundLike(t, e, a, strconv.FormatInt(e.siteID(t, "other.test"), 10), "another account's site by id")
	notFoundLike(t, e, e.key, "other.test", "another account's site, with a key of two sites")
	// its own site: reads; a write is refused as read-only (or 404 for a
	// report that does not exist, 400 for an id that is no number)
	want := []int{200, 404, 200, 403, 404, 400, 200, 200, 200, 200}
	for i, c := range apiRoutes("site.test") {
		if code, body := e.apiAs(t, a, c.method, c.path, c.body); code != want[i] {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, code, body, want[i])
		}
	}

	// a User's key: reads the granted site until the grant is withdrawn
	user := e.user(t, "user@acme.test")
	if _, _, err := e.srv.Auth.CreateKey(ctx, user, auth.NewKey{Name: "x", Sites: []int64{e.siteID(t, "hidden.test")}, Life: time.Hour}); err == nil ||
		!strings.Contains(err.Error(), "not a site you may read") {
		t.Fatalf("a key for a site not granted: %v", err)
	}
	u, _ := e.newKey(t, "user@acme.test", 24*time.Hour, "site.test")
	if code, body := e.apiAs(t, u, "POST", "/api/v2/query", okQuery); code != 200 {
		t.Fatalf("the User's key: %d %s", code, body)
	}
	if err := e.srv.Accounts.Ungrant(ctx, user.ID, e.siteID(t, "site.test"), 0); err != nil {
		t.Fatal(err)
	}
	notFoundLike(t, e, u, "site.test", "a site whose grant was withdrawn")
}

// TestAPIKeyReportGrant: a key of a User granted one saved report, not
// its site, runs that report and lists it, and nothing else of the site.
func TestAPIKeyReportGrant(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	hidden := e.siteID(t, "hidden.test")
	def := `{"metrics":["visitors"],"date_range":"7d","dimensions":["event:page"]}`
	granted, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: hidden, Name: "Pages", Definition: def})
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: hidden, Name: "Other", Definition: def})
	if err != nil {
		t.Fatal(err)
	}
	user := e.user(t, "user@acme.test")
	if err := e.srv.Accounts.Grant(ctx, user.ID, 0, granted.ID); err != nil {
		t.Fatal(err)
	}
	if _, page := e.getAs(t, e.signIn(t, "user@acme.test"), "/keys"); !strings.Contains(page, "hidden.test <small>(only the saved reports granted to you)") {
		t.Fatalf("the form does not offer the site of the granted report as such:\n%s", page)
	}
	k, _ := e.newKey(t, "user@acme.test", 24*time.Hour, "hidden.test")
	run := func(id int64) (int, string) {
		return e.apiAs(t, k, "POST", "/api/v2/query", `{"site_id":"hidden.test","saved_report":`+strconv.FormatInt(id, 10)+`,"date_range":"30d"}`)
	}
	if code, body := run(granted.ID); code != 200 || !strings.Contains(body, `"event:page"`) {
		t.Fatalf("the granted report: %d %s", code, body)
	}
	code, body := e.apiAs(t, k, "GET", "/api/v2/reports?site_id=hidden.test", "")
	if code != 200 || !strings.Contains(body, `"Pages"`) || strings.Contains(body, `"Other"`) {
		t.Fatalf("list: %d %s, want only the granted report", code, body)
	}
	_, unknown := e.apiAs(t, k, "POST", "/api/v2/query", `{"site_id":"nope.test","metrics":["visitors"],"date_range":"day"}`)
	for name, c := range map[string]struct{ method, path, body string }{
		"another report":  {"POST", "/api/v2/query", `{"site_id":"hidden.test","saved_report":` + strconv.FormatInt(other.ID, 10) + `,"date_range":"30d"}`},
		"a free query":    {"POST", "/api/v2/query", `{"site_id":"hidden.test","metrics":["visitors"],"date_range":"day"}`},
		"v1":              {"GET", "/api/v1/stats/aggregate?site_id=hidden.test", ""},
		"realtime":        {"GET", "/api/v1/stats/realtime/visitors?site_id=hidden.test", ""},
		"an unknown one":  {"POST", "/api/v2/query", `{"site_id":"hidden.test","saved_report":99999,"date_range":"30d"}`},
		"delete the same": {"DELETE", "/api/v2/reports/" + strconv.FormatInt(granted.ID, 10) + "?site_id=hidden.test", ""},
	} {
		code, body := e.apiAs(t, k, c.method, c.path, c.body)
		want := 404
		if name == "delete the same" {
			want = 403
		}
		if code != want || want == 404 && strings.ReplaceAll(body, "hidden.test", "nope.test") != unknown {
			t.Errorf("%s: %d %s, want %d (as %s)", name, code, body, want, unknown)
		}
	}
	// the grant withdrawn: the report goes too
	if err := e.srv.Accounts.Ungrant(ctx, user.ID, 0, granted.ID); err != nil {
		t.Fatal(err)
	}
	if code, _ := run(granted.ID); code != 404 {
		t.Fatalf("after the grant went: %d", code)
	}
}

// TestAPIKeyLastUse: a key's last use is recorded, at most once a minute.
func TestAPIKeyLastUse(t *testing.T) {
	e := newEnv(t, journal.Options{})
	tok, k := e.newKey(t, "admin@acme.test", 24*time.Hour, "site.test")
	last := func() time.Time {
		got, err := e.srv.Accounts.APIKeyByHash(context.Background(), auth.HashToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		return got.LastUsed
	}
	if !k.LastUsed.IsZero() || !last().IsZero() {
		t.Fatal("a new key was used")
	}
	e.apiAs(t, tok, "POST", "/api/v2/query", okQuery)
	first := last()
	if first.IsZero() || time.Since(first) > time.Minute {
		t.Fatalf("last use %v", first)
	}
	e.clock.advance(59 * time.Second)
	e.apiAs(t, tok, "POST", "/api/v2/query", okQuery)
	if !last().Equal(first) {
		t.Fatalf("recorded again within the minute: %v, was %v", last(), first)
	}
	e.clock.advance(time.Second)
	e.apiAs(t, tok, "GET", "/api/v1/stats/realtime/visitors?site_id=site.test", "")
	if got := last(); got.Sub(first) < time.Minute {
		t.Fatalf("not recorded after a minute: %v, was %v", got, first)
	}
}

var tokenInPage = regexp.MustCompile(`value="(fjk_[A-Za-z0-9_-]{43})"`)

// TestKeysPage: a signed-in user makes a key (shown once), lists their own
// keys (never the key), and revokes only their own.
func TestKeysPage(t *testing.T) {
	e := newEnv(t, journal.Options{})
	admin := &http.Cookie{Name: sessionCookie, Value: e.cookie}
	user := &http.Cookie{Name: sessionCookie, Value: e.signIn(t, "user@acme.test")}
	csrf, _ := e.form(t, "/keys", admin)
	code, page := e.getAs(t, e.cookie, "/keys")
	if code != 200 || !strings.Contains(page, "site.test") || !strings.Contains(page, "hidden.test") || strings.Contains(page, "other.test") {
		t.Fatalf("the Administrator's form offers the account's sites: %d\n%s", code, page)
	}
	if strings.Contains(page, e.key) {
		t.Fatal("the list shows a key")
	}
	site := strconv.FormatInt(e.siteID(t, "site.test"), 10)
	resp, body := e.submit(t, "/keys", url.Values{"csrf": {csrf}, "name": {"Grafana"}, "site": {site}, "expires": {"30d"}}, admin)
	m := tokenInPage.FindStringSubmatch(body)
	if resp.StatusCode != 201 || m == nil || strings.Count(body, m[1]) != 1 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %q\n%s", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
	}
	tok := m[1]
	if code, body := e.apiAs(t, tok, "POST", "/api/v2/query", okQuery); code != 200 {
		t.Fatalf("the new key: %d %s", code, body)
	}
	_, page = e.getAs(t, e.cookie, "/keys")
	if strings.Contains(page, tok) || strings.Contains(page, tok[len(auth.KeyPrefix)+6:]) || !strings.Contains(page, tok[:len(auth.KeyPrefix)+6]) ||
		!strings.Contains(page, "Grafana") || !strings.Contains(page, "active") {
		t.Fatalf("the list after: want the prefix, never the key\n%s", page)
	}
	if strings.Contains(e.logs.String(), tok) {
		t.Fatal("the key is in the log")
	}
	// refusals, with the form kept
	for name, c := range map[string]struct {
		form url.Values
		want string
	}{
		"no name":        {url.Values{"name": {" "}, "site": {site}, "expires": {"30d"}}, "name"},
		"long name":      {url.Values{"name": {strings.Repeat("n", 101)}, "site": {site}, "expires": {"30d"}}, "name"},
		"no site":        {url.Values{"name": {"x"}, "expires": {"30d"}}, "at least one site"},
		"foreign site":   {url.Values{"name": {"x"}, "site": {strconv.FormatInt(e.siteID(t, "other.test"), 10)}, "expires": {"30d"}}, "not a site you may read"},
		"unknown site":   {url.Values{"name": {"x"}, "site": {"99999"}, "expires": {"30d"}}, "not a site you may read"},
		"garbage site":   {url.Values{"name": {"x"}, "site": {"abc"}, "expires": {"30d"}}, "not a site"},
		"too long":       {url.Values{"name": {"x"}, "site": {site}, "expires": {"2y"}}, "expiry"},
		"too short":      {url.Values{"name": {"x"}, "site": {site}, "expires": {"0h"}}, "expiry"},
		"no such expiry": {url.Values{"name": {"x"}, "site": {site}, "expires": {"soon"}}, "expiry"},
	} {
		c.form.Set("csrf", csrf)
		resp, body := e.submit(t, "/keys", c.form, admin)
		if resp.StatusCode != 400 || !strings.Contains(body, c.want) || tokenInPage.MatchString(body) {
			t.Errorf("%s: %d, want 400 saying %q\n%s", name, resp.StatusCode, c.want, body)
		}
	}
	// a User is offered and may scope only what is granted
	ucsrf, _ := e.form(t, "/keys", user)
	_, upage := e.getAs(t, user.Value, "/keys")
	if !strings.Contains(upage, "site.test") || strings.Contains(upage, "hidden.test") || strings.Contains(upage, "Grafana") {
		t.Fatalf("the User's page shows what is not theirs:\n%s", upage)
	}
	hidden := strconv.FormatInt(e.siteID(t, "hidden.test"), 10)
	if resp, body := e.submit(t, "/keys", url.Values{"csrf": {ucsrf}, "name": {"x"}, "site": {hidden}, "expires": {"7d"}}, user); resp.StatusCode != 400 || !strings.Contains(body, "not a site you may read") {
		t.Fatalf("a User's key for an ungranted site: %d\n%s", resp.StatusCode, body)
	}
	// revoking: CSRF needed; another user's key is 404
	keys, _ := e.srv.Accounts.APIKeys(context.Background(), e.user(t, "admin@acme.test").ID)
	id := strconv.FormatInt(keys[0].ID, 10)
	if resp, _ := e.submit(t, "/keys/"+id+"/revoke", url.Values{}, admin); resp.StatusCode != 403 {
		t.Fatalf("revoke without CSRF: %d", resp.StatusCode)
	}
	if resp, _ := e.submit(t, "/keys", url.Values{"name": {"x"}, "site": {site}}, admin); resp.StatusCode != 403 {
		t.Fatalf("create without CSRF: %d", resp.StatusCode)
	}
	for _, path := range []string{"/keys/" + id + "/revoke", "/keys/99999/revoke", "/keys/x/revoke"} {
		if resp, _ := e.submit(t, path, url.Values{"csrf": {ucsrf}}, user); resp.StatusCode != 404 {
			t.Errorf("the User revokes %s: %d, want 404", path, resp.StatusCode)
		}
	}
	if code, _ := e.apiAs(t, tok, "POST", "/api/v2/query", okQuery); code != 200 {
		t.Fatal("another user's revocation took")
	}
	if resp, _ := e.submit(t, "/keys/"+id+"/revoke", url.Values{"csrf": {csrf}}, admin); resp.StatusCode != 303 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if code, _ := e.apiAs(t, tok, "POST", "/api/v2/query", okQuery); code != 401 {
		t.Fatal("a revoked key works")
	}
	if _, page := e.getAs(t, e.cookie, "/keys"); !strings.Contains(page, "revoked") {
		t.Fatalf("the list does not say revoked:\n%s", page)
	}
	// signed out: to the sign-in page
	if code, _ := e.getAs(t, "", "/keys"); code != 303 {
		t.Fatalf("signed out: %d", code)
	}
}

// TestControlAPIKeys: the operator's routes make, list and revoke keys.
func TestControlAPIKeys(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctl := e.srv.ControlHandler()
	do := func(method, path string, body any) (int, string) {
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		req, _ := http.NewRequest(method, path, strings.NewReader(string(b)))
		w := httptest.NewRecorder()
		ctl.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	code, body := do("POST", "/apikeys", CreateAPIKeyRequest{Email: "user@acme.test", Name: "CI", Sites: []string{"site.test"}, Expires: "90d"})
	var out APIKeyCreated
	if code != 201 || json.Unmarshal([]byte(body), &out) != nil || !strings.HasPrefix(out.Token, auth.KeyPrefix) || out.Key.Sites[0] != "site.test" {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _ := e.apiAs(t, out.Token, "POST", "/api/v2/query", okQuery); code != 200 {
		t.Fatalf("the operator's key: %d", code)
	}
	for name, c := range map[string]struct {
		in   CreateAPIKeyRequest
		code int
		want string
	}{
		"ungranted site": {CreateAPIKeyRequest{Email: "user@acme.test", Name: "x", Sites: []string{"hidden.test"}, Expires: "1d"}, 400, "not a site this user may read"},
		"unknown site":   {CreateAPIKeyRequest{Email: "user@acme.test", Name: "x", Sites: []string{"nope.test"}, Expires: "1d"}, 404, "no such site"},
		"unknown user":   {CreateAPIKeyRequest{Email: "nobody@acme.test", Name: "x", Sites: []string{"site.test"}, Expires: "1d"}, 404, "no user"},
		"no expiry":      {CreateAPIKeyRequest{Email: "user@acme.test", Name: "x", Sites: []string{"site.test"}}, 400, "expiry"},
		"no name":        {CreateAPIKeyRequest{Email: "user@acme.test", Sites: []string{"site.test"}, Expires: "1d"}, 400, "name"},
	} {
		if code, body := do("POST", "/apikeys", c.in); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want %d saying %q", name, code, body, c.code, c.want)
		}
	}
	code, body = do("GET", "/apikeys?email=user%40acme.test", nil)
	if code != 200 || !strings.Contains(body, `"CI"`) || strings.Contains(body, out.Token) || strings.Contains(body, "TokenHash") {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, _ := do("POST", "/apikeys/"+strconv.FormatInt(out.Key.ID, 10)+"/revoke", nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code, _ := do("POST", "/apikeys/99999/revoke", nil); code != 404 {
		t.Fatalf("revoke unknown: %d", code)
	}
	if code, _ := e.apiAs(t, out.Token, "POST", "/api/v2/query", okQuery); code != 401 {
		t.Fatalf("revoked by the operator: %d", code)
	}
}

func FuzzKeyForm(f *testing.F) {
	f.Add("name=CI&site=1&site=2&expires=90d")
	f.Add("name=%00&site=-1&expires=1y")
	f.Add("site=99999999999999999999&expires=8760h")
	f.Add("name=" + strings.Repeat("%C3%A9", 101) + "&expires=+5d")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		kf, err := decodeKeyForm(form)
		if err != nil {
			return
		}
		for _, id := range kf.Sites {
			if id <= 0 {
				t.Fatalf("%q: site %d", body, id)
			}
		}
		if life, err := auth.ParseKeyLife(kf.Life); err == nil && (life < auth.MinKeyLife || life > auth.MaxKeyLife) {
			t.Fatalf("%q: life %v taken", kf.Life, life)
		}
		if auth.CheckKeyName(kf.Name) == nil {
			n := strings.TrimSpace(kf.Name)
			if n == "" || len([]rune(n)) > auth.MaxKeyName || strings.ContainsAny(n, "\r\n\x00") {
				t.Fatalf("%q: name taken", kf.Name)
			}
		}
	})
}

func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer fjk_abc")
	f.Add("bearer   x==")
	f.Add("Basic abc")
	f.Add("Bearer a b")
	f.Add("Bearer =")
	f.Fuzz(func(t *testing.T, v string) {
		tok, present, ok := bearerToken(http.Header{"Authorization": {v}})
		if !present {
			t.Fatal("a header not seen")
		}
		if !ok {
			if tok != "" {
				t.Fatalf("%q: a token from a refused header", v)
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") || !strings.HasSuffix(v, tok) || !strings.EqualFold(v[:7], "bearer ") {
			t.Fatalf("%q: token %q", v, tok)
		}
		if again, _, ok := bearerToken(http.Header{"Authorization": {"Bearer " + tok}}); !ok || again != tok {
			t.Fatalf("%q: does not read back", tok)
		}
	})
}

// FuzzAPIKeyRequest: the control socket's JSON body of a new key.
func FuzzAPIKeyRequest(f *testing.F) {
	f.Add(`{"Email":"a@b.c","Name":"CI","Sites":["site.test"],"Expires":"90d"}`)
	f.Add(`{"Sites":null,"Expires":7}`)
	f.Add(`{"Email":"a@b.c","Extra":1}`)
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		req, _ := http.NewRequest("POST", "/apikeys", strings.NewReader(body))
		var in CreateAPIKeyRequest
		if !readJSON(w, req, &in, "") {
			if w.Code != 400 {
				t.Fatalf("%q: %d", body, w.Code)
			}
			return
		}
		if life, err := auth.ParseKeyLife(in.Expires); err == nil && (life < auth.MinKeyLife || life > auth.MaxKeyLife) {
			t.Fatalf("%q: life %v taken", in.Expires, life)
		}
		auth.CheckKeyName(in.Name)
	})
}

// TestKeyUnderRequiredSecondFactor: when the account comes to require a
// second factor, the keys of a user without one stop until they set it up.
func TestKeyUnderRequiredSecondFactor(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	body := `{"site_id":"site.test","metrics":["visitors"],"date_range":"day"}`
	if code, _ := e.query(t, body); code != 200 {
		t.Fatalf("before: %d", code)
	}
	admin := e.user(t, "admin@acme.test")
	if err := e.srv.Accounts.SetRequireSecondFactor(ctx, admin.AccountID, true); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.query(t, body); code != http.StatusUnauthorized {
		t.Fatalf("required, not set up: %d, want 401", code)
	}
	if err := e.srv.Accounts.SetTOTP(ctx, admin.ID, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 0, nil); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.query(t, body); code != 200 {
		t.Fatalf("set up: %d, want 200", code)
	}
}
