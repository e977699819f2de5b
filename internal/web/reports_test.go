package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"fjord/internal/ingest/journal"
	"fjord/internal/store"
)

// TestSavedReportAccess: a saved report's page and its CSV download answer
// its site's readers and a User granted just that report; everyone else,
// and any id that does not exist, gets 404; the overview lists exactly the
// reports the viewer may read.
func TestSavedReportAccess(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	e.post(t, `{"n":"pageview","u":"https://site.test/pricing","d":"site.test"}`).Body.Close()
	e.post(t, `{"n":"pageview","u":"https://hidden.test/secret","d":"hidden.test"}`).Body.Close()
	save := func(domain, name string) store.SavedReport {
		st, _ := e.srv.Accounts.SiteByDomain(ctx, domain)
		r, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: st.ID, Name: name, Definition: `{"metrics":["visitors","pageviews"],"dimensions":["event:page"],"date_range":"7d"}`})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	onGranted, hiddenGranted, hiddenOther, foreign := save("site.test", "Pages"), save("hidden.test", "Secret pages"), save("hidden.test", "Other secret"), save("other.test", "Foreign")
	user := e.user(t, "user@acme.test")
	if err := e.srv.Accounts.Grant(ctx, user.ID, 0, hiddenGranted.ID); err != nil {
		t.Fatal(err)
	}
	userSession := e.signIn(t, "user@acme.test")
	otherSession := e.signIn(t, "admin@other.test")
	url := func(r store.SavedReport, suffix string) string { return fmt.Sprintf("/reports/%d%s", r.ID, suffix) }
	for _, c := range []struct {
		who, session string
		path         string
		want         int
	}{
		{"User", userSession, url(onGranted, ""), 200},
		{"User", userSession, url(hiddenGranted, ""), 200},
		{"User", userSession, url(hiddenGranted, "?format=csv&period=30d"), 200},
		{"User", userSession, url(hiddenOther, ""), 404},
		{"User", userSession, url(hiddenOther, "?format=csv"), 404},
		{"User", userSession, url(foreign, ""), 404},
		{"User", userSession, "/reports/999999", 404},
		{"User", userSession, "/reports/x", 404},
		{"Administrator", e.cookie, url(hiddenOther, "?period=30d"), 200},
		{"Administrator", e.cookie, url(foreign, ""), 404},
		{"Other's Administrator", otherSession, url(onGranted, ""), 404},
		{"Other's Administrator", otherSession, url(onGranted, "?format=csv"), 404},
		{"Other's Administrator", otherSession, url(foreign, ""), 200},
		{"Administrator", e.cookie, url(onGranted, "?period=forever"), 400},
	} {
		if code, body := e.getAs(t, c.session, c.path); code != c.want {
			t.Errorf("%s GET %s: %d, want %d\n%s", c.who, c.path, code, c.want, body)
		}
	}
	code, body := e.getAs(t, userSession, url(hiddenGranted, "?format=csv&period=30d"))
	if code != 200 || !strings.HasPrefix(body, "event:page,visitors,pageviews\n") || !strings.Contains(body, "/secret,1,1") {
		t.Fatalf("the CSV: %d\n%s", code, body)
	}
	_, page := e.getAs(t, userSession, "/")
	for _, r := range []store.SavedReport{onGranted, hiddenGranted} {
		if !strings.Contains(page, url(r, "")) {
			t.Errorf("the User's overview does not list %q", r.Name)
		}
	}
	for _, r := range []store.SavedReport{hiddenOther, foreign} {
		if strings.Contains(page, url(r, "")) || strings.Contains(page, r.Name) {
			t.Errorf("the User's overview lists %q", r.Name)
		}
	}
	if code, _ := e.getAs(t, "", url(onGranted, "")); code != http.StatusSeeOther {
		t.Fatalf("signed out: %d, want 303 to sign-in", code)
	}
}

// TestSaveView: the dashboard's "save" form makes the current period,
// filters and a panel's dimension a saved report owned by the viewer,
// which answers with the filter applied; only on a site they may read.
func TestSaveView(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	e.post(t, `{"n":"pageview","u":"https://site.test/a","d":"site.test","r":"https://www.google.com/"}`).Body.Close()
	e.post(t, `{"n":"pageview","u":"https://site.test/b","d":"site.test"}`, "User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0").Body.Close()
	userSession := e.signIn(t, "user@acme.test")
	user := e.user(t, "user@acme.test")
	csrf, _ := e.form(t, "/dashboard/site.test", sessionOf(userSession))
	form := urlValues("csrf", csrf, "name", "Pages from Google", "panel", "pages", "period", "7d", "f", "visit:source==Google")
	if resp, _ := e.submit(t, "/dashboard/hidden.test/reports", form, sessionOf(userSession)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("save on an ungranted site: %d, want 404", resp.StatusCode)
	}
	noCSRF := urlValues("name", "x", "panel", "pages", "period", "7d")
	if resp, _ := e.submit(t, "/dashboard/site.test/reports", noCSRF, sessionOf(userSession)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("save without CSRF token: %d, want 403", resp.StatusCode)
	}
	bad := urlValues("csrf", csrf, "name", "x", "panel", "nope", "period", "7d")
	if resp, _ := e.submit(t, "/dashboard/site.test/reports", bad, sessionOf(userSession)); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unknown panel: %d, want 400", resp.StatusCode)
	}
	resp, body := e.submit(t, "/dashboard/site.test/reports", form, sessionOf(userSession))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/reports/") {
		t.Fatalf("save: %d %q\n%s", resp.StatusCode, loc, body)
	}
	if resp, _ := e.submit(t, "/dashboard/site.test/reports", form, sessionOf(userSession)); resp.StatusCode != http.StatusConflict {
		t.Fatalf("the same name again: %d, want 409", resp.StatusCode)
	}
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	reps, _ := e.srv.Accounts.SavedReports(ctx, site.ID)
	if len(reps) != 1 || reps[0].OwnerID == nil || *reps[0].OwnerID != user.ID || !strings.Contains(reps[0].Definition, `["is","visit:source",["Google"]]`) {
		t.Fatalf("saved %+v", reps)
	}
	code, page := e.getAs(t, userSession, loc+"?format=csv")
	if code != 200 || !strings.Contains(page, "/a,") || strings.Contains(page, "/b,") {
		t.Fatalf("the saved view's answer: %d\n%s", code, page)
	}
}

func urlValues(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}
