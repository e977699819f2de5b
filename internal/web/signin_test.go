package web

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"fjord/internal/account"
	"fjord/internal/auth"
	"fjord/internal/ingest/journal"
	"fjord/internal/store"
)

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// form GETs a page as cookie holder and returns its form's CSRF token and
// the cookies the page set.
func (e *testEnv) form(t testing.TB, path string, cookies ...*http.Cookie) (string, []*http.Cookie) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.http.URL+path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := csrfField.FindSubmatch(b)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("%s: %d, no form\n%s", path, resp.StatusCode, b)
	}
	return string(m[1]), append(cookies, resp.Cookies()...)
}

// submit POSTs a form with cookies, not following redirects.
func (e *testEnv) submit(t testing.TB, path string, form url.Values, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func cookieOf(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// signIn signs in through the form and returns the session cookie's value.
func (e *testEnv) signIn(t testing.TB, email string) string {
	csrf, cookies := e.form(t, "/signin")
	resp, body := e.submit(t, "/signin", url.Values{"csrf": {csrf}, "email": {email}, "password": {testPassword}}, cookies...)
	c := cookieOf(resp, sessionCookie)
	if resp.StatusCode != http.StatusSeeOther || c == nil || c.Value == "" {
		t.Fatalf("sign in as %s: %d\n%s", email, resp.StatusCode, body)
	}
	return c.Value
}

func TestSignInFlow(t *testing.T) {
	e := newEnv(t, journal.Options{})
	// not signed in: to the sign-in page, and back after
	req, _ := http.NewRequest("GET", e.http.URL+"/dashboard/site.test?period=7d", nil)
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/signin?next="+url.QueryEscape("/dashboard/site.test?period=7d") {
		t.Fatalf("not signed in: %d %q", resp.StatusCode, loc)
	}
	csrf, cookies := e.form(t, "/signin?next=/dashboard/site.test")
	good := url.Values{"csrf": {csrf}, "email": {"Admin@Acme.test"}, "password": {testPassword}, "next": {"/dashboard/site.test"}}
	// the form's CSRF token must come with its cookie, and match it
	for name, c := range map[string]struct {
		form    url.Values
		cookies []*http.Cookie
	}{
		"no cookie":    {good, nil},
		"no token":     {url.Values{"email": good["email"], "password": good["password"]}, cookies},
		"wrong token":  {url.Values{"csrf": {csrf + "x"}, "email": good["email"], "password": good["password"]}, cookies},
		"other cookie": {good, []*http.Cookie{{Name: preCookie, Value: strings.Repeat("a", 43)}}},
	} {
		if resp, _ := e.submit(t, "/signin", c.form, c.cookies...); resp.StatusCode != 403 || cookieOf(resp, sessionCookie) != nil {
			t.Errorf("%s: %d, want 403 and no session", name, resp.StatusCode)
		}
	}
	bad := url.Values{"csrf": {csrf}, "email": {"admin@acme.test"}, "password": {"not the password"}}
	if resp, body := e.submit(t, "/signin", bad, cookies...); resp.StatusCode != 401 || !strings.Contains(body, "Wrong e-mail address or password") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, _ = e.submit(t, "/signin", good, cookies...)
	sess := cookieOf(resp, sessionCookie)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/dashboard/site.test" || sess == nil {
		t.Fatalf("sign in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax", sess)
	}
	if code, _ := e.getAs(t, sess.Value, "/dashboard/site.test"); code != 200 {
		t.Fatalf("signed in: %d", code)
	}
	// a redirect target elsewhere is not followed
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "/a\\..\\\\evil.example", "javascript:alert(1)"} {
		f := url.Values{"csrf": {csrf}, "email": good["email"], "password": good["password"], "next": {next}}
		if resp, _ := e.submit(t, "/signin", f, cookies...); resp.Header.Get("Location") != "/" {
			t.Errorf("next=%s: went to %q", next, resp.Header.Get("Location"))
		}
	}
	// signing in again from the same browser rotates: the old token dies
	resp, _ = e.submit(t, "/signin", good, append(cookies, sess)...)
	again := cookieOf(resp, sessionCookie)
	if again == nil || again.Value == sess.Value {
		t.Fatal("no new session token at sign-in")
	}
	if code, _ := e.getAs(t, sess.Value, "/"); code != 303 {
		t.Fatalf("the session before sign-in still works: %d", code)
	}
	// sign-out needs the session's CSRF token
	token, _ := e.form(t, "/", again)
	if resp, _ := e.submit(t, "/signout", url.Values{"csrf": {"forged"}}, again); resp.StatusCode != 403 {
		t.Fatalf("sign-out without the CSRF token: %d", resp.StatusCode)
	}
	if code, _ := e.getAs(t, again.Value, "/"); code != 200 {
		t.Fatalf("refused sign-out ended the session: %d", code)
	}
	if resp, _ := e.submit(t, "/signout", url.Values{"csrf": {token}}, again); resp.StatusCode != 303 {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if code, _ := e.getAs(t, again.Value, "/"); code != 303 {
		t.Fatalf("after sign-out: %d", code)
	}
}

func TestSignOutEverywhere(t *testing.T) {
	e := newEnv(t, journal.Options{})
	a, b := e.signIn(t, "user@acme.test"), e.signIn(t, "user@acme.test")
	other := e.signIn(t, "admin@acme.test")
	token, _ := e.form(t, "/", &http.Cookie{Name: sessionCookie, Value: a})
	if resp, _ := e.submit(t, "/signout", url.Values{"csrf": {token}, "everywhere": {"1"}}, &http.Cookie{Name: sessionCookie, Value: a}); resp.StatusCode != 303 {
		t.Fatalf("sign-out everywhere: %d", resp.StatusCode)
	}
	for _, c := range []string{a, b} {
		if code, _ := e.getAs(t, c, "/"); code != 303 {
			t.Fatalf("a session of the user lives on: %d", code)
		}
	}
	if code, _ := e.getAs(t, other, "/"); code != 200 {
		t.Fatalf("another user's session ended too: %d", code)
	}
}

// TestAccessByRole: UI and downloads answer a User only for what is
// granted, and an Administrator only in their account; everything else
// is 404, as for a site that does not exist.
func TestAccessByRole(t *testing.T) {
	e := newEnv(t, journal.Options{})
	user, otherAdmin := e.signIn(t, "user@acme.test"), e.signIn(t, "admin@other.test")
	paths := func(site string) []string {
		return []string{"/dashboard/" + site, "/dashboard/" + site + "/export?panel=pages&format=csv", "/dashboard/" + site + "/realtime"}
	}
	for _, c := range []struct {
		who, cookie, site string
		code              int
	}{
		{"Acme's User", user, "site.test", 200},
		{"Acme's User", user, "hidden.test", 404},
		{"Acme's User", user, "other.test", 404},
		{"Acme's User", user, "nope.test", 404},
		{"Acme's Administrator", e.cookie, "site.test", 200},
		{"Acme's Administrator", e.cookie, "hidden.test", 200},
		{"Acme's Administrator", e.cookie, "other.test", 404},
		{"Other's Administrator", otherAdmin, "site.test", 404},
		{"Other's Administrator", otherAdmin, "other.test", 200},
	} {
		for _, p := range paths(c.site) {
			if code, _ := e.getAs(t, c.cookie, p); code != c.code {
				t.Errorf("%s, %s: %d, want %d", c.who, p, code, c.code)
			}
		}
	}
	// the overview and the site picker list only what may be read
	_, page := e.getAs(t, user, "/")
	if !strings.Contains(page, "site.test") || strings.Contains(page, "hidden.test") || strings.Contains(page, "other.test") {
		t.Errorf("the User's overview lists more than site.test:\n%s", page)
	}
	_, page = e.getAs(t, user, "/dashboard/site.test")
	if strings.Contains(page, "hidden.test") || strings.Contains(page, "other.test") {
		t.Error("the User's site picker lists sites not granted")
	}
}

func TestLockOutOverHTTP(t *testing.T) {
	e := newEnv(t, journal.Options{})
	csrf, cookies := e.form(t, "/signin")
	bad := url.Values{"csrf": {csrf}, "email": {"user@acme.test"}, "password": {"wrong wrong wrong"}}
	for i := 1; i < auth.LockAfter; i++ {
		if resp, _ := e.submit(t, "/signin", bad, cookies...); resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	resp, body := e.submit(t, "/signin", bad, cookies...)
	if resp.StatusCode != 429 || !strings.Contains(body, "locked until") {
		t.Fatalf("failure %d: %d\n%s", auth.LockAfter, resp.StatusCode, body)
	}
	good := url.Values{"csrf": {csrf}, "email": {"user@acme.test"}, "password": {testPassword}}
	if resp, _ := e.submit(t, "/signin", good, cookies...); resp.StatusCode != 429 {
		t.Fatalf("right password while locked: %d", resp.StatusCode)
	}
}

func TestWelcomeLink(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	accs, _ := e.srv.Accounts.Accounts(ctx)
	inv, err := account.AddUser(ctx, e.srv.Accounts, e.srv.Auth, accs[0].ID, "new@acme.test", "", store.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	csrf, cookies := e.form(t, inv.Link)
	token := strings.TrimPrefix(inv.Link, "/signin/link/")
	post := func(pw, pw2 string) (*http.Response, string) {
		return e.submit(t, "/signin/link", url.Values{"csrf": {csrf}, "token": {token}, "purpose": {"welcome"}, "password": {pw}, "password2": {pw2}}, cookies...)
	}
	if resp, body := post("a long password", "another long password"); resp.StatusCode != 400 || !strings.Contains(body, "differ") {
		t.Fatalf("different passwords: %d", resp.StatusCode)
	}
	if resp, body := post("short", "short"); resp.StatusCode != 400 || !strings.Contains(body, "too short") {
		t.Fatalf("short password: %d", resp.StatusCode)
	}
	// before the link is used, the account has no password to sign in with
	f := url.Values{"csrf": {csrf}, "email": {"new@acme.test"}, "password": {""}}
	if resp, _ := e.submit(t, "/signin", f, cookies...); resp.StatusCode != 401 {
		t.Fatalf("sign-in with no password set: %d", resp.StatusCode)
	}
	resp, _ := post("my new password", "my new password")
	if resp.StatusCode != 303 || cookieOf(resp, sessionCookie) == nil {
		t.Fatalf("set password: %d", resp.StatusCode)
	}
	if resp, body := post("my new password", "my new password"); resp.StatusCode != 410 || !strings.Contains(body, "used already") {
		t.Fatalf("second use: %d", resp.StatusCode)
	}
	f = url.Values{"csrf": {csrf}, "email": {"new@acme.test"}, "password": {"my new password"}}
	if resp, _ := e.submit(t, "/signin", f, cookies...); resp.StatusCode != 303 {
		t.Fatalf("sign-in with the new password: %d", resp.StatusCode)
	}
}

// FuzzSigninForm: whatever the body, the sign-in form's decoder answers
// with one of its statuses, never a panic, and a request without the
// form's token (the fuzzer rarely guesses the cookie's value) never signs
// in.
func FuzzSigninForm(f *testing.F) {
	e := newEnv(f, journal.Options{})
	f.Add("csrf=x&email=admin%40acme.test&password=correct+horse+battery")
	f.Add("email=%ZZ&&&password")
	f.Add(strings.Repeat("a=b&", 5000))
	f.Fuzz(func(t *testing.T, body string) {
		req, _ := http.NewRequest("POST", e.http.URL+"/signin", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: preCookie, Value: strings.Repeat("p", 43)})
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 303 || cookieOf(resp, sessionCookie) != nil {
			t.Fatalf("%q signed in", body)
		}
		switch resp.StatusCode {
		case 400, 401, 403, 429:
		default:
			t.Fatalf("%q: status %d", body, resp.StatusCode)
		}
	})
}

// TestSecureCookieBehindHTTPS: with an https public URL (a TLS proxy in
// front), cookies are Secure even though the request reaches us as plain
// HTTP on loopback.
func TestSecureCookieBehindHTTPS(t *testing.T) {
	e := newEnv(t, journal.Options{})
	csrf, cookies := e.form(t, "/signin")
	resp, _ := e.submit(t, "/signin", url.Values{"csrf": {csrf}, "email": {"user@acme.test"}, "password": {testPassword}}, cookies...)
	if c := cookieOf(resp, sessionCookie); c == nil || c.Secure {
		t.Fatalf("plain HTTP to loopback: %+v, want a cookie without Secure", c)
	}
	e.srv.PublicURL = "https://analytics.example"
	resp, _ = e.submit(t, "/signin", url.Values{"csrf": {csrf}, "email": {"user@acme.test"}, "password": {testPassword}}, cookies...)
	if c := cookieOf(resp, sessionCookie); c == nil || !c.Secure {
		t.Fatalf("behind https: %+v, want Secure", c)
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/dashboard/a.example?period=7d": "/dashboard/a.example?period=7d",
		"/":                              "/",
		"":                               "/",
		"//evil.example":                 "/",
		"/\\evil.example":                "/",
		"/\t/evil.example":               "/",
		"/\r\n/evil.example":             "/",
		"https://evil.example/":          "/",
		"dashboard":                      "/",
		"/%0d%0aSet-Cookie:x":            "/%0d%0aSet-Cookie:x", // escaped: a path, not a header
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzLinkForm posts arbitrary bodies (with the pre-session cookie's
// token) to the one-time link form: it answers with one of its statuses,
// never a panic or a 5xx, and no made-up token signs anyone in.
func FuzzLinkForm(f *testing.F) {
	e := newEnv(f, journal.Options{})
	pre := strings.Repeat("p", 43)
	f.Add("token=abc&purpose=welcome&password=correct+horse+battery&password2=correct+horse+battery")
	f.Add("token=&purpose=reset&password=short&password2=short")
	f.Add("purpose=%ZZ&&")
	f.Fuzz(func(t *testing.T, body string) {
		req, _ := http.NewRequest("POST", e.http.URL+"/signin/link", strings.NewReader("csrf="+pre+"&"+body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: preCookie, Value: pre})
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 303 || cookieOf(resp, sessionCookie) != nil {
			t.Fatalf("%q signed in", body)
		}
		switch resp.StatusCode {
		case 400, 403, 410:
		default:
			t.Fatalf("%q: status %d", body, resp.StatusCode)
		}
	})
}
