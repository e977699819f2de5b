package web

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fjord/internal/audit"
	"fjord/internal/auth"
	"fjord/internal/ingest/journal"
	"fjord/internal/secmon"
	"fjord/internal/staff"
)

// withStaff turns the staff console on, answering from ranges.
func (e *testEnv) withStaff(ranges ...string) {
	st := e.srv.Accounts.(staff.Store)
	e.srv.Staff = &staff.Service{Store: st, Now: e.clock.now}
	e.srv.StaffSignin = &auth.StaffSignin{Store: st, Now: e.clock.now}
	e.srv.StaffRanges = nil
	for _, r := range ranges {
		e.srv.StaffRanges = append(e.srv.StaffRanges, netip.MustParsePrefix(r))
	}
}

var staffSecretField = regexp.MustCompile(`name="secret" value="([A-Z2-7]+)"`)

// staffMember adds a staff member trained at trained, who sets up their
// sign-in through the set-up page and signs in; it returns their id and
// console session cookie.
func (e *testEnv) staffMember(t *testing.T, email string, role staff.Role, trained time.Time) (int64, *http.Cookie) {
	t.Helper()
	res, err := RunStaffCommand(context.Background(), e.srv.StaffSignin, e.srv.Audit, StaffCommand{Verb: "add", Email: email, Role: string(role), Trained: trained.Format("2006-01-02")})
	if err != nil {
		t.Fatal(err)
	}
	_, page := e.getAs(t, "", res.Link)
	m := staffSecretField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("set-up page has no key:\n%s", page)
	}
	csrf, cookies := e.form(t, res.Link)
	resp, body := e.submit(t, "/staff/setup", url.Values{"csrf": {csrf}, "token": {strings.TrimPrefix(res.Link, "/staff/setup/")}, "secret": {m[1]},
		"password": {testPassword}, "password2": {testPassword}, "code": {auth.TOTPCode(m[1], e.clock.now())}}, cookies...)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set-up: %d\n%s", resp.StatusCode, body)
	}
	// a code is good once: sign in with the next one
	e.clock.advance(30 * time.Second)
	csrf, cookies = e.form(t, "/staff/signin")
	resp, body = e.submit(t, "/staff/signin", url.Values{"csrf": {csrf}, "email": {email}, "password": {testPassword}, "code": {auth.TOTPCode(m[1], e.clock.now())}}, cookies...)
	c := cookieOf(resp, staffCookie)
	if resp.StatusCode != http.StatusSeeOther || c == nil || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("staff sign-in: %d %+v\n%s", resp.StatusCode, c, body)
	}
	return res.Member.ID, &http.Cookie{Name: staffCookie, Value: c.Value}
}

// staffPost posts a console form as the holder of the staff cookie.
func (e *testEnv) staffPost(t *testing.T, c *http.Cookie, path string, form url.Values) (int, string) {
	t.Helper()
	csrf, _ := e.form(t, "/staff/", c)
	form.Set("csrf", csrf)
	resp, body := e.submit(t, path, form, c)
	return resp.StatusCode, body
}

// staffGet GETs a page with the staff cookie (and no customer session).
func (e *testEnv) staffGet(t *testing.T, c *http.Cookie, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.http.URL+path, nil)
	req.AddCookie(c)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location") + string(b)
}

var grantID = regexp.MustCompile(`grant #(\d+)`)

// askGrant asks for a grant as c's holder and returns its id.
func (e *testEnv) askGrant(t *testing.T, c *http.Cookie, account int64, scope string, hours int) int64 {
	t.Helper()
	code, body := e.staffPost(t, c, "/staff/grants", url.Values{"account": {fmt.Sprint(account)}, "reason": {"TICKET-7 customer asks why numbers dropped"},
		"scope": {scope}, "hours": {fmt.Sprint(hours)}})
	m := grantID.FindStringSubmatch(body)
	if code != http.StatusCreated || m == nil {
		t.Fatalf("ask for a grant: %d\n%s", code, body)
	}
	var id int64
	fmt.Sscan(m[1], &id)
	return id
}

// auditSince lists the audit entries after seq.
func (e *testEnv) auditSince(t *testing.T, seq int64) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	if err := e.srv.Audit.Store.Entries(context.Background(), seq+1, func(en audit.Entry) error {
		out = append(out, en)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *testEnv) lastSeq(t *testing.T) int64 {
	t.Helper()
	last, err := e.srv.Audit.Store.LastEntry(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return last.Seq
}

// events counts the security events of a kind raised so far.
func (e *testEnv) events(kind string) int {
	return strings.Count(e.logs.String(), "kind="+kind+" ")
}

// TestStaffConsoleAddressRule: the console answers only from its ranges,
// with the client address from X-Forwarded-For only when the peer is a
// trusted proxy; from elsewhere every /staff/ path is the 404 of a path
// that does not exist, and a security event.
func TestStaffConsoleAddressRule(t *testing.T) {
	e := newEnv(t, journal.Options{})
	e.withStaff("10.8.0.0/16")
	get := func(path, xff string) (int, string) {
		req, _ := http.NewRequest("GET", e.http.URL+path, nil)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, unknown := get("/no-such-page", "")
	outside := func(name, xff string) {
		t.Helper()
		before := e.events(EventStaffOutside)
		for _, p := range []string{"/staff", "/staff/", "/staff/signin", "/staff/setup/abc", "/staff/tooling", "/staff/no-such-page"} {
			e.clock.advance(time.Minute) // one event per network a minute
			if code, body := get(p, xff); code != 404 || body != unknown {
				t.Fatalf("%s: %s answered %d %q, want the plain 404 %q", name, p, code, body, unknown)
			}
		}
		if got := e.events(EventStaffOutside) - before; got != 6 {
			t.Fatalf("%s: %d security events, want 6", name, got)
		}
	}
	inside := func(name, xff string) {
		t.Helper()
		if code, body := get("/staff/signin", xff); code != 200 || !strings.Contains(body, `action="/staff/signin"`) {
			t.Fatalf("%s: sign-in page %d\n%s", name, code, body)
		}
		if code, _ := get("/staff/", xff); code != http.StatusSeeOther {
			t.Fatalf("%s: console without a session %d, want 303 to sign-in", name, code)
		}
	}
	// the test's peer is 127.0.0.1, not a trusted proxy: its header is not believed
	outside("peer outside", "")
	outside("header from an untrusted peer", "10.8.0.5")
	e.srv.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	inside("through a trusted proxy", "10.8.0.5")
	outside("through a trusted proxy from outside", "198.51.100.7")
	outside("a forged first hop", "10.8.0.5, 198.51.100.7")
	inside("a chain of trusted proxies", "10.8.0.5, 127.0.0.2")
	outside("a garbled header", "10.8.0.5, not-an-address")
	e.srv.TrustedProxies = nil
	e.withStaff("127.0.0.0/8")
	inside("peer inside", "")
	e.withStaff()
	outside("no ranges configured", "")
	// a scan is bounded: within a minute one network makes one event
	before := e.events(EventStaffOutside)
	for i := 0; i < 20; i++ {
		get("/staff/", "")
	}
	if n := e.events(EventStaffOutside) - before; n > 1 {
		t.Fatalf("20 requests within a minute made %d events", n)
	}
	// and all of them are one alert of the operator's
	alerts, err := e.srv.Security.Store.Alerts(context.Background(), secmon.AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range alerts {
		if a.Kind == secmon.StaffConsoleOutside {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d alerts of requests from outside, want 1: %+v", n, alerts)
	}
	if strings.Contains(e.logs.String(), "198.51.100.7") || strings.Contains(e.logs.String(), "10.8.0.5") {
		t.Fatal("a client address is in the logs")
	}
	if strings.Contains(e.logs.String(), "/staff/setup/abc") {
		t.Fatal("a set-up link's token is in the logs")
	}
}

// TestStaffAccessUnderGrant: a staff member opens a customer account only
// under an approved grant of theirs, within its scope, until it expires;
// every request there is exactly one audit entry with the grant's id, and
// every request without a valid grant (none, another account, wrong
// scope, expired, lapsed training) is refused, is not in the log, and
// raises a security event.
func TestStaffAccessUnderGrant(t *testing.T) {
	e := newEnv(t, journal.Options{})
	e.withStaff("127.0.0.0/8")
	ctx := context.Background()
	acme := e.user(t, "admin@acme.test").AccountID
	other := e.user(t, "admin@other.test").AccountID
	annID, ann := e.staffMember(t, "ann@fjord.test", staff.Support, e.clock.now())
	_, bob := e.staffMember(t, "bob@fjord.test", staff.Engineer, e.clock.now())
	_, hod := e.staffMember(t, "hod@fjord.test", staff.HeadOfDevelopment, e.clock.now())

	refused := func(name string, c *http.Cookie, method, path string, code int) {
		t.Helper()
		seq, before := e.lastSeq(t), e.events(EventStaffRefused)
		var got int
		if method == "GET" {
			got, _ = e.staffGet(t, c, path)
		} else {
			got, _ = e.staffPost(t, c, path, url.Values{"domain": {"sneaky.test"}, "timezone": {"UTC"}})
		}
		if got != code {
			t.Fatalf("%s: %s %s answered %d, want %d", name, method, path, got, code)
		}
		if n := e.events(EventStaffRefused) - before; n != 1 {
			t.Fatalf("%s: %d security events, want 1", name, n)
		}
		for _, en := range e.auditSince(t, seq) {
			if en.Actor == fmt.Sprintf("staff:%d", annID) && en.Account != 0 {
				t.Fatalf("%s: a refused request is in the audit log: %+v", name, en)
			}
		}
	}
	// entries checks that each request made by do writes exactly one entry,
	// by Ann, in Acme's account, with the grant's id
	entries := func(name string, grant int64, do func() int, wantCode int, action string) audit.Entry {
		t.Helper()
		seq := e.lastSeq(t)
		if code := do(); code != wantCode {
			t.Fatalf("%s: %d, want %d", name, code, wantCode)
		}
		got := e.auditSince(t, seq)
		if len(got) != 1 || got[0].Grant != grant || got[0].Actor != fmt.Sprintf("staff:%d", annID) || got[0].Account != acme || got[0].Action != action {
			t.Fatalf("%s: audit entries %+v, want one %s by staff:%d under grant %d in account %d", name, got, action, annID, grant, acme)
		}
		return got[0]
	}

	// no grant yet
	refused("no grant", ann, "GET", "/dashboard/site.test", http.StatusForbidden)
	refused("no grant", ann, "GET", "/", http.StatusForbidden)

	// four eyes: nobody approves their own request, not even the head of
	// development; an engineer approves nothing
	own := e.askGrant(t, hod, acme, "read", 2)
	if code, body := e.staffPost(t, hod, fmt.Sprintf("/staff/grants/%d/approve", own), url.Values{}); code != http.StatusForbidden || !strings.Contains(body, "their own access request") {
		t.Fatalf("own approval: %d\n%s", code, body)
	}
	g := e.askGrant(t, ann, acme, "read", 2)
	if code, _ := e.staffPost(t, ann, fmt.Sprintf("/staff/grants/%d/approve", g), url.Values{}); code != http.StatusForbidden {
		t.Fatalf("approval by a support member: %d", code)
	}
	if code, _ := e.staffPost(t, bob, fmt.Sprintf("/staff/grants/%d/approve", g), url.Values{}); code != http.StatusForbidden {
		t.Fatalf("approval by an engineer: %d", code)
	}
	refused("acting under a grant not approved", ann, "POST", fmt.Sprintf("/staff/grants/%d/act", g), http.StatusForbidden)
	if code, body := e.staffPost(t, hod, fmt.Sprintf("/staff/grants/%d/approve", g), url.Values{}); code != 200 {
		t.Fatalf("approval: %d\n%s", code, body)
	}
	if code, _ := e.staffPost(t, bob, fmt.Sprintf("/staff/grants/%d/act", g), url.Values{}); code != http.StatusForbidden {
		t.Fatalf("Bob acting under Ann's grant: %d", code)
	}
	if code, _ := e.staffPost(t, ann, fmt.Sprintf("/staff/grants/%d/act", g), url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("act: %d", code)
	}

	// in scope: one entry per request
	get := func(path string) func() int {
		return func() int { code, _ := e.staffGet(t, ann, path); return code }
	}
	entries("overview", g, get("/"), 200, "staff.read")
	en := entries("dashboard", g, get("/dashboard/site.test?period=7d"), 200, "staff.read")
	if en.Target != "GET /dashboard/site.test?period=7d" || !strings.Contains(en.Detail, "status 200") {
		t.Fatalf("entry %+v", en)
	}
	entries("a hidden site of the account", g, get("/dashboard/hidden.test"), 200, "staff.read")
	entries("the account's settings", g, get("/admin"), 200, "staff.read")
	entries("an export", g, get("/dashboard/site.test/export?panel=pages&format=csv"), 200, "staff.read")
	for _, p := range []string{"/", "/admin", "/dashboard/site.test"} {
		code, page := e.staffGet(t, ann, p)
		if code != 200 || !strings.Contains(page, `id="acting"`) || !strings.Contains(page, fmt.Sprintf("grant #%d", g)) || !strings.Contains(page, `action="/staff/act/stop"`) {
			t.Fatalf("%s does not say staff is acting: %d", p, code)
		}
	}

	// outside the grant: another account, a change under a read grant
	refused("another account's site", ann, "GET", "/dashboard/other.test", http.StatusNotFound)
	refused("a change under a read grant", ann, "POST", "/admin/sites", http.StatusNotFound)
	if _, err := e.srv.Accounts.SiteByDomain(ctx, "sneaky.test"); err == nil {
		t.Fatal("a read grant added a site")
	}
	// a user's own pages are never staff's
	if code, _ := e.staffGet(t, ann, "/keys"); code != http.StatusSeeOther {
		t.Fatalf("keys page as staff: %d, want the sign-in", code)
	}

	// read-write: a change is one entry, naming what was done
	gw := e.askGrant(t, ann, acme, "read-write", 1)
	e.staffPost(t, hod, fmt.Sprintf("/staff/grants/%d/approve", gw), url.Values{})
	e.staffPost(t, ann, fmt.Sprintf("/staff/grants/%d/act", gw), url.Values{})
	en = entries("adding a site", gw, func() int {
		code, _ := e.staffPost(t, ann, "/admin/sites", url.Values{"domain": {"added-by-staff.test"}, "timezone": {"UTC"}})
		return code
	}, http.StatusOK, "staff.change")
	if !strings.Contains(en.Detail, "site.add") || !strings.Contains(en.Detail, "added-by-staff.test") {
		t.Fatalf("the entry does not say what was done: %+v", en)
	}
	refused("another account under read-write", ann, "GET", "/dashboard/other.test", http.StatusNotFound)
	// people hold credentials that would outlive the grant: never staff's
	refused("adding a person under read-write", ann, "POST", "/admin/users", http.StatusNotFound)
	// the customer's alerts (some about staff) are theirs to close
	refused("resolving an alert", ann, "POST", "/admin/alerts/1/resolve", http.StatusNotFound)
	// an account that requires a second factor of its people is open to
	// staff under a grant all the same (staff always have one)
	if err := e.srv.Accounts.SetRequireSecondFactor(ctx, acme, true); err != nil {
		t.Fatal(err)
	}
	entries("an account requiring a second factor", gw, get("/dashboard/site.test"), 200, "staff.read")
	e.srv.Accounts.SetRequireSecondFactor(ctx, acme, false)
	_ = other

	// expiry: an hour and a minute later the read-write grant is over
	// (the console session, idle for at most 30 minutes, is kept alive)
	for _, d := range []time.Duration{25 * time.Minute, 25 * time.Minute, 11 * time.Minute} {
		e.staffGet(t, ann, "/staff/")
		e.clock.advance(d)
	}
	refused("an expired grant", ann, "GET", "/dashboard/site.test", http.StatusForbidden)
	// back under the read grant, until her training lapses
	e.staffPost(t, ann, fmt.Sprintf("/staff/grants/%d/act", g), url.Values{})
	entries("dashboard again", g, get("/dashboard/site.test"), 200, "staff.read")
	if err := e.srv.Staff.Store.SetStaffTrained(ctx, annID, e.clock.now().AddDate(0, 0, -93)); err != nil {
		t.Fatal(err)
	}
	refused("lapsed training", ann, "GET", "/dashboard/site.test", http.StatusForbidden)
	if code, body := e.staffPost(t, ann, "/staff/grants", url.Values{"account": {fmt.Sprint(acme)}, "reason": {"T-8"}, "scope": {"read"}, "hours": {"1"}}); code != http.StatusForbidden || !strings.Contains(body, "training") {
		t.Fatalf("a request with lapsed training: %d\n%s", code, body)
	}
	// the chain still verifies with every entry above
	if _, err := audit.Verify(ctx, e.srv.Audit.Store, e.srv.auditPublic()); err != nil {
		t.Fatal(err)
	}
	// the refusals opened an alert for Acme (its Administrators are told)
	alerts, err := e.srv.Security.Store.Alerts(ctx, secmon.AlertFilter{Account: acme, OpenOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range alerts {
		found = found || a.Kind == secmon.StaffRefused && a.Count >= 1
	}
	if !found {
		t.Fatalf("no staff-refused alert for Acme: %+v", alerts)
	}
}

// TestStaffTooling: production tooling is for engineers and the head of
// development only.
func TestStaffTooling(t *testing.T) {
	e := newEnv(t, journal.Options{})
	e.withStaff("127.0.0.0/8")
	for _, c := range []struct {
		role staff.Role
		code int
	}{{staff.Support, 404}, {staff.Consultant, 404}, {staff.DPO, 404}, {staff.Engineer, 200}, {staff.HeadOfDevelopment, 200}} {
		_, cookie := e.staffMember(t, string(c.role)+"@fjord.test", c.role, e.clock.now())
		code, body := e.staffGet(t, cookie, "/staff/tooling")
		if code != c.code || code == 200 && !strings.Contains(body, "Verified") {
			t.Errorf("%s: tooling %d, want %d\n%s", c.role, code, c.code, body)
		}
	}
}

// TestAccessTransparency: an Administrator sees every staff access to
// their account (who, role, when, what, why, grant), newest first and as
// CSV, and nothing of other accounts; a User sees none of it.
func TestAccessTransparency(t *testing.T) {
	e := newEnv(t, journal.Options{})
	e.withStaff("127.0.0.0/8")
	acme := e.user(t, "admin@acme.test").AccountID
	other := e.user(t, "admin@other.test").AccountID
	_, ann := e.staffMember(t, "ann@fjord.test", staff.Consultant, e.clock.now())
	_, dpo := e.staffMember(t, "dpo@fjord.test", staff.DPO, e.clock.now())
	// a reason a spreadsheet would run, to check the CSV neutralises it
	ask := func(account int64, reason string) int64 {
		code, body := e.staffPost(t, ann, "/staff/grants", url.Values{"account": {fmt.Sprint(account)}, "reason": {reason}, "scope": {"read"}, "hours": {"3"}})
		m := grantID.FindStringSubmatch(body)
		if code != http.StatusCreated || m == nil {
			t.Fatalf("ask: %d", code)
		}
		var id int64
		fmt.Sscan(m[1], &id)
		e.staffPost(t, dpo, fmt.Sprintf("/staff/grants/%d/approve", id), url.Values{})
		e.staffPost(t, ann, fmt.Sprintf("/staff/grants/%d/act", id), url.Values{})
		return id
	}
	ga := ask(acme, "=HYPERLINK(\"http://evil.example\") TICKET-1")
	e.staffGet(t, ann, "/dashboard/site.test?period=30d")
	e.staffGet(t, ann, "/dashboard/hidden.test")
	ask(other, "TICKET-2 for Other")
	e.staffGet(t, ann, "/dashboard/other.test")

	code, page := e.getAs(t, e.cookie, "/admin/staff-access")
	if code != 200 {
		t.Fatalf("staff access page: %d", code)
	}
	for _, want := range []string{"ann@fjord.test (consultant)", "/dashboard/site.test?period=30d", "/dashboard/hidden.test", "TICKET-1",
		fmt.Sprintf("#%d, read, 3h0m0s", ga), "dpo@fjord.test (dpo)", "staff.grant.request", "staff.grant.approve"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "other.test") || strings.Contains(page, "TICKET-2") {
		t.Error("Acme's page shows an access to another account")
	}
	if strings.Index(page, "/dashboard/hidden.test") > strings.Index(page, "/dashboard/site.test?period=30d") {
		t.Error("not newest first")
	}
	// Other's Administrator sees their own access, not Acme's
	otherSession := e.signIn(t, "admin@other.test")
	if _, p := e.getAs(t, otherSession, "/admin/staff-access"); !strings.Contains(p, "TICKET-2") || strings.Contains(p, "TICKET-1") || strings.Contains(p, "site.test") {
		t.Error("Other's page is wrong")
	}
	// a User sees none of it
	userSession := e.signIn(t, "user@acme.test")
	for _, p := range []string{"/admin/staff-access", "/admin/staff-access.csv"} {
		if code, _ := e.getAs(t, userSession, p); code != 404 {
			t.Errorf("a User got %s: %d", p, code)
		}
	}
	code, csvBody := e.getAs(t, e.cookie, "/admin/staff-access.csv")
	if code != 200 || !strings.Contains(csvBody, "'=HYPERLINK") || strings.Contains(csvBody, ",=HYPERLINK") || strings.Contains(csvBody, "TICKET-2") {
		t.Fatalf("CSV: %d\n%s", code, csvBody)
	}
	if lines := strings.Count(strings.TrimSpace(csvBody), "\n"); lines != 4 { // request, approval, two pages
		t.Fatalf("CSV has %d rows, want 4\n%s", lines, csvBody)
	}
}

// FuzzStaffForms posts arbitrary bodies to every form of the staff
// console, as a support member, the head of development and the DPO: answers
// are the pages' statuses, never a panic or a 5xx; no grant is ever
// approved by its asker, longer than the role's limit, or without a reason.
// Every sign-in input hashes a password, so it runs fewer inputs.
// fuzz-count: 1000x
func FuzzStaffForms(f *testing.F) {
	e := newEnv(f, journal.Options{})
	ctx := context.Background()
	e.withStaff("127.0.0.0/8")
	acme := e.user(f, "admin@acme.test").AccountID
	members := []*http.Cookie{}
	for _, m := range []struct {
		email string
		role  staff.Role
	}{{"ann@fjord.test", staff.Support}, {"hod@fjord.test", staff.HeadOfDevelopment}, {"dpo@fjord.test", staff.DPO}} {
		res, err := RunStaffCommand(ctx, e.srv.StaffSignin, e.srv.Audit, StaffCommand{Verb: "add", Email: m.email, Role: string(m.role), Trained: e.clock.now().Format("2006-01-02")})
		if err != nil {
			f.Fatal(err)
		}
		secret := auth.NewTOTPSecret()
		if _, err := e.srv.StaffSignin.Setup(ctx, strings.TrimPrefix(res.Link, "/staff/setup/"), testPassword, secret, auth.TOTPCode(secret, e.clock.now())); err != nil {
			f.Fatal(err)
		}
		tok, _, err := e.srv.StaffSignin.StartSession(ctx, res.Member.ID)
		if err != nil {
			f.Fatal(err)
		}
		members = append(members, &http.Cookie{Name: staffCookie, Value: tok})
	}
	csrfs := []string{}
	for _, c := range members {
		csrf, _ := e.form(f, "/staff/", c)
		csrfs = append(csrfs, csrf)
	}
	pre, preCookies := e.form(f, "/staff/signin")
	paths := []string{"/staff/grants", "/staff/grants/1/approve", "/staff/grants/1/revoke", "/staff/grants/1/act", "/staff/act/stop", "/staff/signin", "/staff/setup",
		"/staff/incidents", "/staff/incidents/1/update"}
	f.Add(uint8(0), fmt.Sprintf("account=%d&reason=T-1&scope=read&hours=2", acme))
	f.Add(uint8(128), fmt.Sprintf("account=%d&reason=T-1&scope=read-write&hours=24", acme))
	f.Add(uint8(0), "account=99&reason=&scope=write&hours=-1")
	f.Add(uint8(129), "")
	f.Add(uint8(3), "")
	f.Add(uint8(5), "email=ann%40fjord.test&password=wrong&code=123456")
	f.Add(uint8(6), "token=x&secret=ABC&password=p&password2=q&code=1")
	f.Add(uint8(0), "account=1&reason=%ZZ&&hours=1e9")
	f.Add(uint8(128+7), fmt.Sprintf("account=%d&account=x&title=T&description=D", acme))
	f.Add(uint8(128+8), "text=update&close=1")
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		path := paths[int(which&0x3f)%len(paths)]
		who := int(which>>6) % len(members)
		csrf, cookies := csrfs[who], []*http.Cookie{members[who]}
		if strings.HasPrefix(path, "/staff/signin") || strings.HasPrefix(path, "/staff/setup") {
			csrf, cookies = pre, preCookies
		}
		req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader("csrf="+url.QueryEscape(csrf)+"&"+body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case 200, 201, 303, 400, 401, 403, 404, 409, 429:
		default:
			t.Fatalf("%s %q: status %d", path, body, resp.StatusCode)
		}
		gs, err := e.srv.Staff.Store.StaffGrants(ctx, 0, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			if g.ApprovedBy == g.Staff && g.ApprovedBy != 0 || g.Duration > staff.MaxGrant || g.Duration <= 0 || strings.TrimSpace(g.Reason) == "" {
				t.Fatalf("%s %q: grant %+v", path, body, g)
			}
		}
	})
}

// TestStaffOffHoursAndVolume: staff access outside working hours, and
// more than StaffVolumePerHour requests in an hour under one grant, are
// served but raise security events (the volume one once per hour).
func TestStaffOffHoursAndVolume(t *testing.T) {
	e := newEnv(t, journal.Options{})
	e.withStaff("127.0.0.0/8")
	// next Saturday, 03:00 UTC
	now := time.Now().UTC()
	sat := time.Date(now.Year(), now.Month(), now.Day(), 3, 0, 0, 0, time.UTC)
	for sat.Weekday() != time.Saturday || !sat.After(now) {
		sat = sat.AddDate(0, 0, 1)
	}
	e.clock.advance(sat.Sub(now))
	acme := e.user(t, "admin@acme.test").AccountID
	_, ann := e.staffMember(t, "ann@fjord.test", staff.Support, e.clock.now())
	_, dpo := e.staffMember(t, "dpo@fjord.test", staff.DPO, e.clock.now())
	g := e.askGrant(t, ann, acme, "read", 2)
	e.staffPost(t, dpo, fmt.Sprintf("/staff/grants/%d/approve", g), url.Values{})
	e.staffPost(t, ann, fmt.Sprintf("/staff/grants/%d/act", g), url.Values{})
	if code, _ := e.staffGet(t, ann, "/"); code != 200 {
		t.Fatalf("off hours: %d, want 200 (recorded, not refused)", code)
	}
	if n := e.events(EventStaffOffHours); n != 1 {
		t.Fatalf("%d off-hours events, want 1", n)
	}
	for i := 1; i < StaffVolumePerHour+5; i++ {
		if code, _ := e.staffGet(t, ann, "/admin/staff-access"); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	if n := e.events(EventStaffVolume); n != 1 {
		t.Fatalf("%d volume events, want 1", n)
	}
	if staff.OffHours(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)) || !staff.OffHours(time.Date(2026, 12, 2, 19, 0, 0, 0, time.UTC)) {
		t.Fatal("working hours are wrong")
	}
}

// TestStaffIncident: the DPO opens an incident from the console; the
// account's main contact and Administrators are mailed at once, nobody
// else; updates and the closing are appended to the timeline the
// customer reads; no one else on the staff reaches the incident pages.
func TestStaffIncident(t *testing.T) {
	e := newMailEnv(t)
	e.withStaff("127.0.0.0/8")
	acme := e.user(t, "admin@acme.test").AccountID
	_, support := e.staffMember(t, "ann@fjord.test", staff.Support, e.clock.now())
	dpoID, dpo := e.staffMember(t, "dpo@fjord.test", staff.DPO, e.clock.now())
	if code, _ := e.staffGet(t, support, "/staff/incidents"); code != 404 {
		t.Fatalf("support on the incidents page: %d", code)
	}
	if code, _ := e.staffPost(t, support, "/staff/incidents", url.Values{"account": {fmt.Sprint(acme)}, "title": {"x"}, "description": {"y"}}); code != 404 {
		t.Fatalf("support opening an incident: %d", code)
	}
	if code, body := e.staffPost(t, dpo, "/staff/incidents", url.Values{"account": {"abc"}, "title": {"x"}, "description": {"y"}}); code != 400 || !strings.Contains(body, "not an account id") {
		t.Fatalf("a bad account id: %d", code)
	}
	if code, _ := e.staffPost(t, dpo, "/staff/incidents", url.Values{"title": {"x"}, "description": {"y"}}); code != 400 {
		t.Fatalf("no account: %d", code)
	}
	code, body := e.staffPost(t, dpo, "/staff/incidents", url.Values{"account": {fmt.Sprint(acme)}, "title": {"Misdirected e-mail report"},
		"description": {"A scheduled report of yours was sent to a wrong address."}})
	if code != http.StatusCreated || !strings.Contains(body, "opened") {
		t.Fatalf("open: %d\n%s", code, body)
	}
	e.flush(t)
	if n := len(e.mp.To(t, "admin@acme.test")); n != 1 {
		t.Fatalf("Acme's main contact and Administrator: %d mails, want 1", n)
	}
	for _, nobody := range []string{"user@acme.test", "admin@other.test"} {
		if n := len(e.mp.To(t, nobody)); n != 0 {
			t.Fatalf("%s: %d mails, want none", nobody, n)
		}
	}
	incs, err := e.srv.Security.Store.Incidents(context.Background(), acme)
	if err != nil || len(incs) != 1 {
		t.Fatalf("incidents: %+v %v", incs, err)
	}
	path := fmt.Sprintf("/staff/incidents/%d/update", incs[0].ID)
	if code, _ := e.staffPost(t, dpo, path, url.Values{"text": {"The recipient confirmed deleting it."}}); code != 200 {
		t.Fatalf("update: %d", code)
	}
	if code, _ := e.staffPost(t, dpo, path, url.Values{"text": {"Closed: the schedule's address is fixed."}, "close": {"1"}}); code != 200 {
		t.Fatalf("close: %d", code)
	}
	if code, _ := e.staffPost(t, dpo, path, url.Values{"text": {"more"}}); code != http.StatusConflict {
		t.Fatalf("an update after the closing: %d", code)
	}
	e.flush(t)
	if n := len(e.mp.To(t, "admin@acme.test")); n != 3 {
		t.Fatalf("Acme's Administrator: %d mails after the update and the closing, want 3", n)
	}
	_, page := e.getAs(t, e.cookie, "/incidents")
	for _, want := range []string{"Misdirected e-mail report", "wrong address", "confirmed deleting", "address is fixed"} {
		if !strings.Contains(page, want) {
			t.Errorf("Acme's /incidents lacks %q", want)
		}
	}
	n := 0
	for _, en := range e.auditSince(t, 0) {
		if en.Actor == fmt.Sprintf("staff:%d", dpoID) && en.Account == acme && strings.HasPrefix(en.Action, "incident.") {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d audit entries of the DPO's incident steps, want 3", n)
	}
}

// TestAuditShrinkIsABreak: deleting the newest checkpoint with the entries
// after the one before leaves a chain that verifies, but the server saw it
// longer: its hourly check calls that a break.
func TestAuditShrinkIsABreak(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	if err := e.srv.CheckAudit(ctx); err != nil {
		t.Fatal(err)
	}
	first := e.lastSeq(t)
	e.signIn(t, "user@acme.test")
	e.signIn(t, "admin@other.test")
	if err := e.srv.CheckAudit(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", filepath.Join(e.dir, "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{`DELETE FROM audit_checkpoints WHERE seq > ?`, `DELETE FROM audit_log WHERE seq > ?`} {
		if _, err := raw.Exec(q, first); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := audit.Verify(ctx, e.srv.Audit.Store, e.srv.auditPublic()); err != nil {
		t.Fatalf("the shortened chain does not verify on its own (the test is wrong): %v", err)
	}
	var b *audit.BreakError
	if err := e.srv.CheckAudit(ctx); !errors.As(err, &b) || !strings.Contains(b.Reason, "saw it verified") {
		t.Fatalf("check after the cut: %v, want a break", err)
	}
}
