package web

import (
	"context"
	"fmt"
	"net/smtp"
	"net/url"
	"strings"
	"testing"
	"time"

	"fjord/internal/mail/inbound"
	"fjord/internal/mail/inbound/dovecot"
	"fjord/internal/mail/schedule"
	"fjord/internal/store"
)

// bounceReceiver runs the built-in SMTP receiver of bounces in front of
// the test server, as `fjord serve --bounce-listen` does.
func (e *mailEnv) bounceReceiver(t *testing.T) string {
	t.Helper()
	rcv, err := inbound.ListenSMTP(inbound.SMTPConfig{Addr: "127.0.0.1:0", Domain: "fjord.test", Accept: e.srv.AcceptBounce,
		Timeout: 10 * time.Second, Log: e.srv.Log}, e.srv.HandleBounce)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rcv.Close() })
	return rcv.Addr()
}

// bounceTo sends raw to rcpt through the receiver with the null sender,
// as a mail server returns a bounce.
func bounceTo(addr, rcpt, raw string) error {
	return smtp.SendMail(addr, nil, "", []string{rcpt}, []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
}

// dsn is a Postfix-style delivery status notification for rcpt, with
// the RFC 3464 report.
func dsn(verp, rcpt, status, diag string) string {
	return fmt.Sprintf(`Return-Path: <>
From: MAILER-DAEMON@mx.acme.test (Mail Delivery System)
To: %s
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

This is the mail system at host mx.acme.test.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<%s>: host mx.acme.test said: %s

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.acme.test

Final-Recipient: rfc822; %s
Action: failed
Status: %s
Diagnostic-Code: smtp; %s

--B1--
`, verp, rcpt, diag, rcpt, status, diag)
}

const outOfOffice = `From: User <user@acme.test>
To: %s
Subject: Automatic reply: Top pages
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All

I am out of the office until Monday.
`

// TestBounceFlow: two hard bounces of consecutive sends, delivered
// through the built-in SMTP receiver to their VERP addresses, suppress
// the recipient and tell the Administrators, whose leaver flow then
// completes from the Administration page; a forged VERP address is
// refused, and an out-of-office reply or a soft bounce suppresses
// nothing.
func TestBounceFlow(t *testing.T) {
	e := newMailEnv(t)
	st := e.mailReports(t)
	ctx := context.Background()
	rcv := e.bounceReceiver(t)
	user := e.user(t, "user@acme.test")
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	// the User's own report, mailed to them and to the Administrator
	rep, err := e.srv.Accounts.SaveReport(ctx, store.SavedReport{SiteID: site.ID, Name: "My pages", Definition: `{"metrics":["visitors"],"dimensions":["event:page"]}`, OwnerID: &user.ID})
	if err != nil {
		t.Fatal(err)
	}
	e.setClock(time.Date(2027, 2, 1, 6, 0, 0, 0, time.UTC))
	userSession := e.signIn(t, "user@acme.test")
	admin := e.user(t, "admin@acme.test")
	if code, body := e.adminPost(t, userSession, "/schedules", url.Values{"report": {itoa(rep.ID)}, "frequency": {"daily"}, "hour": {"9"},
		"user": {itoa(user.ID), itoa(admin.ID)}}); code != 303 {
		t.Fatalf("create: %d\n%s", code, body)
	}
	scheds, _ := st.Schedules(ctx, user.AccountID)
	sc := scheds[0]
	// two days' sends
	var verps []string
	for day := 1; day <= 2; day++ {
		e.setClock(time.Date(2027, 2, day, 7, 0, 30, 0, time.UTC))
		e.runMail(t)
		l := e.mp.To(t, "user@acme.test")
		if len(l) != day {
			t.Fatalf("day %d: %d mails to the User", day, len(l))
		}
		verps = append(verps, e.mp.Message(t, l[0].ID).ReturnPath)
	}
	if verps[0] == verps[1] || !strings.HasPrefix(verps[0], "bounces+") {
		t.Fatalf("VERP addresses %q", verps)
	}
	seq := e.lastSeq(t)
	mails := len(e.mp.Messages(t))

	// a forged address is refused at RCPT; a soft bounce and an
	// out-of-office reply are taken and change nothing
	forged := strings.Replace(verps[0], "bounces+", "bounces+9", 1)
	if err := bounceTo(rcv, forged, dsn(forged, "user@acme.test", "5.1.1", "550 5.1.1 <user@acme.test>: User unknown")); err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("a forged VERP address: %v", err)
	}
	if err := bounceTo(rcv, verps[0], fmt.Sprintf(outOfOffice, verps[0])); err != nil {
		t.Fatal(err)
	}
	if err := bounceTo(rcv, verps[0], dsn(verps[0], "user@acme.test", "4.2.2", "452 4.2.2 Mailbox full")); err != nil {
		t.Fatal(err)
	}
	ds, _ := st.Deliveries(ctx, sc.ID, 10)
	var toUser []schedule.Delivery
	for _, d := range ds {
		if d.Email == "user@acme.test" {
			toUser = append(toUser, d)
		}
	}
	if len(toUser) != 2 || toUser[1].Bounce != schedule.BounceSoft || toUser[0].Bounce != "" {
		t.Fatalf("after a soft bounce: %+v", toUser)
	}
	userSession = e.signIn(t, "user@acme.test")
	if code, page := e.getAs(t, userSession, fmt.Sprintf("/schedules/%d", sc.ID)); code != 200 || !strings.Contains(page, "Soft bounces") || !strings.Contains(page, "4.2.2") {
		t.Errorf("the soft bounce on the schedule's page: %d\n%s", code, page)
	}

	// the newer send's hard bounce comes first (one server refuses at
	// once, another after its queue): one of two
	if err := bounceTo(rcv, verps[1], dsn(verps[1], "user@acme.test", "5.1.1", "550 5.1.1 <user@acme.test>: Recipient address rejected: User unknown in local recipient table")); err != nil {
		t.Fatal(err)
	}
	if sup, _ := st.IsSuppressed(ctx, user.AccountID, "user@acme.test"); sup {
		t.Fatal("suppressed after one hard bounce")
	}
	// the same bounce again counts once
	if err := bounceTo(rcv, verps[1], dsn(verps[1], "user@acme.test", "5.1.1", "550 5.1.1 User unknown")); err != nil {
		t.Fatal(err)
	}
	if sup, _ := st.IsSuppressed(ctx, user.AccountID, "user@acme.test"); sup {
		t.Fatal("suppressed after the same send bounced twice")
	}
	// the older send's hard bounce, over its soft one: suppressed,
	// Administrators told
	if err := bounceTo(rcv, verps[0], dsn(verps[0], "user@acme.test", "5.1.1", "550 5.1.1 <user@acme.test>: User unknown")); err != nil {
		t.Fatal(err)
	}
	if sup, _ := st.IsSuppressed(ctx, user.AccountID, "user@acme.test"); !sup {
		t.Fatal("not suppressed after two consecutive hard bounces")
	}
	e.flush(t)
	notice := e.mp.To(t, "admin@acme.test")
	if len(notice) == 0 || !strings.Contains(notice[0].Subject, "mail to user@acme.test bounces") {
		t.Fatalf("no notice to the Administrator: %+v", notice)
	}
	body := e.mp.Message(t, notice[0].ID).Text
	if !strings.Contains(body, "My pages") || !strings.Contains(body, "/admin#bouncing") || !strings.Contains(body, "generic user") {
		t.Errorf("notice:\n%s", body)
	}
	if n := len(e.mp.Messages(t)); n != mails+1 {
		t.Errorf("%d new mails, want the one notice (the User is no Administrator)", n-mails)
	}
	var actions []string
	for _, en := range e.auditSince(t, seq) {
		if strings.HasPrefix(en.Action, "mail.") {
			actions = append(actions, en.Action)
		}
		// the audit log keeps no addresses (the bounces quote them)
		if strings.Contains(en.Detail, "@") || strings.Contains(en.Detail, "user@") {
			t.Errorf("an audit entry holds an address: %+v", en)
		}
	}
	for _, d := range toUser {
		if got, _ := st.Delivery(ctx, d.ID); strings.Contains(got.BounceWhy, "@") {
			t.Errorf("a stored bounce reason holds an address: %q", got.BounceWhy)
		}
	}
	if got := strings.Join(actions, " "); got != "mail.bounce mail.bounce mail.bounce mail.suppress" {
		t.Errorf("audit: %s", got)
	}

	// the next send skips the address
	e.setClock(time.Date(2027, 2, 3, 7, 0, 30, 0, time.UTC))
	e.runMail(t)
	if l := e.mp.To(t, "user@acme.test"); len(l) != 2 {
		t.Errorf("%d mails to a suppressed address", len(l))
	}

	// the leaver flow, from the notice's page
	e.cookie = e.signIn(t, "admin@acme.test")
	code, page := e.getAs(t, e.cookie, "/admin")
	action := fmt.Sprintf(`action="/admin/users/%d/remove"`, user.ID)
	if code != 200 || !strings.Contains(page, `id="bouncing"`) || !strings.Contains(page, action) || !strings.Contains(page, "My pages") {
		t.Fatalf("the Administration page: %d\n%s", code, page)
	}
	if code, body := e.adminPost(t, e.cookie, fmt.Sprintf("/admin/users/%d/remove", user.ID), url.Values{}); code != 200 || !strings.Contains(body, "was removed") {
		t.Fatalf("remove: %d\n%s", code, body)
	}
	got, _ := e.srv.Accounts.SavedReportByID(ctx, rep.ID)
	owner, _ := e.srv.Accounts.UserByID(ctx, *got.OwnerID)
	if owner.Role != store.RoleGeneric {
		t.Errorf("the leaver's report is owned by %+v", owner)
	}
	if _, err := st.Schedule(ctx, sc.ID); err != nil {
		t.Errorf("the leaver's schedule is gone: %v", err)
	}
	// and it keeps mailing the Administrator
	e.setClock(time.Date(2027, 2, 4, 7, 0, 30, 0, time.UTC))
	before := len(e.mp.To(t, "admin@acme.test"))
	e.runMail(t)
	if after := len(e.mp.To(t, "admin@acme.test")); after != before+1 {
		t.Errorf("the generic user's schedule mailed the Administrator %d times, want 1", after-before)
	}
	e.noSecretsLogged(t, "user@acme.test", verps[0], verps[1])
}

// TestBounceFromIMAP: a bounce delivered to a mailbox (a real Dovecot)
// reaches the same handler through the IMAP poll that `fjord serve` runs
// with imap-addr; a hard bounce is recorded on its delivery and the
// message leaves the mailbox.
func TestBounceFromIMAP(t *testing.T) {
	e := newMailEnv(t)
	st := e.mailReports(t)
	box := dovecot.Start(t)
	ctx := context.Background()
	admin := e.user(t, "admin@acme.test")
	rep := e.savedReport(t, "Pages", `{"metrics":["visitors"],"dimensions":["event:page"]}`)
	e.setClock(time.Date(2027, 2, 1, 6, 0, 0, 0, time.UTC))
	e.cookie = e.signIn(t, "admin@acme.test")
	if code, body := e.adminPost(t, e.cookie, "/schedules", url.Values{"report": {itoa(rep.ID)}, "frequency": {"daily"}, "hour": {"9"},
		"user": {itoa(admin.ID)}}); code != 303 {
		t.Fatalf("create: %d\n%s", code, body)
	}
	e.setClock(time.Date(2027, 2, 1, 7, 0, 30, 0, time.UTC))
	e.runMail(t)
	verp := e.mp.Message(t, e.mp.To(t, "admin@acme.test")[0].ID).ReturnPath
	// the mail server that received the bounce names the VERP address
	box.Deliver(t, []byte("Delivered-To: "+verp+"\n"+dsn(verp, "admin@acme.test", "5.1.1", "550 5.1.1 User unknown")))
	cfg := inbound.IMAPConfig{Addr: box.Addr, TLS: "none", Username: box.User, Password: box.Password, Accept: e.srv.AcceptBounce}
	n, err := inbound.PollIMAP(ctx, cfg, e.srv.HandleBounce, e.srv.Log)
	if err != nil || n != 1 {
		t.Fatalf("poll: %d %v", n, err)
	}
	scheds, _ := st.Schedules(ctx, admin.AccountID)
	ds, _ := st.Deliveries(ctx, scheds[0].ID, 10)
	if len(ds) != 1 || ds[0].Bounce != schedule.BounceHard || !strings.Contains(ds[0].BounceWhy, "5.1.1") {
		t.Fatalf("deliveries: %+v", ds)
	}
	if left := box.Messages(t); len(left) != 0 {
		t.Errorf("%d messages left in the mailbox", len(left))
	}
}
