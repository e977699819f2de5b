package web

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/skip2/go-qrcode"

	"fjord/internal/auth"
)

// The second factor (PRODUCT §3.4): a user with TOTP who passed the
// password holds a pending session, good only for /signin/2fa, until they
// give a code or a recovery code. /account/2fa sets TOTP up, replaces the
// recovery codes or removes TOTP (not when the account requires it).

// guardPending serves h to a pending session only; a state-changing
// request must carry the session's CSRF token.
func (s *Server) guardPending(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		v, err := s.signedIn(r, true)
		if err != nil {
			s.Log.ErrorContext(r.Context(), "session", "err", err)
			http.Error(w, "checking the session failed", 500)
			return
		}
		if v == nil || !v.session.Pending {
			// signed in already, or not at all: start over
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		if !sessionFormOK(w, r, v) {
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey, v)))
	})
}

func (s *Server) codeForm(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	s.renderSignin(w, 200, signinPage{Title: "Second factor", CSRF: v.session.CSRF, Next: localPath(r.URL.Query().Get("next")), Code: true})
}

func (s *Server) codePost(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	page := signinPage{Title: "Second factor", CSRF: v.session.CSRF, Next: localPath(formValue(r, "next")), Code: true}
	err := s.Auth.SecondFactor(r.Context(), v.user, formValue(r, "code"), ClientIP(r, s.TrustedProxies))
	s.codeRefusedEvent(r, v.user, err, "at sign-in")
	var locked *auth.LockedError
	switch {
	case errors.Is(err, auth.ErrBadCode):
		page.Error = "Wrong or already used code."
		s.renderSignin(w, http.StatusUnauthorized, page)
		return
	case errors.As(err, &locked):
		// a locked sign-in starts over with the password
		s.Auth.SignOut(r.Context(), sessionToken(r))
		s.setCookie(w, r, sessionCookie, "", -1)
		s.renderSignin(w, http.StatusTooManyRequests, signinPage{Title: "Sign in", CSRF: s.preToken(w, r), Next: page.Next, Error: locked.Error() + "."})
		return
	case err != nil:
		s.Log.ErrorContext(r.Context(), "second factor", "err", err)
		http.Error(w, "sign-in failed", 500)
		return
	}
	s.record(r, v.user.AccountID, "signin", fmt.Sprintf("user:%d", v.user.ID), "password and second factor")
	s.startSession(w, r, v.user, page.Next, false)
}

func sessionToken(r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil {
		return c.Value
	}
	return ""
}

// enrolPath: what a user whose account requires a second factor may reach
// before setting it up.
func enrolPath(p string) bool { return p == "/signout" || strings.HasPrefix(p, "/account/2fa") }

var securityTmpl = pageTemplate(`{{with .Data}}
{{if .Codes}}<section class="card"><h2>Your recovery codes</h2>
<p>Each code signs you in once if you lose your device. Keep them somewhere safe: they are shown only now.</p>
<ul class="codes">{{range .Codes}}<li><code>{{.}}</code></li>{{end}}</ul></section>{{end}}
{{if .Enrolled}}<section class="card"><h2>Second factor: on</h2>
<p>You sign in with your password and a code from your authenticator app. Recovery codes left: <strong id="codes-left">{{.Left}}</strong>.</p>
<form class="stack" method="post" action="/account/2fa/recovery"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<label for="code-r">Current code from your app</label><input id="code-r" name="code" inputmode="numeric" autocomplete="one-time-code" required>
<button type="submit">Make new recovery codes</button></form>
{{if .Required}}<p>Your account requires a second factor, so it cannot be turned off.</p>{{else}}
<form class="stack" method="post" action="/account/2fa/disable"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<label for="code-d">Current code from your app</label><input id="code-d" name="code" inputmode="numeric" autocomplete="one-time-code" required>
<button type="submit">Turn the second factor off</button></form>{{end}}
</section>{{else}}<section class="card"><h2>Set up a second factor</h2>
{{if .Required}}<p>Your account requires a second factor: set it up to go on.</p>{{end}}
<p>Scan this code with an authenticator app (any app for TOTP codes), or type the key into it. Then enter the code the app shows.</p>
<img class="qr" src="{{.QR}}" alt="QR code of the key" width="220" height="220">
<p>Key: <code id="totp-secret">{{.Secret}}</code></p>
<form class="stack" method="post" action="/account/2fa/enrol"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="secret" value="{{.Secret}}">
<label for="code-e">Code from your app</label><input id="code-e" name="code" inputmode="numeric" autocomplete="one-time-code" required>
<button type="submit">Turn the second factor on</button></form></section>{{end}}
{{end}}`)

type securityData struct {
	Enrolled, Required bool
	Left               int
	Secret             string
	QR                 template.URL
	Codes              []string
}

// security shows the second-factor page; codes are recovery codes just
// made, to be shown once.
func (s *Server) security(w http.ResponseWriter, r *http.Request, code int, msg, notice string, codes []string) {
	v := viewerOf(r)
	d := securityData{Enrolled: v.user.TOTPSecret != "", Required: v.account.RequireSecondFactor, Codes: codes}
	if d.Enrolled {
		n, err := s.Accounts.RecoveryCodesLeft(r.Context(), v.user.ID)
		if err != nil {
			s.Log.ErrorContext(r.Context(), "recovery codes", "err", err)
			http.Error(w, "reading the recovery codes failed", 500)
			return
		}
		d.Left = n
	} else {
		d.Secret = formValue(r, "secret")
		if _, err := auth.ParseTOTPSecret(d.Secret); err != nil {
			d.Secret = auth.NewTOTPSecret()
		}
		png, err := qrcode.Encode(auth.TOTPURL("Fjord", v.user.Email, d.Secret), qrcode.Medium, 220)
		if err != nil {
			s.Log.ErrorContext(r.Context(), "qr code", "err", err)
			http.Error(w, "making the QR code failed", 500)
			return
		}
		d.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
	}
	s.renderPage(w, r, code, securityTmpl, pageData{Title: "Security", Error: msg, Notice: notice, Data: d})
}

func (s *Server) securityPage(w http.ResponseWriter, r *http.Request) {
	s.security(w, r, 200, "", "", nil)
}

func (s *Server) enrolPost(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if v.user.TOTPSecret != "" {
		s.security(w, r, http.StatusConflict, "The second factor is on already.", "", nil)
		return
	}
	codes, err := s.Auth.Enrol(r.Context(), v.user.ID, formValue(r, "secret"), formValue(r, "code"))
	if errors.Is(err, auth.ErrBadCode) {
		s.security(w, r, http.StatusBadRequest, "That code does not fit the key: check the time on your device and enter the code it shows now.", "", nil)
		return
	}
	if err != nil && strings.HasPrefix(err.Error(), "not a TOTP secret") {
		s.security(w, r, http.StatusBadRequest, "The form's key is damaged: start again with the new key below.", "", nil)
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "enrol second factor", "err", err)
		http.Error(w, "turning the second factor on failed", 500)
		return
	}
	// every other session of the user signed in without it: end them
	if err := s.Accounts.DeleteSessions(r.Context(), v.user.ID); err != nil {
		s.Log.ErrorContext(r.Context(), "enrol second factor", "err", err)
		http.Error(w, "turning the second factor on failed", 500)
		return
	}
	tok, sess, err := s.Auth.StartSession(r.Context(), v.user.ID, false)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "enrol second factor", "err", err)
		http.Error(w, "turning the second factor on failed", 500)
		return
	}
	s.setCookie(w, r, sessionCookie, tok, 0)
	s.record(r, v.user.AccountID, "second_factor.enrol", fmt.Sprintf("user:%d", v.user.ID), "")
	s.notify(v.user, "Fjord: second factor turned on", "A second factor (an authenticator app) was set up for your Fjord account,\nand your other sessions were signed out.")
	// the page shows the user as they are now
	v.session = sess
	if v.user, err = s.Accounts.UserByID(r.Context(), v.user.ID); err != nil {
		s.Log.ErrorContext(r.Context(), "enrol second factor", "err", err)
		http.Error(w, "reading the user failed", 500)
		return
	}
	s.security(w, r, 200, "", "The second factor is on. Other sessions of yours were signed out.", codes)
}

func (s *Server) recoveryPost(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	codes, err := s.Auth.NewRecovery(r.Context(), v.user, formValue(r, "code"), ClientIP(r, s.TrustedProxies))
	if s.codeRefused(w, r, err) {
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "recovery codes", "err", err)
		http.Error(w, "making recovery codes failed", 500)
		return
	}
	s.record(r, v.user.AccountID, "second_factor.recovery_codes", fmt.Sprintf("user:%d", v.user.ID), "")
	s.notify(v.user, "Fjord: new recovery codes", "New recovery codes were made for your Fjord account; the old ones no\nlonger work.")
	s.security(w, r, 200, "", "New recovery codes: the old ones no longer work.", codes)
}

// codeRefused answers a wrong code on the security page; a lock-out (too
// many wrong codes) also ends this session, so that a stolen session
// cannot go on guessing once the lock is over.
func (s *Server) codeRefused(w http.ResponseWriter, r *http.Request, err error) bool {
	s.codeRefusedEvent(r, viewerOf(r).user, err, "on the security page")
	var locked *auth.LockedError
	switch {
	case errors.Is(err, auth.ErrBadCode):
		s.security(w, r, http.StatusBadRequest, "Wrong or already used code.", "", nil)
	case errors.As(err, &locked):
		s.Auth.SignOut(r.Context(), sessionToken(r))
		s.setCookie(w, r, sessionCookie, "", -1)
		http.Error(w, locked.Error()+"; you were signed out.", http.StatusTooManyRequests)
	default:
		return false
	}
	return true
}

func (s *Server) disablePost(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if v.account.RequireSecondFactor {
		s.security(w, r, http.StatusForbidden, "Your account requires a second factor, so it cannot be turned off.", "", nil)
		return
	}
	err := s.Auth.DisableTOTP(r.Context(), v.user, formValue(r, "code"), ClientIP(r, s.TrustedProxies))
	if s.codeRefused(w, r, err) {
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "disable second factor", "err", err)
		http.Error(w, "turning the second factor off failed", 500)
		return
	}
	s.record(r, v.user.AccountID, "second_factor.disable", fmt.Sprintf("user:%d", v.user.ID), "")
	s.notify(v.user, "Fjord: second factor turned off", "The second factor of your Fjord account was turned off.")
	v.user.TOTPSecret = "" // as ClearTOTP left it
	s.security(w, r, 200, "", "The second factor is off.", nil)
}
