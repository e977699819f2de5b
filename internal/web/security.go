package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fjord/internal/auth"
	"fjord/internal/secmon"
	"fjord/internal/store"
)

// Security monitoring on the server (PRODUCT §8): the sign-in handlers
// record events, Administrators see and resolve their account's open
// alerts (on /admin, and as a banner on the overview) and read their
// account's incidents at /incidents; the operator lists and resolves
// alerts and records incidents through the control socket.

// securityEvent records an event; a failure is logged and the request
// goes on (the sign-in's answer must not depend on the monitor). The
// event outlives the request: a client that hangs up does not cancel it.
func (s *Server) securityEvent(r *http.Request, e secmon.Event) {
	if s.Security == nil {
		return
	}
	if err := s.Security.Record(context.WithoutCancel(r.Context()), e); err != nil {
		s.Log.ErrorContext(r.Context(), "security event", "kind", e.Kind, "err", err)
	}
}

// network is the pseudonym of the request's client network, never its
// address (secmon.Monitor.Network says why).
func (s *Server) network(r *http.Request) string {
	return s.Security.Network(ClientIP(r, s.TrustedProxies))
}

// signinRefused records a refused sign-in with the password: a wrong
// password or unknown address (SigninFailed), or a lock-out or the
// address limit (SigninThrottled). The typed address is never recorded:
// people type passwords into the wrong field. Its account is looked up
// only to count the failure for the account and tell its
// Administrators; a lock-out of an unknown address is an account of 0.
func (s *Server) signinRefused(r *http.Request, email string, err error) {
	if s.Security == nil {
		return
	}
	e := secmon.Event{Kind: secmon.SigninFailed, Actor: s.network(r), Detail: "wrong password"}
	var locked *auth.LockedError
	if errors.As(err, &locked) {
		e.Kind, e.Detail = secmon.SigninThrottled, "the person is locked out"
		if locked.Address {
			// refused before any work, so an address over its limit
			// could send them as fast as it likes: at most one event per
			// network a minute, so that it cannot make us write a row per
			// request (its alert is open by then anyway)
			if !s.addrEvents.allow(e.Actor, 1, time.Minute, s.now()) {
				return
			}
			e.Detail = "the address is over its limit of failed sign-ins"
			s.securityEvent(r, e)
			return
		}
	}
	u, uerr := s.Accounts.UserByEmail(r.Context(), email)
	switch {
	case uerr == nil:
		e.Account = u.AccountID
		e.Detail = fmt.Sprintf("user:%d: %s", u.ID, e.Detail)
	case errors.Is(uerr, store.ErrNotFound):
		e.Detail = "an unknown e-mail address"
		if e.Kind == secmon.SigninThrottled {
			e.Detail = "an unknown e-mail address, locked like a person"
		}
	default:
		s.Log.ErrorContext(r.Context(), "security event: look up the user", "err", uerr)
	}
	s.securityEvent(r, e)
}

// codeRefusedEvent records a wrong second-factor code of a user who gave
// the right password (or holds a session), or their lock-out.
func (s *Server) codeRefusedEvent(r *http.Request, u store.User, err error, where string) {
	if s.Security == nil {
		return
	}
	e := secmon.Event{Kind: secmon.SecondFactorFailed, Account: u.AccountID, Actor: s.network(r), Detail: fmt.Sprintf("user:%d: wrong code %s", u.ID, where)}
	var locked *auth.LockedError
	if errors.As(err, &locked) {
		e.Kind, e.Detail = secmon.SigninThrottled, fmt.Sprintf("user:%d: locked out after wrong codes %s", u.ID, where)
		if locked.Address {
			e.Detail = fmt.Sprintf("user:%d: the address is over its limit, %s", u.ID, where)
		}
	} else if !errors.Is(err, auth.ErrBadCode) {
		return
	}
	s.securityEvent(r, e)
}

// openAlerts are the open alerts of the viewer's account, for
// Administrators; nil for anyone else or without a monitor.
func (s *Server) openAlerts(ctx context.Context, v *viewer) ([]alertRow, error) {
	if s.Security == nil || v.user.Role != store.RoleAdmin {
		return nil, nil
	}
	l, err := s.Security.Store.Alerts(ctx, secmon.AlertFilter{Account: v.user.AccountID, OpenOnly: true})
	if err != nil {
		return nil, err
	}
	out := make([]alertRow, 0, len(l))
	for _, a := range l {
		row := alertRow{ID: a.ID, Name: a.Name(), Count: a.Count, First: a.First.Format("2006-01-02 15:04 UTC"), Last: a.Last.Format("2006-01-02 15:04 UTC"), What: a.Rule}
		if r, ok := s.Security.RuleByName(a.Rule); ok {
			row.What = r.What
		}
		out = append(out, row)
	}
	return out, nil
}

type alertRow struct {
	ID                      int64
	Name, What, First, Last string
	Count                   int
}

// adminResolveAlert marks an open alert of the viewer's account resolved.
// Another account's alert, and an unknown id, are 404 alike.
func (s *Server) adminResolveAlert(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if v.staff != nil {
		// the customer's alerts (some about staff) are theirs to close
		v.staff.refused = true
		s.staffEvent(r, EventStaffRefused, v.user.AccountID, staffActorName(v.staff.member), "resolving a customer's alert")
		http.NotFound(w, r)
		return
	}
	if s.Security == nil {
		s.renderAdmin(w, r, http.StatusNotFound, "No such alert in this account.", "", nil)
		return
	}
	id, err := secmon.ParseAlertID(r.PathValue("id"))
	if err != nil {
		s.renderAdmin(w, r, http.StatusNotFound, "No such alert in this account.", "", nil)
		return
	}
	a, err := s.Security.ResolveAlert(r.Context(), id, v.user.AccountID, fmt.Sprintf("user:%d", v.user.ID))
	if errors.Is(err, store.ErrNotFound) {
		s.renderAdmin(w, r, http.StatusNotFound, "No such open alert in this account.", "", nil)
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "resolve alert", "err", err)
		http.Error(w, "resolving the alert failed", 500)
		return
	}
	s.renderAdmin(w, r, 200, "", a.Name()+" is marked resolved.", nil)
}

var incidentsTmpl = pageTemplate(`
<p>Security incidents that affected your organisation's account, as Fjord's data protection officer recorded them. Each update was also mailed to the account's Administrators and main contact.</p>
{{range .Data}}<section class="card" id="{{.Name}}"><h2>{{.Name}}: {{.Title}}</h2>
<p>{{if .Closed.IsZero}}<strong>Open</strong> since {{.Opened.Format "2006-01-02 15:04 UTC"}}{{else}}Closed {{.Closed.Format "2006-01-02 15:04 UTC"}}{{end}}</p>
<ol class="timeline">{{range .Entries}}<li><time>{{.Time.Format "2006-01-02 15:04 UTC"}}</time> · {{.Kind}}<p class="entry">{{.Text}}</p></li>{{end}}</ol></section>
{{else}}<p>No incidents have affected this account.</p>{{end}}`)

// incidentsPage lists the incidents of the viewer's account, each
// without the other accounts it affected. Administrators only: incidents
// go to the people who answer for the account (as the mail does), who
// decide what to tell their Users.
func (s *Server) incidentsPage(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	var l []secmon.Incident
	if s.Security != nil {
		var err error
		if l, err = s.Security.Store.Incidents(r.Context(), v.user.AccountID); err != nil {
			s.Log.ErrorContext(r.Context(), "incidents", "err", err)
			http.Error(w, "reading the incidents failed", 500)
			return
		}
	}
	for i := range l {
		l[i] = l[i].ForAccount()
	}
	s.renderPage(w, r, 200, incidentsTmpl, pageData{Title: "Incidents", Data: l})
}

// ---- control socket

func (s *Server) monitorOn(w http.ResponseWriter) bool {
	if s.Security == nil {
		s.writeError(w, http.StatusNotFound, "this server runs no security monitor")
		return false
	}
	return true
}

// ctlAlerts lists alerts: ?open=1 only open ones, ?account=N one
// account's.
func (s *Server) ctlAlerts(w http.ResponseWriter, r *http.Request) {
	if !s.monitorOn(w) {
		return
	}
	f := secmon.AlertFilter{OpenOnly: r.URL.Query().Get("open") == "1", Limit: 1000}
	if a := r.URL.Query().Get("account"); a != "" {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			s.writeError(w, 400, "account: want the account's id")
			return
		}
		f.Account = id
	}
	l, err := s.Security.Store.Alerts(r.Context(), f)
	if err != nil {
		s.storeError(w, "list alerts", err)
		return
	}
	if l == nil {
		l = []secmon.Alert{}
	}
	s.writeJSON(w, 200, l)
}

func (s *Server) ctlResolveAlert(w http.ResponseWriter, r *http.Request) {
	if !s.monitorOn(w) {
		return
	}
	id, err := secmon.ParseAlertID(r.PathValue("id"))
	if err != nil {
		s.writeError(w, 400, err.Error())
		return
	}
	a, err := s.Security.ResolveAlert(r.Context(), id, 0, "operator")
	if err != nil {
		s.storeError(w, "resolve alert", err)
		return
	}
	s.writeJSON(w, 200, a)
}

// IncidentOpen is the body of POST /incidents.
type IncidentOpen struct {
	Accounts           []int64
	Title, Description string
}

// IncidentText is the body of POST /incidents/{id}/update and /close.
type IncidentText struct{ Text string }

func (s *Server) ctlIncidents(w http.ResponseWriter, r *http.Request) {
	if !s.monitorOn(w) {
		return
	}
	l, err := s.Security.Store.Incidents(r.Context(), 0)
	if err != nil {
		s.storeError(w, "list incidents", err)
		return
	}
	if l == nil {
		l = []secmon.Incident{}
	}
	s.writeJSON(w, 200, l)
}

func (s *Server) ctlOpenIncident(w http.ResponseWriter, r *http.Request) {
	if !s.monitorOn(w) {
		return
	}
	var in IncidentOpen
	if !readJSON(w, r, &in, `{"Accounts":[ids], "Title":..., "Description":...}`) {
		return
	}
	inc, err := s.Security.OpenIncident(r.Context(), "operator", in.Accounts, in.Title, in.Description)
	if s.incidentError(w, err) {
		return
	}
	s.writeJSON(w, 201, inc)
}

func (s *Server) ctlIncidentEntry(w http.ResponseWriter, r *http.Request) {
	if !s.monitorOn(w) {
		return
	}
	id, err := secmon.ParseIncidentID(r.PathValue("id"))
	if err != nil {
		s.writeError(w, 400, err.Error())
		return
	}
	var in IncidentText
	if !readJSON(w, r, &in, `{"Text":...}`) {
		return
	}
	var inc secmon.Incident
	switch r.PathValue("verb") {
	case "update":
		inc, err = s.Security.UpdateIncident(r.Context(), id, "operator", in.Text)
	case "close":
		inc, err = s.Security.CloseIncident(r.Context(), id, "operator", in.Text)
	default:
		s.writeError(w, http.StatusNotFound, "want /incidents/ID/update or /incidents/ID/close")
		return
	}
	if s.incidentError(w, err) {
		return
	}
	s.writeJSON(w, 200, inc)
}

// incidentError answers a failed incident action; the input's errors
// name the problem.
func (s *Server) incidentError(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, secmon.ErrBadIncident):
		s.writeError(w, 400, err.Error())
	default:
		s.storeError(w, "incident", err)
	}
	return true
}

// ---- security.txt

// securityTxtLife is how far ahead Expires lies; RFC 9116 asks for less
// than a year, so that a file nobody maintains stops being believed. The
// file is made at each request from the configuration, so it stays
// fresh while the operator keeps the settings current.
const securityTxtLife = 180 * 24 * time.Hour

// securityTxt serves /.well-known/security.txt (RFC 9116) when a security
// contact is configured, and 404 without one: a file without Contact is
// not valid.
func (s *Server) securityTxt(w http.ResponseWriter, r *http.Request) {
	if len(s.SecurityTxt.Contact) == 0 {
		http.NotFound(w, r)
		return
	}
	var b strings.Builder
	for _, c := range s.SecurityTxt.Contact {
		fmt.Fprintf(&b, "Contact: %s\n", c)
	}
	fmt.Fprintf(&b, "Expires: %s\n", s.now().Add(securityTxtLife).Truncate(24*time.Hour).Format(time.RFC3339))
	if s.SecurityTxt.Policy != "" {
		fmt.Fprintf(&b, "Policy: %s\n", s.SecurityTxt.Policy)
	}
	if len(s.SecurityTxt.Languages) > 0 {
		fmt.Fprintf(&b, "Preferred-Languages: %s\n", strings.Join(s.SecurityTxt.Languages, ", "))
	}
	if strings.HasPrefix(s.PublicURL, "https://") {
		fmt.Fprintf(&b, "Canonical: %s/.well-known/security.txt\n", s.PublicURL)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write([]byte(b.String()))
}

// SecurityTxt is what /.well-known/security.txt says.
type SecurityTxt struct {
	Contact   []string // mailto: or https: URIs; none: no file
	Policy    string   // an https: URL, or ""
	Languages []string // language tags
}
