package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fjord/internal/auth"
	"fjord/internal/authz"
	"fjord/internal/mail/schedule"
	"fjord/internal/store"
)

// The e-mail reports' pages (PRODUCT §6.1): /schedules lists the
// schedules the viewer manages (an Administrator: all of the account; a
// User: those of their own reports) and makes new ones; /schedules/{id}
// changes one and shows its deliveries and bounces. Anything the viewer
// may not manage is 404, as if it did not exist. /unsubscribe/{token} is
// the one-click unsubscribe of RFC 8058.

// withScheduleFields adds the timing fields a new schedule and a
// schedule's page share.
func withScheduleFields(content string) *template.Template {
	return template.Must(pageTemplate(content).Parse(`{{define "timing"}}
<p><label for="frequency">How often</label><br><select id="frequency" name="frequency">
<option value="daily"{{if eq .Frequency "daily"}} selected{{end}}>Daily: the day before</option>
<option value="weekly"{{if eq .Frequency "weekly"}} selected{{end}}>Weekly: the seven days before</option>
<option value="monthly"{{if eq .Frequency "monthly"}} selected{{end}}>Monthly: the month before</option></select></p>
<p><label for="weekday">Weekday <small>(weekly)</small></label><br><select id="weekday" name="weekday"><option value="0"{{if eq .Weekday 0}} selected{{end}}>Sunday</option><option value="1"{{if eq .Weekday 1}} selected{{end}}>Monday</option><option value="2"{{if eq .Weekday 2}} selected{{end}}>Tuesday</option><option value="3"{{if eq .Weekday 3}} selected{{end}}>Wednesday</option><option value="4"{{if eq .Weekday 4}} selected{{end}}>Thursday</option><option value="5"{{if eq .Weekday 5}} selected{{end}}>Friday</option><option value="6"{{if eq .Weekday 6}} selected{{end}}>Saturday</option></select></p>
<p><label for="day">Day of the month <small>(monthly, 1 to 28)</small></label><br><input id="day" name="day" type="number" min="1" max="28" value="{{.Day}}"></p>
<p><label for="hour">Hour <small>(0 to 23, in the site's time zone)</small></label><br><input id="hour" name="hour" type="number" min="0" max="23" value="{{.Hour}}" required></p>
{{end}}`))
}

var schedulesTmpl = withScheduleFields(`{{with .Data}}
{{if .Off}}<p class="notice" role="status">Mail is off on this server: schedules are kept but nothing is sent.</p>{{end}}
<section class="card" aria-labelledby="list-h"><h2 id="list-h">E-mail reports</h2>
<table><thead><tr><th scope="col">Report</th><th scope="col">When</th><th scope="col">Recipients</th><th scope="col">Next</th></tr></thead><tbody>
{{range .Schedules}}<tr><td><a href="/schedules/{{.ID}}">{{.Report}}</a></td><td>{{.When}}</td><td>{{.Recipients}}</td><td>{{.Next}}</td></tr>
{{else}}<tr><td colspan="4">No e-mail reports.</td></tr>{{end}}
</tbody></table></section>
<section class="card" aria-labelledby="new-h"><h2 id="new-h">New e-mail report</h2>
{{if .Reports}}<form method="post" action="/schedules"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<p><label for="report">Saved report</label><br><select id="report" name="report">{{range .Reports}}<option value="{{.URL}}">{{.Label}}</option>{{end}}</select></p>
{{template "timing" .Form}}
<fieldset><legend>Recipients</legend>{{range .Users}}<label><input type="checkbox" name="user" value="{{.Value}}"> {{.Label}}</label><br>{{end}}
{{if .Outside}}<p><label for="outside">Other addresses <small>(one per line)</small></label><br><textarea id="outside" name="outside" rows="3"></textarea></p>{{end}}</fieldset>
<button type="submit">Schedule</button></form>
{{else}}<p>No saved report you may mail: save one from a dashboard first.</p>{{end}}</section>
{{if .Admin}}<section class="card" aria-labelledby="set-h"><h2 id="set-h">Settings of the account</h2>
<form method="post" action="/schedules/settings"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<p><label><input type="checkbox" name="outside" value="1"{{if .Outside}} checked{{end}}> E-mail reports may go to addresses that are not users of the account</label></p>
<p><label for="hard">Stop mailing an address after this many consecutive hard bounces <small>(1 to 10)</small></label><br><input id="hard" name="hard_bounces" type="number" min="1" max="10" value="{{.HardBounces}}" required></p>
<button type="submit">Save</button></form></section>{{end}}
{{end}}`)

var scheduleTmpl = withScheduleFields(`{{with .Data}}
<p><a href="/schedules">E-mail reports</a> · <a href="/reports/{{.ReportID}}">{{.Report}}</a> · {{.Site}} ({{.Zone}})</p>
<section class="card" aria-labelledby="when-h"><h2 id="when-h">{{.When}}</h2>
<p>Next: {{.Next}}{{if .Last}} · last sent {{.Last}}{{end}}</p>
<form method="post" action="/schedules/{{.ID}}/timing"><input type="hidden" name="csrf" value="{{$.CSRF}}">
{{template "timing" .Form}}<button type="submit">Change</button></form></section>
<section class="card" aria-labelledby="rcpt-h"><h2 id="rcpt-h">Recipients</h2>
<table><thead><tr><th scope="col">Address</th><th scope="col">State</th><th scope="col"></th></tr></thead><tbody>
{{range .Recipients}}<tr id="recipient-{{.ID}}"><td>{{.Email}}{{if .User}} (user){{end}}</td><td>{{.State}}</td>
<td><form class="inline" method="post" action="/schedules/{{$.Data.ID}}/recipients/{{.ID}}/remove"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">remove</button></form></td></tr>
{{else}}<tr><td colspan="3">No recipients.</td></tr>{{end}}</tbody></table>
<form method="post" action="/schedules/{{.ID}}/recipients"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<p><label for="add-user">Add a user</label><br><select id="add-user" name="user"><option value="">—</option>{{range .Users}}<option value="{{.Value}}">{{.Label}}</option>{{end}}</select></p>
{{if .Outside}}<p><label for="add-outside">or another address</label><br><input id="add-outside" name="outside" type="email"></p>{{end}}
<button type="submit">Add</button></form></section>
{{if .Soft}}<section class="card" aria-labelledby="soft-h"><h2 id="soft-h">Soft bounces</h2>
<p><small>Temporary trouble (a full mailbox, a delay): the address is still mailed.</small></p>
<ul>{{range .Soft}}<li>{{.}}</li>{{end}}</ul></section>{{end}}
<section class="card" aria-labelledby="del-h"><h2 id="del-h">Deliveries</h2>
<table><thead><tr><th scope="col">Made</th><th scope="col">To</th><th scope="col">Period</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col">Result</th><th scope="col">Bounce</th></tr></thead><tbody>
{{range .Deliveries}}<tr><td>{{.Made}}</td><td>{{.To}}</td><td>{{.Period}}</td><td>{{.Status}}</td><td>{{.Attempts}}</td><td>{{.Detail}}</td><td>{{.Bounce}}</td></tr>
{{else}}<tr><td colspan="7">Nothing sent yet.</td></tr>{{end}}</tbody></table></section>
<form method="post" action="/schedules/{{.ID}}/delete"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">Delete this e-mail report</button></form>
{{end}}`)

type scheduleForm struct {
	Frequency          string
	Weekday, Day, Hour int
}

type scheduleRow struct {
	ID                             int64
	Report, When, Recipients, Next string
}

type schedulesData struct {
	Schedules      []scheduleRow
	Reports        []link
	Users          []option
	Form           scheduleForm
	Admin, Outside bool
	Off            bool
	HardBounces    int
}

type recipientRow struct {
	ID    int64
	Email string
	User  bool
	State string
}

type deliveryRow struct {
	Made, To, Period, Status, Detail, Bounce string
	Attempts                                 int
}

type scheduleData struct {
	ID, ReportID                         int64
	Report, Site, Zone, When, Next, Last string
	Form                                 scheduleForm
	Recipients                           []recipientRow
	Users                                []option
	Outside                              bool
	Soft                                 []string
	Deliveries                           []deliveryRow
}

// mayMail: the schedules pages need the store and a signed-in person.
func (s *Server) mayMail(w http.ResponseWriter, r *http.Request) bool {
	if s.Schedules == nil || viewerOf(r).user.ID == 0 {
		http.NotFound(w, r)
		return false
	}
	return true
}

func (s *Server) schedulesPage(w http.ResponseWriter, r *http.Request) {
	if s.mayMail(w, r) {
		s.renderSchedules(w, r, 200, "", scheduleForm{Frequency: schedule.Weekly, Weekday: int(time.Monday), Day: 1, Hour: 8})
	}
}

func (s *Server) renderSchedules(w http.ResponseWriter, r *http.Request, code int, msg string, form scheduleForm) {
	d, err := s.schedulesData(r.Context(), viewerOf(r))
	if err != nil {
		s.Log.ErrorContext(r.Context(), "schedules", "err", err)
		http.Error(w, "reading the schedules failed", 500)
		return
	}
	d.Form = form
	s.renderPage(w, r, code, schedulesTmpl, pageData{Title: "E-mail reports", Error: msg, Data: d})
}

func (s *Server) schedulesData(ctx context.Context, v *viewer) (schedulesData, error) {
	d := schedulesData{Admin: v.user.Role == store.RoleAdmin, Off: s.Mail == nil}
	var err error
	if d.Outside, err = s.Schedules.OutsideRecipients(ctx, v.user.AccountID); err != nil {
		return d, err
	}
	if d.HardBounces, err = s.Schedules.HardBounces(ctx, v.user.AccountID); err != nil {
		return d, err
	}
	sites, err := s.Accounts.AccountSites(ctx, v.user.AccountID)
	if err != nil {
		return d, err
	}
	names := map[int64]string{}
	for _, site := range sites {
		reps, err := s.Accounts.SavedReports(ctx, site.ID)
		if err != nil {
			return d, err
		}
		for _, rep := range reps {
			if authz.Decide(v.p, authz.ScheduleReport, auth.ReportResource(site, rep)) == authz.Allow {
				names[rep.ID] = site.Domain + ": " + rep.Name
				d.Reports = append(d.Reports, link{Label: names[rep.ID], URL: strconv.FormatInt(rep.ID, 10)})
			}
		}
	}
	scheds, err := s.Schedules.Schedules(ctx, v.user.AccountID)
	if err != nil {
		return d, err
	}
	for _, sc := range scheds {
		if name, ok := names[sc.ReportID]; ok {
			d.Schedules = append(d.Schedules, scheduleRow{ID: sc.ID, Report: name, When: sc.When(), Recipients: strconv.Itoa(len(sc.Recipients)), Next: fmtTime(sc.Next)})
		}
	}
	d.Users, err = s.userOptions(ctx, v, nil, store.Site{})
	return d, err
}

// userOptions lists the people a viewer may choose as recipients: for an
// Administrator everyone of the account; for a User only those who may
// read rep (nil rep: only themselves), so the list tells a User nothing
// of the account they would not know.
func (s *Server) userOptions(ctx context.Context, v *viewer, rep *store.SavedReport, site store.Site) ([]option, error) {
	users, err := s.Accounts.Users(ctx, v.user.AccountID)
	if err != nil {
		return nil, err
	}
	var out []option
	for _, u := range users {
		if !u.Removed.IsZero() || u.Email == "" {
			continue
		}
		if v.user.Role != store.RoleAdmin && u.ID != v.user.ID {
			if rep == nil {
				continue
			}
			p, _, err := s.principal(ctx, u)
			if err != nil {
				return nil, err
			}
			if authz.Decide(p, authz.ReadReport, auth.ReportResource(site, *rep)) != authz.Allow {
				continue
			}
		}
		label := u.Email
		if u.Name != "" {
			label = u.Name + " (" + u.Email + ")"
		}
		out = append(out, option{Value: strconv.FormatInt(u.ID, 10), Label: label})
	}
	return out, nil
}

// decodeTiming reads the timing fields; the error names the field.
func decodeTiming(r *http.Request) (scheduleForm, schedule.Schedule, error) {
	f := scheduleForm{Frequency: formValue(r, "frequency"), Day: 1}
	var errs []string
	num := func(name string, into *int, required bool) {
		v := strings.TrimSpace(formValue(r, name))
		if v == "" && !required {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, name+": want a whole number")
			return
		}
		*into = n
	}
	num("weekday", &f.Weekday, false)
	num("day", &f.Day, false)
	num("hour", &f.Hour, true)
	sc := schedule.Schedule{Frequency: f.Frequency, Weekday: time.Weekday(f.Weekday), Day: f.Day, Hour: f.Hour}
	if len(errs) > 0 {
		return f, sc, errors.New(strings.Join(errs, "; "))
	}
	return f, sc, sc.Check()
}

// recipientsOf reads the recipients of a form: users of the account
// (who must read the report) and outside addresses (where allowed).
func (s *Server) recipientsOf(ctx context.Context, r *http.Request, accountID int64, rep store.SavedReport, site store.Site) ([]schedule.Recipient, error) {
	var out []schedule.Recipient
	for _, v := range r.PostForm["user"] {
		if v == "" {
			continue
		}
		id, err := strconv.ParseInt(v, 10, 64)
		var u store.User
		if err == nil {
			u, err = s.Accounts.UserByID(ctx, id)
		}
		if err != nil || u.AccountID != accountID || !u.Removed.IsZero() || u.Email == "" {
			return nil, errors.New("user: not a person of this account")
		}
		p, _, err := s.principal(ctx, u)
		if err != nil {
			return nil, err
		}
		if authz.Decide(p, authz.ReadReport, auth.ReportResource(site, rep)) != authz.Allow {
			return nil, errors.New("user: someone chosen may not read this report (an Administrator can grant it)")
		}
		out = append(out, schedule.Recipient{UserID: u.ID, Email: u.Email})
	}
	outside := strings.FieldsFunc(formValue(r, "outside"), func(c rune) bool { return c == '\n' || c == '\r' || c == ',' })
	var addrs []string
	for _, a := range outside {
		if strings.TrimSpace(a) != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) > 0 {
		allow, err := s.Schedules.OutsideRecipients(ctx, accountID)
		if err != nil {
			return nil, err
		}
		if !allow {
			return nil, errors.New("outside: this account mails e-mail reports only to its users (an Administrator can change that)")
		}
	}
	for _, a := range addrs {
		addr, err := schedule.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("outside: %v", err)
		}
		if u, err := s.Accounts.UserByEmail(ctx, addr); err == nil && u.AccountID == accountID {
			return nil, fmt.Errorf("outside: %s is a user of the account: choose them as a user", addr)
		}
		out = append(out, schedule.Recipient{Email: addr})
	}
	if len(out) > schedule.MaxRecipients {
		return nil, fmt.Errorf("recipients: at most %d", schedule.MaxRecipients)
	}
	return out, nil
}

func (s *Server) scheduleCreate(w http.ResponseWriter, r *http.Request) {
	if !s.mayMail(w, r) {
		return
	}
	ctx := r.Context()
	v := viewerOf(r)
	form, sc, err := decodeTiming(r)
	if err != nil {
		s.renderSchedules(w, r, http.StatusBadRequest, "The e-mail report was not scheduled: "+err.Error()+".", form)
		return
	}
	id, perr := strconv.ParseInt(formValue(r, "report"), 10, 64)
	rep, site, err := s.reportByID(ctx, id)
	if perr != nil || errors.Is(err, store.ErrNotFound) || (err == nil && (site.AccountID != v.user.AccountID ||
		authz.Decide(v.p, authz.ScheduleReport, auth.ReportResource(site, rep)) != authz.Allow)) {
		s.renderSchedules(w, r, http.StatusBadRequest, "The e-mail report was not scheduled: report: not one you may mail.", form)
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "schedule", "err", err)
		http.Error(w, "scheduling failed", 500)
		return
	}
	rcpts, err := s.recipientsOf(ctx, r, v.user.AccountID, rep, site)
	if err == nil && len(rcpts) == 0 {
		err = errors.New("recipients: choose at least one")
	}
	if err != nil {
		s.renderSchedules(w, r, http.StatusBadRequest, "The e-mail report was not scheduled: "+err.Error()+".", form)
		return
	}
	loc, _ := time.LoadLocation(site.TimeZone)
	sc.AccountID, sc.ReportID, sc.CreatedBy, sc.Created, sc.Recipients = v.user.AccountID, rep.ID, v.user.ID, s.now(), rcpts
	sc.Next = sc.NextAfter(s.now(), loc)
	sc, err = s.Schedules.CreateSchedule(ctx, sc)
	if errors.Is(err, store.ErrExists) {
		s.renderSchedules(w, r, http.StatusBadRequest, "The e-mail report was not scheduled: recipients: each one once.", form)
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "schedule", "err", err)
		http.Error(w, "scheduling failed", 500)
		return
	}
	s.record(r, v.user.AccountID, "schedule.create", fmt.Sprintf("schedule:%d", sc.ID), fmt.Sprintf("report:%d, %s, %d recipients", rep.ID, sc.When(), len(rcpts)))
	http.Redirect(w, r, fmt.Sprintf("/schedules/%d", sc.ID), http.StatusSeeOther)
}

func (s *Server) scheduleSettings(w http.ResponseWriter, r *http.Request) {
	if !s.mayMail(w, r) {
		return
	}
	v := viewerOf(r)
	if authz.Decide(v.p, authz.ManageAccount, authz.Resource{Kind: authz.Account, Account: v.user.AccountID}) != authz.Allow {
		http.NotFound(w, r)
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(formValue(r, "hard_bounces")))
	if err != nil || n < 1 || n > 10 {
		s.renderSchedules(w, r, http.StatusBadRequest, "Not saved: hard_bounces: want 1 to 10.", scheduleForm{Frequency: schedule.Weekly, Day: 1, Hour: 8})
		return
	}
	outside := formValue(r, "outside") == "1"
	ctx := r.Context()
	if err := s.Schedules.SetOutsideRecipients(ctx, v.user.AccountID, outside); err == nil {
		err = s.Schedules.SetHardBounces(ctx, v.user.AccountID, n)
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "schedule settings", "err", err)
		http.Error(w, "saving failed", 500)
		return
	}
	s.record(r, v.user.AccountID, "schedule.settings", fmt.Sprintf("account:%d", v.user.AccountID), fmt.Sprintf("outside recipients %v, suppress after %d hard bounces", outside, n))
	http.Redirect(w, r, "/schedules", http.StatusSeeOther)
}

// managedSchedule is the schedule of the path's {id} if the viewer may
// manage it; anyone else gets 404.
func (s *Server) managedSchedule(w http.ResponseWriter, r *http.Request) (schedule.Schedule, store.SavedReport, store.Site, bool) {
	if !s.mayMail(w, r) {
		return schedule.Schedule{}, store.SavedReport{}, store.Site{}, false
	}
	ctx := r.Context()
	v := viewerOf(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var sc schedule.Schedule
	if err == nil {
		sc, err = s.Schedules.Schedule(ctx, id)
	}
	var rep store.SavedReport
	var site store.Site
	if err == nil {
		rep, site, err = s.reportByID(ctx, sc.ReportID)
	}
	switch {
	case err == nil && sc.AccountID == v.user.AccountID && authz.Decide(v.p, authz.ScheduleReport, auth.ReportResource(site, rep)) == authz.Allow:
		return sc, rep, site, true
	case err == nil, errors.Is(err, store.ErrNotFound), errors.Is(err, strconv.ErrSyntax), errors.Is(err, strconv.ErrRange):
		http.NotFound(w, r)
	default:
		s.Log.ErrorContext(r.Context(), "schedule", "err", err)
		http.Error(w, "reading the schedule failed", 500)
	}
	return sc, rep, site, false
}

func (s *Server) schedulePage(w http.ResponseWriter, r *http.Request) {
	if sc, rep, site, ok := s.managedSchedule(w, r); ok {
		s.renderSchedule(w, r, 200, "", "", sc, rep, site)
	}
}

func (s *Server) renderSchedule(w http.ResponseWriter, r *http.Request, code int, msg, notice string, sc schedule.Schedule, rep store.SavedReport, site store.Site) {
	d, err := s.scheduleData(r.Context(), viewerOf(r), sc, rep, site)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "schedule", "err", err)
		http.Error(w, "reading the schedule failed", 500)
		return
	}
	s.renderPage(w, r, code, scheduleTmpl, pageData{Title: "E-mail report: " + rep.Name, Error: msg, Notice: notice, Data: d})
}

func (s *Server) scheduleData(ctx context.Context, v *viewer, sc schedule.Schedule, rep store.SavedReport, site store.Site) (scheduleData, error) {
	d := scheduleData{ID: sc.ID, ReportID: rep.ID, Report: rep.Name, Site: site.Domain, Zone: site.TimeZone, When: sc.When(),
		Next: fmtTime(sc.Next), Form: scheduleForm{Frequency: sc.Frequency, Weekday: int(sc.Weekday), Day: max(sc.Day, 1), Hour: sc.Hour}}
	if !sc.Last.IsZero() {
		d.Last = fmtTime(sc.Last)
	}
	var err error
	if d.Outside, err = s.Schedules.OutsideRecipients(ctx, sc.AccountID); err != nil {
		return d, err
	}
	emails := map[int64]string{}
	for _, rc := range sc.Recipients {
		emails[rc.ID] = rc.Email
		row := recipientRow{ID: rc.ID, Email: rc.Email, User: rc.UserID != 0, State: "subscribed"}
		if !rc.Unsubscribed.IsZero() {
			row.State = "unsubscribed " + fmtTime(rc.Unsubscribed)
		} else if sup, err := s.Schedules.IsSuppressed(ctx, sc.AccountID, store.NormalizeEmail(rc.Email)); err != nil {
			return d, err
		} else if sup {
			row.State = "bouncing: not mailed"
		}
		d.Recipients = append(d.Recipients, row)
	}
	ds, err := s.Schedules.Deliveries(ctx, sc.ID, 50)
	if err != nil {
		return d, err
	}
	for _, x := range ds {
		to := emails[x.RecipientID]
		if to == "" {
			to = x.Email
		}
		row := deliveryRow{Made: fmtTime(x.Created), To: to, Period: x.From.Format(time.DateOnly) + " – " + x.To.Add(-time.Second).Format(time.DateOnly),
			Status: x.Status, Attempts: x.Attempts, Detail: x.Detail}
		if x.Bounce != "" {
			row.Bounce = x.Bounce + ": " + x.BounceWhy
		}
		if x.Bounce == schedule.BounceSoft {
			d.Soft = append(d.Soft, fmt.Sprintf("%s, %s: %s", fmtTime(x.BounceAt), to, x.BounceWhy))
		}
		d.Deliveries = append(d.Deliveries, row)
	}
	d.Users, err = s.userOptions(ctx, v, &rep, site)
	return d, err
}

func (s *Server) scheduleTiming(w http.ResponseWriter, r *http.Request) {
	sc, rep, site, ok := s.managedSchedule(w, r)
	if !ok {
		return
	}
	_, nsc, err := decodeTiming(r)
	if err != nil {
		s.renderSchedule(w, r, http.StatusBadRequest, "Not changed: "+err.Error()+".", "", sc, rep, site)
		return
	}
	loc, _ := time.LoadLocation(site.TimeZone)
	sc.Frequency, sc.Weekday, sc.Day, sc.Hour = nsc.Frequency, nsc.Weekday, nsc.Day, nsc.Hour
	sc.Next = sc.NextAfter(s.now(), loc)
	if err := s.Schedules.SetScheduleTiming(r.Context(), sc); err != nil {
		s.Log.ErrorContext(r.Context(), "schedule timing", "err", err)
		http.Error(w, "saving failed", 500)
		return
	}
	s.record(r, sc.AccountID, "schedule.change", fmt.Sprintf("schedule:%d", sc.ID), sc.When())
	s.renderSchedule(w, r, 200, "", "Changed: the next mail goes "+fmtTime(sc.Next)+".", sc, rep, site)
}

func (s *Server) scheduleAddRecipient(w http.ResponseWriter, r *http.Request) {
	sc, rep, site, ok := s.managedSchedule(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	rcpts, err := s.recipientsOf(ctx, r, sc.AccountID, rep, site)
	if err == nil && len(rcpts) != 1 {
		err = errors.New("recipient: choose one user or one address")
	}
	if err == nil && len(sc.Recipients) >= schedule.MaxRecipients {
		err = fmt.Errorf("recipients: at most %d", schedule.MaxRecipients)
	}
	if err != nil {
		s.renderSchedule(w, r, http.StatusBadRequest, "Not added: "+err.Error()+".", "", sc, rep, site)
		return
	}
	rc := rcpts[0]
	rc.ScheduleID = sc.ID
	rc, err = s.Schedules.AddRecipient(ctx, rc)
	if errors.Is(err, store.ErrExists) {
		s.renderSchedule(w, r, http.StatusConflict, "Not added: the recipient is on the schedule already.", "", sc, rep, site)
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "schedule recipient", "err", err)
		http.Error(w, "saving failed", 500)
		return
	}
	s.record(r, sc.AccountID, "schedule.recipient.add", fmt.Sprintf("schedule:%d", sc.ID), fmt.Sprintf("recipient %d (%s)", rc.ID, recipientKind(rc)))
	sc, _ = s.Schedules.Schedule(ctx, sc.ID)
	s.renderSchedule(w, r, 200, "", "Added.", sc, rep, site)
}

func recipientKind(rc schedule.Recipient) string {
	if rc.UserID != 0 {
		return fmt.Sprintf("user %d", rc.UserID)
	}
	return "an outside address"
}

func (s *Server) scheduleRemoveRecipient(w http.ResponseWriter, r *http.Request) {
	sc, rep, site, ok := s.managedSchedule(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("rid"), 10, 64)
	if err == nil {
		err = s.Schedules.RemoveRecipient(r.Context(), sc.ID, id)
	}
	if err != nil {
		http.NotFound(w, r)
		return
	}
	s.record(r, sc.AccountID, "schedule.recipient.remove", fmt.Sprintf("schedule:%d", sc.ID), fmt.Sprintf("recipient %d", id))
	sc, _ = s.Schedules.Schedule(r.Context(), sc.ID)
	s.renderSchedule(w, r, 200, "", "Removed.", sc, rep, site)
}

func (s *Server) scheduleDelete(w http.ResponseWriter, r *http.Request) {
	sc, _, _, ok := s.managedSchedule(w, r)
	if !ok {
		return
	}
	if err := s.Schedules.DeleteSchedule(r.Context(), sc.ID); err != nil {
		s.Log.ErrorContext(r.Context(), "schedule delete", "err", err)
		http.Error(w, "deleting failed", 500)
		return
	}
	s.record(r, sc.AccountID, "schedule.delete", fmt.Sprintf("schedule:%d", sc.ID), fmt.Sprintf("report:%d", sc.ReportID))
	http.Redirect(w, r, "/schedules", http.StatusSeeOther)
}

var unsubscribeTmpl = pageTemplate(`{{with .Data}}<section class="card"><h2>Unsubscribe</h2>
{{if .Done}}<p>You will no longer receive the e-mail report “{{.Report}}”.</p>
{{else}}<p>Stop receiving the e-mail report “{{.Report}}” at this address?</p>
<form method="post" action="/unsubscribe/{{.Token}}"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>{{end}}
</section>{{end}}`)

type unsubscribeData struct {
	Report, Token string
	Done          bool
}

// unsubscribeTarget finds the recipient a token names (false: forged,
// damaged, or the schedule is gone).
func (s *Server) unsubscribeTarget(ctx context.Context, tok string) (schedule.Schedule, schedule.Recipient, store.SavedReport, bool) {
	if s.Schedules == nil {
		return schedule.Schedule{}, schedule.Recipient{}, store.SavedReport{}, false
	}
	key, err := s.mailKey(ctx)
	if err != nil {
		return schedule.Schedule{}, schedule.Recipient{}, store.SavedReport{}, false
	}
	ids, ok := schedule.ParseToken(key, "unsubscribe", tok)
	if !ok {
		return schedule.Schedule{}, schedule.Recipient{}, store.SavedReport{}, false
	}
	sc, err := s.Schedules.Schedule(ctx, ids.Schedule)
	if err != nil {
		return sc, schedule.Recipient{}, store.SavedReport{}, false
	}
	rep, _, err := s.reportByID(ctx, sc.ReportID)
	for _, rc := range sc.Recipients {
		if rc.ID == ids.Recipient && err == nil {
			return sc, rc, rep, true
		}
	}
	return sc, schedule.Recipient{}, rep, false
}

// unsubscribeForm: a GET only asks (mail scanners follow links).
func (s *Server) unsubscribeForm(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	_, rc, rep, ok := s.unsubscribeTarget(r.Context(), tok)
	if !ok {
		http.Error(w, "This unsubscribe link is not valid, or its e-mail report no longer exists.", http.StatusNotFound)
		return
	}
	s.renderPage(w, r, 200, unsubscribeTmpl, pageData{Title: "Unsubscribe", Data: unsubscribeData{Report: rep.Name, Token: tok, Done: !rc.Unsubscribed.IsZero()}})
}

// unsubscribe is the one-click POST of RFC 8058 (a mail client sends
// List-Unsubscribe=One-Click, without cookies) and the page's button.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	ctx := r.Context()
	sc, rc, rep, ok := s.unsubscribeTarget(ctx, tok)
	if !ok {
		http.Error(w, "This unsubscribe link is not valid, or its e-mail report no longer exists.", http.StatusNotFound)
		return
	}
	// RFC 8058 asks mail clients for multipart/form-data; browsers and
	// many clients send a URL-encoded form
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	var err error
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		err = r.ParseMultipartForm(4096)
	} else {
		err = r.ParseForm()
	}
	if err != nil || r.PostForm.Get("List-Unsubscribe") != "One-Click" {
		http.Error(w, "List-Unsubscribe: want One-Click (RFC 8058)", http.StatusBadRequest)
		return
	}
	done, err := s.Schedules.Unsubscribe(ctx, rc.ID, s.now())
	if err != nil {
		s.Log.ErrorContext(r.Context(), "unsubscribe", "err", err)
		http.Error(w, "unsubscribing failed; try again", 500)
		return
	}
	if done {
		s.recordAs(r, "recipient", sc.AccountID, "schedule.unsubscribe", fmt.Sprintf("schedule:%d", sc.ID), fmt.Sprintf("recipient %d (%s)", rc.ID, recipientKind(rc)))
	}
	s.renderPage(w, r, 200, unsubscribeTmpl, pageData{Title: "Unsubscribed", Data: unsubscribeData{Report: rep.Name, Done: true}})
}
