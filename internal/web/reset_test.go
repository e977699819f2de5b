package web

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"fjord/internal/account"
	"fjord/internal/auth"
	"fjord/internal/ingest/journal"
	"fjord/internal/mail"
	"fjord/internal/mail/mailpit"
	"fjord/internal/store"
)

// mailEnv is a test server whose mail goes to a real Mailpit, with its
// log captured.
type mailEnv struct {
	*testEnv
	mp *mailpit.Server
}

func newMailEnv(t *testing.T) *mailEnv {
	t.Helper()
	mp := mailpit.Start(t)
	e := newEnv(t, journal.Options{})
	snd, err := mail.New(mp.Config("Fjord <fjord@fjord.test>"))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Mail = mail.NewOutbox(snd, e.srv.Log, 64)
	e.srv.Auth.Locked = e.srv.NotifyLocked
	e.srv.PublicURL = e.http.URL
	e.srv.Security.Mail, e.srv.Security.PublicURL = e.srv.Mail, e.http.URL
	t.Cleanup(func() { e.srv.Mail.Close(context.Background()) })
	return &mailEnv{testEnv: e, mp: mp}
}

// flush waits until the server's mail work is done: what it sent is in
// Mailpit (which stores a message before it answers the SMTP DATA).
func (e *mailEnv) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.srv.Mail.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// noSecretsLogged: the log holds none of these (addresses, tokens,
// passwords).
func (e *mailEnv) noSecretsLogged(t *testing.T, secrets ...string) {
	t.Helper()
	logs := e.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(strings.ToLower(logs), strings.ToLower(s)) {
			t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
}

// TestLockOutNotice: the fifth wrong password in a row locks the user and
// sends them exactly one notice, saying until when, that the password
// held, and how to reset; tries while locked send no more.
func TestLockOutNotice(t *testing.T) {
	e := newMailEnv(t)
	csrf, cookies := e.form(t, "/signin")
	bad := url.Values{"csrf": {csrf}, "email": {"user@acme.test"}, "password": {"wrong wrong wrong"}}
	var body string
	for i := 1; i <= auth.LockAfter+3; i++ {
		var resp *http.Response
		resp, body = e.submit(t, "/signin", bad, cookies...)
		if want := map[bool]int{true: 401, false: 429}[i < auth.LockAfter]; resp.StatusCode != want {
			t.Fatalf("failure %d: %d, want %d", i, resp.StatusCode, want)
		}
		if i == auth.LockAfter-1 {
			e.flush(t)
			if n := len(e.mp.To(t, "user@acme.test")); n != 0 {
				t.Fatalf("%d notices before the lock", n)
			}
		}
	}
	e.flush(t)
	l := e.mp.To(t, "user@acme.test")
	if len(l) != 1 {
		t.Fatalf("%d notices, want 1", len(l))
	}
	m := e.mp.Message(t, l[0].ID)
	until := regexp.MustCompile(`locked until (\d\d:\d\d) UTC`).FindStringSubmatch(body)
	if until == nil {
		t.Fatalf("the page does not say until when:\n%s", body)
	}
	if !strings.Contains(m.Subject, "locked until "+until[1]+" UTC") || !strings.Contains(m.Text, "locked until "+until[1]+" UTC") {
		t.Errorf("the notice does not say %s UTC: %q\n%s", until[1], m.Subject, m.Text)
	}
	for _, want := range []string{"your password held", e.http.URL + "/signin/reset"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("the notice does not say %q:\n%s", want, m.Text)
		}
	}
	// besides the notice, only the security alert to Acme's Administrator
	if len(e.mp.Messages(t)) != 2 || len(e.mp.To(t, "admin@acme.test")) != 1 {
		t.Error("other mail went out")
	}
	if !strings.Contains(e.logs.String(), "lock-out notice sent") {
		t.Errorf("no log of the notice: %s", e.logs.String())
	}
	e.noSecretsLogged(t, "user@acme.test", "wrong wrong wrong")
	// an unknown address locks the same way and sends nothing
	ghost := url.Values{"csrf": {csrf}, "email": {"ghost@acme.test"}, "password": {"x"}}
	for i := 0; i < auth.LockAfter; i++ {
		e.submit(t, "/signin", ghost, cookies...)
	}
	e.flush(t)
	if n := len(e.mp.Messages(t)); n != 2 {
		t.Fatalf("%d messages after locking an unknown address, want still 2", n)
	}
}

var resetLinkRE = regexp.MustCompile(`(http://[^\s]+)/signin/link/([A-Za-z0-9_-]+)\?reset=1`)

// resetRequest posts the reset form for an address from a fresh browser.
func (e *mailEnv) resetRequest(t *testing.T, email string, hdr ...string) (*http.Response, string) {
	t.Helper()
	csrf, cookies := e.form(t, "/signin/reset")
	req, _ := http.NewRequest("POST", e.http.URL+"/signin/reset", strings.NewReader(url.Values{"csrf": {csrf}, "email": {email}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp, b.String()
}

// TestPasswordReset: a request for a known address mails a link that
// sets a new password once; the old password then fails. A request for
// an unknown address reads the same and sends nothing. Neither the link
// nor the address reaches the log.
func TestPasswordReset(t *testing.T) {
	e := newMailEnv(t)
	// the sign-in page leads here
	if _, page := e.getAs(t, "", "/signin"); !strings.Contains(page, `href="/signin/reset"`) || !strings.Contains(page, "Forgot your password?") {
		t.Fatalf("no reset link on the sign-in page:\n%s", page)
	}
	known, knownBody := e.resetRequest(t, " User@Acme.test ")
	unknown, unknownBody := e.resetRequest(t, "nobody@acme.test")
	if known.StatusCode != 200 || unknown.StatusCode != 200 || knownBody != unknownBody {
		t.Fatalf("known %d, unknown %d; the pages differ:\n%s\n---\n%s", known.StatusCode, unknown.StatusCode, knownBody, unknownBody)
	}
	if !strings.Contains(knownBody, "If an account has this address, a link") {
		t.Fatalf("answer:\n%s", knownBody)
	}
	e.flush(t)
	if l := e.mp.Messages(t); len(l) != 1 || len(l[0].To) != 1 || l[0].To[0].Address != "user@acme.test" {
		t.Fatalf("want one mail, to user@acme.test: %+v", l)
	}
	m := e.mp.WaitFor(t, "user@acme.test", 10*time.Second)
	link := resetLinkRE.FindStringSubmatch(m.Text)
	if link == nil || link[1] != e.http.URL {
		t.Fatalf("no reset link to %s in:\n%s", e.http.URL, m.Text)
	}
	token := link[2]
	csrf, cookies := e.form(t, "/signin/link/"+token+"?reset=1")
	set := url.Values{"csrf": {csrf}, "token": {token}, "purpose": {store.LinkReset}, "password": {"a brand new password"}, "password2": {"a brand new password"}}
	resp, _ := e.submit(t, "/signin/link", set, cookies...)
	if resp.StatusCode != 303 || cookieOf(resp, sessionCookie) == nil {
		t.Fatalf("set password: %d", resp.StatusCode)
	}
	if resp, body := e.submit(t, "/signin/link", set, cookies...); resp.StatusCode != 410 || !strings.Contains(body, "used already") {
		t.Fatalf("second use of the link: %d", resp.StatusCode)
	}
	signin := func(pw string) int {
		resp, _ := e.submit(t, "/signin", url.Values{"csrf": {csrf}, "email": {"user@acme.test"}, "password": {pw}}, cookies...)
		return resp.StatusCode
	}
	if code := signin(testPassword); code != 401 {
		t.Fatalf("the old password: %d, want 401", code)
	}
	if code := signin("a brand new password"); code != 303 {
		t.Fatalf("the new password: %d, want 303", code)
	}
	if !strings.Contains(e.logs.String(), "password reset link sent") {
		t.Errorf("no log of the link: %s", e.logs.String())
	}
	e.noSecretsLogged(t, token, auth.HashToken(token), "user@acme.test", "nobody@acme.test", "a brand new password")
}

// TestResetPerUserLimit: a fourth request within the hour reads the same
// and sends nothing; an hour later links are sent again.
func TestResetPerUserLimit(t *testing.T) {
	e := newMailEnv(t)
	var mu sync.Mutex
	now := time.Now()
	e.srv.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var first string
	for i := 1; i <= ResetPerUser+1; i++ {
		resp, body := e.resetRequest(t, "admin@acme.test")
		if resp.StatusCode != 200 || (first != "" && body != first) {
			t.Fatalf("request %d: %d\n%s", i, resp.StatusCode, body)
		}
		first = body
	}
	e.flush(t)
	if n := len(e.mp.To(t, "admin@acme.test")); n != ResetPerUser {
		t.Fatalf("%d links sent, want %d", n, ResetPerUser)
	}
	mu.Lock()
	now = now.Add(ResetWindow)
	mu.Unlock()
	e.resetRequest(t, "admin@acme.test")
	e.flush(t)
	if n := len(e.mp.To(t, "admin@acme.test")); n != ResetPerUser+1 {
		t.Fatalf("an hour later: %d links, want %d", n, ResetPerUser+1)
	}
	if !strings.Contains(e.logs.String(), "reset link not sent") {
		t.Errorf("the refused link is not logged: %s", e.logs.String())
	}
}

// TestResetPerAddressLimit: the requests of one client address are
// limited whatever the addresses asked for; another client is not.
func TestResetPerAddressLimit(t *testing.T) {
	e := newMailEnv(t)
	e.srv.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	for i := 1; i <= ResetPerAddr; i++ {
		if resp, _ := e.resetRequest(t, "nobody@acme.test", "X-Forwarded-For", "203.0.113.7"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	resp, body := e.resetRequest(t, "user@acme.test", "X-Forwarded-For", "203.0.113.7")
	if resp.StatusCode != 429 || !strings.Contains(body, "Too many password reset requests") {
		t.Fatalf("request %d: %d\n%s", ResetPerAddr+1, resp.StatusCode, body)
	}
	if resp, _ := e.resetRequest(t, "user@acme.test", "X-Forwarded-For", "198.51.100.1"); resp.StatusCode != 200 {
		t.Fatalf("another client: %d", resp.StatusCode)
	}
	e.flush(t)
	if n := len(e.mp.To(t, "user@acme.test")); n != 1 {
		t.Fatalf("%d links for user@acme.test, want the other client's 1", n)
	}
	e.noSecretsLogged(t, "203.0.113.7", "198.51.100.1")
}

// TestResetWithoutMail: a server without mail says reset by mail is not
// available, and the expired-link page points to an Administrator.
func TestResetWithoutMail(t *testing.T) {
	e := newEnv(t, journal.Options{})
	code, page := e.getAs(t, "", "/signin/reset")
	if code != 200 || !strings.Contains(page, "Password reset by mail is not available here") || !strings.Contains(page, "Administrator") || strings.Contains(page, "<form") {
		t.Fatalf("%d\n%s", code, page)
	}
	csrf, cookies := e.form(t, "/signin")
	if resp, body := e.submit(t, "/signin/reset", url.Values{"csrf": {csrf}, "email": {"user@acme.test"}}, cookies...); resp.StatusCode != 503 || !strings.Contains(body, "not available") {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	resp, body := e.submit(t, "/signin/link", url.Values{"csrf": {csrf}, "token": {"nope"}, "purpose": {"welcome"}, "password": {"long enough pw"}, "password2": {"long enough pw"}}, cookies...)
	if resp.StatusCode != 410 || !strings.Contains(body, "Ask an Administrator") || strings.Contains(body, "Send me a new link") {
		t.Fatalf("expired link without mail: %d\n%s", resp.StatusCode, body)
	}
}

// TestExpiredWelcomeLink: with mail, the page of a spent or expired
// welcome link offers a new link by mail, and the reset link it leads to
// sets the first password.
func TestExpiredWelcomeLink(t *testing.T) {
	e := newMailEnv(t)
	ctx := context.Background()
	accs, _ := e.srv.Accounts.Accounts(ctx)
	old := time.Now().Add(-auth.WelcomeTTL - time.Hour)
	e.srv.Auth.Now = func() time.Time { return old }
	inv, err := account.AddUser(ctx, e.srv.Accounts, e.srv.Auth, accs[0].ID, "late@acme.test", "", store.RoleUser)
	e.srv.Auth.Now = nil
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimPrefix(inv.Link, "/signin/link/")
	csrf, cookies := e.form(t, inv.Link)
	resp, body := e.submit(t, "/signin/link", url.Values{"csrf": {csrf}, "token": {token}, "purpose": {"welcome"}, "password": {"my first password"}, "password2": {"my first password"}}, cookies...)
	if resp.StatusCode != 410 || !strings.Contains(body, `<a href="/signin/reset">Send me a new link</a>`) {
		t.Fatalf("expired welcome link: %d\n%s", resp.StatusCode, body)
	}
	e.resetRequest(t, "late@acme.test")
	e.flush(t)
	m := e.mp.WaitFor(t, "late@acme.test", 10*time.Second)
	link := resetLinkRE.FindStringSubmatch(m.Text)
	if link == nil {
		t.Fatalf("no link in:\n%s", m.Text)
	}
	csrf, cookies = e.form(t, "/signin/link/"+link[2]+"?reset=1")
	if resp, _ := e.submit(t, "/signin/link", url.Values{"csrf": {csrf}, "token": {link[2]}, "purpose": {"reset"}, "password": {"my first password"}, "password2": {"my first password"}}, cookies...); resp.StatusCode != 303 {
		t.Fatalf("first password through the new link: %d", resp.StatusCode)
	}
}

// TestResetFormChecks: the form's CSRF token is required, and an
// implausible address is refused before anything is counted or sent.
func TestResetFormChecks(t *testing.T) {
	e := newMailEnv(t)
	csrf, cookies := e.form(t, "/signin/reset")
	for name, c := range map[string]struct {
		form    url.Values
		cookies []*http.Cookie
		code    int
	}{
		"no cookie":   {url.Values{"csrf": {csrf}, "email": {"user@acme.test"}}, nil, 403},
		"wrong token": {url.Values{"csrf": {csrf + "x"}, "email": {"user@acme.test"}}, cookies, 403},
		"no address":  {url.Values{"csrf": {csrf}, "email": {"  "}}, cookies, 400},
		"no @":        {url.Values{"csrf": {csrf}, "email": {"user.acme.test"}}, cookies, 400},
		"two @":       {url.Values{"csrf": {csrf}, "email": {"a@b@acme.test"}}, cookies, 400},
		"line break":  {url.Values{"csrf": {csrf}, "email": {"user@acme.test\r\nBcc: x@evil.test"}}, cookies, 400},
	} {
		if resp, _ := e.submit(t, "/signin/reset", c.form, c.cookies...); resp.StatusCode != c.code {
			t.Errorf("%s: %d, want %d", name, resp.StatusCode, c.code)
		}
	}
	e.flush(t)
	if n := len(e.mp.Messages(t)); n != 0 {
		t.Fatalf("%d messages sent for refused forms", n)
	}
}

// FuzzResetForm: whatever the body, the reset form answers with one of
// its statuses, never signs anyone in, and never says whether an address
// has an account (a 200 is always the same page). Mail goes to a closed
// port here, so the fuzzer needs no Mailpit; sending fails and is logged.
func FuzzResetForm(f *testing.F) {
	e := newEnv(f, journal.Options{})
	snd, err := mail.New(mail.Config{Host: "127.0.0.1", Port: 1, TLS: mail.NoTLS, From: "fjord@fjord.test", Timeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	e.srv.Mail = mail.NewOutbox(snd, e.srv.Log, 16)
	f.Cleanup(func() { e.srv.Mail.Close(context.Background()) })
	pre := strings.Repeat("p", 43)
	f.Add("csrf=" + pre + "&email=user%40acme.test")
	f.Add("csrf=" + pre + "&email=nobody%40acme.test")
	f.Add("csrf=x&email=%ZZ&&&")
	f.Add(strings.Repeat("email=a@b&", 2000))
	var sent string
	f.Fuzz(func(t *testing.T, body string) {
		req, _ := http.NewRequest("POST", e.http.URL+"/signin/reset", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: preCookie, Value: pre})
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if cookieOf(resp, sessionCookie) != nil {
			t.Fatalf("%q signed in", body)
		}
		switch resp.StatusCode {
		case 200:
			if sent == "" {
				sent = b.String()
			}
			if b.String() != sent {
				t.Fatalf("%q: a different 200 page:\n%s", body, b.String())
			}
		case 400, 403, 429:
		default:
			t.Fatalf("%q: status %d", body, resp.StatusCode)
		}
	})
}
