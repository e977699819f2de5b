package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"fjord/internal/account"
	"fjord/internal/auth"
	"fjord/internal/authz"
	"fjord/internal/store"
)

// The account's Administration pages (PRODUCT §3.2): people, their
// grants, leavers, sites and the account's settings. Every action asks
// authz about the one resource it touches; anything of another account,
// or any id that does not exist, is 404 alike.

// guardAdmin serves h to a signed-in Administrator of their own account;
// anyone else gets 404, as if the pages did not exist.
func (s *Server) guardAdmin(h http.Handler) http.Handler {
	return s.guardSignedIn(false, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := viewerOf(r)
		// looking is reading the settings; anything else manages them
		act := authz.ManageAccount
		if safeMethod(r.Method) {
			act = authz.ReadSettings
		}
		if authz.Decide(v.p, act, authz.Resource{Kind: authz.Account, Account: v.user.AccountID}) != authz.Allow {
			if v.staff != nil {
				v.staff.refused = true
				s.staffEvent(r, EventStaffRefused, v.user.AccountID, staffActorName(v.staff.member),
					fmt.Sprintf("%s %s: outside the scope of grant %d", r.Method, truncate(r.URL.Path, 100), v.staff.grant.ID))
			}
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

var adminTmpl = pageTemplate(`{{with .Data}}
{{if .Alerts}}<section class="card" id="alerts"><h2>Open security alerts</h2>
<table class="admin"><thead><tr><th scope="col">Alert</th><th scope="col">What</th><th scope="col">Events</th><th scope="col">First</th><th scope="col">Last</th><th scope="col"></th></tr></thead><tbody>
{{range .Alerts}}<tr id="{{.Name}}"><td>{{.Name}}</td><td>{{.What}}</td><td>{{.Count}}</td><td>{{.First}}</td><td>{{.Last}}</td>
<td><form class="inline" method="post" action="/admin/alerts/{{.ID}}/resolve"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">mark resolved</button></form></td></tr>
{{end}}</tbody></table></section>{{end}}
{{if .Bouncing}}<section class="card" id="bouncing"><h2>Addresses that bounce</h2>
<p>E-mail reports to these addresses hard-bounced on their last sends, so they are no longer mailed. If the person has left, remove them: their access ends at once and their saved reports, with the e-mail reports on them, move to the account's generic user.</p>
<table class="admin"><thead><tr><th scope="col">Address</th><th scope="col">Since</th><th scope="col">Why</th><th scope="col">E-mail reports</th><th scope="col"></th></tr></thead><tbody>
{{range .Bouncing}}<tr id="bouncing-{{.Email}}"><td>{{.Email}}{{if .UserID}} (user){{end}}</td><td>{{.Since}}</td><td>{{.Why}}</td><td>{{range .Schedules}}<a href="{{.URL}}">{{.Label}}</a> {{end}}</td>
<td>{{if .UserID}}<form class="inline" method="post" action="/admin/users/{{.UserID}}/remove"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">remove the user</button></form> {{end}}<form class="inline" method="post" action="/admin/bouncing/mail-again"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="email" value="{{.Email}}"><button type="submit">mail again</button></form></td></tr>
{{end}}</tbody></table></section>{{end}}
{{if .Link}}<section class="card"><h2>First sign-in link</h2>
<p>Send this link to {{.LinkFor}}; it works once, for 72 hours, and is shown only now:</p>
<p><code id="welcome-link">{{.Link}}</code></p></section>{{end}}
<section class="card"><h2>People</h2>
<table class="admin"><thead><tr><th scope="col">E-mail</th><th scope="col">Role</th><th scope="col">Second factor</th><th scope="col">Grants</th><th scope="col"></th></tr></thead><tbody>
{{range .Users}}<tr id="user-{{.ID}}"><td>{{.Email}}{{if .Name}} ({{.Name}}){{end}}{{if .MainContact}} · main contact{{end}}</td><td>{{.Role}}</td><td>{{if .TOTP}}on{{else}}off{{end}}</td>
<td>{{if eq .Role "user"}}<ul class="grants">{{range .Grants}}<li>{{.Label}} <form class="inline" method="post" action="/admin/users/{{.User}}/ungrant"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="{{.Kind}}" value="{{.ID}}"><button type="submit">withdraw</button></form></li>{{else}}<li>nothing granted</li>{{end}}</ul>
<form class="inline" method="post" action="/admin/users/{{.ID}}/grant"><input type="hidden" name="csrf" value="{{$.CSRF}}"><label class="sr-only" for="grant-{{.ID}}">Grant</label>
<select id="grant-{{.ID}}" name="what">{{range $.Data.Grantable}}<option value="{{.Value}}">{{.Label}}</option>{{end}}</select> <button type="submit">grant</button></form>{{else}}everything in the account{{end}}</td>
<td>{{if .TOTP}}<form class="inline" method="post" action="/admin/users/{{.ID}}/reset-2fa"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">reset second factor</button></form> {{end}}{{if not .MainContact}}<form class="inline" method="post" action="/admin/users/{{.ID}}/remove"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">remove</button></form>{{end}}</td></tr>
{{end}}</tbody></table>
<h3>Add a person</h3>
<form class="stack" method="post" action="/admin/users"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<label for="new-email">E-mail address</label><input id="new-email" name="email" type="email" required>
<label for="new-name">Name <small>(optional)</small></label><input id="new-name" name="name">
<label for="new-role">Role</label><select id="new-role" name="role"><option value="user">User: sees what is granted</option><option value="admin">Administrator: manages the account</option></select>
<button type="submit">Add</button></form></section>
{{if .Removed}}<section class="card"><h2>Removed people</h2>
<p>Their personal data is deleted {{.Retention}} days after removal; until then they can be restored.</p>
<table class="admin"><tbody>{{range .Removed}}<tr id="removed-{{.ID}}"><td>{{.Email}}</td><td>removed {{.Removed}}, purged {{.Purge}}</td>
<td><form class="inline" method="post" action="/admin/users/{{.ID}}/restore"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">restore</button></form></td></tr>{{end}}</tbody></table></section>{{end}}
<section class="card"><h2>Sites</h2>
<ul class="sites">{{range .Sites}}<li id="site-{{.ID}}"><a href="/dashboard/{{.Domain}}">{{.Domain}}</a> · {{.TimeZone}}
<form class="stack" method="post" action="/admin/sites/{{.ID}}/settings"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<label><input type="checkbox" name="respect_dnt" value="1"{{if .RespectDNT}} checked{{end}}> Do not count browsers that ask not to be tracked (Do Not Track, Global Privacy Control)</label>
<label for="ignored-{{.ID}}">Do not count visits from these address ranges <small>(CIDR, e.g. your office: 192.0.2.0/24)</small></label>
<textarea id="ignored-{{.ID}}" name="ignored" rows="2">{{.Ranges}}</textarea>
<button type="submit">Save settings of {{.Domain}}</button></form></li>{{else}}<li>No sites yet.</li>{{end}}</ul>
<form class="stack" method="post" action="/admin/sites"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<label for="site-domain">Domain</label><input id="site-domain" name="domain" required>
<label for="site-tz">Time zone <small>(IANA name)</small></label><input id="site-tz" name="timezone" value="UTC" required>
<button type="submit">Add site</button></form></section>
<p><a href="/schedules">E-mail reports</a>: the reports mailed on a schedule, their recipients and bounces.</p>
<p><a href="/admin/integrations">Outbound integrations</a>: what sends data to third parties, and its approval.</p>
<p><a href="/admin/staff-access">Staff access</a>: every access of our staff to this account, and why.</p>
<p><a href="/admin/exports">Exports</a>: every download and API export of report data, who took it, and the thresholds that alert you.</p>
<p><a href="/admin/usage">Usage</a>: events accepted, Stats API calls and exports of the last 30 days, by site and day.</p>
{{with .Residency}}<section class="card" id="residency"><h2>Where your data lives</h2>
{{if or .Node .Database .Standby .Backups}}<table class="admin"><tbody>
<tr><th scope="row">This server and its data directory</th><td>{{or .Node "not declared"}}</td></tr>
<tr><th scope="row">Database</th><td>{{if .Database}}{{.Database}} (PostgreSQL){{else if .Node}}{{.Node}}, in this server's data directory{{else}}not declared{{end}}</td></tr>
{{if .Standby}}<tr><th scope="row">Standby database</th><td>{{.Standby}}</td></tr>{{end}}
{{if .Backups}}<tr><th scope="row">Backups</th><td>{{.Backups}}</td></tr>{{end}}
</tbody></table>
{{else}}<p>No region is declared: this server is set up for local use or a demo (it answers on this computer only), so where its data lives is not checked.</p>{{end}}
{{if .Allowed}}<p>Data may be kept only in {{range $i, $a := .Allowed}}{{if $i}}, {{end}}<code>{{$a}}</code>{{end}}{{if or .Node .Database .Standby .Backups}}: the server refuses to start with any of these places elsewhere{{end}}.</p>{{end}}</section>{{end}}
<section class="card"><h2>Account settings</h2>
<form class="stack" method="post" action="/admin/account"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<label><input type="checkbox" name="require_second_factor" value="1"{{if .RequireSecondFactor}} checked{{end}}> Everyone must sign in with a second factor</label>
<label for="retention">Days to keep a removed person's data (1 to 90)</label><input id="retention" name="retention" type="number" min="1" max="90" value="{{.Retention}}" required>
<button type="submit">Save settings</button></form></section>
{{end}}`)

type adminUser struct {
	ID                int64
	Email, Name, Role string
	TOTP, MainContact bool
	Grants            []adminGrant
}

type adminGrant struct {
	User  int64
	Kind  string // "site" or "report"
	ID    int64
	Label string
}

type adminRemoved struct {
	ID                    int64
	Email, Removed, Purge string
}

type option struct{ Value, Label string }

type adminSite struct {
	store.Site
	Ranges string
}

type adminData struct {
	Users               []adminUser
	Removed             []adminRemoved
	Sites               []adminSite
	Grantable           []option
	RequireSecondFactor bool
	Retention           int
	Link, LinkFor       string
	Alerts              []alertRow
	Bouncing            []bouncingRow
	Residency           Residency
}

// Residency is where the server keeps the data (PRODUCT §9.7), as the
// configuration declares it: "" is a place not in use, or, for Node, not
// declared (local use, on loopback only).
type Residency struct {
	Node     string // this server and its data dir (the journal, the embedded stores)
	Database string // the PostgreSQL server(s); "": the stores are in the data dir
	Standby  string
	Backups  string
	Allowed  []string // names, or prefixes ending in *
}

// bouncingRow is a suppressed address on the Administration page.
type bouncingRow struct {
	Email, Since, Why string
	UserID            int64
	Schedules         []link
}

func (s *Server) adminPage(w http.ResponseWriter, r *http.Request) {
	s.renderAdmin(w, r, 200, "", "", nil)
}

// renderAdmin shows the page; inv is a person just added, whose link is
// shown once.
func (s *Server) renderAdmin(w http.ResponseWriter, r *http.Request, code int, msg, notice string, inv *account.Invited) {
	d, err := s.adminData(r.Context(), viewerOf(r))
	if err != nil {
		s.Log.ErrorContext(r.Context(), "administration", "err", err)
		http.Error(w, "reading the account failed", 500)
		return
	}
	if inv != nil {
		d.Link, d.LinkFor = s.PublicURL+inv.Link, inv.User.Email
	}
	s.renderPage(w, r, code, adminTmpl, pageData{Title: "Administration", Error: msg, Notice: notice, Data: d})
}

func (s *Server) adminData(ctx context.Context, v *viewer) (adminData, error) {
	acc, err := s.Accounts.Account(ctx, v.user.AccountID)
	if err != nil {
		return adminData{}, err
	}
	d := adminData{RequireSecondFactor: acc.RequireSecondFactor, Retention: acc.LeaverRetentionDays, Residency: s.Residency}
	if d.Alerts, err = s.openAlerts(ctx, v); err != nil {
		return d, err
	}
	sites, err := s.Accounts.AccountSites(ctx, acc.ID)
	if err != nil {
		return d, err
	}
	siteName := map[int64]string{}
	reportName := map[int64]string{}
	for _, st := range sites {
		d.Sites = append(d.Sites, adminSite{st, store.FormatRanges(st.Ignored)})
		siteName[st.ID] = st.Domain
		d.Grantable = append(d.Grantable, option{"site:" + strconv.FormatInt(st.ID, 10), "the site " + st.Domain})
		reps, err := s.Accounts.SavedReports(ctx, st.ID)
		if err != nil {
			return d, err
		}
		for _, rep := range reps {
			reportName[rep.ID] = st.Domain + ": " + rep.Name
			d.Grantable = append(d.Grantable, option{"report:" + strconv.FormatInt(rep.ID, 10), "the report " + reportName[rep.ID]})
		}
	}
	users, err := s.Accounts.Users(ctx, acc.ID)
	if err != nil {
		return d, err
	}
	for _, u := range users {
		au := adminUser{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, TOTP: u.TOTPSecret != "", MainContact: u.ID == acc.MainContact}
		if u.Role == store.RoleUser {
			g, err := s.Accounts.Grants(ctx, u.ID)
			if err != nil {
				return d, err
			}
			for _, id := range g.Sites {
				au.Grants = append(au.Grants, adminGrant{u.ID, "site", id, "the site " + siteName[id]})
			}
			for _, id := range g.Reports {
				au.Grants = append(au.Grants, adminGrant{u.ID, "report", id, "the report " + reportName[id]})
			}
		}
		d.Users = append(d.Users, au)
	}
	if d.Bouncing, err = s.bouncing(ctx, acc.ID, reportName); err != nil {
		return d, err
	}
	gone, err := s.Accounts.RemovedUsers(ctx, acc.ID)
	if err != nil {
		return d, err
	}
	for _, u := range gone {
		d.Removed = append(d.Removed, adminRemoved{u.ID, u.Email, u.Removed.Format("2006-01-02 15:04 UTC"),
			u.PurgeAfter.Format("2006-01-02 15:04 UTC")})
	}
	return d, nil
}

// userAt is the user named by the path's {id} if the viewer may manage
// them; otherwise it has answered 404.
func (s *Server) userAt(w http.ResponseWriter, r *http.Request, removed bool) (store.User, bool) {
	v := viewerOf(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var u store.User
	if err == nil {
		if removed {
			u, err = s.removedUser(r.Context(), v.user.AccountID, id)
		} else {
			u, err = s.Accounts.UserByID(r.Context(), id)
		}
	}
	if err != nil || authz.Decide(v.p, authz.ManageUsers, authz.Resource{Kind: authz.UserKind, Account: u.AccountID, User: u.ID}) != authz.Allow {
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, strconv.ErrSyntax) && !errors.Is(err, strconv.ErrRange) {
			s.Log.ErrorContext(r.Context(), "administration", "err", err)
		}
		s.renderAdmin(w, r, http.StatusNotFound, "No such person in this account.", "", nil)
		return store.User{}, false
	}
	return u, true
}

func (s *Server) removedUser(ctx context.Context, accountID, id int64) (store.User, error) {
	gone, err := s.Accounts.RemovedUsers(ctx, accountID)
	if err != nil {
		return store.User{}, err
	}
	for _, u := range gone {
		if u.ID == id {
			return u, nil
		}
	}
	return store.User{}, store.ErrNotFound
}

// adminResult answers an action: the page with a notice, or with the
// store's error in words.
func (s *Server) adminResult(w http.ResponseWriter, r *http.Request, err error, notice string) {
	switch {
	case err == nil:
		s.renderAdmin(w, r, 200, "", notice, nil)
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrExists):
		s.renderAdmin(w, r, http.StatusConflict, err.Error()+".", "", nil)
	case errors.Is(err, store.ErrNotFound):
		s.renderAdmin(w, r, http.StatusNotFound, err.Error()+".", "", nil)
	default:
		s.Log.ErrorContext(r.Context(), "administration", "err", err)
		http.Error(w, "the change failed", 500)
	}
}

func (s *Server) adminAddUser(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if authz.Decide(v.p, authz.ManageUsers, authz.Resource{Kind: authz.Account, Account: v.user.AccountID}) != authz.Allow {
		if v.staff != nil {
			v.staff.refused = true
			s.staffEvent(r, EventStaffRefused, v.user.AccountID, staffActorName(v.staff.member), "adding a person: people are the customer's")
		}
		s.renderAdmin(w, r, http.StatusNotFound, "No such page.", "", nil)
		return
	}
	inv, err := account.AddUser(r.Context(), s.Accounts, s.Auth, v.user.AccountID, formValue(r, "email"), formValue(r, "name"), formValue(r, "role"))
	switch {
	case errors.Is(err, store.ErrExists):
		s.renderAdmin(w, r, http.StatusConflict, "Someone has this e-mail address already (a removed person keeps it until their data is purged).", "", nil)
	case err != nil && inv.User.ID == 0:
		s.renderAdmin(w, r, http.StatusBadRequest, "Not added: "+err.Error()+".", "", nil)
	case err != nil:
		s.adminResult(w, r, err, "")
	default:
		s.record(r, v.user.AccountID, "user.add", fmt.Sprintf("user:%d", inv.User.ID), "role "+inv.User.Role)
		s.renderAdmin(w, r, 200, "", "Added.", &inv)
	}
}

func (s *Server) adminRemoveUser(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userAt(w, r, false)
	if !ok {
		return
	}
	err := s.Accounts.RemoveUser(r.Context(), u.ID, s.Now())
	if err == nil {
		s.record(r, u.AccountID, "user.remove", fmt.Sprintf("user:%d", u.ID), "")
	}
	s.adminResult(w, r, err, fmt.Sprintf("%s was removed: their sessions and keys ended, their saved reports (with their e-mail reports) moved to the account.", u.Email))
}

// adminResetTOTP removes a person's second factor (a lost device, or one
// enrolled by someone else) and ends their sessions; they are told.
func (s *Server) adminResetTOTP(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userAt(w, r, false)
	if !ok {
		return
	}
	err := s.Accounts.ClearTOTP(r.Context(), u.ID)
	if err == nil {
		err = s.Accounts.DeleteSessions(r.Context(), u.ID)
	}
	if err == nil {
		s.record(r, u.AccountID, "user.reset_second_factor", fmt.Sprintf("user:%d", u.ID), "")
		s.notify(u, "Fjord: your second factor was reset", "An Administrator of your account reset your second factor and signed you\nout. Sign in with your password and set it up again.")
	}
	s.adminResult(w, r, err, u.Email+"'s second factor was reset and their sessions ended; they set it up again at their next sign-in.")
}

func (s *Server) adminRestoreUser(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userAt(w, r, true)
	if !ok {
		return
	}
	err := s.Accounts.RestoreUser(r.Context(), u.ID, s.Now())
	if err == nil {
		s.record(r, u.AccountID, "user.restore", fmt.Sprintf("user:%d", u.ID), "")
	}
	s.adminResult(w, r, err, fmt.Sprintf("%s was restored, with their saved reports; they sign in as before (API keys must be made anew).", u.Email))
}

// grantTarget reads "site:ID" or "report:ID" (the grant form's select) or
// the separate site and report fields (the withdraw buttons), and checks
// the site or report is the viewer's account's.
func (s *Server) grantTarget(r *http.Request) (site, report int64, err error) {
	kind, id := "", ""
	if what := formValue(r, "what"); what != "" {
		var ok bool
		kind, id, ok = strings.Cut(what, ":")
		if !ok {
			return 0, 0, errors.New("grant: want site:ID or report:ID")
		}
	} else if id = formValue(r, "site"); id != "" {
		kind = "site"
	} else {
		kind, id = "report", formValue(r, "report")
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return 0, 0, fmt.Errorf("grant: %q is not an id", id)
	}
	v := viewerOf(r)
	res := authz.Resource{Kind: authz.Site, Account: -1}
	switch kind {
	case "site":
		st, err := s.Accounts.SiteByID(r.Context(), n)
		if err == nil {
			res = authz.Resource{Kind: authz.Site, Account: st.AccountID, Site: st.ID}
		}
		site = n
	case "report":
		rep, st, err := s.reportByID(r.Context(), n)
		if err == nil {
			res = auth.ReportResource(st, rep)
		}
		report = n
	default:
		return 0, 0, errors.New("grant: want a site or a report")
	}
	if authz.Decide(v.p, authz.ManageUsers, res) != authz.Allow {
		return 0, 0, fmt.Errorf("no such %s in this account: %w", kind, store.ErrNotFound)
	}
	return site, report, nil
}

// reportByID finds a saved report and its site, of any account: authz
// decides who may learn of it.
func (s *Server) reportByID(ctx context.Context, id int64) (store.SavedReport, store.Site, error) {
	rep, err := s.Accounts.SavedReportByID(ctx, id)
	if err != nil {
		return rep, store.Site{}, err
	}
	st, err := s.Accounts.SiteByID(ctx, rep.SiteID)
	return rep, st, err
}

func (s *Server) adminGrant(w http.ResponseWriter, r *http.Request)   { s.changeGrant(w, r, true) }
func (s *Server) adminUngrant(w http.ResponseWriter, r *http.Request) { s.changeGrant(w, r, false) }

func (s *Server) changeGrant(w http.ResponseWriter, r *http.Request, grant bool) {
	u, ok := s.userAt(w, r, false)
	if !ok {
		return
	}
	if u.Role != store.RoleUser {
		s.renderAdmin(w, r, http.StatusBadRequest, "Administrators see everything in the account: grants are for Users.", "", nil)
		return
	}
	site, report, err := s.grantTarget(r)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.adminResult(w, r, err, "")
			return
		}
		s.renderAdmin(w, r, http.StatusBadRequest, err.Error()+".", "", nil)
		return
	}
	what := fmt.Sprintf("site:%d", site)
	if report != 0 {
		what = fmt.Sprintf("report:%d", report)
	}
	if grant {
		err = s.Accounts.Grant(r.Context(), u.ID, site, report)
		if err == nil {
			s.record(r, u.AccountID, "grant.add", fmt.Sprintf("user:%d", u.ID), what)
		}
		s.adminResult(w, r, err, "Granted to "+u.Email+".")
		return
	}
	err = s.Accounts.Ungrant(r.Context(), u.ID, site, report)
	if err == nil {
		s.record(r, u.AccountID, "grant.remove", fmt.Sprintf("user:%d", u.ID), what)
	}
	s.adminResult(w, r, err, "Withdrawn from "+u.Email+"; their API keys no longer read it either.")
}

func (s *Server) adminAddSite(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if authz.Decide(v.p, authz.ManageSites, authz.Resource{Kind: authz.Account, Account: v.user.AccountID}) != authz.Allow {
		http.NotFound(w, r)
		return
	}
	st, err := account.AddSite(r.Context(), s.Accounts, v.user.AccountID, formValue(r, "domain"), formValue(r, "timezone"))
	if errors.Is(err, store.ErrExists) {
		s.renderAdmin(w, r, http.StatusConflict, "This domain is tracked already.", "", nil)
		return
	}
	if err != nil {
		s.renderAdmin(w, r, http.StatusBadRequest, "Not added: "+err.Error()+".", "", nil)
		return
	}
	s.record(r, v.user.AccountID, "site.add", fmt.Sprintf("site:%d", st.ID), st.Domain)
	s.renderAdmin(w, r, 200, "", fmt.Sprintf("Added %s: put the tracker on its pages to start counting.", st.Domain), nil)
}

// adminSiteSettings sets a site's collection settings; they apply to this
// server's collector at once (to others within collect.SettingsMaxAge).
func (s *Server) adminSiteSettings(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var st store.Site
	if err == nil {
		st, err = s.Accounts.SiteByID(r.Context(), id)
	}
	if err != nil || authz.Decide(v.p, authz.ManageSites, authz.Resource{Kind: authz.Site, Account: st.AccountID, Site: st.ID}) != authz.Allow {
		s.renderAdmin(w, r, http.StatusNotFound, "No such site in this account.", "", nil)
		return
	}
	ranges, err := store.ParseRanges(formValue(r, "ignored"))
	if err != nil {
		s.renderAdmin(w, r, http.StatusBadRequest, "Ignored address ranges of "+st.Domain+": "+err.Error()+".", "", nil)
		return
	}
	if err := s.Accounts.SetSiteSettings(r.Context(), st.ID, formValue(r, "respect_dnt") == "1", ranges); err != nil {
		s.adminResult(w, r, err, "")
		return
	}
	s.record(r, st.AccountID, "site.settings", fmt.Sprintf("site:%d", st.ID), fmt.Sprintf("respect DNT/GPC %v, %d ignored ranges", formValue(r, "respect_dnt") == "1", len(ranges)))
	if s.Collector != nil && s.Collector.Sites != nil {
		if err := s.Collector.Sites.Reload(r.Context()); err != nil {
			s.Log.ErrorContext(r.Context(), "reload sites", "err", err)
		}
	}
	s.renderAdmin(w, r, 200, "", "Settings of "+st.Domain+" saved; they apply to new visits at once.", nil)
}

func (s *Server) adminSettings(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	days, err := strconv.Atoi(formValue(r, "retention"))
	if err != nil || days < 1 || days > 90 {
		s.renderAdmin(w, r, http.StatusBadRequest, "Days to keep a removed person's data: want a whole number from 1 to 90.", "", nil)
		return
	}
	require := formValue(r, "require_second_factor") == "1"
	if err := s.Accounts.SetRequireSecondFactor(r.Context(), v.user.AccountID, require); err != nil {
		s.adminResult(w, r, err, "")
		return
	}
	err = s.Accounts.SetLeaverRetention(r.Context(), v.user.AccountID, days)
	if err == nil {
		s.record(r, v.user.AccountID, "account.settings", fmt.Sprintf("account:%d", v.user.AccountID), fmt.Sprintf("second factor required %v, leaver retention %d days", require, days))
	}
	s.adminResult(w, r, err, "Settings saved.")
}

// PurgeAccounts is the accounts' part of the hourly job: leavers whose
// retention period is over lose their personal data, and sessions and
// links that can no longer be used are deleted.
func (s *Server) PurgeAccounts(ctx context.Context) error {
	n, err := s.Accounts.PurgeLeavers(ctx, s.Now())
	if err != nil {
		return fmt.Errorf("purge leavers: %w", err)
	}
	if n > 0 {
		s.Log.Info("purged the personal data of leavers", "users", n)
	}
	if _, err := s.Auth.Purge(ctx); err != nil {
		return err
	}
	return nil
}
