package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"fjord/internal/ingest/journal"
	"fjord/internal/staff"
)

// TestUsage: events accepted, Stats API calls and exports are counted by
// account, site and day; an account's Administrators see their own on
// /admin/usage (a User does not, nor another account), operator staff
// every account's on the tooling page.
func TestUsage(t *testing.T) {
	e := newEnv(t, journal.Options{})
	e.withStaff("127.0.0.0/8")
	for range 3 {
		e.post(t, `{"n":"pageview","u":"https://site.test/","d":"site.test"}`).Body.Close()
	}
	e.post(t, `{"n":"pageview","u":"https://site.test/","d":"site.test,hidden.test"}`).Body.Close()
	e.post(t, `{"n":"pageview","u":"https://other.test/","d":"other.test"}`).Body.Close()
	// refused: an unknown site and a bad body count for no one
	e.post(t, `{"n":"pageview","u":"https://nowhere.test/","d":"nowhere.test"}`).Body.Close()
	e.post(t, `{"n":`).Body.Close()
	if n := e.pageviews(t); n != 4 {
		t.Fatalf("site.test holds %d events, want 4", n)
	}
	if code, body := e.apiGet(t, "/api/v1/stats/aggregate?site_id=site.test&metrics=visitors"); code != 200 {
		t.Fatalf("API call: %d %s", code, body)
	}
	if code, _ := e.apiAs(t, "fjord_not-a-key", "GET", "/api/v1/stats/aggregate?site_id=site.test", ""); code != http.StatusUnauthorized {
		t.Fatalf("a call with a bad key: %d", code)
	}
	if code, _ := e.fetch(t, e.cookie, "", "/dashboard/site.test/export?panel=pages&format=csv"); code != 200 {
		t.Fatalf("export: %d", code)
	}
	if err := e.srv.FlushCounts(context.Background()); err != nil {
		t.Fatal(err)
	}

	row := func(cells ...string) string { return "<tr><td>" + strings.Join(cells, "</td><td>") + "</td></tr>" }
	code, body := e.get(t, "/admin/usage")
	if code != 200 {
		t.Fatalf("usage page: %d %s", code, body)
	}
	// the API answer is an export too, so site.test has two
	for _, want := range []string{row("Stats API (not of one site)", "0", "1", "0"), row("site.test", "4", "0", "2"), row("hidden.test", "1", "0", "0"),
		"<th scope=\"row\">All sites</th><td>5</td><td>1</td><td>2</td>"} {
		if !strings.Contains(body, want) {
			t.Errorf("the usage page lacks %s\n%s", want, body)
		}
	}
	if strings.Contains(body, "other.test") {
		t.Error("Acme's usage page shows another account's site")
	}
	today := e.clock.now().UTC().Format("2006-01-02")
	if !strings.Contains(body, row(today, "5", "1", "2")) {
		t.Errorf("the usage page lacks today's (%s) row\n%s", today, body)
	}
	if code, _ := e.getAs(t, e.signIn(t, "user@acme.test"), "/admin/usage"); code == 200 {
		t.Error("a User sees the account's usage")
	}
	_, body = e.getAs(t, e.signIn(t, "admin@other.test"), "/admin/usage")
	if !strings.Contains(body, row("other.test", "1", "0", "0")) || strings.Contains(body, "site.test") {
		t.Errorf("Other's usage page:\n%s", body)
	}

	// operator staff see every account; support staff do not
	_, eng := e.staffMember(t, "eng@fjord.test", staff.Engineer, e.clock.now())
	code, body = e.staffGet(t, eng, "/staff/tooling")
	if code != 200 {
		t.Fatalf("tooling: %d", code)
	}
	for _, want := range []string{row("Acme (#1)", "site.test", "4", "0", "2"), row("Other (#2)", "other.test", "1", "0", "0")} {
		if !strings.Contains(body, want) {
			t.Errorf("the staff's usage lacks %s\n%s", want, body)
		}
	}
	_, sup := e.staffMember(t, "sup@fjord.test", staff.Support, e.clock.now())
	if code, _ := e.staffGet(t, sup, "/staff/tooling"); code != 404 {
		t.Errorf("support staff reach the tooling page: %d", code)
	}
}
