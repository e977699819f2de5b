package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"fjord/internal/auth"
	"fjord/internal/mail"
	"fjord/internal/store"
)

// Mail of the sign-in pages (PRODUCT §3.4): the lock-out notice and the
// password reset request. Both are sent by the Outbox in the background,
// so neither a slow SMTP server nor the work of making a link shows in
// the answer: a reset request reads the same, and takes as long, whether
// or not an account has the address.

// Limits of reset requests, stated in the README.
const (
	// ResetPerUser reset links are sent to one user per ResetWindow at
	// most; more requests are answered as usual and send nothing.
	ResetPerUser = 3
	// ResetPerAddr requests from one client address (an IPv6 /64) per
	// ResetWindow at most; more are refused with 429.
	ResetPerAddr = 10
	ResetWindow  = time.Hour
)

// windowLimit counts events per key within a sliding window.
type windowLimit struct {
	mu     sync.Mutex
	hits   map[string][]time.Time
	pruned time.Time
}

// allow counts an event for key and reports whether it is within n per
// window (an event over the limit is not counted).
func (l *windowLimit) allow(key string, n int, window time.Duration, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hits == nil {
		l.hits = map[string][]time.Time{}
	}
	if now.Sub(l.pruned) >= time.Minute {
		l.pruned = now
		for k, ts := range l.hits {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= window {
				delete(l.hits, k)
			}
		}
	}
	ts := l.hits[key]
	for len(ts) > 0 && now.Sub(ts[0]) >= window {
		ts = ts[1:]
	}
	if len(ts) >= n {
		l.hits[key] = ts
		return false
	}
	l.hits[key] = append(ts, now)
	return true
}

// throttleKey is a client address as the limits count it: an IPv4
// address, or the /64 of an IPv6 one.
func throttleKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// resetLimits are the reset request limits of a server.
type resetLimits struct {
	byUser, byAddr windowLimit
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// NotifyLocked is auth.Service.Locked: it queues a notice to the user
// that sign-in is locked. It returns at once.
func (s *Server) NotifyLocked(_ context.Context, u store.User, until time.Time, reason string) {
	if s.Mail == nil || u.Email == "" {
		return
	}
	m := lockedMessage(u.Email, until, s.PublicURL, reason == auth.LockCode)
	id := u.ID
	s.Mail.Go("sign-in lock-out notice", func(ctx context.Context, snd *mail.Sender) error {
		if err := snd.Send(ctx, m); err != nil {
			return fmt.Errorf("user %d: %w", id, err)
		}
		s.Log.Info("sign-in lock-out notice sent", "user", id)
		return nil
	})
}

func lockedMessage(to string, until time.Time, publicURL string, byCode bool) mail.Message {
	until = until.UTC()
	if byCode {
		return mail.Message{
			To:      to,
			Subject: "Fjord: sign-in locked until " + until.Format("15:04") + " UTC",
			Text: `Hello,

Someone gave your Fjord password correctly, then several wrong codes of
your second factor, so sign-in is locked until ` + until.Format("15:04") + ` UTC (` + until.Format("2 January 2006") + `).

If that was not you, your password is known to someone else: set a new
one now, here:
` + publicURL + `/signin/reset

Your second factor held.

Fjord
`,
		}
	}
	return mail.Message{
		To:      to,
		Subject: "Fjord: sign-in locked until " + until.Format("15:04") + " UTC",
		Text: `Hello,

There were several failed sign-ins in a row to your Fjord account, so
sign-in to it is locked until ` + until.Format("15:04") + ` UTC (` + until.Format("2 January 2006") + `).

If that was you: wait until then, or set a new password here:
` + publicURL + `/signin/reset

If it was not you: your password held. Someone tried to guess it and
failed. You need not do anything; a longer password makes guessing
harder still.

Fjord
`,
	}
}

func resetMessage(to, link string) mail.Message {
	return mail.Message{
		To:      to,
		Subject: "Fjord: set a new password",
		Text: `Hello,

Someone, we hope you, asked to set a new password for your Fjord
account. This link sets one. It works once, within the next hour:

` + link + `

If you did not ask, ignore this mail: your password stays as it is.

Fjord
`,
	}
}

type resetPage struct {
	CSRF, Error, Email string
	MailOff, Sent      bool
}

var resetTmpl = template.Must(template.New("reset").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>New password · Fjord</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><main class="wrap signin"><h1><span class="brand">Fjord</span> · New password</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if .MailOff}}<p>Password reset by mail is not available here: this server sends no mail. Ask an Administrator of your account for a new sign-in link.</p>
{{else if .Sent}}<p role="status">If an account has this address, a link to set a new password is on its way. It works once, within an hour.</p>
{{else}}<p>Enter the e-mail address you sign in with, and we send you a link to set a new password.</p>
<form method="post" action="/signin/reset">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="email">E-mail address</label>
<input id="email" name="email" type="email" autocomplete="username" required maxlength="254" value="{{.Email}}">
<button type="submit">Send the link</button>
</form>{{end}}
<p><a href="/signin">Back to sign-in</a></p>
</main></body></html>`))

func (s *Server) renderReset(w http.ResponseWriter, code int, p resetPage) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	resetTmpl.Execute(w, p)
}

func (s *Server) resetForm(w http.ResponseWriter, r *http.Request) {
	if s.Mail == nil {
		s.renderReset(w, 200, resetPage{MailOff: true})
		return
	}
	s.renderReset(w, 200, resetPage{CSRF: s.preToken(w, r)})
}

// resetPost answers every well-formed request the same way; the link is
// made and sent, if the address has an account, in the background.
func (s *Server) resetPost(w http.ResponseWriter, r *http.Request) {
	if s.Mail == nil {
		s.renderReset(w, http.StatusServiceUnavailable, resetPage{MailOff: true})
		return
	}
	if !parseForm(w, r) {
		return
	}
	email := strings.TrimSpace(formValue(r, "email"))
	page := resetPage{CSRF: s.preToken(w, r), Email: email}
	if !preTokenOK(r) {
		page.Error = "The form has expired: please try again."
		s.renderReset(w, http.StatusForbidden, page)
		return
	}
	if !plausibleEmail(email) {
		page.Error = "Enter the e-mail address you sign in with."
		s.renderReset(w, http.StatusBadRequest, page)
		return
	}
	if !s.resets.byAddr.allow(throttleKey(ClientIP(r, s.TrustedProxies)), ResetPerAddr, ResetWindow, s.now()) {
		page.Error = "Too many password reset requests from this address: please try again in an hour."
		s.renderReset(w, http.StatusTooManyRequests, page)
		return
	}
	s.Mail.Go("password reset link", func(ctx context.Context, snd *mail.Sender) error {
		return s.sendResetLink(ctx, snd, email)
	})
	s.renderReset(w, 200, resetPage{Sent: true})
}

// plausibleEmail: something that could be an address; whether it is one
// of a user is the store's to say.
func plausibleEmail(e string) bool {
	if len(e) < 3 || len(e) > 254 || strings.Count(e, "@") != 1 || strings.HasPrefix(e, "@") || strings.HasSuffix(e, "@") {
		return false
	}
	for _, c := range e {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// sendResetLink mails a one-time reset link to the user of an address,
// if there is one and they have had fewer than ResetPerUser links in the
// last ResetWindow. Its logs name the user by id, never the address or
// the link.
func (s *Server) sendResetLink(ctx context.Context, snd *mail.Sender, email string) error {
	u, err := s.Accounts.UserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up the user: %w", err)
	}
	if u.Email == "" || u.Role == store.RoleGeneric {
		return nil
	}
	if !s.resets.byUser.allow(strconv.FormatInt(u.ID, 10), ResetPerUser, ResetWindow, s.now()) {
		s.Log.Info("password reset link not sent: the user had "+strconv.Itoa(ResetPerUser)+" in the last hour", "user", u.ID)
		return nil
	}
	token, err := s.Auth.NewLink(ctx, u.ID, store.LinkReset)
	if err != nil {
		return fmt.Errorf("user %d: make a reset link: %w", u.ID, err)
	}
	if err := snd.Send(ctx, resetMessage(u.Email, s.PublicURL+"/signin/link/"+token+"?reset=1")); err != nil {
		return fmt.Errorf("user %d: %w", u.ID, err)
	}
	s.Log.Info("password reset link sent", "user", u.ID)
	return nil
}

// notify queues a short notice to a user about their account's security
// (second factor set up, turned off or reset; new recovery codes), so a
// change they did not make does not go unseen. Without mail it does
// nothing.
func (s *Server) notify(u store.User, subject, body string) {
	if s.Mail == nil || u.Email == "" {
		return
	}
	m := mail.Message{To: u.Email, Subject: subject, Text: "Hello,\n\n" + body + "\n\nIf this was not you or an Administrator of your account, tell an\nAdministrator at once and set a new password:\n" + s.PublicURL + "/signin/reset\n\nFjord\n"}
	id := u.ID
	s.Mail.Go("security notice", func(ctx context.Context, snd *mail.Sender) error {
		if err := snd.Send(ctx, m); err != nil {
			return fmt.Errorf("user %d: %w", id, err)
		}
		return nil
	})
}
