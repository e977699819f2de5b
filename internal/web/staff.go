package web

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skip2/go-qrcode"

	"fjord/internal/audit"
	"fjord/internal/auth"
	"fjord/internal/authz"
	"fjord/internal/mail"
	"fjord/internal/staff"
	"fjord/internal/store"
)

// The staff console (PRODUCT §7.1–7.3) under /staff/: it answers only
// from the configured ranges (the operator's VPN), with the client address
// read as ClientIP reads it (X-Forwarded-For only from trusted proxies);
// from anywhere else every /staff/ path is the same plain 404 as a path
// that does not exist, and a security event. Staff sign in with password
// and TOTP together; they ask for access grants, a second member approves,
// and then they act in the customer's account through the customer's own
// pages, each request written to the audit log with the grant's id.

const staffCookie = "fjord_staff"

type staffKeyT struct{}

// staffViewer is the signed-in staff member of a console request.
type staffViewer struct {
	member  staff.Member
	session staff.Session
}

func staffViewerOf(r *http.Request) *staffViewer {
	v, _ := r.Context().Value(staffKeyT{}).(*staffViewer)
	return v
}

// staffActor is a staff member acting in a customer account: what the
// handlers record is gathered here and written as the request's one audit
// entry (with the grant's id) when it has been answered.
type staffActor struct {
	member staff.Member
	grant  staff.Grant
	did    []string
	// refused: a guard inside refused the request (a security event, not
	// an access)
	refused bool
}

// fromStaffRange tells whether the request comes from the console's ranges.
func (s *Server) fromStaffRange(r *http.Request) bool {
	a := ClientIP(r, s.TrustedProxies)
	return a.IsValid() && inRanges(a, s.StaffRanges)
}

// guardStaffRange serves h only from the staff ranges; elsewhere it is the
// plain 404 of an unknown path.
func (s *Server) guardStaffRange(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Staff == nil || !s.fromStaffRange(r) {
			s.staffEvent(r, EventStaffOutside, 0, "", "a request for "+consolePath(r.URL.Path)+" from outside the staff ranges")
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

// guardStaff serves h to a signed-in staff member in the ranges; a
// state-changing request must carry the session's CSRF token.
func (s *Server) guardStaff(h http.Handler) http.Handler {
	return s.guardStaffRange(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sv, err := s.staffSignedIn(r)
		if err != nil {
			s.Log.ErrorContext(r.Context(), "staff session", "err", err)
			http.Error(w, "checking the session failed", 500)
			return
		}
		if sv == nil {
			if safeMethod(r.Method) {
				http.Redirect(w, r, "/staff/signin", http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in, or the session has ended: sign in again", http.StatusUnauthorized)
			return
		}
		if !safeMethod(r.Method) {
			if !parseForm(w, r) {
				return
			}
			if !tokenMatches(formValue(r, "csrf"), sv.session.CSRF) {
				http.Error(w, "the form has no valid CSRF token: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), staffKeyT{}, sv)))
	}))
}

// staffSignedIn finds the request's staff session; nil when none.
func (s *Server) staffSignedIn(r *http.Request) (*staffViewer, error) {
	c, err := r.Cookie(staffCookie)
	if err != nil || s.StaffSignin == nil {
		return nil, nil
	}
	sess, m, err := s.StaffSignin.Check(r.Context(), c.Value)
	if errors.Is(err, auth.ErrNoStaffSession) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &staffViewer{member: m, session: sess}, nil
}

// setStaffCookie: SameSite=Strict, as no link from elsewhere has any
// business opening the console or a customer account as staff.
func (s *Server) setStaffCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: staffCookie, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: s.secureCookies(r), SameSite: http.SameSiteStrictMode})
}

// actingStaff is the viewer of a customer page opened by a staff member
// acting under a grant. nil, false: no staff session here (the page goes
// on as for anyone not signed in). nil, true: refused and answered (no
// valid grant, outside the ranges), with a security event.
func (s *Server) actingStaff(w http.ResponseWriter, r *http.Request) (*viewer, bool) {
	if _, err := r.Cookie(staffCookie); err != nil || s.Staff == nil {
		return nil, false
	}
	if !s.fromStaffRange(r) {
		s.staffEvent(r, EventStaffOutside, 0, "", "a staff session used from outside the staff ranges")
		return nil, false
	}
	sv, err := s.staffSignedIn(r)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "staff session", "err", err)
		http.Error(w, "checking the session failed", 500)
		return nil, true
	}
	if sv == nil {
		return nil, false
	}
	g, err := s.Staff.Acting(r.Context(), sv.member, sv.session.Acting)
	if err != nil && !errors.Is(err, staff.ErrNoGrant) && !errors.Is(err, staff.ErrUntrained) {
		s.Log.ErrorContext(r.Context(), "access grant", "err", err)
		http.Error(w, "checking the access grant failed", 500)
		return nil, true
	}
	if err != nil {
		s.staffEvent(r, EventStaffRefused, g.Account, staffActorName(sv.member),
			fmt.Sprintf("%s %s without a valid grant (grant %d: %v)", r.Method, truncate(r.URL.Path, 100), sv.session.Acting, err))
		s.staffRefusal(w, r, err)
		return nil, true
	}
	acc, err := s.Accounts.Account(r.Context(), g.Account)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "access grant", "err", err)
		http.Error(w, "reading the account failed", 500)
		return nil, true
	}
	now := s.Now()
	if staff.OffHours(now) {
		s.staffEvent(r, EventStaffOffHours, g.Account, staffActorName(sv.member), fmt.Sprintf("a request under grant %d outside working hours", g.ID))
	}
	if r.Header.Get("X-Fjord-Poll") != "1" && s.staffVolume.add(g.ID, now) == StaffVolumePerHour+1 {
		s.staffEvent(r, EventStaffVolume, g.Account, staffActorName(sv.member), fmt.Sprintf("more than %d requests in an hour under grant %d", StaffVolumePerHour, g.ID))
	}
	return &viewer{
		user:    store.User{AccountID: g.Account, Email: "staff: " + sv.member.Email, Role: "staff"},
		session: store.Session{CSRF: sv.session.CSRF},
		account: acc,
		p:       authz.Principal{Role: authz.Staff, Account: g.Account, Grant: g.ID, Write: g.Scope == staff.ReadWrite},
		staff:   &staffActor{member: sv.member, grant: g},
	}, true
}

// staffRefusal answers a staff request outside its grant: 403 with what
// to do (the staff member knows the page exists; the customer's data is
// what is withheld).
func (s *Server) staffRefusal(w http.ResponseWriter, r *http.Request, why error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, "Refused: %v.\nAsk for an access grant that covers this in the staff console at /staff/.\n", why)
}

// StaffVolumePerHour: more requests than this under one grant within a
// clock hour are a security event (a person reads far fewer pages; a
// script copying the account does not).
const StaffVolumePerHour = 300

// grantVolume counts requests per grant in the current clock hour.
type grantVolume struct {
	mu   sync.Mutex
	hour time.Time
	n    map[int64]int
}

// add counts a request under grant at now and returns the hour's count.
func (v *grantVolume) add(grant int64, now time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if h := now.Truncate(time.Hour); !h.Equal(v.hour) || v.n == nil {
		v.hour, v.n = h, map[int64]int{}
	}
	v.n[grant]++
	return v.n[grant]
}

// consolePath is a console path fit for an event: a set-up link's token
// is a secret.
func consolePath(p string) string {
	if strings.HasPrefix(p, "/staff/setup/") {
		return "/staff/setup/…"
	}
	return truncate(p, 100)
}

func staffActorName(m staff.Member) string { return fmt.Sprintf("staff:%d", m.ID) }

// staffEntry writes the one audit entry of a staff request in a customer
// account, once it has been answered.
func (s *Server) staffEntry(r *http.Request, a *staffActor, status int) {
	if a.refused {
		return
	}
	target := r.Method + " " + truncate(r.URL.RequestURI(), 300)
	if status == 0 {
		status = http.StatusOK // a handler that wrote nothing answered 200
	}
	detail := fmt.Sprintf("status %d, from %s", status, ClientIP(r, s.TrustedProxies))
	if len(a.did) > 0 {
		detail += "; " + strings.Join(a.did, "; ")
	}
	action := "staff.read"
	if !safeMethod(r.Method) {
		action = "staff.change"
	}
	s.writeEntry(r, audit.Entry{Actor: staffActorName(a.member), Account: a.grant.Account, Action: action, Target: target, Detail: truncate(detail, 1000), Grant: a.grant.ID})
}

// statusWriter remembers the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ---- the console's pages

var staffLayout = template.Must(template.New("staff").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Fjord staff</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><div class="wrap"><header class="top"><h1><span class="brand">Fjord staff</span> · {{.Title}}</h1>
{{if .Who}}<nav class="account" aria-label="Staff"><a href="/staff/">Access</a>{{if .Tooling}} <a href="/staff/tooling">Tooling</a>{{end}}{{if .DPO}} <a href="/staff/incidents">Incidents</a>{{end}}</nav>
<form class="signout" method="post" action="/staff/signout"><input type="hidden" name="csrf" value="{{.CSRF}}"><span class="who">{{.Who}}</span> <button type="submit">Sign out</button></form>{{end}}</header>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}{{if .Notice}}<p class="notice" role="status">{{.Notice}}</p>{{end}}
<main>{{block "content" .}}{{end}}</main></div></body></html>`))

func staffTemplate(content string) *template.Template {
	return template.Must(template.Must(staffLayout.Clone()).Parse(`{{define "content"}}` + content + `{{end}}`))
}

type staffPage struct {
	Title, Who, CSRF, Error, Notice string
	Tooling, DPO                    bool
	Data                            any
}

func (s *Server) renderStaff(w http.ResponseWriter, r *http.Request, code int, t *template.Template, p staffPage) {
	if sv := staffViewerOf(r); sv != nil {
		p.Who = fmt.Sprintf("%s (%s)", sv.member.Email, sv.member.Role)
		p.CSRF, p.Tooling, p.DPO = sv.session.CSRF, sv.member.Role.Tooling(), sv.member.Role == staff.DPO
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := t.Execute(w, p); err != nil {
		s.Log.ErrorContext(r.Context(), "render", "page", p.Title, "err", err)
	}
}

var staffSigninTmpl = staffTemplate(`{{with .Data}}{{if .Setup}}<form class="stack" method="post" action="/staff/setup">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="token" value="{{.Token}}"><input type="hidden" name="secret" value="{{.Secret}}">
<p>Set up your sign-in, {{.Email}}: a password, and this key in your authenticator app.</p>
<img src="{{.QR}}" alt="QR code of the key" width="220" height="220"><p>Key: <code id="totp-secret">{{.Secret}}</code></p>
<label for="password">New password <small>(at least 10 characters)</small></label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="10">
<label for="password2">The same again</label>
<input id="password2" name="password2" type="password" autocomplete="new-password" required minlength="10">
<label for="code">The code your app shows now</label><input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required>
<button type="submit">Set up and go to sign-in</button></form>
{{else}}<form class="stack" method="post" action="/staff/signin">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="email">E-mail address</label><input id="email" name="email" type="email" autocomplete="username" required value="{{.Email}}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="code">Code from your authenticator app</label><input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required>
<button type="submit">Sign in</button></form>{{end}}{{end}}`)

type staffSigninData struct {
	CSRF, Email   string
	Setup         bool
	Token, Secret string
	QR            template.URL
}

func (s *Server) staffSigninForm(w http.ResponseWriter, r *http.Request) {
	s.renderStaff(w, r, 200, staffSigninTmpl, staffPage{Title: "Sign in", Data: staffSigninData{CSRF: s.preToken(w, r)}})
}

func (s *Server) staffSigninPost(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	d := staffSigninData{CSRF: s.preToken(w, r), Email: formValue(r, "email")}
	page := staffPage{Title: "Sign in", Data: d}
	if !preTokenOK(r) {
		page.Error = "The form has expired: please sign in again."
		s.renderStaff(w, r, http.StatusForbidden, staffSigninTmpl, page)
		return
	}
	m, err := s.StaffSignin.SignIn(r.Context(), formValue(r, "email"), formValue(r, "password"), formValue(r, "code"))
	var locked *auth.LockedError
	switch {
	case errors.Is(err, auth.ErrBadCredentials):
		s.staffEvent(r, EventStaffSigninFailed, 0, "", "a failed staff sign-in")
		page.Error = "Wrong e-mail address, password or code."
		s.renderStaff(w, r, http.StatusUnauthorized, staffSigninTmpl, page)
		return
	case errors.As(err, &locked):
		s.staffEvent(r, EventStaffSigninFailed, 0, "", "a staff sign-in while locked")
		page.Error = locked.Error() + "."
		s.renderStaff(w, r, http.StatusTooManyRequests, staffSigninTmpl, page)
		return
	case err != nil:
		s.Log.ErrorContext(r.Context(), "staff sign-in", "err", err)
		http.Error(w, "sign-in failed", 500)
		return
	}
	if c, err := r.Cookie(staffCookie); err == nil {
		s.StaffSignin.SignOut(r.Context(), c.Value)
	}
	tok, _, err := s.StaffSignin.StartSession(r.Context(), m.ID)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "staff session", "err", err)
		http.Error(w, "sign-in failed", 500)
		return
	}
	s.recordAs(r, staffActorName(m), 0, "staff.signin", staffActorName(m), "password and code")
	s.setStaffCookie(w, r, tok, 0)
	http.Redirect(w, r, "/staff/", http.StatusSeeOther)
}

func (s *Server) staffSignout(w http.ResponseWriter, r *http.Request) {
	sv := staffViewerOf(r)
	if err := s.StaffSignin.Store.DeleteStaffSession(r.Context(), sv.session.TokenHash); err != nil {
		s.Log.ErrorContext(r.Context(), "staff sign-out", "err", err)
		http.Error(w, "sign-out failed", 500)
		return
	}
	s.setStaffCookie(w, r, "", -1)
	http.Redirect(w, r, "/staff/signin", http.StatusSeeOther)
}

func (s *Server) staffSetupForm(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	m, err := s.StaffSignin.SetupMember(r.Context(), tok)
	if errors.Is(err, store.ErrNotFound) {
		s.renderStaff(w, r, http.StatusNotFound, staffSigninTmpl, staffPage{Title: "Set up", Error: "This set-up link is unknown, used or expired: ask an engineer for a new one (fjord staff link).", Data: staffSigninData{CSRF: s.preToken(w, r)}})
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "staff set-up", "err", err)
		http.Error(w, "reading the link failed", 500)
		return
	}
	s.renderSetup(w, r, 200, "", tok, m.Email, auth.NewTOTPSecret())
}

func (s *Server) renderSetup(w http.ResponseWriter, r *http.Request, code int, msg, tok, email, secret string) {
	png, err := qrcode.Encode(auth.TOTPURL("Fjord staff", email, secret), qrcode.Medium, 220)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "qr code", "err", err)
		http.Error(w, "making the QR code failed", 500)
		return
	}
	d := staffSigninData{CSRF: s.preToken(w, r), Setup: true, Token: tok, Email: email, Secret: secret,
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))}
	s.renderStaff(w, r, code, staffSigninTmpl, staffPage{Title: "Set up", Error: msg, Data: d})
}

func (s *Server) staffSetupPost(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	tok, secret := formValue(r, "token"), formValue(r, "secret")
	m, err := s.StaffSignin.SetupMember(r.Context(), tok)
	if err != nil || !preTokenOK(r) {
		s.renderStaff(w, r, http.StatusForbidden, staffSigninTmpl, staffPage{Title: "Set up", Error: "This set-up link is unknown, used or expired, or the form has expired.", Data: staffSigninData{CSRF: s.preToken(w, r)}})
		return
	}
	if _, err := auth.ParseTOTPSecret(secret); err != nil {
		secret = auth.NewTOTPSecret()
	}
	pw := formValue(r, "password")
	if pw != formValue(r, "password2") {
		s.renderSetup(w, r, http.StatusBadRequest, "The two passwords differ.", tok, m.Email, secret)
		return
	}
	if err := auth.CheckPassword(pw); err != nil {
		s.renderSetup(w, r, http.StatusBadRequest, "Not a usable password: "+err.Error()+".", tok, m.Email, secret)
		return
	}
	m, err = s.StaffSignin.Setup(r.Context(), tok, pw, secret, formValue(r, "code"))
	switch {
	case errors.Is(err, auth.ErrBadCode):
		s.renderSetup(w, r, http.StatusBadRequest, "That code does not fit the key: enter the code your app shows now.", tok, m.Email, secret)
		return
	case err != nil:
		s.Log.ErrorContext(r.Context(), "staff set-up", "err", err)
		http.Error(w, "setting up failed", 500)
		return
	}
	s.recordAs(r, staffActorName(m), 0, "staff.setup", staffActorName(m), "password and second factor set")
	http.Redirect(w, r, "/staff/signin", http.StatusSeeOther)
}

var staffHomeTmpl = staffTemplate(`{{with .Data}}
<section class="card"><h2>You</h2><p>{{.Role}}. Security and privacy training recorded on {{.Trained}}; it counts until {{.Lapses}}.
{{if .Untrained}}<strong>It has lapsed: no access to customer accounts until a new training is recorded.</strong>{{else if .Soon}}<strong>Renew it before then.</strong>{{end}}</p>
{{if .Acting}}<p>You act in account {{.Acting}}. <form class="inline" method="post" action="/staff/act/stop"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">stop acting</button></form> <a href="/">open the account</a></p>{{end}}</section>
<section class="card"><h2>Your access grants</h2>
<table class="admin"><thead><tr><th scope="col">Grant</th><th scope="col">Account</th><th scope="col">Reason</th><th scope="col">Scope</th><th scope="col">State</th><th scope="col"></th></tr></thead><tbody>
{{range .Mine}}<tr id="grant-{{.ID}}"><td>#{{.ID}}</td><td>{{.Account}}</td><td>{{.Reason}}</td><td>{{.Scope}}</td><td>{{.State}}</td>
<td>{{if .Active}}<form class="inline" method="post" action="/staff/grants/{{.ID}}/act"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">act in the account</button></form>{{end}}
{{if .Open}}<form class="inline" method="post" action="/staff/grants/{{.ID}}/revoke"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">end</button></form>{{end}}</td></tr>
{{else}}<tr><td colspan="6">None.</td></tr>{{end}}</tbody></table>
<h3>Ask for access</h3>
<form class="stack" method="post" action="/staff/grants"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<label for="account">Account</label><select id="account" name="account">{{range .Accounts}}<option value="{{.ID}}">{{.Name}} (#{{.ID}})</option>{{end}}</select>
<label for="reason">Reason (the ticket)</label><input id="reason" name="reason" required maxlength="500">
<label for="scope">Scope</label><select id="scope" name="scope"><option value="read">read</option><option value="read-write">read-write</option></select>
<label for="hours">For how many hours <small>(at most {{.MaxHours}}, from the approval)</small></label><input id="hours" name="hours" type="number" min="1" max="{{.MaxHours}}" value="2" required>
<button type="submit">Ask</button></form></section>
{{if .Approver}}<section class="card"><h2>Waiting for approval</h2>
<table class="admin"><tbody>{{range .Waiting}}<tr id="request-{{.ID}}"><td>#{{.ID}}</td><td>{{.Who}}</td><td>{{.Account}}</td><td>{{.Reason}}</td><td>{{.Scope}}, {{.Hours}}</td>
<td><form class="inline" method="post" action="/staff/grants/{{.ID}}/approve"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">approve</button></form>
<form class="inline" method="post" action="/staff/grants/{{.ID}}/revoke"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">refuse</button></form></td></tr>
{{else}}<tr><td>Nothing waits.</td></tr>{{end}}</tbody></table></section>{{end}}
{{end}}`)

type staffGrantRow struct {
	ID            int64
	Who, Account  string
	Reason, Scope string
	State, Hours  string
	Active, Open  bool
}

type staffHomeData struct {
	Role            staff.Role
	Trained, Lapses string
	Untrained, Soon bool
	Acting          string
	Mine, Waiting   []staffGrantRow
	Accounts        []store.Account
	Approver        bool
	MaxHours        int
}

func (s *Server) staffHome(w http.ResponseWriter, r *http.Request) {
	s.renderStaffHome(w, r, 200, "", "")
}

func (s *Server) renderStaffHome(w http.ResponseWriter, r *http.Request, code int, msg, notice string) {
	d, err := s.staffHomeData(r.Context(), staffViewerOf(r))
	if err != nil {
		s.Log.ErrorContext(r.Context(), "staff console", "err", err)
		http.Error(w, "reading the grants failed", 500)
		return
	}
	s.renderStaff(w, r, code, staffHomeTmpl, staffPage{Title: "Access", Error: msg, Notice: notice, Data: d})
}

func (s *Server) staffHomeData(ctx context.Context, sv *staffViewer) (staffHomeData, error) {
	now := s.Now()
	m := sv.member
	lapses := s.Staff.Rules.TrainingLapses(m)
	d := staffHomeData{Role: m.Role, Trained: m.TrainedAt.Format("2006-01-02"), Lapses: lapses.Format("2006-01-02"),
		Untrained: !s.Staff.Rules.Trained(m, now), Soon: !now.Before(lapses.Add(-staff.ReminderBeforeLapse)),
		Approver: m.Role.MayApprove(), MaxHours: int(s.Staff.Rules.GrantLimit(m.Role) / time.Hour)}
	accs, err := s.Accounts.Accounts(ctx)
	if err != nil {
		return d, err
	}
	d.Accounts = accs
	names := map[int64]string{}
	for _, a := range accs {
		names[a.ID] = fmt.Sprintf("%s (#%d)", a.Name, a.ID)
	}
	row := func(g staff.Grant) staffGrantRow {
		st := g.State(now)
		if st == "active" {
			st = "active until " + g.Expires.Format("2006-01-02 15:04") + " UTC"
		}
		return staffGrantRow{ID: g.ID, Account: names[g.Account], Reason: g.Reason, Scope: string(g.Scope), State: st,
			Hours: g.Duration.String(), Active: g.Active(now), Open: g.State(now) == "active" || g.State(now) == "requested"}
	}
	mine, err := s.Staff.Store.StaffGrants(ctx, m.ID, time.Time{})
	if err != nil {
		return d, err
	}
	for _, g := range mine {
		d.Mine = append(d.Mine, row(g))
		if g.ID == sv.session.Acting && g.Active(now) {
			d.Acting = names[g.Account]
		}
	}
	if d.Approver {
		recent, err := s.Staff.Store.StaffGrants(ctx, 0, now.Add(-staff.RequestTTL))
		if err != nil {
			return d, err
		}
		for _, g := range recent {
			if g.Staff == m.ID || g.State(now) != "requested" {
				continue
			}
			who, err := s.Staff.Store.Staff(ctx, g.Staff)
			if err != nil {
				return d, err
			}
			rw := row(g)
			rw.Who = fmt.Sprintf("%s (%s)", who.Email, who.Role)
			d.Waiting = append(d.Waiting, rw)
		}
	}
	return d, nil
}

// staffGrantAudit records a console action on a grant in the audit log,
// under the grant and in its account, so that the customer sees who asked,
// who approved and who ended it.
func (s *Server) staffGrantAudit(r *http.Request, m staff.Member, action string, g staff.Grant, detail string) {
	s.writeEntry(r, audit.Entry{Actor: staffActorName(m), Account: g.Account, Action: action, Target: fmt.Sprintf("grant:%d", g.ID), Detail: detail, Grant: g.ID})
}

func (s *Server) staffRequest(w http.ResponseWriter, r *http.Request) {
	sv := staffViewerOf(r)
	acc, err1 := strconv.ParseInt(formValue(r, "account"), 10, 64)
	hours, err2 := strconv.Atoi(formValue(r, "hours"))
	if err1 != nil || err2 != nil {
		s.renderStaffHome(w, r, http.StatusBadRequest, "Choose an account and a whole number of hours.", "")
		return
	}
	g, err := s.Staff.Request(r.Context(), sv.member, acc, formValue(r, "reason"), staff.Scope(formValue(r, "scope")), time.Duration(hours)*time.Hour)
	switch {
	case errors.Is(err, staff.ErrUntrained):
		s.staffEvent(r, EventStaffRefused, acc, staffActorName(sv.member), "an access request with lapsed training")
		s.renderStaffHome(w, r, http.StatusForbidden, "Refused: "+err.Error()+".", "")
		return
	case errors.Is(err, store.ErrNotFound):
		s.renderStaffHome(w, r, http.StatusBadRequest, "No such account.", "")
		return
	case errors.As(err, new(*staff.RequestError)):
		s.renderStaffHome(w, r, http.StatusBadRequest, "Not asked: "+err.Error()+".", "")
		return
	case err != nil:
		s.Log.ErrorContext(r.Context(), "access request", "err", err)
		http.Error(w, "asking failed", 500)
		return
	}
	s.staffGrantAudit(r, sv.member, "staff.grant.request", g, fmt.Sprintf("%s for %v: %s", g.Scope, g.Duration, g.Reason))
	s.renderStaffHome(w, r, http.StatusCreated, "", fmt.Sprintf("Asked for grant #%d; another staff member with approve rights must approve it.", g.ID))
}

func (s *Server) staffGrantID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.renderStaffHome(w, r, http.StatusNotFound, "No such grant.", "")
		return 0, false
	}
	return id, true
}

func (s *Server) staffApprove(w http.ResponseWriter, r *http.Request) {
	sv := staffViewerOf(r)
	id, ok := s.staffGrantID(w, r)
	if !ok {
		return
	}
	g, err := s.Staff.Approve(r.Context(), sv.member, id)
	switch {
	case errors.Is(err, staff.ErrOwnGrant), errors.Is(err, staff.ErrNoApprove), errors.Is(err, staff.ErrUntrained):
		s.staffEvent(r, EventStaffRefused, g.Account, staffActorName(sv.member), fmt.Sprintf("approval of grant %d refused: %v", id, err))
		s.renderStaffHome(w, r, http.StatusForbidden, "Refused: "+err.Error()+".", "")
		return
	case errors.Is(err, staff.ErrNotPending):
		s.renderStaffHome(w, r, http.StatusConflict, err.Error()+".", "")
		return
	case errors.Is(err, store.ErrNotFound):
		s.renderStaffHome(w, r, http.StatusNotFound, "No such grant.", "")
		return
	case err != nil:
		s.Log.ErrorContext(r.Context(), "approve grant", "err", err)
		http.Error(w, "approving failed", 500)
		return
	}
	s.staffGrantAudit(r, sv.member, "staff.grant.approve", g, fmt.Sprintf("until %s", g.Expires.Format(time.RFC3339)))
	s.renderStaffHome(w, r, 200, "", fmt.Sprintf("Grant #%d approved until %s UTC.", g.ID, g.Expires.Format("2006-01-02 15:04")))
}

func (s *Server) staffRevoke(w http.ResponseWriter, r *http.Request) {
	sv := staffViewerOf(r)
	id, ok := s.staffGrantID(w, r)
	if !ok {
		return
	}
	g, err := s.Staff.Revoke(r.Context(), sv.member, id)
	if errors.Is(err, store.ErrNotFound) {
		s.renderStaffHome(w, r, http.StatusNotFound, "No such grant of yours, or it has ended already.", "")
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "revoke grant", "err", err)
		http.Error(w, "ending the grant failed", 500)
		return
	}
	s.staffGrantAudit(r, sv.member, "staff.grant.end", g, "ended before its expiry")
	s.renderStaffHome(w, r, 200, "", fmt.Sprintf("Grant #%d ended.", g.ID))
}

// staffAct makes the session act under one of the member's active grants;
// the customer's pages then open in that account.
func (s *Server) staffAct(w http.ResponseWriter, r *http.Request) {
	sv := staffViewerOf(r)
	id, ok := s.staffGrantID(w, r)
	if !ok {
		return
	}
	g, err := s.Staff.Acting(r.Context(), sv.member, id)
	if errors.Is(err, staff.ErrNoGrant) || errors.Is(err, staff.ErrUntrained) {
		account := g.Account
		if g.Staff != sv.member.ID {
			account = 0 // someone else's grant: the operator's business, not its customer's
		}
		s.staffEvent(r, EventStaffRefused, account, staffActorName(sv.member), fmt.Sprintf("acting under grant %d refused: %v", id, err))
		s.renderStaffHome(w, r, http.StatusForbidden, "Refused: "+err.Error()+".", "")
		return
	}
	if err == nil {
		err = s.Staff.Store.SetActing(r.Context(), sv.session.TokenHash, g.ID)
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "act under grant", "err", err)
		http.Error(w, "acting failed", 500)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) staffActStop(w http.ResponseWriter, r *http.Request) {
	sv := staffViewerOf(r)
	if err := s.Staff.Store.SetActing(r.Context(), sv.session.TokenHash, 0); err != nil {
		s.Log.ErrorContext(r.Context(), "stop acting", "err", err)
		http.Error(w, "stopping failed", 500)
		return
	}
	http.Redirect(w, r, "/staff/", http.StatusSeeOther)
}

var staffToolingTmpl = template.Must(staffTemplate(`{{with .Data}}<section class="card"><h2>Audit log</h2><p id="audit-state">{{.Audit}}</p></section>
<section class="card"><h2>Production tooling</h2><p>Backups, restores, configuration and the audit key are run with the fjord command on the server, as its system user; this page is for engineers and the head of development only.</p></section>
{{with .Usage}}<section class="card"><h2>Usage, {{.From}} to {{.To}}</h2><p>Each account's events accepted, Stats API calls and exports, by site, in UTC days; the account's Administrators see the same on their Usage page.</p>
{{template "usagetable" .}}</section>{{end}}{{end}}`).Parse(usageTableTmpl))

// staffTooling is production tooling's page: engineers and the head of
// development only (§7.6); anyone else gets the 404 of a page that does
// not exist.
func (s *Server) staffTooling(w http.ResponseWriter, r *http.Request) {
	sv := staffViewerOf(r)
	if !sv.member.Role.Tooling() {
		http.NotFound(w, r)
		return
	}
	state := "This server keeps no audit log."
	if s.Audit != nil {
		rep, err := audit.Verify(r.Context(), s.Audit.Store, s.auditPublic())
		var b *audit.BreakError
		switch {
		case errors.As(err, &b):
			state = "BROKEN: " + b.Error()
		case err != nil:
			state = "Reading the audit log failed."
		default:
			state = fmt.Sprintf("Verified: %d entries, the last signed checkpoint at entry %d.", rep.Entries, rep.LastSigned)
		}
	}
	d := struct {
		Audit string
		Usage *usageData
	}{Audit: state}
	if s.Usage != nil {
		u, err := s.usageOf(r.Context(), 0)
		if err != nil {
			s.Log.ErrorContext(r.Context(), "staff usage", "err", err)
			http.Error(w, "reading the usage failed", 500)
			return
		}
		d.Usage = &u
	}
	s.renderStaff(w, r, 200, staffToolingTmpl, staffPage{Title: "Tooling", Data: d})
}

// StaffJobs is the staff console's hourly work: ended sessions and spent
// links go, and staff whose training lapses within two weeks (or has
// lapsed) get one reminder per training date.
func (s *Server) StaffJobs(ctx context.Context) error {
	if s.Staff == nil {
		return nil
	}
	if _, err := s.StaffSignin.Purge(ctx); err != nil {
		return err
	}
	due, err := s.Staff.DueReminders(ctx)
	if err != nil || s.Mail == nil {
		return err
	}
	for _, m := range due {
		lapses := s.Staff.Rules.TrainingLapses(m).Format("2006-01-02")
		msg := mail.Message{To: m.Email, Subject: "Fjord: your security and privacy training lapses on " + lapses,
			Text: "Hello,\n\nyour last security and privacy training was recorded on " + m.TrainedAt.Format("2006-01-02") +
				".\nIt counts until " + lapses + "; after that you cannot ask for, approve or use access\nto customer accounts until a new training is recorded.\n\nFjord\n"}
		id := m.ID
		s.Mail.Go("training reminder", func(ctx context.Context, snd *mail.Sender) error {
			if err := snd.Send(ctx, msg); err != nil {
				return fmt.Errorf("staff member %d: %w", id, err)
			}
			return nil
		})
		if err := s.Staff.Store.SetStaffReminded(ctx, m.ID, m.TrainedAt); err != nil {
			return err
		}
	}
	return nil
}
