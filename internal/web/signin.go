package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"fjord/internal/auth"
	"fjord/internal/authz"
	"fjord/internal/store"
)

// Sign-in pages, sessions and the checks every signed-in route makes
// (PRODUCT §3.4). The session cookie holds the session's token; every
// state-changing form carries a CSRF token: the session's own once signed
// in, before that (the sign-in forms) the value of a separate random
// cookie (double submit).

const (
	sessionCookie = "fjord_session"
	preCookie     = "fjord_pre"
	maxFormBytes  = 8 << 10
)

type ctxKey int

const (
	viewerKey ctxKey = iota
	siteKey
)

// viewer is the signed-in user of a request.
type viewer struct {
	user    store.User
	session store.Session
	account store.Account
	p       authz.Principal
	// staff: a staff member acting under a grant (user is then a stand-in
	// with the account's id and no user id)
	staff *staffActor
}

// mustEnrol: the account requires a second factor the user has not set
// up yet; until they do, they see only the page that sets it up.
func (v *viewer) mustEnrol() bool {
	return v.staff == nil && v.account.RequireSecondFactor && v.user.TOTPSecret == ""
}

func viewerOf(r *http.Request) *viewer {
	v, _ := r.Context().Value(viewerKey).(*viewer)
	return v
}

// siteOf is the site a PermReadSite route was allowed to read.
func siteOf(r *http.Request) store.Site {
	s, _ := r.Context().Value(siteKey).(store.Site)
	return s
}

// principal is what authz needs to know of a user, and their account.
func (s *Server) principal(ctx context.Context, u store.User) (authz.Principal, store.Account, error) {
	p, err := auth.PrincipalOf(ctx, s.Accounts, u)
	if err != nil || p.Role == authz.Anonymous {
		return p, store.Account{}, err
	}
	acc, err := s.Accounts.Account(ctx, u.AccountID)
	return p, acc, err
}

// signedIn finds the request's session, which may be pending (owe the
// second factor); nil when there is none.
func (s *Server) signedIn(r *http.Request, use bool) (*viewer, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || s.Auth == nil {
		return nil, nil
	}
	sess, u, err := s.Auth.Check(r.Context(), c.Value, use)
	if errors.Is(err, auth.ErrNoSession) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p, acc, err := s.principal(r.Context(), u)
	if err != nil {
		return nil, err
	}
	return &viewer{user: u, session: sess, account: acc, p: p}, nil
}

// guardSignedIn serves h to a signed-in user (and with site, only for a
// site they may read, else 404); a state-changing request must carry the
// session's CSRF token. With staffOK, a staff member acting under a grant
// is served too (when no user is signed in), and the request is written
// to the audit log with the grant's id.
func (s *Server) guardSignedIn(site, staffOK bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		// the dashboard's background refresh is no use of the session
		// (idle expiry still applies), and gets 401, not the sign-in page
		poll := r.Header.Get("X-Fjord-Poll") == "1"
		v, err := s.signedIn(r, !poll)
		if err != nil {
			s.Log.ErrorContext(r.Context(), "session", "err", err)
			http.Error(w, "checking the session failed", 500)
			return
		}
		if v == nil && staffOK {
			var answered bool
			if v, answered = s.actingStaff(w, r); answered && v == nil {
				return
			}
		}
		if v == nil || v.session.Pending {
			if !poll && safeMethod(r.Method) {
				to := "/signin"
				if v != nil {
					to = "/signin/2fa"
				}
				http.Redirect(w, r, to+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in, or the session has ended: sign in again", http.StatusUnauthorized)
			return
		}
		if v.mustEnrol() && !enrolPath(r.URL.Path) {
			if !poll && safeMethod(r.Method) {
				http.Redirect(w, r, "/account/2fa", http.StatusSeeOther)
				return
			}
			http.Error(w, "your account requires a second factor: set it up at /account/2fa first", http.StatusForbidden)
			return
		}
		if !sessionFormOK(w, r, v) {
			return
		}
		ctx := context.WithValue(r.Context(), viewerKey, v)
		if site {
			st, err := s.Accounts.SiteByDomain(ctx, r.PathValue("domain"))
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				s.Log.ErrorContext(r.Context(), "site", "err", err)
				http.Error(w, "looking up the site failed", 500)
				return
			}
			// unknown and not allowed read the same
			if err != nil || authz.Decide(v.p, authz.ReadSite, authz.Resource{Kind: authz.Site, Account: st.AccountID, Site: st.ID}) != authz.Allow {
				if v.staff != nil {
					s.staffEvent(r, EventStaffRefused, st.AccountID, staffActorName(v.staff.member),
						fmt.Sprintf("%s %s: not in the account of grant %d", r.Method, truncate(r.URL.Path, 100), v.staff.grant.ID))
				}
				http.NotFound(w, r)
				return
			}
			ctx = context.WithValue(ctx, siteKey, st)
		}
		if v.staff != nil {
			// the entry is written however the request ends: answered, the
			// client gone, or a panic (which then goes on up)
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				status := sw.status
				if p := recover(); p != nil {
					s.staffEntry(r, v.staff, 500)
					panic(p)
				}
				s.staffEntry(r, v.staff, status)
			}()
			h.ServeHTTP(sw, r.WithContext(ctx))
			return
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// readableSites are the sites the viewer may read.
func (s *Server) readableSites(ctx context.Context, v *viewer) ([]store.Site, error) {
	all, err := s.Accounts.AccountSites(ctx, v.user.AccountID)
	if err != nil {
		return nil, err
	}
	var out []store.Site
	for _, st := range all {
		if authz.Decide(v.p, authz.ReadSite, authz.Resource{Kind: authz.Site, Account: st.AccountID, Site: st.ID}) == authz.Allow {
			out = append(out, st)
		}
	}
	return out, nil
}

// sessionFormOK reads the form of a state-changing request and checks it
// carries the session's CSRF token; otherwise it has answered.
func sessionFormOK(w http.ResponseWriter, r *http.Request, v *viewer) bool {
	if safeMethod(r.Method) {
		return true
	}
	if !parseForm(w, r) {
		return false
	}
	if !tokenMatches(formValue(r, "csrf"), v.session.CSRF) {
		http.Error(w, "the form has no valid CSRF token: reload the page and try again", http.StatusForbidden)
		return false
	}
	return true
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// parseForm reads a small url-encoded form; a larger one is refused.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, fmt.Sprintf("the form could not be read (at most %d KiB of url-encoded fields)", maxFormBytes>>10), http.StatusBadRequest)
		return false
	}
	return true
}

// formValue is a field of the form parseForm read.
func formValue(r *http.Request, key string) string { return r.PostForm.Get(key) }

func tokenMatches(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// secureCookies: cookies are Secure when the server is reached over
// HTTPS (public-url) and otherwise except over plain HTTP straight to a
// loopback address (the local demo), where a browser would drop them.
func (s *Server) secureCookies(r *http.Request) bool {
	if r.TLS != nil || strings.HasPrefix(s.PublicURL, "https://") {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err != nil || !ap.Addr().Unmap().IsLoopback() || r.Header.Get("X-Forwarded-Proto") == "https"
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: s.secureCookies(r), SameSite: http.SameSiteLaxMode})
}

// preToken is the CSRF token of the sign-in forms: the value of the
// pre-session cookie, made when missing.
func (s *Server) preToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(preCookie); err == nil && len(c.Value) >= 40 && len(c.Value) <= 100 {
		return c.Value
	}
	tok, _ := auth.NewToken()
	s.setCookie(w, r, preCookie, tok, 0)
	return tok
}

func preTokenOK(r *http.Request) bool {
	c, err := r.Cookie(preCookie)
	return err == nil && tokenMatches(formValue(r, "csrf"), c.Value)
}

// localPath keeps a redirect target on this site: a path, with no scheme
// or host however a browser would read it (browsers drop tabs and line
// breaks from URLs and read a backslash as a slash).
func localPath(next string) string {
	for _, c := range []byte(next) {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	return next
}

type signinPage struct {
	Title, Error, CSRF, Next, Email string
	// a one-time link's form
	Link, Purpose string
	// the second factor's form
	Code bool
	// NewLink offers to send a new link by mail (the old one expired)
	NewLink bool
}

var signinTmpl = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Fjord</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><main class="wrap signin"><h1><span class="brand">Fjord</span> · {{.Title}}</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if .Code}}<form method="post" action="/signin/2fa">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="next" value="{{.Next}}">
<label for="code">Code from your authenticator app, or a recovery code</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus>
<button type="submit">Sign in</button>
</form>{{else if .Link}}<form method="post" action="/signin/link">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="token" value="{{.Link}}"><input type="hidden" name="purpose" value="{{.Purpose}}">
<label for="password">New password <small>(at least 10 characters)</small></label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="10">
<label for="password2">The same again</label>
<input id="password2" name="password2" type="password" autocomplete="new-password" required minlength="10">
<button type="submit">Set password and sign in</button>
</form>{{else}}<form method="post" action="/signin">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="next" value="{{.Next}}">
<label for="email">E-mail address</label>
<input id="email" name="email" type="email" autocomplete="username" required value="{{.Email}}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
{{if .NewLink}}<p><a href="/signin/reset">Send me a new link</a></p>{{else}}<p><a href="/signin/reset">Forgot your password?</a></p>{{end}}{{end}}
</main></body></html>`))

func (s *Server) renderSignin(w http.ResponseWriter, code int, p signinPage) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	signinTmpl.Execute(w, p)
}

func (s *Server) signinForm(w http.ResponseWriter, r *http.Request) {
	s.renderSignin(w, 200, signinPage{Title: "Sign in", CSRF: s.preToken(w, r), Next: localPath(r.URL.Query().Get("next"))})
}

func (s *Server) signinPost(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	page := signinPage{Title: "Sign in", CSRF: s.preToken(w, r), Next: localPath(formValue(r, "next")), Email: formValue(r, "email")}
	if !preTokenOK(r) {
		page.Error = "The form has expired: please sign in again."
		s.renderSignin(w, http.StatusForbidden, page)
		return
	}
	u, err := s.Auth.SignIn(r.Context(), formValue(r, "email"), formValue(r, "password"), ClientIP(r, s.TrustedProxies))
	var locked *auth.LockedError
	switch {
	case errors.Is(err, auth.ErrBadCredentials):
		s.signinRefused(r, formValue(r, "email"), err)
		page.Error = "Wrong e-mail address or password."
		s.renderSignin(w, http.StatusUnauthorized, page)
		return
	case errors.As(err, &locked):
		s.signinRefused(r, formValue(r, "email"), err)
		page.Error = locked.Error() + "."
		s.renderSignin(w, http.StatusTooManyRequests, page)
		return
	case err != nil:
		s.Log.ErrorContext(r.Context(), "sign-in", "err", err)
		http.Error(w, "sign-in failed", 500)
		return
	}
	detail := "password"
	if u.TOTPSecret != "" {
		detail = "password; second factor due"
	}
	s.recordAs(r, fmt.Sprintf("user:%d", u.ID), u.AccountID, "signin", fmt.Sprintf("user:%d", u.ID), detail)
	s.startSession(w, r, u, page.Next, u.TOTPSecret != "")
}

// startSession signs u in: the browser's old session, if any, ends (a
// new token at every sign-in), and a new one starts; a pending one (the
// second factor is still due) goes on to the code form.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u store.User, next string, pending bool) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.Auth.SignOut(r.Context(), c.Value)
	}
	tok, _, err := s.Auth.StartSession(r.Context(), u.ID, pending)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "start session", "err", err)
		http.Error(w, "sign-in failed", 500)
		return
	}
	s.setCookie(w, r, sessionCookie, tok, 0)
	if pending {
		http.Redirect(w, r, "/signin/2fa?next="+url.QueryEscape(localPath(next)), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, localPath(next), http.StatusSeeOther)
}

// signout ends this session, or with everywhere=1 every session of the user.
func (s *Server) signout(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	var err error
	if formValue(r, "everywhere") == "1" {
		err = s.Accounts.DeleteSessions(r.Context(), v.user.ID)
	} else {
		err = s.Accounts.DeleteSession(r.Context(), v.session.TokenHash)
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "sign-out", "err", err)
		http.Error(w, "sign-out failed", 500)
		return
	}
	what := "this session"
	if formValue(r, "everywhere") == "1" {
		what = "every session"
	}
	s.record(r, v.user.AccountID, "signout", fmt.Sprintf("user:%d", v.user.ID), what)
	s.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// linkForm shows the set-password form of a one-time link; the link is
// spent only when the form is sent.
func (s *Server) linkForm(w http.ResponseWriter, r *http.Request) {
	purpose := store.LinkWelcome
	title := "Welcome"
	if r.URL.Query().Get("reset") == "1" {
		purpose, title = store.LinkReset, "New password"
	}
	s.renderSignin(w, 200, signinPage{Title: title, CSRF: s.preToken(w, r), Link: r.PathValue("token"), Purpose: purpose})
}

func (s *Server) linkPost(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	purpose := formValue(r, "purpose")
	if purpose != store.LinkReset {
		purpose = store.LinkWelcome
	}
	page := signinPage{Title: "Set a password", CSRF: s.preToken(w, r), Link: formValue(r, "token"), Purpose: purpose}
	if !preTokenOK(r) {
		page.Error = "The form has expired: please try again."
		s.renderSignin(w, http.StatusForbidden, page)
		return
	}
	pw := formValue(r, "password")
	if pw != formValue(r, "password2") {
		page.Error = "The two passwords differ."
		s.renderSignin(w, http.StatusBadRequest, page)
		return
	}
	if err := auth.CheckPassword(pw); err != nil {
		page.Error = "Not a usable password: " + err.Error() + "."
		s.renderSignin(w, http.StatusBadRequest, page)
		return
	}
	// the link is spent before the costly hash, so that guessed tokens
	// cost no hashing
	u, err := s.Auth.UseLink(r.Context(), page.Link, purpose)
	if errors.Is(err, store.ErrNotFound) {
		page.Error = "This link has expired or was used already. Ask an Administrator for a new one."
		if s.Mail != nil {
			// a reset link sets a first password as well as a welcome link
			page.Error = "This link has expired or was used already. A new one can be sent to you by mail."
			page.NewLink = true
		}
		page.Link = ""
		s.renderSignin(w, http.StatusGone, page)
		return
	}
	var hash string
	if err == nil {
		hash, err = auth.HashPassword(pw)
	}
	if err == nil {
		err = s.Accounts.SetPassword(r.Context(), u.ID, hash)
	}
	if err == nil {
		// a new password ends every session the old one opened, and lifts
		// a lock-out
		err = s.Accounts.DeleteSessions(r.Context(), u.ID)
	}
	if err == nil {
		err = s.Accounts.SigninSucceeded(r.Context(), u.ID)
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "set password", "err", err)
		http.Error(w, "setting the password failed", 500)
		return
	}
	s.recordAs(r, fmt.Sprintf("user:%d", u.ID), u.AccountID, "password.set", fmt.Sprintf("user:%d", u.ID), "by a one-time "+purpose+" link")
	s.startSession(w, r, u, "/", u.TOTPSecret != "")
}
