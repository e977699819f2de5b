package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"fjord/internal/secmon"
	"fjord/internal/staff"
	"fjord/internal/store"
)

// Incidents in the staff console (PRODUCT §8.3): the DPO opens an incident
// for one or more accounts (their main contacts and Administrators are
// mailed at once), adds updates and closes it; each step is in the
// incident's timeline, which the customers read at /incidents. Anyone
// else on the staff gets the 404 of a page that does not exist.

var staffIncidentsTmpl = staffTemplate(`{{with .Data}}
<section class="card"><h2>Open an incident</h2>
<form class="stack" method="post" action="/staff/incidents"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<fieldset><legend>Affected accounts</legend>{{range .Accounts}}<label><input type="checkbox" name="account" value="{{.ID}}"> {{.Name}} (#{{.ID}})</label>{{end}}</fieldset>
<label for="title">Title</label><input id="title" name="title" required maxlength="200">
<label for="description">What happened, what it means for them, what we do</label><textarea id="description" name="description" rows="6" required></textarea>
<button type="submit">Open and inform the accounts</button></form></section>
{{range .Incidents}}<section class="card" id="incident-{{.ID}}"><h2>{{.Name}}: {{.Title}}{{if not .Closed.IsZero}} (closed){{end}}</h2>
<p>Accounts: {{range .Accounts}}#{{.}} {{end}}</p>
<ol>{{range .Entries}}<li>{{.Time.Format "2006-01-02 15:04"}} UTC, {{.Kind}} by {{.By}}: {{.Text}}</li>{{end}}</ol>
{{if .Closed.IsZero}}<form class="stack" method="post" action="/staff/incidents/{{.ID}}/update"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<label for="text-{{.ID}}">Update</label><textarea id="text-{{.ID}}" name="text" rows="3" required></textarea>
<button type="submit" name="close" value="">Add update</button> <button type="submit" name="close" value="1">Close with this</button></form>{{end}}</section>
{{end}}{{end}}`)

type staffIncidentsData struct {
	Accounts  []store.Account
	Incidents []secmon.Incident
}

// staffDPO is the console member if they are the DPO, else it answered
// 404.
func (s *Server) staffDPO(w http.ResponseWriter, r *http.Request) (staff.Member, bool) {
	sv := staffViewerOf(r)
	if sv.member.Role != staff.DPO || s.Security == nil {
		http.NotFound(w, r)
		return staff.Member{}, false
	}
	return sv.member, true
}

func (s *Server) staffIncidents(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.staffDPO(w, r); ok {
		s.renderStaffIncidents(w, r, 200, "", "")
	}
}

func (s *Server) renderStaffIncidents(w http.ResponseWriter, r *http.Request, code int, msg, notice string) {
	accs, err := s.Accounts.Accounts(r.Context())
	var incs []secmon.Incident
	if err == nil {
		incs, err = s.Security.Store.Incidents(r.Context(), 0)
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "staff incidents", "err", err)
		http.Error(w, "reading the incidents failed", 500)
		return
	}
	s.renderStaff(w, r, code, staffIncidentsTmpl, staffPage{Title: "Incidents", Error: msg, Notice: notice, Data: staffIncidentsData{Accounts: accs, Incidents: incs}})
}

func (s *Server) staffOpenIncident(w http.ResponseWriter, r *http.Request) {
	m, ok := s.staffDPO(w, r)
	if !ok {
		return
	}
	var accounts []int64
	for _, v := range r.PostForm["account"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.renderStaffIncidents(w, r, http.StatusBadRequest, fmt.Sprintf("%q is not an account id.", truncate(v, 40)), "")
			return
		}
		accounts = append(accounts, id)
	}
	inc, err := s.Security.OpenIncident(r.Context(), staffActorName(m), accounts, formValue(r, "title"), formValue(r, "description"))
	if s.staffIncidentError(w, r, err) {
		return
	}
	s.renderStaffIncidents(w, r, http.StatusCreated, "", fmt.Sprintf("%s opened; the accounts' main contacts and Administrators are being mailed.", inc.Name()))
}

func (s *Server) staffIncidentUpdate(w http.ResponseWriter, r *http.Request) {
	m, ok := s.staffDPO(w, r)
	if !ok {
		return
	}
	id, err := secmon.ParseIncidentID(r.PathValue("id"))
	if err != nil {
		s.renderStaffIncidents(w, r, http.StatusNotFound, "No such incident.", "")
		return
	}
	var inc secmon.Incident
	if formValue(r, "close") == "1" {
		inc, err = s.Security.CloseIncident(r.Context(), id, staffActorName(m), formValue(r, "text"))
	} else {
		inc, err = s.Security.UpdateIncident(r.Context(), id, staffActorName(m), formValue(r, "text"))
	}
	if s.staffIncidentError(w, r, err) {
		return
	}
	s.renderStaffIncidents(w, r, 200, "", inc.Name()+" updated; the accounts are being mailed.")
}

func (s *Server) staffIncidentError(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, secmon.ErrBadIncident):
		s.renderStaffIncidents(w, r, http.StatusBadRequest, err.Error()+".", "")
	case errors.Is(err, store.ErrNotFound):
		s.renderStaffIncidents(w, r, http.StatusNotFound, "No such incident or account.", "")
	case errors.Is(err, store.ErrConflict):
		s.renderStaffIncidents(w, r, http.StatusConflict, "The incident is closed: it takes no more entries.", "")
	default:
		s.Log.ErrorContext(r.Context(), "staff incident", "err", err)
		http.Error(w, "recording the incident failed", 500)
	}
	return true
}
