package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fjord/internal/auth"
	"fjord/internal/authz"
	"fjord/internal/export"
	"fjord/internal/report"
	"fjord/internal/store"
)

// Saved reports in the UI (PRODUCT §2.7, §3.3): /reports/{id} shows one
// to whoever authz lets read it (its site's readers, a User granted just
// this report, its owner while the site is granted) and downloads it as
// CSV or JSON; anyone else, and any id that does not exist, gets 404.

var reportTmpl = pageTemplate(`{{with .Data}}
<p><a href="/">Sites and reports</a> · {{.Site}} · {{.Range}}</p>
<nav class="periods" aria-label="Period">{{range .Periods}}<a href="{{.URL}}"{{if .Active}} aria-current="page"{{end}}>{{.Label}}</a>{{end}}
<a href="{{.CSV}}">CSV</a> <a href="{{.JSON}}">JSON</a></nav>
<section class="card"><table id="report-table"><thead><tr>{{range .Head}}<th scope="col">{{.}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{else}}<tr><td colspan="{{len .Head}}">Nothing in this period.</td></tr>{{end}}
</tbody></table></section>{{end}}`)

type reportPage struct {
	Site, Range, CSV, JSON string
	Periods                []link
	Head                   []string
	Rows                   [][]string
}

type link struct {
	Label, URL string
	Active     bool
}

// reportPeriods are the periods the page offers; the definition's own is
// used when none is chosen.
var reportPeriods = []string{"today", "7d", "30d", "month", "6mo", "12mo"}

// readableReport finds the report of the path's {id} if the viewer may
// read it, with its site.
func (s *Server) readableReport(ctx context.Context, v *viewer, idText string) (store.SavedReport, store.Site, bool, error) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		return store.SavedReport{}, store.Site{}, false, nil
	}
	rep, site, err := s.reportByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return rep, site, false, nil
	}
	if err != nil {
		return rep, site, false, err
	}
	return rep, site, authz.Decide(v.p, authz.ReadReport, auth.ReportResource(site, rep)) == authz.Allow, nil
}

// reportAnswer is a saved report's answer for a period: its query, its
// columns, and its rows handed out one at a time.
type reportAnswer struct {
	q             *report.Query
	dims, metrics []string
	// paged: the definition asks for a page of rows (pagination);
	// otherwise q has the page's default limit, which downloads lift
	paged bool
	rows  func(ctx context.Context, emit func(report.Row) error) error
}

// reportSource builds a saved report's answer for a date range (a
// Stats API date_range; nil for the report's own); nothing is read until
// its rows are asked for. A *report.QueryError is the date range's.
func (s *Server) reportSource(ctx context.Context, rep store.SavedReport, site store.Site, dateRange json.RawMessage) (reportAnswer, error) {
	def, err := report.DecodeDefinition([]byte(rep.Definition))
	if err != nil {
		return reportAnswer{}, fmt.Errorf("the saved report's definition is damaged: %v", err)
	}
	def.SiteID = site.Domain
	if dateRange != nil {
		def.DateRange = dateRange
	}
	goals, err := s.Accounts.Goals(ctx, site.ID)
	if err != nil {
		return reportAnswer{}, err
	}
	q, err := def.Build(site, goals, s.Now())
	if err != nil {
		return reportAnswer{}, err
	}
	a := reportAnswer{q: q, paged: def.Pagination.Limit != 0 || def.Pagination.Offset != 0}
	if len(def.Funnel) > 0 {
		steps, err := q.FunnelSteps(def.Funnel)
		if err != nil {
			return a, err
		}
		a.dims, a.metrics = []string{"step"}, report.FunnelMetrics
		a.rows = func(ctx context.Context, emit func(report.Row) error) error {
			counts, err := s.Reports.Funnel(ctx, q, steps)
			if err != nil {
				return err
			}
			for _, row := range report.FunnelRows(steps, counts) {
				if err := emit(row); err != nil {
					return err
				}
			}
			return nil
		}
		return a, nil
	}
	a.dims, a.metrics = report.DimNames(q.Dimensions), q.Metrics
	a.rows = func(ctx context.Context, emit func(report.Row) error) error { return s.Reports.Stream(ctx, q, emit) }
	return a, nil
}

// whole makes a download of the answer every row of the report (unless
// the report itself asks for a page): a download streams, however many.
func (a reportAnswer) whole() reportAnswer {
	if !a.paged {
		a.q.Limit = 0
	}
	return a
}

// runReport answers a saved report for a period ("" for its own), for
// its page.
func (s *Server) runReport(ctx context.Context, rep store.SavedReport, site store.Site, period string) (reportPage, error) {
	a, err := s.reportSource(ctx, rep, site, periodRange(period))
	if err != nil {
		return reportPage{}, err
	}
	page := reportPage{Site: site.Domain, Range: a.q.Range.From.Format("2 Jan 2006") + " – " + a.q.Range.To.Add(-time.Second).Format("2 Jan 2006")}
	page.Head = append(append(page.Head, a.dims...), a.metrics...)
	s.flushBriefly(ctx)
	err = a.rows(ctx, func(row report.Row) error {
		cells := append([]string{}, row.Dimensions...)
		for _, m := range row.Metrics {
			cells = append(cells, strconv.FormatFloat(m, 'f', -1, 64))
		}
		page.Rows = append(page.Rows, cells)
		return nil
	})
	return page, err
}

// periodRange is a period's name as a date range ("": none).
func periodRange(period string) json.RawMessage {
	if period == "" {
		return nil
	}
	b, _ := json.Marshal(period)
	return b
}

func (s *Server) savedReportPage(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	rep, site, ok, err := s.readableReport(r.Context(), v, r.PathValue("id"))
	if err != nil {
		s.Log.ErrorContext(r.Context(), "saved report", "err", err)
		http.Error(w, "looking up the report failed", 500)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	period := r.URL.Query().Get("period")
	known := period == ""
	for _, p := range reportPeriods {
		known = known || p == period
	}
	if !known {
		http.Error(w, fmt.Sprintf("period: want one of %v", reportPeriods), 400)
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != export.CSV && format != export.JSON {
		http.Error(w, "format: want csv or json (or none, for the page)", 400)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 120*time.Second)
	defer cancel()
	if format != "" {
		a, err := s.reportSource(ctx, rep, site, periodRange(period))
		if err != nil {
			s.Log.ErrorContext(r.Context(), "saved report", "id", rep.ID, "err", err)
			http.Error(w, "the report could not be answered: "+err.Error(), 500)
			return
		}
		a = a.whole()
		s.flushBriefly(ctx)
		s.streamDownload(ctx, w, r, download{
			rec: s.exportBy(r, export.Record{Account: site.AccountID, Site: site.ID, Report: rep.ID, Period: periodText(a.q.Range),
				Format: format, Via: export.ViaReport}),
			name: fmt.Sprintf("%s-report-%d.%s", site.Domain, rep.ID, format),
			dims: a.dims, metrics: a.metrics, rows: a.rows,
			target: fmt.Sprintf("report:%d", rep.ID),
		})
		return
	}
	page, err := s.runReport(ctx, rep, site, period)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "saved report", "id", rep.ID, "err", err)
		http.Error(w, "the report could not be answered: "+err.Error(), 500)
		return
	}
	base := fmt.Sprintf("/reports/%d", rep.ID)
	for _, p := range reportPeriods {
		page.Periods = append(page.Periods, link{p, base + "?period=" + p, p == period})
	}
	page.CSV = base + "?format=csv&period=" + period
	page.JSON = base + "?format=json&period=" + period
	s.renderPage(w, r, 200, reportTmpl, pageData{Title: rep.Name, Data: page})
}

// readableReports lists the saved reports the viewer may read, for the
// overview.
func (s *Server) readableReports(ctx context.Context, v *viewer) ([]link, error) {
	sites, err := s.Accounts.AccountSites(ctx, v.user.AccountID)
	if err != nil {
		return nil, err
	}
	var out []link
	for _, site := range sites {
		reps, err := s.Accounts.SavedReports(ctx, site.ID)
		if err != nil {
			return nil, err
		}
		for _, rep := range reps {
			if authz.Decide(v.p, authz.ReadReport, auth.ReportResource(site, rep)) == authz.Allow {
				out = append(out, link{Label: site.Domain + ": " + rep.Name, URL: fmt.Sprintf("/reports/%d", rep.ID)})
			}
		}
	}
	return out, nil
}

// saveView is POST /dashboard/{domain}/reports: the dashboard's current
// period and filters with one panel's dimension become a saved report
// owned by the viewer (who must be allowed to save reports on the site).
func (s *Server) saveView(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	site := siteOf(r)
	if authz.Decide(v.p, authz.SaveReport, authz.Resource{Kind: authz.Site, Account: site.AccountID, Site: site.ID}) != authz.Allow {
		http.NotFound(w, r)
		return
	}
	name := strings.TrimSpace(formValue(r, "name"))
	if name == "" || len(name) > 200 || strings.ContainsAny(name, "\r\n\x00") {
		http.Error(w, "name: 1 to 200 bytes on one line", 400)
		return
	}
	var p panelDef
	for _, x := range panels {
		if x.ID == formValue(r, "panel") {
			p = x
		}
	}
	if p.ID == "" {
		http.Error(w, "panel: unknown panel", 400)
		return
	}
	period := formValue(r, "period")
	flt, err := report.ParseURLFilters(r.PostForm["f"])
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	def := map[string]any{
		"metrics":    []string{report.MVisitors, report.MVisits, report.MPageviews, report.MBounceRate, report.MVisitDuration},
		"dimensions": []string{p.Dim},
		"date_range": period,
	}
	if flt != nil {
		def["filters"] = flt.V2()
	}
	raw, _ := json.Marshal(def)
	// the same check as the API's: the definition must build a query
	dec, err := report.DecodeDefinition(raw)
	if err == nil {
		dec.SiteID = site.Domain
		_, err = dec.Build(site, nil, s.Now())
	}
	if err != nil {
		http.Error(w, "this view cannot be saved: "+err.Error(), 400)
		return
	}
	rep, err := s.Accounts.SaveReport(r.Context(), store.SavedReport{SiteID: site.ID, OwnerID: &v.user.ID, Name: name, Definition: string(raw), Created: s.Now()})
	if errors.Is(err, store.ErrExists) {
		http.Error(w, "name: a saved report of this name exists on this site", http.StatusConflict)
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "save report", "err", err)
		http.Error(w, "saving the report failed", 500)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/reports/%d", rep.ID), http.StatusSeeOther)
}
