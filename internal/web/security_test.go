package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"fjord/internal/audit"
	"fjord/internal/auth"
	"fjord/internal/ingest/journal"
	"fjord/internal/secmon"
	"fjord/internal/store"
	"fjord/internal/store/sqlstore"
)

// TestSecurityRoutes: the routes of security monitoring are registered
// with the permissions they need (TestRoutesEnforcePermissions then asks
// each as someone it keeps out).
func TestSecurityRoutes(t *testing.T) {
	s := &Server{}
	want := map[string]Permission{
		"POST /admin/alerts/{id}/resolve": PermAdmin,
		"GET /incidents":                  PermAdmin,
		"GET /.well-known/security.txt":   PermPublic,
		"ctl GET /alerts":                 PermOperator,
		"ctl POST /alerts/{id}/resolve":   PermOperator,
		"ctl GET /incidents":              PermOperator,
		"ctl POST /incidents":             PermOperator,
		"ctl POST /incidents/{id}/{verb}": PermOperator,
	}
	got := map[string]Permission{}
	for _, r := range s.Handler().Routes {
		got[r.Pattern] = r.Perm
	}
	for _, r := range s.ControlHandler().Routes {
		got["ctl "+r.Pattern] = r.Perm
	}
	for p, perm := range want {
		if got[p] != perm {
			t.Errorf("%s: permission %q, want %q", p, got[p], perm)
		}
	}
}

// ctl sends a request to the control socket's handler.
func (e *testEnv) ctl(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	w := httptest.NewRecorder()
	e.srv.ControlHandler().ServeHTTP(w, httptest.NewRequest(method, path, r))
	return w.Code, w.Body.Bytes()
}

var alertIDRE = regexp.MustCompile(`ALR-\d+`)

// TestSigninBurstAlertsOnce: 30 failed sign-ins for one User from three
// addresses give one alert: one mail to the operator and one to each
// Administrator (the User gets only the lock-out notice, another
// account's Administrator nothing). After a quiet period a new burst
// gives a new alert with a new id. No mail, event or log holds an
// address, the password tried or the e-mail address typed.
func TestSigninBurstAlertsOnce(t *testing.T) {
	e := newMailEnv(t)
	ctx := context.Background()
	e.srv.Security.AlertEmail = "ops@fjord.test"
	admin := e.user(t, "admin@acme.test")
	pw, _ := auth.HashPassword(testPassword)
	if _, err := e.srv.Accounts.AddUser(ctx, store.User{AccountID: admin.AccountID, Email: "admin2@acme.test", Role: store.RoleAdmin, PasswordHash: pw}); err != nil {
		t.Fatal(err)
	}
	burst := func() {
		for i := 0; i < 30; i++ {
			c := fromLoopback(uint32(10 + 2*(i%3))) // 127.0.0.11, .13, .15
			csrf, cookies := e.form(t, "/signin")
			req, _ := http.NewRequest("POST", e.http.URL+"/signin", strings.NewReader(url.Values{"csrf": {csrf}, "email": {"user@acme.test"}, "password": {"guess guess " + fmt.Sprint(i)}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for _, ck := range cookies {
				req.AddCookie(ck)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 && resp.StatusCode != 429 {
				t.Fatalf("failure %d: %d", i, resp.StatusCode)
			}
		}
		e.flush(t)
		if err := e.srv.Security.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	burst()
	want := map[string]int{"ops@fjord.test": 1, "admin@acme.test": 1, "admin2@acme.test": 1, "user@acme.test": 1, "admin@other.test": 0}
	for to, n := range want {
		if got := len(e.mp.To(t, to)); got != n {
			t.Errorf("%s: %d messages, want %d", to, got, n)
		}
	}
	if n := len(e.mp.Messages(t)); n != 4 {
		t.Errorf("%d messages in all, want 4", n)
	}
	ops := e.mp.Message(t, e.mp.To(t, "ops@fjord.test")[0].ID)
	first := alertIDRE.FindString(ops.Subject)
	adminMail := e.mp.Message(t, e.mp.To(t, "admin@acme.test")[0].ID)
	if first == "" || !strings.Contains(adminMail.Subject, first) || !strings.Contains(ops.Text, "signin-throttled") || !strings.Contains(adminMail.Text, e.http.URL+"/admin") {
		t.Fatalf("alert mails:\n%s\n%s\n---\n%s\n%s", ops.Subject, ops.Text, adminMail.Subject, adminMail.Text)
	}
	l, err := e.srv.Security.Store.Alerts(ctx, secmon.AlertFilter{})
	if err != nil || len(l) != 1 || l[0].Account != admin.AccountID || l[0].Count < 26 {
		t.Fatalf("alerts %+v %v", l, err)
	}
	// the events count for the account; none holds an address or what
	// was typed
	n, _, _ := e.srv.Security.Store.CountSecurityEvents(ctx, secmon.SigninFailed, fmt.Sprintf("account:%d", admin.AccountID), time.Time{})
	if n != auth.LockAfter-1 {
		t.Errorf("%d failed sign-in events, want %d", n, auth.LockAfter-1)
	}
	db := e.srv.Accounts.(*sqlstore.Accounts).DB
	var stored string
	if err := db.QueryRow(`SELECT group_concat(actor || ' ' || subject || ' ' || detail, '|') FROM security_events`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	for _, mailText := range []string{stored, ops.Text, ops.Subject, adminMail.Text, e.logs.String()} {
		for _, secret := range []string{"127.0.0.11", "127.0.0.13", "127.0.0.15", "guess guess", "user@acme.test"} {
			if strings.Contains(mailText, secret) {
				t.Errorf("%q appears in:\n%s", secret, mailText)
			}
		}
	}

	// quiet for more than the quiet period (and past the lock): a new
	// burst, a new alert and new mails
	e.clock.advance(secmon.DefaultQuiet + auth.LockFor + time.Minute)
	burst()
	for to, n := range map[string]int{"ops@fjord.test": 2, "admin@acme.test": 2, "admin2@acme.test": 2, "admin@other.test": 0} {
		if got := len(e.mp.To(t, to)); got != n {
			t.Errorf("after the second burst, %s: %d messages, want %d", to, got, n)
		}
	}
	second := alertIDRE.FindString(e.mp.To(t, "ops@fjord.test")[0].Subject)
	if second == "" || second == first {
		t.Fatalf("second alert %q, first %q", second, first)
	}
	code, body := e.ctl(t, "GET", "/alerts?open=1", nil)
	var open []secmon.Alert
	json.Unmarshal(body, &open)
	if code != 200 || len(open) != 2 || open[0].Name() != second {
		t.Fatalf("open alerts on the control socket: %d %s", code, body)
	}
}

// TestAlertsOnTheDashboard: an open alert of Acme shows as a banner on
// the overview and in a list on /admin for Acme's Administrators, not for
// its User or for Other; Other's Administrator cannot resolve it (404),
// Acme's can, which is on record, and then it is gone.
func TestAlertsOnTheDashboard(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	admin := e.user(t, "admin@acme.test")
	if err := e.srv.Security.Record(ctx, secmon.Event{Kind: secmon.StaffRefused, Account: admin.AccountID, Actor: "staff:1", Detail: "no grant"}); err != nil {
		t.Fatal(err)
	}
	l, _ := e.srv.Security.Store.Alerts(ctx, secmon.AlertFilter{})
	if len(l) != 1 {
		t.Fatalf("alerts %+v", l)
	}
	name := l[0].Name()
	user, other := e.signIn(t, "user@acme.test"), e.signIn(t, "admin@other.test")
	if _, page := e.getAs(t, e.cookie, "/"); !strings.Contains(page, `id="alert-banner"`) || !strings.Contains(page, name) {
		t.Fatalf("no banner for Acme's Administrator:\n%s", page)
	}
	for who, c := range map[string]string{"Acme's User": user, "Other's Administrator": other} {
		if _, page := e.getAs(t, c, "/"); strings.Contains(page, "alert-banner") || strings.Contains(page, name) {
			t.Errorf("%s sees the banner", who)
		}
	}
	if _, page := e.getAs(t, e.cookie, "/admin"); !strings.Contains(page, `id="`+name+`"`) || !strings.Contains(page, "without a valid access grant") {
		t.Fatalf("/admin does not list %s:\n%s", name, page)
	}
	if _, page := e.getAs(t, other, "/admin"); strings.Contains(page, name) {
		t.Error("Other's /admin lists Acme's alert")
	}
	path := fmt.Sprintf("/admin/alerts/%d/resolve", l[0].ID)
	if code, _ := e.adminPost(t, other, path, url.Values{}); code != 404 {
		t.Fatalf("Other resolving Acme's alert: %d", code)
	}
	if code, _ := e.adminPost(t, e.cookie, "/admin/alerts/x/resolve", url.Values{}); code != 404 {
		t.Fatalf("a bad id: %d", code)
	}
	if code, body := e.adminPost(t, e.cookie, path, url.Values{}); code != 200 || !strings.Contains(body, name+" is marked resolved") {
		t.Fatalf("resolve: %d\n%s", code, body)
	}
	if code, _ := e.adminPost(t, e.cookie, path, url.Values{}); code != 404 {
		t.Fatalf("resolving twice: %d", code)
	}
	if _, page := e.getAs(t, e.cookie, "/"); strings.Contains(page, "alert-banner") {
		t.Error("the banner stays after resolving")
	}
	var entry audit.Entry
	e.srv.Audit.Store.Entries(ctx, 1, func(x audit.Entry) error {
		if x.Action == "alert.resolve" {
			entry = x
		}
		return nil
	})
	if entry.Actor != fmt.Sprintf("user:%d", admin.ID) || entry.Account != admin.AccountID || entry.Target != name {
		t.Fatalf("audit entry %+v", entry)
	}
	// the operator resolves through the control socket; an unknown id is
	// a 404 naming it, a bad one a 400
	if code, body := e.ctl(t, "POST", "/alerts/999/resolve", struct{}{}); code != 404 || !strings.Contains(string(body), "alert 999") {
		t.Fatalf("unknown alert: %d %s", code, body)
	}
	if code, body := e.ctl(t, "POST", "/alerts/ALR-x/resolve", struct{}{}); code != 400 || !strings.Contains(string(body), "not an alert id") {
		t.Fatalf("bad alert id: %d %s", code, body)
	}
}

// TestIncidentMail: an incident mails at once the main contact and the
// Administrators of each affected account, and nobody else, each about
// their account only; an update is on the timeline at /incidents for
// that account's Administrators and not for another account's, and Users
// get 404. Every action is on record.
func TestIncidentMail(t *testing.T) {
	e := newMailEnv(t)
	ctx := context.Background()
	acme, other := e.user(t, "admin@acme.test").AccountID, e.user(t, "admin@other.test").AccountID
	_, _, err := e.srv.Accounts.CreateAccount(ctx, store.Account{Name: "Third"}, store.User{Email: "admin@third.test"})
	if err != nil {
		t.Fatal(err)
	}
	code, body := e.ctl(t, "POST", "/incidents", IncidentOpen{Accounts: []int64{acme, other}, Title: "Stolen backup tape", Description: "A backup tape went missing in transit."})
	if code != 201 {
		t.Fatalf("open: %d %s", code, body)
	}
	var in secmon.Incident
	json.Unmarshal(body, &in)
	if code, body := e.ctl(t, "POST", "/incidents", IncidentOpen{Accounts: []int64{other}, Title: "Only Other", Description: "Other's own incident."}); code != 201 {
		t.Fatalf("second incident: %d %s", code, body)
	}
	e.flush(t)
	for to, n := range map[string]int{"admin@acme.test": 1, "admin@other.test": 2, "user@acme.test": 0, "admin@third.test": 0} {
		if got := len(e.mp.To(t, to)); got != n {
			t.Errorf("%s: %d messages, want %d", to, got, n)
		}
	}
	m := e.mp.Message(t, e.mp.To(t, "admin@acme.test")[0].ID)
	if !strings.Contains(m.Subject, in.Name()) || !strings.Contains(m.Subject, "Stolen backup tape") || !strings.Contains(m.Text, "went missing in transit") || !strings.Contains(m.Text, e.http.URL+"/incidents") {
		t.Fatalf("incident mail:\n%s\n%s", m.Subject, m.Text)
	}
	for _, notThere := range []string{"Other", "admin@other.test", fmt.Sprintf("account %d", other)} {
		if strings.Contains(m.Text+m.Subject, notThere) {
			t.Errorf("Acme's mail names %q:\n%s", notThere, m.Text)
		}
	}

	// an update: appended, mailed to both accounts' people
	if code, body := e.ctl(t, "POST", fmt.Sprintf("/incidents/%d/update", in.ID), IncidentText{Text: "The tape was found, still sealed."}); code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	e.flush(t)
	if n := len(e.mp.To(t, "admin@acme.test")); n != 2 {
		t.Fatalf("Acme's Administrator: %d messages after the update, want 2", n)
	}
	upd := e.mp.Message(t, e.mp.To(t, "admin@acme.test")[0].ID)
	if !strings.Contains(upd.Subject, "update") || !strings.Contains(upd.Text, "still sealed") {
		t.Fatalf("update mail:\n%s\n%s", upd.Subject, upd.Text)
	}
	_, page := e.getAs(t, e.cookie, "/incidents")
	if !strings.Contains(page, "Stolen backup tape") || !strings.Contains(page, "went missing in transit") || !strings.Contains(page, "still sealed") {
		t.Fatalf("Acme's /incidents:\n%s", page)
	}
	if strings.Contains(page, "Only Other") || strings.Contains(page, "Other") {
		t.Errorf("Acme's /incidents shows Other's incident or name:\n%s", page)
	}
	otherSession := e.signIn(t, "admin@other.test")
	if _, page := e.getAs(t, otherSession, "/incidents"); !strings.Contains(page, "Only Other") || !strings.Contains(page, "still sealed") {
		t.Errorf("Other's /incidents:\n%s", page)
	}
	thirdUser := e.user(t, "admin@third.test")
	pw, _ := auth.HashPassword(testPassword)
	e.srv.Accounts.SetPassword(ctx, thirdUser.ID, pw)
	if _, page := e.getAs(t, e.signIn(t, "admin@third.test"), "/incidents"); strings.Contains(page, "Stolen") || !strings.Contains(page, "No incidents") {
		t.Errorf("Third's /incidents:\n%s", page)
	}
	if code, _ := e.getAs(t, e.signIn(t, "user@acme.test"), "/incidents"); code != 404 {
		t.Errorf("Acme's User at /incidents: %d, want 404", code)
	}

	// closing; then no more updates; bad input names the problem
	if code, _ := e.ctl(t, "POST", fmt.Sprintf("/incidents/%d/close", in.ID), IncidentText{Text: "Closed: no data was exposed."}); code != 200 {
		t.Fatalf("close: %d", code)
	}
	for _, c := range []struct {
		path string
		body any
		code int
		want string
	}{
		{fmt.Sprintf("/incidents/%d/update", in.ID), IncidentText{Text: "late"}, 409, "closed"},
		{"/incidents/999/update", IncidentText{Text: "x"}, 404, "incident 999"},
		{"/incidents/x/update", IncidentText{Text: "x"}, 400, "not an incident id"},
		{fmt.Sprintf("/incidents/%d/reopen", in.ID), IncidentText{Text: "x"}, 404, "update or"},
		{"/incidents", IncidentOpen{Accounts: []int64{acme}, Title: "", Description: "d"}, 400, "title is empty"},
		{"/incidents", IncidentOpen{Accounts: []int64{4242}, Title: "t", Description: "d"}, 404, "account 4242"},
		{"/incidents", map[string]any{"Acounts": []int{1}}, 400, "want {"},
	} {
		code, body := e.ctl(t, "POST", c.path, c.body)
		if code != c.code || !strings.Contains(string(body), c.want) {
			t.Errorf("POST %s %+v: %d %s, want %d naming %q", c.path, c.body, code, body, c.code, c.want)
		}
	}
	code, body = e.ctl(t, "GET", "/incidents", nil)
	var all []secmon.Incident
	json.Unmarshal(body, &all)
	if code != 200 || len(all) != 2 || len(all[1].Entries) != 3 || all[1].Closed.IsZero() || len(all[1].Accounts) != 2 {
		t.Fatalf("incidents on the control socket: %d %s", code, body)
	}
	// on record: opened (per account), updated, closed; by the operator
	counts := map[string]int{}
	e.srv.Audit.Store.Entries(ctx, 1, func(x audit.Entry) error {
		if strings.HasPrefix(x.Action, "incident.") {
			counts[x.Action]++
			if x.Actor != "operator" {
				t.Errorf("entry %+v", x)
			}
		}
		return nil
	})
	if counts["incident.open"] != 3 || counts["incident.update"] != 2 || counts["incident.close"] != 2 {
		t.Fatalf("audit entries %v", counts)
	}
}

// TestAuditBreakAlerts: a broken audit chain found by the hourly check is
// a security event, and opens an alert for the operator.
func TestAuditBreakAlerts(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	db := e.srv.Accounts.(*sqlstore.Accounts).DB
	if _, err := db.Exec(`UPDATE audit_log SET detail = 'edited' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.CheckAudit(ctx); err == nil {
		t.Fatal("the edited chain verified")
	}
	l, _ := e.srv.Security.Store.Alerts(ctx, secmon.AlertFilter{OpenOnly: true})
	if len(l) != 1 || l[0].Rule != "audit-broken" || l[0].Account != 0 || l[0].Subject != "system" {
		t.Fatalf("alerts %+v", l)
	}
}

// TestSecurityTxt: RFC 9116 fields from the configuration, Expires in the
// future and less than a year ahead, Canonical from an https public URL;
// 404 without a contact.
func TestSecurityTxt(t *testing.T) {
	e := newEnv(t, journal.Options{})
	if code, _ := e.get(t, "/.well-known/security.txt"); code != 404 {
		t.Fatalf("unconfigured: %d, want 404", code)
	}
	e.srv.SecurityTxt = SecurityTxt{Contact: []string{"mailto:security@fjord.example", "https://fjord.example/report"}, Policy: "https://fjord.example/policy", Languages: []string{"en", "fi"}}
	e.srv.PublicURL = "https://fjord.example"
	resp, err := http.Get(e.http.URL + "/.well-known/security.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	fields := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("line %q", line)
		}
		fields[k] = append(fields[k], v)
	}
	if c := fields["Contact"]; len(c) != 2 || c[0] != "mailto:security@fjord.example" || c[1] != "https://fjord.example/report" {
		t.Errorf("Contact %v", c)
	}
	if p := fields["Policy"]; len(p) != 1 || p[0] != "https://fjord.example/policy" {
		t.Errorf("Policy %v", p)
	}
	if l := fields["Preferred-Languages"]; len(l) != 1 || l[0] != "en, fi" {
		t.Errorf("Preferred-Languages %v", l)
	}
	if c := fields["Canonical"]; len(c) != 1 || c[0] != "https://fjord.example/.well-known/security.txt" {
		t.Errorf("Canonical %v", c)
	}
	if len(fields["Expires"]) != 1 {
		t.Fatalf("Expires %v", fields["Expires"])
	}
	exp, err := time.Parse(time.RFC3339, fields["Expires"][0])
	if now := e.clock.now(); err != nil || !exp.After(now.Add(24*time.Hour)) || !exp.Before(now.AddDate(1, 0, 0)) {
		t.Errorf("Expires %v (%v): want within a year", exp, err)
	}
	// without an https public URL there is no Canonical
	e.srv.PublicURL = "http://127.0.0.1:8080"
	if _, body := e.get(t, "/.well-known/security.txt"); strings.Contains(body, "Canonical") {
		t.Errorf("Canonical over http:\n%s", body)
	}
}

// TestAddressLimitEventsBounded: sign-ins refused by the per-address
// limit (refused before any work) write at most one event per network a
// minute, however many arrive; failures of unknown addresses count for
// the network.
func TestAddressLimitEventsBounded(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	c := fromLoopback(40)
	csrf, cookies := e.form(t, "/signin")
	for i := 0; i < auth.AddrLimit+30; i++ {
		req, _ := http.NewRequest("POST", e.http.URL+"/signin", strings.NewReader(url.Values{"csrf": {csrf}, "email": {fmt.Sprintf("nobody%d@acme.test", i)}, "password": {"x"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	db := e.srv.Accounts.(*sqlstore.Accounts).DB
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM security_events WHERE kind = ? AND detail LIKE '%over its limit%'`, secmon.SigninThrottled).Scan(&n)
	if n != 1 {
		t.Fatalf("%d address-limit events, want 1", n)
	}
	// the 20 failures (unknown addresses, so counted for the network)
	// opened one alert, the refusals another
	if l, _ := e.srv.Security.Store.Alerts(ctx, secmon.AlertFilter{OpenOnly: true}); len(l) != 2 || l[0].Rule != "signin-throttled" || l[1].Rule != "signin-failures" ||
		l[1].Count != auth.AddrLimit || l[0].Account != 0 || l[0].Subject != l[1].Subject || !strings.HasPrefix(l[0].Subject, "net:") {
		t.Fatalf("alerts %+v", l)
	}
	e.clock.advance(time.Minute)
	req, _ := http.NewRequest("POST", e.http.URL+"/signin", strings.NewReader(url.Values{"csrf": {csrf}, "email": {"x@acme.test"}, "password": {"x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
	db.QueryRow(`SELECT COUNT(*) FROM security_events WHERE detail LIKE '%over its limit%'`).Scan(&n)
	if n != 2 {
		t.Fatalf("a minute later: %d events, want 2", n)
	}
}
