package web

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"fjord/internal/ingest/journal"
	"fjord/internal/mail"
	"fjord/internal/mail/digest"
	"fjord/internal/mail/schedule"
	"fjord/internal/store"
	"fjord/internal/store/storetest"
)

// mailReports turns the mail test environment's e-mail reports on, with
// VERP envelope senders under bounces@fjord.test.
func (e *mailEnv) mailReports(t *testing.T) schedule.Store {
	t.Helper()
	st, ok := e.srv.Accounts.(schedule.Store)
	if !ok {
		t.Fatal("the account store keeps no schedules")
	}
	e.srv.Schedules, e.srv.BounceAddress = st, "bounces@fjord.test"
	return st
}

// setClock moves the test clock to at.
func (e *testEnv) setClock(at time.Time) { e.clock.advance(at.Sub(e.clock.now())) }

// runMail runs the e-mail reports' job once and waits for the mail.
func (e *mailEnv) runMail(t *testing.T) {
	t.Helper()
	if err := e.srv.MailReports(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.flush(t)
}

// seedWeeks writes pageviews on site.test: on each day from first for
// days days, day i has i+1 visitors, each viewing "/" and, for every
// other visitor, "/pricing" (hours after midnight UTC, so within the day
// in Helsinki too).
func seedWeeks(t *testing.T, e *testEnv, first time.Time, days int) {
	t.Helper()
	ctx := context.Background()
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	var evs []store.Event
	v := uint64(0)
	for i := 0; i < days; i++ {
		day := first.AddDate(0, 0, i).Add(9 * time.Hour)
		for j := 0; j <= i; j++ {
			v++
			evs = append(evs, storetest.Ev(site.ID, v, day.Add(time.Duration(j)*time.Minute), "pageview", "/"))
			if j%2 == 0 {
				evs = append(evs, storetest.Ev(site.ID, v, day.Add(time.Duration(j)*time.Minute+10*time.Second), "pageview", "/pricing"))
			}
		}
	}
	if err := e.srv.Events.Apply(ctx, evs, store.JournalPos{Journal: "mail-test", Segment: 1, Offset: int64(len(evs))}); err != nil {
		t.Fatal(err)
	}
}

var unsubRE = regexp.MustCompile(`<(http://[^>]+/unsubscribe/[^>]+)>`)

// TestEmailReportWeekly: a weekly schedule at 08:00 on Mondays in
// Helsinki fires at 06:00 UTC before the clocks move forward on 28 March
// 2027 and at 05:00 UTC after; each mail has the week's numbers as the
// Stats API gives them, a PNG chart and the CSV; the one-click
// unsubscribe of RFC 8058 stops it for that recipient alone.
func TestEmailReportWeekly(t *testing.T) {
	e := newMailEnv(t)
	st := e.mailReports(t)
	ctx := context.Background()
	admin, user := e.user(t, "admin@acme.test"), e.user(t, "user@acme.test")
	rep := e.savedReport(t, "Top pages", `{"metrics":["visitors","pageviews"],"dimensions":["event:page"],"date_range":"30d","order_by":[["visitors","desc"]]}`)
	seedWeeks(t, e.testEnv, time.Date(2027, 3, 8, 0, 0, 0, 0, time.UTC), 21)

	// Monday 22 March 2027, 07:30 in Helsinki (EET, UTC+2)
	e.setClock(time.Date(2027, 3, 22, 5, 30, 0, 0, time.UTC))
	e.cookie = e.signIn(t, "admin@acme.test") // a session and a key of that time
	e.key, _ = e.newKey(t, "admin@acme.test", 24*time.Hour, "site.test")
	code, body := e.adminPost(t, e.cookie, "/schedules", url.Values{"report": {itoa(rep.ID)}, "frequency": {"weekly"}, "weekday": {"1"},
		"hour": {"8"}, "user": {itoa(admin.ID), itoa(user.ID)}})
	if code != 303 {
		t.Fatalf("create: %d\n%s", code, body)
	}
	scheds, _ := st.Schedules(ctx, admin.AccountID)
	if len(scheds) != 1 || scheds[0].Next.Format(time.RFC3339) != "2027-03-22T06:00:00Z" {
		t.Fatalf("schedules: %+v", scheds)
	}
	sc := scheds[0]

	e.runMail(t)
	if n := len(e.mp.Messages(t)); n != 0 {
		t.Fatalf("%d mails before 08:00 local", n)
	}
	e.setClock(time.Date(2027, 3, 22, 6, 0, 20, 0, time.UTC))
	e.runMail(t)
	for _, to := range []string{"admin@acme.test", "user@acme.test"} {
		if l := e.mp.To(t, to); len(l) != 1 {
			t.Fatalf("%d mails to %s at 08:00 local", len(l), to)
		}
	}
	m := e.mp.Message(t, e.mp.To(t, "user@acme.test")[0].ID)
	e.key, _ = e.newKey(t, "admin@acme.test", 24*time.Hour, "site.test")
	// the numbers: those of the Stats API for the seven days before
	week := `["2027-03-15","2027-03-21"]`
	_, agg := e.query(t, `{"site_id":"site.test","metrics":["visitors","pageviews"],"date_range":`+week+`}`)
	want := agg["results"].([]any)[0].(map[string]any)["metrics"].([]any)
	text := strings.ReplaceAll(m.Text, "\r\n", "\n")
	// the report's own metrics, nothing more
	if strings.Contains(text, "Visits:") || strings.Contains(text, "Bounce rate") {
		t.Errorf("the mail shows metrics the report has not:\n%s", text)
	}
	for i, label := range []string{"Visitors", "Pageviews"} {
		n := int(want[i].(float64))
		if !strings.Contains(text, fmt.Sprintf("%s: %s (", label, digest.Count(float64(n)))) {
			t.Errorf("the mail lacks %s: %d:\n%s", label, n, text)
		}
	}
	// 8+…+14 = 77 visitors in the week before, 1+…+7 = 28 then
	if want[0].(float64) != 77 || !strings.Contains(text, "Visitors: 77 (+175%)") {
		t.Errorf("visitors %v, text:\n%s", want[0], text)
	}
	if !strings.Contains(m.Subject, "Top pages: site.test · 15 Mar – 21 Mar 2027") {
		t.Errorf("subject %q", m.Subject)
	}
	// the table's rows as the API breaks the week down
	_, pages := e.query(t, `{"site_id":"site.test","metrics":["visitors","pageviews"],"dimensions":["event:page"],"date_range":`+week+`,"order_by":[["visitors","desc"]]}`)
	first := pages["results"].([]any)[0].(map[string]any)
	row := fmt.Sprintf("%s %v %v", first["dimensions"].([]any)[0], first["metrics"].([]any)[0], first["metrics"].([]any)[1])
	found := false
	for _, line := range strings.Split(text, "\n") {
		found = found || strings.Join(strings.Fields(line), " ") == row
	}
	if !found {
		t.Errorf("the table lacks %q:\n%s", row, text)
	}
	// the chart, inline, and the CSV, attached
	full := e.mp.Message(t, m.ID)
	if len(full.Inline) != 1 || full.Inline[0].ContentType != "image/png" || !strings.Contains(full.HTML, "cid:"+full.Inline[0].ContentID) {
		t.Fatalf("inline parts %+v", full.Inline)
	}
	png := e.mp.Part(t, m.ID, full.Inline[0].PartID)
	if len(png) < 100 || string(png[1:4]) != "PNG" {
		t.Errorf("the chart is no PNG: %q", png[:min(len(png), 16)])
	}
	if len(full.Attachments) != 1 || !strings.HasSuffix(full.Attachments[0].FileName, ".csv") {
		t.Fatalf("attachments %+v", full.Attachments)
	}
	csv := strings.ReplaceAll(string(e.mp.Part(t, m.ID, full.Attachments[0].PartID)), "\r\n", "\n")
	if !strings.HasPrefix(csv, "event:page,visitors,pageviews\n/,77,77\n/pricing,") {
		t.Errorf("CSV:\n%s", csv)
	}
	// the envelope sender names the delivery under the server's key
	key, _ := st.MailKey(ctx)
	if ids, ok := schedule.ParseVERP(key, "bounces@fjord.test", full.ReturnPath); !ok || ids.Schedule != sc.ID {
		t.Errorf("Return-Path %q: %v %v", full.ReturnPath, ids, ok)
	}
	if h := m.Headers["List-Unsubscribe-Post"]; len(h) != 1 || h[0] != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post %v", h)
	}
	unsub := unsubRE.FindStringSubmatch(strings.Join(m.Headers["List-Unsubscribe"], ""))
	if unsub == nil {
		t.Fatalf("List-Unsubscribe %v", m.Headers["List-Unsubscribe"])
	}

	// the clocks move forward on Sunday 28 March: 08:00 is 05:00 UTC
	if got, _ := st.Schedule(ctx, sc.ID); got.Next.Format(time.RFC3339) != "2027-03-29T05:00:00Z" {
		t.Fatalf("next after the change: %s", got.Next)
	}
	e.setClock(time.Date(2027, 3, 29, 4, 59, 0, 0, time.UTC))
	e.runMail(t)
	if n := len(e.mp.Messages(t)); n != 2 {
		t.Fatalf("%d mails before 08:00 summer time", n)
	}
	e.setClock(time.Date(2027, 3, 29, 5, 0, 20, 0, time.UTC))
	e.runMail(t)
	if n := len(e.mp.Messages(t)); n != 4 {
		t.Fatalf("%d mails after 08:00 summer time", n)
	}
	if l := e.mp.To(t, "admin@acme.test"); !strings.Contains(l[0].Subject, "22 Mar – 28 Mar 2027") {
		t.Errorf("second week's subject %q", l[0].Subject)
	}

	// a GET only asks; a forged token changes nothing; the one-click
	// POST (no cookie, no CSRF token) unsubscribes
	if code, body := e.get(t, strings.TrimPrefix(unsub[1], e.http.URL)); code != 200 || !strings.Contains(body, "Stop receiving") {
		t.Fatalf("GET unsubscribe: %d %s", code, body)
	}
	forged := unsub[1][:len(unsub[1])-3] + "aaa"
	for _, u := range []string{forged, unsub[1]} {
		// as RFC 8058 asks mail clients to send it
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("List-Unsubscribe", "One-Click")
		mw.Close()
		resp, err := http.Post(u, mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{true: 404, false: 200}[u == forged]; resp.StatusCode != want {
			t.Fatalf("POST %s: %d, want %d", u, resp.StatusCode, want)
		}
	}
	if got, _ := st.Schedule(ctx, sc.ID); got.Recipients[0].Unsubscribed.IsZero() == got.Recipients[1].Unsubscribed.IsZero() {
		t.Fatalf("one recipient should be unsubscribed: %+v", got.Recipients)
	}
	e.setClock(time.Date(2027, 4, 5, 5, 0, 20, 0, time.UTC))
	e.runMail(t)
	if a, u := len(e.mp.To(t, "admin@acme.test")), len(e.mp.To(t, "user@acme.test")); a != 3 || u != 2 {
		t.Errorf("after unsubscribing: %d mails to the Administrator (want 3), %d to the unsubscribed User (want 2)", a, u)
	}
	found = false
	for _, en := range e.auditSince(t, 0) {
		found = found || en.Action == "schedule.unsubscribe"
	}
	if !found {
		t.Error("the unsubscription is not in the audit log")
	}
	e.noSecretsLogged(t, "admin@acme.test", "user@acme.test", unsub[1])
}

// deadOutbox is an Outbox whose SMTP server does not answer (a closed
// loopback port).
func deadOutbox(t *testing.T, e *mailEnv) *mail.Outbox {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	snd, err := mail.New(mail.Config{Host: "127.0.0.1", Port: port, TLS: mail.NoTLS, From: "Fjord <fjord@fjord.test>", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	o := mail.NewOutbox(snd, e.srv.Log, 8)
	t.Cleanup(func() { o.Close(context.Background()) })
	return o
}

// TestEmailReportChecksRecipients: at sending, a recipient who may no
// longer read the report gets nothing (the delivery says why); a
// temporary SMTP failure is tried again after the backoff and then sent.
func TestEmailReportChecksRecipients(t *testing.T) {
	e := newMailEnv(t)
	st := e.mailReports(t)
	ctx := context.Background()
	admin, user := e.user(t, "admin@acme.test"), e.user(t, "user@acme.test")
	rep := e.savedReport(t, "Pages", `{"metrics":["visitors"],"dimensions":["event:page"]}`)
	e.setClock(time.Date(2027, 1, 4, 12, 0, 0, 0, time.UTC))
	e.cookie = e.signIn(t, "admin@acme.test")
	code, body := e.adminPost(t, e.cookie, "/schedules", url.Values{"report": {itoa(rep.ID)}, "frequency": {"daily"}, "hour": {"15"},
		"user": {itoa(admin.ID), itoa(user.ID)}})
	if code != 303 {
		t.Fatalf("create: %d\n%s", code, body)
	}
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	if err := e.srv.Accounts.Ungrant(ctx, user.ID, site.ID, 0); err != nil {
		t.Fatal(err)
	}
	// the SMTP server is away at first
	good := e.srv.Mail
	bad := deadOutbox(t, e)
	e.srv.Mail = bad
	e.setClock(time.Date(2027, 1, 4, 13, 0, 30, 0, time.UTC)) // 15:00 in Helsinki
	if err := e.srv.MailReports(ctx); err != nil {
		t.Fatal(err)
	}
	scheds, _ := st.Schedules(ctx, admin.AccountID)
	ds, _ := st.Deliveries(ctx, scheds[0].ID, 10)
	byTo := map[int64]schedule.Delivery{}
	for _, d := range ds {
		byTo[d.RecipientID] = d
	}
	var toAdmin, toUser schedule.Delivery
	for _, r := range scheds[0].Recipients {
		if r.UserID == admin.ID {
			toAdmin = byTo[r.ID]
		} else {
			toUser = byTo[r.ID]
		}
	}
	if toUser.Status != schedule.Skipped || !strings.Contains(toUser.Detail, "may no longer read") {
		t.Errorf("to the User without access: %+v", toUser)
	}
	// tried again after the first backoff, 5 minutes
	if wait := toAdmin.NextTry.Sub(e.clock.now()); toAdmin.Status != schedule.Retry || toAdmin.Attempts != 1 || wait <= 4*time.Minute || wait > 5*time.Minute {
		t.Errorf("to the Administrator, SMTP away: %+v", toAdmin)
	}
	e.srv.Mail = good
	e.setClock(time.Date(2027, 1, 4, 13, 3, 0, 0, time.UTC))
	e.runMail(t)
	if n := len(e.mp.Messages(t)); n != 0 {
		t.Fatalf("%d mails before the backoff ended", n)
	}
	e.setClock(time.Date(2027, 1, 4, 13, 6, 0, 0, time.UTC))
	e.runMail(t)
	if l := e.mp.To(t, "admin@acme.test"); len(l) != 1 || len(e.mp.To(t, "user@acme.test")) != 0 {
		t.Fatalf("after the backoff: %d to the Administrator, %d to the User", len(l), len(e.mp.To(t, "user@acme.test")))
	}
	if d, _ := st.Delivery(ctx, toAdmin.ID); d.Status != schedule.Sent || d.Attempts != 2 {
		t.Errorf("after the retry: %+v", d)
	}
	// the schedule's page shows both
	code, page := e.getAs(t, e.cookie, fmt.Sprintf("/schedules/%d", scheds[0].ID))
	if code != 200 || !strings.Contains(page, "may no longer read the report") || !strings.Contains(page, "sent") {
		t.Errorf("schedule page: %d\n%s", code, page)
	}
}

// TestSchedulePages: who manages which schedule, and the errors of the
// form, each naming its field.
func TestSchedulePages(t *testing.T) {
	e := newEnv(t, journal.Options{})
	st, _ := e.srv.Accounts.(schedule.Store)
	e.srv.Schedules = st
	ctx := context.Background()
	admin, user := e.user(t, "admin@acme.test"), e.user(t, "user@acme.test")
	userSession := e.signIn(t, "user@acme.test")
	otherSession := e.signIn(t, "admin@other.test")
	adminRep := e.savedReport(t, "Admin's", `{"metrics":["visitors"]}`)
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	owned, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: site.ID, Name: "User's", Definition: `{"metrics":["visitors"]}`, OwnerID: &user.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		session string
		form    url.Values
		code    int
		want    string
	}{
		{e.cookie, url.Values{"report": {itoa(adminRep.ID)}, "frequency": {"hourly"}, "hour": {"8"}, "user": {itoa(admin.ID)}}, 400, "frequency &#34;hourly&#34;"},
		{e.cookie, url.Values{"report": {itoa(adminRep.ID)}, "frequency": {"monthly"}, "day": {"31"}, "hour": {"8"}, "user": {itoa(admin.ID)}}, 400, "day: want a day of the month from 1 to 28"},
		{e.cookie, url.Values{"report": {itoa(adminRep.ID)}, "frequency": {"daily"}, "hour": {"x"}, "user": {itoa(admin.ID)}}, 400, "hour: want a whole number"},
		{e.cookie, url.Values{"report": {itoa(adminRep.ID)}, "frequency": {"daily"}, "hour": {"8"}}, 400, "recipients: choose at least one"},
		{e.cookie, url.Values{"report": {itoa(adminRep.ID)}, "frequency": {"daily"}, "hour": {"8"}, "outside": {"boss@partner.example"}}, 400, "outside: this account mails e-mail reports only to its users"},
		{e.cookie, url.Values{"report": {"99999"}, "frequency": {"daily"}, "hour": {"8"}, "user": {itoa(admin.ID)}}, 400, "report: not one you may mail"},
		// a User mails their own report, not the Administrator's
		{userSession, url.Values{"report": {itoa(adminRep.ID)}, "frequency": {"daily"}, "hour": {"8"}, "user": {itoa(user.ID)}}, 400, "report: not one you may mail"},
		{userSession, url.Values{"report": {itoa(owned.ID)}, "frequency": {"daily"}, "hour": {"8"}, "user": {itoa(user.ID)}}, 303, ""},
		// another account's Administrator mails nothing of Acme's
		{otherSession, url.Values{"report": {itoa(owned.ID)}, "frequency": {"daily"}, "hour": {"8"}, "user": {itoa(user.ID)}}, 400, "report: not one you may mail"},
	} {
		code, body := e.adminPost(t, c.session, "/schedules", c.form)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%v: %d, want %d with %q\n%s", c.form, code, c.code, c.want, body)
		}
	}
	// outside addresses once the account allows them
	if code, _ := e.adminPost(t, e.cookie, "/schedules/settings", url.Values{"outside": {"1"}, "hard_bounces": {"2"}}); code != 303 {
		t.Fatalf("settings: %d", code)
	}
	if code, _ := e.adminPost(t, userSession, "/schedules/settings", url.Values{"outside": {"1"}, "hard_bounces": {"5"}}); code != 404 {
		t.Errorf("a User changed the mail settings: %d", code)
	}
	code, body := e.adminPost(t, e.cookie, "/schedules", url.Values{"report": {itoa(adminRep.ID)}, "frequency": {"daily"}, "hour": {"8"},
		"outside": {"Boss@Partner.example\nnot an address"}})
	if code != 400 || !strings.Contains(body, `outside: &#34;not an address&#34; is not an e-mail address`) {
		t.Errorf("a bad outside address: %d\n%s", code, body)
	}
	code, body = e.adminPost(t, e.cookie, "/schedules", url.Values{"report": {itoa(adminRep.ID)}, "frequency": {"daily"}, "hour": {"8"},
		"outside": {"Boss@Partner.example"}})
	if code != 303 {
		t.Fatalf("an outside address: %d\n%s", code, body)
	}
	scheds, _ := st.Schedules(ctx, admin.AccountID)
	if len(scheds) != 2 {
		t.Fatalf("schedules: %+v", scheds)
	}
	var usersID, adminsID int64
	for _, sc := range scheds {
		if sc.ReportID == owned.ID {
			usersID = sc.ID
		} else {
			adminsID = sc.ID
		}
	}
	// the User sees theirs and not the Administrator's; the
	// Administrator sees both; another account neither
	for _, c := range []struct {
		session string
		id      int64
		code    int
	}{{userSession, usersID, 200}, {userSession, adminsID, 404}, {e.cookie, usersID, 200}, {e.cookie, adminsID, 200},
		{otherSession, usersID, 404}, {otherSession, adminsID, 404}} {
		if code, _ := e.getAs(t, c.session, fmt.Sprintf("/schedules/%d", c.id)); code != c.code {
			t.Errorf("GET schedule %d: %d, want %d", c.id, code, c.code)
		}
		if code, _ := e.adminPost(t, c.session, fmt.Sprintf("/schedules/%d/timing", c.id), url.Values{"frequency": {"daily"}, "hour": {"9"}}); code != c.code {
			t.Errorf("change schedule %d: %d, want %d", c.id, code, c.code)
		}
	}
	if code, body := e.adminPost(t, userSession, fmt.Sprintf("/schedules/%d/recipients", usersID), url.Values{"user": {itoa(admin.ID)}}); code != 200 || !strings.Contains(body, "admin@acme.test") {
		t.Errorf("add a recipient: %d\n%s", code, body)
	}
	if code, body := e.adminPost(t, userSession, fmt.Sprintf("/schedules/%d/recipients", usersID), url.Values{"user": {itoa(admin.ID)}}); code != 409 || !strings.Contains(body, "on the schedule already") {
		t.Errorf("add a recipient twice: %d\n%s", code, body)
	}
	if code, _ := e.adminPost(t, otherSession, fmt.Sprintf("/schedules/%d/delete", usersID), url.Values{}); code != 404 {
		t.Errorf("another account deleted a schedule: %d", code)
	}
	if code, _ := e.adminPost(t, userSession, fmt.Sprintf("/schedules/%d/delete", usersID), url.Values{}); code != 303 {
		t.Errorf("delete: %d", code)
	}
	if _, err := st.Schedule(ctx, usersID); err == nil {
		t.Error("the schedule was not deleted")
	}
	var actions []string
	for _, en := range e.auditSince(t, 0) {
		if strings.HasPrefix(en.Action, "schedule.") {
			actions = append(actions, en.Action)
		}
	}
	if got := strings.Join(actions, " "); !strings.Contains(got, "schedule.create") || !strings.Contains(got, "schedule.change") ||
		!strings.Contains(got, "schedule.recipient.add") || !strings.Contains(got, "schedule.delete") || !strings.Contains(got, "schedule.settings") {
		t.Errorf("audit: %s", got)
	}
}

// FuzzScheduleForm: the timing fields are refused with a message naming
// the field, or give a schedule that checks.
// fuzz-count: 10000x
func FuzzScheduleForm(f *testing.F) {
	f.Add("weekly", "1", "1", "8")
	f.Add("monthly", "", "29", "23")
	f.Add("daily", "x", "-1", "24")
	f.Fuzz(func(t *testing.T, freq, weekday, day, hour string) {
		r := &http.Request{PostForm: url.Values{"frequency": {freq}, "weekday": {weekday}, "day": {day}, "hour": {hour}}}
		_, sc, err := decodeTiming(r)
		if err != nil {
			if !strings.Contains(err.Error(), ":") {
				t.Fatalf("an error that names no field: %v", err)
			}
			return
		}
		if sc.Check() != nil {
			t.Fatalf("accepted %+v", sc)
		}
		loc, _ := time.LoadLocation("Europe/Helsinki")
		now := time.Date(2027, 3, 27, 12, 0, 0, 0, time.UTC)
		if next := sc.NextAfter(now, loc); !next.After(now) || next.Sub(now) > 32*24*time.Hour {
			t.Fatalf("%+v fires at %s after %s", sc, next, now)
		}
	})
}
