package web

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fjord/internal/auth"
	"fjord/internal/ingest/journal"
	"fjord/internal/store"
)

func (e *testEnv) user(t testing.TB, email string) store.User {
	t.Helper()
	u, err := e.srv.Accounts.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatalf("user %s: %v", email, err)
	}
	return u
}

// adminPost posts an Administration form as the holder of session, with
// the CSRF token of their Administration page.
func (e *testEnv) adminPost(t *testing.T, session, path string, form url.Values) (int, string) {
	t.Helper()
	csrf, _ := e.form(t, "/account/2fa", sessionOf(session))
	form.Set("csrf", csrf)
	resp, body := e.submit(t, path, form, sessionOf(session))
	return resp.StatusCode, body
}

// TestAdminPages: an Administrator manages people, grants, sites and
// settings of their own account; a User reaches none of it, and an
// Administrator of another account touches nothing of this one, by any
// id, and learns nothing either (404 alike).
func TestAdminPages(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	userSession := e.signIn(t, "user@acme.test")
	otherSession := e.signIn(t, "admin@other.test")
	user := e.user(t, "user@acme.test")
	admin := e.user(t, "admin@acme.test")
	hidden, _ := e.srv.Accounts.SiteByDomain(ctx, "hidden.test")
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	foreign, _ := e.srv.Accounts.SiteByDomain(ctx, "other.test")
	rep, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: hidden.ID, Name: "Hidden pages", Definition: `{"metrics":["visitors"]}`})
	if err != nil {
		t.Fatal(err)
	}

	code, page := e.getAs(t, e.cookie, "/admin")
	if code != 200 || !strings.Contains(page, "user@acme.test") || !strings.Contains(page, "hidden.test") || strings.Contains(page, "other.test") {
		t.Fatalf("the Administrator's page: %d\n%s", code, page)
	}
	id := func(u store.User) string { return fmt.Sprint(u.ID) }
	actions := []struct {
		path string
		form url.Values
	}{
		{"/admin/users", url.Values{"email": {"new@acme.test"}, "role": {"user"}}},
		{"/admin/users/" + id(user) + "/grant", url.Values{"what": {fmt.Sprintf("site:%d", hidden.ID)}}},
		{"/admin/users/" + id(user) + "/ungrant", url.Values{"site": {fmt.Sprint(site.ID)}}},
		{"/admin/users/" + id(user) + "/remove", url.Values{}},
		{"/admin/users/" + id(user) + "/restore", url.Values{}},
		{"/admin/users/" + id(user) + "/reset-2fa", url.Values{}},
		{"/admin/sites", url.Values{"domain": {"new.test"}, "timezone": {"UTC"}}},
		{"/admin/account", url.Values{"retention": {"30"}, "require_second_factor": {"1"}}},
	}
	// a User: every page and action is 404, and changes nothing
	if code, _ := e.getAs(t, userSession, "/admin"); code != http.StatusNotFound {
		t.Fatalf("a User's /admin: %d, want 404", code)
	}
	// another account's Administrator: 404 for this account's ids
	for _, who := range []struct{ name, session string }{{"a User", userSession}, {"another account's Administrator", otherSession}} {
		for _, a := range actions {
			if who.session == otherSession && (a.path == "/admin/users" || a.path == "/admin/sites" || a.path == "/admin/account") {
				continue // these act on the asker's own account (checked below)
			}
			if code, body := e.adminPost(t, who.session, a.path, a.form); code != http.StatusNotFound {
				t.Errorf("%s: POST %s: %d, want 404\n%s", who.name, a.path, code, body)
			}
		}
	}
	// nothing changed for Acme
	if g, _ := e.srv.Accounts.Grants(ctx, user.ID); len(g.Sites) != 1 || g.Sites[0] != site.ID {
		t.Fatalf("grants changed by others: %+v", g)
	}
	if _, err := e.srv.Accounts.UserByID(ctx, user.ID); err != nil {
		t.Fatalf("the User was removed by others: %v", err)
	}
	// another account's Administrator grants their own user nothing of Acme's
	otherAdmin := e.user(t, "admin@other.test")
	if code, _ := e.adminPost(t, otherSession, "/admin/users", url.Values{"email": {"o2@other.test"}, "role": {"user"}}); code != 200 {
		t.Fatalf("Other adds a user: %d", code)
	}
	o2 := e.user(t, "o2@other.test")
	for _, what := range []string{fmt.Sprintf("site:%d", site.ID), fmt.Sprintf("report:%d", rep.ID), "site:999999", "site:x"} {
		if code, _ := e.adminPost(t, otherSession, "/admin/users/"+id(o2)+"/grant", url.Values{"what": {what}}); code != http.StatusNotFound && code != http.StatusBadRequest {
			t.Errorf("Other grants %s: %d, want 404 (or 400 for a bad id)", what, code)
		}
	}
	if g, _ := e.srv.Accounts.Grants(ctx, o2.ID); len(g.Sites)+len(g.Reports) != 0 {
		t.Fatalf("Other's user got %+v", g)
	}
	_ = otherAdmin

	// the Administrator does each of them
	code, body := e.adminPost(t, e.cookie, "/admin/users", url.Values{"email": {"new@acme.test"}, "role": {"user"}, "name": {"New Person"}})
	link := regexp.MustCompile(`id="welcome-link">([^<]+)<`).FindStringSubmatch(body)
	if code != 200 || link == nil || !strings.Contains(link[1], "/signin/link/") {
		t.Fatalf("add a person: %d\n%s", code, body)
	}
	if code, _ := e.adminPost(t, e.cookie, "/admin/users", url.Values{"email": {"new@acme.test"}, "role": {"user"}}); code != http.StatusConflict {
		t.Fatalf("the same address again: %d, want 409", code)
	}
	if code, body := e.adminPost(t, e.cookie, "/admin/users", url.Values{"email": {"not an address"}, "role": {"user"}}); code != http.StatusBadRequest || !strings.Contains(body, "e-mail address") {
		t.Fatalf("a bad address: %d\n%s", code, body)
	}
	for _, what := range []string{fmt.Sprintf("site:%d", hidden.ID), fmt.Sprintf("report:%d", rep.ID)} {
		if code, body := e.adminPost(t, e.cookie, "/admin/users/"+id(user)+"/grant", url.Values{"what": {what}}); code != 200 {
			t.Fatalf("grant %s: %d\n%s", what, code, body)
		}
	}
	if code, _ := e.adminPost(t, e.cookie, "/admin/users/"+id(user)+"/grant", url.Values{"what": {fmt.Sprintf("site:%d", foreign.ID)}}); code != http.StatusNotFound {
		t.Fatalf("grant another account's site: %d, want 404", code)
	}
	if code, _ := e.adminPost(t, e.cookie, "/admin/users/"+id(admin)+"/grant", url.Values{"what": {fmt.Sprintf("site:%d", hidden.ID)}}); code != http.StatusBadRequest {
		t.Fatalf("grant to an Administrator: %d, want 400", code)
	}
	if code, _ := e.getAs(t, userSession, "/dashboard/hidden.test"); code != 200 {
		t.Fatalf("the User after the grant: %d", code)
	}
	if code, _ := e.adminPost(t, e.cookie, "/admin/users/"+id(user)+"/ungrant", url.Values{"site": {fmt.Sprint(hidden.ID)}}); code != 200 {
		t.Fatalf("withdraw: %d", code)
	}
	if code, _ := e.getAs(t, userSession, "/dashboard/hidden.test"); code != http.StatusNotFound {
		t.Fatalf("the User after the grant was withdrawn: %d, want 404", code)
	}
	if code, _ := e.adminPost(t, e.cookie, "/admin/users/"+id(admin)+"/remove", url.Values{}); code != http.StatusConflict {
		t.Fatalf("remove the main contact: %d, want 409", code)
	}
	if code, _ := e.adminPost(t, e.cookie, "/admin/sites", url.Values{"domain": {"new.test"}, "timezone": {"Europe/Oslo"}}); code != 200 {
		t.Fatalf("add a site: %d", code)
	}
	if st, err := e.srv.Accounts.SiteByDomain(ctx, "new.test"); err != nil || st.AccountID != admin.AccountID || st.TimeZone != "Europe/Oslo" {
		t.Fatalf("the new site: %+v %v", st, err)
	}
	if code, _ := e.adminPost(t, e.cookie, "/admin/account", url.Values{"retention": {"91"}}); code != http.StatusBadRequest {
		t.Fatalf("retention of 91 days: %d, want 400", code)
	}
	if code, _ := e.adminPost(t, e.cookie, "/admin/account", url.Values{"retention": {"30"}, "require_second_factor": {"1"}}); code != 200 {
		t.Fatalf("settings: %d", code)
	}
	if acc, _ := e.srv.Accounts.Account(ctx, admin.AccountID); !acc.RequireSecondFactor || acc.LeaverRetentionDays != 30 {
		t.Fatalf("settings not saved: %+v", acc)
	}
	// without the CSRF token nothing happens
	if resp, _ := e.submit(t, "/admin/account", url.Values{"retention": {"5"}}, sessionOf(e.cookie)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("settings without CSRF token: %d", resp.StatusCode)
	}
	// a lost device: the Administrator resets the User's second factor,
	// which also signs them out (the requirement set above would first
	// send the Administrator to set up their own)
	if code, body := e.adminPost(t, e.cookie, "/admin/users/"+id(user)+"/reset-2fa", url.Values{}); code != http.StatusForbidden || !strings.Contains(body, "requires a second factor") {
		t.Fatalf("an Administrator without the required second factor: %d\n%s", code, body)
	}
	e.srv.Accounts.SetRequireSecondFactor(ctx, admin.AccountID, false)
	if err := e.srv.Accounts.SetTOTP(ctx, user.ID, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 0, nil); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.adminPost(t, e.cookie, "/admin/users/"+id(user)+"/reset-2fa", url.Values{}); code != 200 {
		t.Fatalf("reset second factor: %d", code)
	}
	if u, _ := e.srv.Accounts.UserByID(ctx, user.ID); u.TOTPSecret != "" {
		t.Fatal("the second factor is still set")
	}
	if code, _ := e.getAs(t, userSession, "/"); code != http.StatusSeeOther {
		t.Fatalf("the User's session after the reset: %d, want 303", code)
	}
}

// TestLeaverOverHTTP: with an injected clock, an Administrator removes a
// User: their session, password and key stop working at once and their
// saved report moves to the generic user; at day 89 the Administrator can
// restore them; removed again, at day 90 the hourly job has purged their
// personal data from every table of the database.
func TestLeaverOverHTTP(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	clk := &testClock{}
	e.srv.Auth.Now, e.srv.Now = clk.now, clk.now
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	// the leaver: a name and a password hash of their own (the test users
	// share one), to look for after the purge
	hash, err := auth.HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	user, err := e.srv.Accounts.AddUser(ctx, store.User{AccountID: e.user(t, "user@acme.test").AccountID, Email: "lea.ver@acme.test", Name: "Lea Verlasser", Role: store.RoleUser, PasswordHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Accounts.Grant(ctx, user.ID, site.ID, 0); err != nil {
		t.Fatal(err)
	}
	key, k, err := e.srv.Auth.CreateKey(ctx, user, auth.NewKey{Name: "Leaver's laptop", Sites: []int64{site.ID}, Life: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	keyStatus := func() int {
		req, _ := http.NewRequest("POST", e.http.URL+"/api/v2/query", strings.NewReader(`{"site_id":"site.test","metrics":["visitors"],"date_range":"day"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if keyStatus() != 200 {
		t.Fatal("the User's key does not work")
	}
	rep, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: site.ID, OwnerID: &user.ID, Name: "Leaver's own report", Definition: `{"metrics":["visitors"]}`})
	if err != nil {
		t.Fatal(err)
	}
	owner := func() int64 {
		r, err := e.srv.Accounts.SavedReport(ctx, site.ID, rep.ID)
		if err != nil || r.OwnerID == nil {
			t.Fatalf("report: %+v %v", r, err)
		}
		return *r.OwnerID
	}
	signedIn := func(session string) bool {
		code, _ := e.getAs(t, session, "/dashboard/site.test")
		return code == 200
	}
	userSession := e.signIn(t, "lea.ver@acme.test")
	if !signedIn(userSession) {
		t.Fatal("the User cannot read their site")
	}

	if code, body := e.adminPost(t, e.cookie, fmt.Sprintf("/admin/users/%d/remove", user.ID), url.Values{}); code != 200 {
		t.Fatalf("remove: %d\n%s", code, body)
	}
	if signedIn(userSession) {
		t.Fatal("the leaver's session still works")
	}
	if code := keyStatus(); code != http.StatusUnauthorized {
		t.Fatalf("the leaver's API key: %d, want 401", code)
	}
	pre, cookies := e.form(t, "/signin")
	if resp, _ := e.submit(t, "/signin", url.Values{"csrf": {pre}, "email": {"lea.ver@acme.test"}, "password": {testPassword}}, cookies...); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the leaver signs in: %d, want 401", resp.StatusCode)
	}
	if o := owner(); o == user.ID {
		t.Fatal("the report stayed with the leaver")
	}
	code, page := e.getAs(t, e.cookie, "/admin")
	if code != 200 || !strings.Contains(page, fmt.Sprintf(`id="removed-%d"`, user.ID)) {
		t.Fatalf("the leaver is not listed as removed:\n%s", page)
	}

	// day 89: restore (the Administrator signs in again: days have passed)
	clk.advance(89 * 24 * time.Hour)
	if err := e.srv.PurgeAccounts(ctx); err != nil {
		t.Fatal(err)
	}
	adminSession := e.signIn(t, "admin@acme.test")
	if code, body := e.adminPost(t, adminSession, fmt.Sprintf("/admin/users/%d/restore", user.ID), url.Values{}); code != 200 {
		t.Fatalf("restore at day 89: %d\n%s", code, body)
	}
	if owner() != user.ID {
		t.Fatal("the restored user's report did not come back")
	}
	if !signedIn(e.signIn(t, "lea.ver@acme.test")) {
		t.Fatal("the restored user cannot read their site")
	}

	// a second factor with recovery codes, for the purge to take too
	secret := auth.NewTOTPSecret()
	if err := e.srv.Accounts.SetTOTP(ctx, user.ID, secret, 0, []string{"recovery-hash-of-the-leaver"}); err != nil {
		t.Fatal(err)
	}
	// removed again; at day 90 restore is refused and the job purges
	if code, _ := e.adminPost(t, adminSession, fmt.Sprintf("/admin/users/%d/remove", user.ID), url.Values{}); code != 200 {
		t.Fatal("second removal failed")
	}
	clk.advance(90 * 24 * time.Hour)
	adminSession = e.signIn(t, "admin@acme.test")
	if code, _ := e.adminPost(t, adminSession, fmt.Sprintf("/admin/users/%d/restore", user.ID), url.Values{}); code != http.StatusNotFound {
		t.Fatalf("restore at day 90: %d, want 404", code)
	}
	if err := e.srv.PurgeAccounts(ctx); err != nil {
		t.Fatal(err)
	}
	// every table, every column: no trace of the address, name or hash
	db, err := sql.Open("sqlite", filepath.Join(e.dir, "accounts.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	traces := []string{"lea.ver@acme.test", "Lea Verlasser", user.PasswordHash, secret, "recovery-hash-of-the-leaver", k.TokenHash, "Leaver's laptop"}
	tables, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	if len(names) < 10 {
		t.Fatalf("only %d tables: %v", len(names), names)
	}
	for _, table := range names {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			for i, v := range vals {
				s := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					s = string(b)
				}
				for _, tr := range traces {
					if strings.Contains(s, tr) {
						t.Errorf("table %s, column %s still holds %q", table, cols[i], tr)
					}
				}
			}
		}
		rows.Close()
	}
	if _, err := e.srv.Accounts.UserByID(ctx, user.ID); err == nil {
		t.Fatal("the purged user is found by id")
	}
	if o := owner(); o == user.ID {
		t.Fatal("the report went back to the purged user")
	}
}

// FuzzAdminForms posts arbitrary bodies (with the right CSRF token) to
// every Administration action, the integrations' and the dashboard's save
// form, as Acme's Administrator and as Other's:
// answers are the pages' statuses, never a panic or a 5xx, and Other's
// Administrator never changes anything of Acme's.
// fuzz-count: 2000x
func FuzzAdminForms(f *testing.F) {
	e := newEnv(f, journal.Options{})
	ctx := context.Background()
	user := e.user(f, "user@acme.test")
	otherSession := e.signIn(f, "admin@other.test")
	accounts := []int64{user.AccountID, e.user(f, "admin@other.test").AccountID}
	acmeCSRF, _ := e.form(f, "/account/2fa", sessionOf(e.cookie))
	otherCSRF, _ := e.form(f, "/account/2fa", sessionOf(otherSession))
	paths := []string{"/admin/users", "/admin/users/%d/remove", "/admin/users/%d/restore", "/admin/users/%d/grant",
		"/admin/users/%d/ungrant", "/admin/sites", "/admin/account", "/admin/integrations", "/admin/integrations/1/approve",
		"/admin/integrations/1/withdraw", "/admin/integrations/1/delete", "/dashboard/site.test/reports", "/admin/sites/1/settings", "/admin/alerts/1/resolve", "/admin/exports"}
	f.Add(uint8(0), "email=a%40acme.test&role=user")
	f.Add(uint8(3), "what=site:1")
	f.Add(uint8(4), "report=1")
	f.Add(uint8(5), "domain=x.test&timezone=Europe/Oslo")
	f.Add(uint8(6), "retention=0&require_second_factor=1")
	f.Add(uint8(7), "what=%ZZ&&")
	f.Add(uint8(7), "site=1&url=https%3A%2F%2Fhooks.example%2Fx")
	f.Add(uint8(11), "name=Top&panel=pages&period=7d&f=visit:source%3D%3DGoogle")
	f.Add(uint8(12), "respect_dnt=1&ignored=192.0.2.0%2F24+::1")
	f.Add(uint8(14), "rows_per_day=10&mb_per_day=1&exports_per_hour=0")
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		// an input may have made the second factor required, which would
		// turn every later one into a 403
		for _, acc := range accounts {
			if a, _ := e.srv.Accounts.Account(ctx, acc); a.RequireSecondFactor {
				e.srv.Accounts.SetRequireSecondFactor(ctx, acc, false)
			}
		}
		path := paths[int(which)%len(paths)]
		if strings.Contains(path, "%d") {
			path = fmt.Sprintf(path, user.ID)
		}
		_, err := e.srv.Accounts.UserByID(ctx, user.ID)
		present := err == nil
		session, csrf := e.cookie, acmeCSRF
		if which >= 128 {
			session, csrf = otherSession, otherCSRF
		}
		req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader("csrf="+url.QueryEscape(csrf)+"&"+body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(sessionOf(session))
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case 200, 303, 400, 403, 404, 409:
		default:
			t.Fatalf("%s %q: status %d", path, body, resp.StatusCode)
		}
		if resp.StatusCode == 303 && path != "/dashboard/site.test/reports" {
			t.Fatalf("%s %q: a redirect", path, body)
		}
		if resp.StatusCode == 403 && !strings.HasSuffix(path, "/approve") && !strings.HasSuffix(path, "/withdraw") {
			t.Fatalf("%s %q: 403", path, body)
		}
		// a form that does not parse is refused (400) before anything is
		// looked up, for any id alike; else another account's gets 404
		_, perr := url.ParseQuery(body)
		if session == otherSession && (strings.HasPrefix(path, "/admin/users/") || path == "/dashboard/site.test/reports") && resp.StatusCode != 404 && (perr == nil || resp.StatusCode != 400) {
			t.Fatalf("Other's Administrator, %s %q: %d, want 404", path, body, resp.StatusCode)
		}
		if _, err := e.srv.Accounts.UserByID(ctx, user.ID); session == otherSession && (err == nil) != present {
			t.Fatalf("Other's Administrator, %s %q: Acme's User present %v before, %v after", path, body, present, err == nil)
		}
	})
}

// TestSiteSettings: an Administrator makes a site respect Do Not Track /
// Global Privacy Control and ignore an address range; the collector drops
// those hits at once (the client still gets 202), and a bad range is
// refused with its text named. A User and another account's Administrator
// get 404.
func TestSiteSettings(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	path := fmt.Sprintf("/admin/sites/%d/settings", site.ID)
	hit := func(hdr ...string) {
		t.Helper()
		resp := e.post(t, `{"n":"pageview","u":"https://site.test/","d":"site.test"}`, hdr...)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("hit %v: %d", hdr, resp.StatusCode)
		}
	}
	hit("DNT", "1")
	if n := e.pageviews(t); n != 1 {
		t.Fatalf("before the setting, a DNT hit counts: %d", n)
	}
	for _, who := range []string{"user@acme.test", "admin@other.test"} {
		if code, _ := e.adminPost(t, e.signIn(t, who), path, url.Values{"respect_dnt": {"1"}}); code != http.StatusNotFound {
			t.Fatalf("%s sets the site's settings: %d, want 404", who, code)
		}
	}
	if code, body := e.adminPost(t, e.cookie, path, url.Values{"respect_dnt": {"1"}, "ignored": {"192.0.2.0/24 office"}}); code != http.StatusBadRequest || !strings.Contains(body, "&#34;office&#34; is not an address range") {
		t.Fatalf("a bad range: %d\n%s", code, body)
	}
	if code, _ := e.adminPost(t, e.cookie, path, url.Values{"respect_dnt": {"1"}}); code != 200 {
		t.Fatalf("respect DNT: %d", code)
	}
	hit("DNT", "1")
	hit("Sec-GPC", "1")
	hit()
	if n := e.pageviews(t); n != 2 {
		t.Fatalf("with DNT respected: %d events, want 2 (the opted-out hits dropped)", n)
	}
	// the test's requests come from 127.0.0.1
	if code, _ := e.adminPost(t, e.cookie, path, url.Values{"ignored": {"127.0.0.0/8"}}); code != 200 {
		t.Fatalf("ignore a range: %d", code)
	}
	hit("DNT", "1")
	hit()
	if n := e.pageviews(t); n != 2 {
		t.Fatalf("from an ignored range: %d events, want still 2", n)
	}
	if got, _ := e.srv.Accounts.SiteByID(ctx, site.ID); got.RespectDNT || store.FormatRanges(got.Ignored) != "127.0.0.0/8" {
		t.Fatalf("stored settings %+v", got)
	}
}

// TestResidencyShown: the Administration page says where the data lives,
// each place as the configuration declares it and the allowed regions;
// a server with nothing declared (local use) says so.
func TestResidencyShown(t *testing.T) {
	e := newEnv(t, journal.Options{})
	card := func() string {
		t.Helper()
		code, page := e.getAs(t, e.cookie, "/admin")
		start := strings.Index(page, `<section class="card" id="residency">`)
		if code != 200 || start < 0 {
			t.Fatalf("no residency card: %d\n%s", code, page)
		}
		end := strings.Index(page[start:], "</section>")
		return page[start : start+end]
	}
	e.srv.Residency = Residency{Node: "eu-fi-helsinki", Database: "eu-se-stockholm", Standby: "eu-se-gothenburg", Backups: "eu-de-frankfurt", Allowed: []string{"eu-*", "ch-zurich"}}
	c := card()
	for _, want := range []string{
		`<h2>Where your data lives</h2>`,
		`<th scope="row">This server and its data directory</th><td>eu-fi-helsinki</td>`,
		`<th scope="row">Database</th><td>eu-se-stockholm (PostgreSQL)</td>`,
		`<th scope="row">Standby database</th><td>eu-se-gothenburg</td>`,
		`<th scope="row">Backups</th><td>eu-de-frankfurt</td>`,
		`Data may be kept only in <code>eu-*</code>, <code>ch-zurich</code>: the server refuses`,
	} {
		if !strings.Contains(c, want) {
			t.Errorf("every place declared: want %q in\n%s", want, c)
		}
	}
	// embedded stores, no standby, no backups
	e.srv.Residency = Residency{Node: "eu-fi-helsinki", Allowed: []string{"eu-*"}}
	c = card()
	if !strings.Contains(c, `<th scope="row">Database</th><td>eu-fi-helsinki, in this server's data directory</td>`) || strings.Contains(c, "Standby") || strings.Contains(c, "Backups") {
		t.Errorf("node only:\n%s", c)
	}
	e.srv.Residency = Residency{Allowed: []string{"eu-*"}}
	c = card()
	if !strings.Contains(c, "No region is declared") || strings.Contains(c, "<table") || !strings.Contains(c, "<code>eu-*</code>") {
		t.Errorf("nothing declared:\n%s", c)
	}
}
