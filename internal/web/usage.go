package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"slices"

	"fjord/internal/export"
	"fjord/internal/usage"
)

// Usage (PRODUCT §9.3): an account's Administrators see their account's
// use of the last 30 days on /admin/usage, operator staff every account's
// on the tooling page. Counts only: no visitor data, so staff need no
// grant to see them.

// usageDays is how many UTC days the pages show, today included.
const usageDays = 30

var usageTmpl = template.Must(pageTemplate(`{{with .Data}}
<p><a href="/admin">Administration</a> · Usage</p>
<section class="card"><h2>Usage, {{.From}} to {{.To}}</h2>
<p>Events accepted for each site, Stats API calls made with the account's keys, and exports of report data (downloads and API answers), by UTC day. The same counts are what the operator sees. Counts reach this page within seconds.</p>
{{template "usagetable" .}}</section>
<section class="card"><h2>By day</h2>
<table class="admin" id="usage-days"><thead><tr><th scope="col">Day (UTC)</th><th scope="col">Events accepted</th><th scope="col">API calls</th><th scope="col">Exports</th></tr></thead><tbody>
{{range .Days}}<tr><td>{{.Day}}</td><td>{{.Events}}</td><td>{{.APICalls}}</td><td>{{.Exports}}</td></tr>
{{end}}</tbody></table></section>{{end}}`).Parse(usageTableTmpl))

// usageTableTmpl is the table by account and site, shared by the
// Administrators' page and the staff console.
const usageTableTmpl = `{{define "usagetable"}}<table class="admin" id="usage"><thead><tr>{{if .Staff}}<th scope="col">Account</th>{{end}}<th scope="col">Site</th><th scope="col">Events accepted</th><th scope="col">API calls</th><th scope="col">Exports</th></tr></thead><tbody>
{{range .Rows}}<tr>{{if $.Staff}}<td>{{.Account}}</td>{{end}}<td>{{.Site}}</td><td>{{.Events}}</td><td>{{.APICalls}}</td><td>{{.Exports}}</td></tr>
{{else}}<tr><td colspan="{{if .Staff}}5{{else}}4{{end}}">Nothing used in these days.</td></tr>{{end}}</tbody>
{{if .Rows}}<tfoot>{{range .Totals}}<tr>{{if $.Staff}}<th scope="row">{{.Account}}</th>{{end}}<th scope="row">{{.Site}}</th><td>{{.Events}}</td><td>{{.APICalls}}</td><td>{{.Exports}}</td></tr>{{end}}</tfoot>{{end}}</table>{{end}}`

// usageRow is a row of the table, its numbers written out.
type usageRow struct {
	Account, Site, Day        string
	Events, APICalls, Exports string
}

type usageData struct {
	From, To string
	Staff    bool
	Rows     []usageRow // by account and site
	Totals   []usageRow // each account's, or the total of all
	Days     []usageRow // newest first
}

func usageNumbers(r *usageRow, t usage.Totals) {
	r.Events, r.APICalls, r.Exports = export.Thousands(t.Events), export.Thousands(t.APICalls), export.Thousands(t.Exports)
}

// usageOf reads the last usageDays days of an account (0: all of them)
// and names the rows' sites (and, for all, their accounts).
func (s *Server) usageOf(ctx context.Context, account int64) (usageData, error) {
	to := s.Now()
	rep, err := usage.Read(ctx, s.Usage, account, to.AddDate(0, 0, 1-usageDays), to)
	if err != nil {
		return usageData{}, err
	}
	d := usageData{From: rep.From, To: rep.To, Staff: account == 0}
	sites, err := s.Accounts.Sites(ctx)
	if err != nil {
		return d, err
	}
	siteName := map[int64]string{0: "Stats API (not of one site)"}
	for _, st := range sites {
		siteName[st.ID] = st.Domain
	}
	accName := map[int64]string{0: "(no account)"}
	if d.Staff {
		accs, err := s.Accounts.Accounts(ctx)
		if err != nil {
			return d, err
		}
		for _, a := range accs {
			accName[a.ID] = fmt.Sprintf("%s (#%d)", a.Name, a.ID)
		}
	}
	name := func(m map[int64]string, id int64, what string) string {
		if n, ok := m[id]; ok {
			return n
		}
		return fmt.Sprintf("%s #%d (removed)", what, id)
	}
	var accounts []int64
	for _, r := range rep.Rows {
		row := usageRow{Account: name(accName, r.Account, "account"), Site: name(siteName, r.Site, "site")}
		usageNumbers(&row, r.Totals)
		d.Rows = append(d.Rows, row)
		if len(accounts) == 0 || accounts[len(accounts)-1] != r.Account {
			accounts = append(accounts, r.Account)
		}
	}
	for _, a := range accounts {
		row := usageRow{Account: name(accName, a, "account"), Site: "All sites"}
		usageNumbers(&row, rep.Accounts[a])
		d.Totals = append(d.Totals, row)
	}
	for _, day := range slices.Backward(rep.Days) {
		row := usageRow{Day: day.Day}
		usageNumbers(&row, day.Totals)
		d.Days = append(d.Days, row)
	}
	return d, nil
}

func (s *Server) usagePage(w http.ResponseWriter, r *http.Request) {
	if s.Usage == nil {
		http.NotFound(w, r)
		return
	}
	d, err := s.usageOf(r.Context(), viewerOf(r).user.AccountID)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "usage page", "err", err)
		http.Error(w, "reading the usage failed", 500)
		return
	}
	s.renderPage(w, r, 200, usageTmpl, pageData{Title: "Usage", Data: d})
}
