package web

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"fjord/internal/auth"
	"fjord/internal/ingest/journal"
	"fjord/internal/store"
)

var (
	secretField   = regexp.MustCompile(`id="totp-secret">([A-Z2-7]{32})<`)
	recoveryField = regexp.MustCompile(`<code>([a-z2-9]{5}-[a-z2-9]{5})</code>`)
)

func sessionOf(v string) *http.Cookie { return &http.Cookie{Name: sessionCookie, Value: v} }

// enrol sets up TOTP for the holder of a session through the security
// page, and returns the secret, the recovery codes and the new session.
func (e *testEnv) enrol(t *testing.T, clk *testClock, session string) (secret string, codes []string, newSession string) {
	t.Helper()
	code, page := e.getAs(t, session, "/account/2fa")
	m := secretField.FindStringSubmatch(page)
	if code != 200 || m == nil || !strings.Contains(page, `src="data:image/png;base64,`) {
		t.Fatalf("security page: %d, no key or QR code\n%s", code, page)
	}
	secret = m[1]
	csrf := csrfField.FindStringSubmatch(page)[1]
	resp, body := e.submit(t, "/account/2fa/enrol", url.Values{"csrf": {csrf}, "secret": {secret}, "code": {auth.TOTPCode(secret, clk.now())}}, sessionOf(session))
	c := cookieOf(resp, sessionCookie)
	if resp.StatusCode != 200 || c == nil {
		t.Fatalf("enrol: %d\n%s", resp.StatusCode, body)
	}
	for _, m := range recoveryField.FindAllStringSubmatch(body, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != auth.RecoveryCodes {
		t.Fatalf("enrol showed %d recovery codes, want %d\n%s", len(codes), auth.RecoveryCodes, body)
	}
	return secret, codes, c.Value
}

// passwordStep signs in with the password only and returns the pending
// session and its form's CSRF token.
func (e *testEnv) passwordStep(t testing.TB, email string) (pending, csrf string) {
	t.Helper()
	pre, cookies := e.form(t, "/signin")
	resp, body := e.submit(t, "/signin", url.Values{"csrf": {pre}, "email": {email}, "password": {testPassword}, "next": {"/dashboard/site.test"}}, cookies...)
	c := cookieOf(resp, sessionCookie)
	if resp.StatusCode != http.StatusSeeOther || c == nil || resp.Header.Get("Location") != "/signin/2fa?next=%2Fdashboard%2Fsite.test" {
		t.Fatalf("password step: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	csrf, _ = e.form(t, "/signin/2fa", c)
	return c.Value, csrf
}

func TestSecondFactorOverHTTP(t *testing.T) {
	e := newEnv(t, journal.Options{})
	clk := &testClock{}
	e.srv.Auth.Now = clk.now

	// enrolment needs the page's CSRF token and the right code
	code, page := e.getAs(t, e.cookie, "/account/2fa")
	secret := secretField.FindStringSubmatch(page)[1]
	if resp, _ := e.submit(t, "/account/2fa/enrol", url.Values{"secret": {secret}, "code": {auth.TOTPCode(secret, clk.now())}}, sessionOf(e.cookie)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("enrol without CSRF token: %d (page %d)", resp.StatusCode, code)
	}
	csrf := csrfField.FindStringSubmatch(page)[1]
	if resp, _ := e.submit(t, "/account/2fa/enrol", url.Values{"csrf": {csrf}, "secret": {secret}, "code": {"123456"}}, sessionOf(e.cookie)); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("enrol with a wrong code: %d", resp.StatusCode)
	}
	secret, codes, session := e.enrol(t, clk, e.cookie)
	// enrolling ended the other sessions and started a new one
	if code, _ := e.getAs(t, e.cookie, "/"); code != http.StatusSeeOther {
		t.Fatalf("the session from before enrolment: %d, want 303 to sign-in", code)
	}
	if code, _ := e.getAs(t, session, "/"); code != 200 {
		t.Fatalf("the session enrolment started: %d", code)
	}

	// the password alone reaches nothing but the code form
	pending, csrf := e.passwordStep(t, "admin@acme.test")
	for _, p := range []string{"/", "/dashboard/site.test", "/account/2fa", "/dashboard/site.test/export?dimension=page&format=csv"} {
		req, _ := http.NewRequest("GET", e.http.URL+p, nil)
		req.AddCookie(sessionOf(pending))
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin/2fa?next=") {
			t.Fatalf("%s with a pending session: %d to %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := e.submit(t, "/signin/2fa", url.Values{"code": {auth.TOTPCode(secret, clk.now())}, "next": {"/"}}, sessionOf(pending)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("code without CSRF token: %d", resp.StatusCode)
	}
	if resp, _ := e.submit(t, "/signin/2fa", url.Values{"csrf": {csrf}, "code": {"000000"}, "next": {"/"}}, sessionOf(pending)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong code: %d", resp.StatusCode)
	}
	clk.advance(30 * time.Second)
	resp, body := e.submit(t, "/signin/2fa", url.Values{"csrf": {csrf}, "code": {auth.TOTPCode(secret, clk.now())}, "next": {"/dashboard/site.test"}}, sessionOf(pending))
	full := cookieOf(resp, sessionCookie)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/site.test" || full == nil || full.Value == pending {
		t.Fatalf("right code: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if code, _ := e.getAs(t, full.Value, "/dashboard/site.test"); code != 200 {
		t.Fatalf("signed in with the code: %d", code)
	}
	if code, _ := e.getAs(t, pending, "/signin/2fa"); code != http.StatusSeeOther {
		t.Fatalf("the pending session lives on after the code: %d", code)
	}

	// a recovery code works once
	for i, want := range []int{http.StatusSeeOther, http.StatusUnauthorized} {
		pending, csrf := e.passwordStep(t, "admin@acme.test")
		resp, body := e.submit(t, "/signin/2fa", url.Values{"csrf": {csrf}, "code": {codes[0]}, "next": {"/"}}, sessionOf(pending))
		if resp.StatusCode != want {
			t.Fatalf("recovery code, use %d: %d, want %d\n%s", i+1, resp.StatusCode, want, body)
		}
	}

	// a pending session ends after PendingTimeout
	pending, csrf = e.passwordStep(t, "admin@acme.test")
	clk.advance(auth.PendingTimeout)
	if resp, _ := e.submit(t, "/signin/2fa", url.Values{"csrf": {csrf}, "code": {auth.TOTPCode(secret, clk.now())}, "next": {"/"}}, sessionOf(pending)); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("code after the pending session's time: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestRequiredSecondFactor: when the account requires it, a user without
// TOTP sees only the page that sets it up, and no one can turn it off.
func TestRequiredSecondFactor(t *testing.T) {
	e := newEnv(t, journal.Options{})
	clk := &testClock{}
	e.srv.Auth.Now = clk.now
	u, err := e.srv.Accounts.UserByEmail(context.Background(), "user@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Accounts.SetRequireSecondFactor(context.Background(), u.AccountID, true); err != nil {
		t.Fatal(err)
	}
	session := e.signIn(t, "user@acme.test")
	for _, p := range []string{"/", "/dashboard/site.test", "/dashboard/site.test/export?dimension=page&format=csv"} {
		req, _ := http.NewRequest("GET", e.http.URL+p, nil)
		req.AddCookie(sessionOf(session))
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account/2fa" {
			t.Fatalf("%s before enrolment: %d to %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	code, page := e.getAs(t, session, "/account/2fa")
	if code != 200 || !strings.Contains(page, "Your account requires a second factor") {
		t.Fatalf("security page: %d\n%s", code, page)
	}
	secret, _, session := e.enrol(t, clk, session)
	if code, _ := e.getAs(t, session, "/dashboard/site.test"); code != 200 {
		t.Fatalf("after enrolment: %d", code)
	}
	csrf := csrfField.FindStringSubmatch(page)[1]
	_, page = e.getAs(t, session, "/account/2fa")
	csrf = csrfField.FindStringSubmatch(page)[1]
	clk.advance(30 * time.Second)
	if resp, body := e.submit(t, "/account/2fa/disable", url.Values{"csrf": {csrf}, "code": {auth.TOTPCode(secret, clk.now())}}, sessionOf(session)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("turning a required second factor off: %d\n%s", resp.StatusCode, body)
	}
}

// FuzzSecondFactorForms posts arbitrary bodies (with the right CSRF token)
// to the code form of a pending sign-in and to the security page's forms:
// every answer is one of their statuses, never a panic or a 5xx, and the
// code form signs no one in. Sessions and failure counts start again
// every fourth input and each input comes from its own loopback address,
// so lock-outs do not turn the later inputs into no-ops.
// fuzz-count: 2000x
func FuzzSecondFactorForms(f *testing.F) {
	e := newEnv(f, journal.Options{})
	ctx := context.Background()
	u := e.user(f, "user@acme.test")
	admin := e.user(f, "admin@acme.test")
	if err := e.srv.Accounts.SetTOTP(ctx, u.ID, auth.NewTOTPSecret(), 0, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), "code=123456&next=%2F")
	f.Add(uint8(1), "secret=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&code=000000")
	f.Add(uint8(2), "code=abcde-fghij")
	f.Add(uint8(3), "code=%ZZ&&&")
	paths := []string{"/signin/2fa", "/account/2fa/enrol", "/account/2fa/recovery", "/account/2fa/disable"}
	var n uint32
	type session struct{ token, csrf string }
	var sessions [2]session // the admin's, the User's pending one
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		path := paths[int(which)%len(paths)]
		// every fourth input (before LockAfter failures can add up) the
		// counts start again with fresh sessions: cheaper than per input
		if n%4 == 0 {
			for i, who := range []store.User{admin, u} {
				if err := e.srv.Accounts.SigninSucceeded(ctx, who.ID); err != nil {
					t.Fatal(err)
				}
				token, sess, err := e.srv.Auth.StartSession(ctx, who.ID, i == 1)
				if err != nil {
					t.Fatal(err)
				}
				sessions[i] = session{token, sess.CSRF}
			}
		}
		n++
		sess := sessions[0]
		if path == "/signin/2fa" {
			sess = sessions[1]
		}
		req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader("csrf="+url.QueryEscape(sess.csrf)+"&"+body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(sessionOf(sess.token))
		resp, err := fromLoopback(n).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("%s %q: locked out, with fresh counts", path, body)
		}
		if path == "/signin/2fa" && resp.StatusCode == http.StatusSeeOther {
			t.Fatalf("%q signed in", body)
		}
		switch resp.StatusCode {
		case 200, 400, 401, 403, 409:
		default:
			t.Fatalf("%s %q: status %d", path, body, resp.StatusCode)
		}
	})
}

// fromLoopback is a client whose requests come from the n-th address of
// 127.0.0.0/8 (Linux answers on all of them), each its own client address
// for throttling.
func fromLoopback(n uint32) *http.Client {
	ip := net.IPv4(127, byte(n>>16), byte(n>>8), byte(n)|1)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
	return &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
