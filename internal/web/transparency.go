package web

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fjord/internal/audit"
	"fjord/internal/export"
	"fjord/internal/staff"
)

// Access transparency (PRODUCT §7.5): an account's Administrators see
// every staff access to their account, from the audit log (so nothing can
// be left out that is in it), with who did it (name and role), when, what,
// and why (the grant's reason, scope and approver); newest first, and as
// CSV.

// staffAccessLog is what the page reads: the account store's audit
// entries under grants.
type staffAccessLog interface {
	StaffAccess(ctx context.Context, account int64, limit int) ([]audit.Entry, error)
}

// maxAccessRows bounds one page and one download.
const maxAccessRows = 5000

type accessRow struct {
	When, Who, Role, What, Where, Why, Grant, Approved string
	Seq                                                int64
}

func (s *Server) staffAccessRows(ctx context.Context, account int64) ([]accessRow, error) {
	src, ok := s.Accounts.(staffAccessLog)
	if !ok || s.Staff == nil {
		return nil, nil
	}
	entries, err := src.StaffAccess(ctx, account, maxAccessRows)
	if err != nil {
		return nil, err
	}
	members := map[int64]staff.Member{}
	member := func(id int64) staff.Member {
		if m, ok := members[id]; ok {
			return m
		}
		m, err := s.Staff.Store.Staff(ctx, id)
		if err != nil {
			m = staff.Member{ID: id, Email: fmt.Sprintf("staff member %d", id)}
		}
		members[id] = m
		return m
	}
	grants := map[int64]staff.Grant{}
	var rows []accessRow
	for _, e := range entries {
		g, ok := grants[e.Grant]
		if !ok {
			g, err = s.Staff.Store.StaffGrant(ctx, e.Grant)
			if err != nil {
				return nil, fmt.Errorf("grant %d of audit entry %d: %w", e.Grant, e.Seq, err)
			}
			grants[e.Grant] = g
		}
		id, _ := strconv.ParseInt(strings.TrimPrefix(e.Actor, "staff:"), 10, 64)
		m := member(id)
		who := m.Name
		if who == "" {
			who = m.Email
		}
		row := accessRow{Seq: e.Seq, When: e.Time.UTC().Format("2006-01-02 15:04:05") + " UTC", Who: who, Role: string(m.Role),
			What: e.Action, Where: e.Target, Why: g.Reason,
			Grant: fmt.Sprintf("#%d, %s, %v", g.ID, g.Scope, g.Duration)}
		if e.Detail != "" {
			row.What += ": " + e.Detail
		}
		if g.ApprovedBy != 0 {
			a := member(g.ApprovedBy)
			row.Approved = fmt.Sprintf("%s (%s), %s", a.Email, a.Role, g.Approved.Format(time.RFC3339))
		}
		rows = append(rows, row)
	}
	return rows, nil
}

var accessTmpl = pageTemplate(`{{with .Data}}<section class="card"><h2>Staff access to this account</h2>
<p>Every access of our staff to your account, from the tamper-evident audit log: who, when, what and why, and the access grant it happened under (asked for with a reason, approved by a second person, limited in time). Newest first. <a href="/admin/staff-access.csv">Download as CSV</a></p>
<table class="admin" id="staff-access"><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Why</th><th scope="col">Grant</th><th scope="col">Approved by</th></tr></thead><tbody>
{{range .}}<tr id="access-{{.Seq}}"><td>{{.When}}</td><td>{{.Who}} ({{.Role}})</td><td>{{.What}}<br><small>{{.Where}}</small></td><td>{{.Why}}</td><td>{{.Grant}}</td><td>{{.Approved}}</td></tr>
{{else}}<tr><td colspan="6">No staff member has accessed this account.</td></tr>{{end}}</tbody></table></section>{{end}}`)

// accessRowsOf reads the viewer's account's rows, or answers the error.
func (s *Server) accessRowsOf(w http.ResponseWriter, r *http.Request) ([]accessRow, bool) {
	rows, err := s.staffAccessRows(r.Context(), viewerOf(r).user.AccountID)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "staff access", "err", err)
		http.Error(w, "reading the staff access failed", 500)
		return nil, false
	}
	return rows, true
}

func (s *Server) staffAccessPage(w http.ResponseWriter, r *http.Request) {
	rows, ok := s.accessRowsOf(w, r)
	if !ok {
		return
	}
	s.renderPage(w, r, 200, accessTmpl, pageData{Title: "Staff access", Data: rows})
}

func (s *Server) staffAccessCSV(w http.ResponseWriter, r *http.Request) {
	rows, ok := s.accessRowsOf(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="staff-access.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"entry", "time", "who", "role", "what", "where", "why", "grant", "approved by"})
	for _, x := range rows {
		rec := []string{strconv.FormatInt(x.Seq, 10), x.When, x.Who, x.Role, x.What, x.Where, x.Why, x.Grant, x.Approved}
		for i := range rec {
			rec[i] = export.SafeCell(rec[i])
		}
		cw.Write(rec)
	}
	cw.Flush()
}
