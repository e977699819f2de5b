package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"fjord/internal/export"
	"fjord/internal/report"
	"fjord/internal/secmon"
	"fjord/internal/usage"
)

// Exports (PRODUCT §5): every download of report data (a dashboard
// panel, a saved report) is streamed from the report engine through an
// export.Writer, and every Stats API answer of report data is counted as
// it is sent; each is then recorded (who, what, rows, bytes, whether it
// completed), written to the audit log, and measured against the
// account's thresholds, whose crossing is a security event that mails
// the account's Administrators. Nothing is refused for crossing one: the
// product detects and tells, it does not block.

// download is one export streamed to the client: its record so far (who
// and what), the file name offered, its columns and where its rows come
// from.
type download struct {
	rec           export.Record
	name          string
	dims, metrics []string
	rows          func(ctx context.Context, emit func(report.Row) error) error
	target        string // of the audit entry: "site:4", "report:7"
}

// streamDownload sends a download and records it once it has ended.
func (s *Server) streamDownload(ctx context.Context, w http.ResponseWriter, r *http.Request, d download) {
	s.sendRows(ctx, w, r, d.target, d.rec.Format, `attachment; filename="`+d.name+`"`, d.dims, d.metrics, d.rows, func(rows, bytes int64, err error) {
		d.rec.Rows, d.rec.Bytes, d.rec.Complete = rows, bytes, err == nil
		s.exported(r, d.rec, d.target)
	})
}

// sendRows streams rows to the client as a file (offered with
// disposition) through an export.Writer, and calls done once it has
// ended with the rows and bytes that went out. A failure before anything
// went out is a 500; a failure after part of the file went out cuts the
// connection, so that the client sees a failed download rather than a
// short file that looks whole. what names it in the log ("report:7",
// "feed:3"; never the path, which holds a feed's token).
func (s *Server) sendRows(ctx context.Context, w http.ResponseWriter, r *http.Request, what, format, disposition string, dims, metrics []string,
	rows func(ctx context.Context, emit func(report.Row) error) error, done func(rows, bytes int64, err error)) {
	if dl, ok := ctx.Deadline(); ok {
		// the server's write timeout is for pages; an export may take
		// until its own deadline
		http.NewResponseController(w).SetWriteDeadline(dl)
	}
	w.Header().Set("Content-Type", export.ContentType(format))
	w.Header().Set("Content-Disposition", disposition)
	x, err := export.NewWriter(w, format, dims, metrics)
	if err != nil {
		// the handlers check the format first; this is a mistake of ours
		s.Log.ErrorContext(r.Context(), "export", "err", err)
		w.Header().Del("Content-Disposition")
		http.Error(w, "the export failed", 500)
		return
	}
	err = rows(ctx, x.Write)
	if err == nil {
		err = x.Close()
	}
	n := x.Rows()
	if x.Bytes() == 0 {
		// rows still in the writer's buffer never reached the client
		n = 0
	}
	done(n, x.Bytes(), err)
	if err == nil {
		return
	}
	if r.Context().Err() != nil {
		s.Log.InfoContext(r.Context(), "export broke off: the client went away", "what", what, "rows", n, "bytes", x.Bytes())
	} else {
		s.Log.ErrorContext(r.Context(), "export", "what", what, "rows", n, "bytes", x.Bytes(), "err", err)
	}
	if x.Bytes() == 0 {
		w.Header().Del("Content-Disposition")
		http.Error(w, "the export failed", 500)
		return
	}
	// what was counted goes out before the cut, so that the record's
	// bytes are what the client got
	http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// countingWriter counts the bytes of an answer that reached the
// connection's writer.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// apiExport sends a Stats API answer of report data (v, holding rows
// rows of q) and records it as an API export: the answers keep
// Plausible's shape, and the bytes are the answer's as sent.
func (s *Server) apiExport(w http.ResponseWriter, r *http.Request, q *report.Query, panel string, reportID int64, rows int, v any) {
	cw := &countingWriter{ResponseWriter: w}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	err := json.NewEncoder(cw).Encode(v)
	if err != nil && r.Context().Err() == nil {
		s.Log.ErrorContext(r.Context(), "api answer", "err", err)
	}
	target := fmt.Sprintf("site:%d", q.Site.ID)
	if reportID != 0 {
		target = fmt.Sprintf("report:%d", reportID)
	}
	s.exported(r, s.exportBy(r, export.Record{Account: q.Site.AccountID, Site: q.Site.ID, Report: reportID,
		Panel: truncate(panel, 200), Period: periodText(q.Range), Format: export.JSON, Via: export.ViaAPI,
		Rows: int64(rows), Bytes: cw.n, Complete: err == nil}), target)
}

// exportBy fills in who exports: the signed-in user, the staff member
// acting in the account, or the API key's user and the key.
func (s *Server) exportBy(r *http.Request, rec export.Record) export.Record {
	if v := viewerOf(r); v != nil {
		if v.staff != nil {
			rec.Staff = v.staff.member.ID
		} else {
			rec.User = v.user.ID
		}
	} else if c := callerOf(r); c != nil {
		rec.User, rec.APIKey = c.user.ID, c.key.ID
	}
	return rec
}

// periodText names a report's period for the record: its name and days.
func periodText(rg report.Range) string {
	days := rg.FromDay + " to " + rg.ToDay
	if rg.Period == "" {
		return days
	}
	return rg.Period + ", " + days
}

// exported writes an export's audit entry and record, once it has ended
// (so that its rows and bytes are right), and raises a security event for
// each threshold it took its person over.
func (s *Server) exported(r *http.Request, rec export.Record, target string) {
	s.Metrics.Export(rec.Account)
	s.countUse(rec.Account, rec.Site, usage.Exports, 1)
	what := rec.Via
	if rec.Panel != "" {
		what += " " + rec.Panel
	}
	detail := fmt.Sprintf("%s, %s, period %s, %d rows, %d bytes", what, rec.Format, rec.Period, rec.Rows, rec.Bytes)
	if rec.APIKey != 0 {
		detail += fmt.Sprintf(", API key %d", rec.APIKey)
	}
	if !rec.Complete {
		detail += ", broke off"
	}
	if rec.Staff != 0 {
		s.record(r, rec.Account, "export", target, detail) // in the staff request's one entry
	} else {
		s.recordAs(r, rec.Actor(), rec.Account, "export", target, detail)
	}
	if s.Exports == nil {
		return
	}
	_, crossed, err := s.Exports.Record(context.WithoutCancel(r.Context()), rec)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "record export", "account", rec.Account, "err", err)
	}
	for _, c := range crossed {
		s.Log.WarnContext(r.Context(), "export threshold crossed", "account", c.Account, "actor", c.Actor, "threshold", c.Threshold)
		s.securityEvent(r, secmon.Event{Kind: secmon.ExportLarge, Account: c.Account, Actor: c.Actor, Detail: c.Detail()})
	}
}

// ---- the Exports page of Administration

var exportsTmpl = pageTemplate(`{{with .Data}}
<p><a href="/admin">Administration</a> · Exports</p>
<section class="card"><h2>Thresholds</h2>
<p>Every download from the dashboard and saved reports and every Stats API answer is recorded below. When one person's exports go over a threshold, the account's Administrators get a security alert by e-mail (once per threshold, person and day or hour); the export itself is not refused. Days and hours are UTC.</p>
<form class="stack" method="post" action="/admin/exports" id="thresholds"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<label for="rows-per-day">Rows per person per day <small>({{.Ranges.Rows}}; default {{.Defaults.Rows}})</small></label><input id="rows-per-day" name="rows_per_day" type="number" min="{{.Bounds.MinRows}}" max="{{.Bounds.MaxRows}}" value="{{.Current.RowsPerDay}}" required>
<label for="mb-per-day">Megabytes per person per day <small>({{.Ranges.MB}}; default {{.Defaults.MB}})</small></label><input id="mb-per-day" name="mb_per_day" type="number" min="{{.Bounds.MinMB}}" max="{{.Bounds.MaxMB}}" value="{{.CurrentMB}}" required>
<label for="exports-per-hour">Exports per person per hour <small>({{.Ranges.Exports}}; default {{.Defaults.Exports}})</small></label><input id="exports-per-hour" name="exports_per_hour" type="number" min="{{.Bounds.MinExports}}" max="{{.Bounds.MaxExports}}" value="{{.Current.ExportsPerHour}}" required>
<button type="submit">Save thresholds</button></form></section>
{{if .Crossings}}<section class="card"><h2>Thresholds crossed</h2>
<table class="admin" id="export-crossings"><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Threshold</th><th scope="col">Total</th><th scope="col">Export</th></tr></thead><tbody>
{{range .Crossings}}<tr><td>{{.When}}</td><td>{{.Who}}</td><td>{{.Threshold}}</td><td>{{.Total}}</td><td><a href="#export-{{.Export}}">#{{.Export}}</a></td></tr>
{{end}}</tbody></table></section>{{end}}
<section class="card"><h2>Exports</h2>
<p>Newest first, the latest {{.Limit}}; records are kept for a year.</p>
<table class="admin" id="exports"><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Period</th><th scope="col">Rows</th><th scope="col">Bytes</th><th scope="col"></th></tr></thead><tbody>
{{range .Records}}<tr id="export-{{.ID}}"><td>{{.When}}</td><td>{{.Who}}</td><td>{{.What}}</td><td>{{.Period}}</td><td>{{.Rows}}</td><td>{{.Bytes}}</td><td>{{if not .Complete}}broke off{{end}}</td></tr>
{{else}}<tr><td colspan="7">No exports yet.</td></tr>{{end}}</tbody></table></section>{{end}}`)

// exportsLimit is how many records the page shows.
const exportsLimit = 500

type exportRow struct {
	ID                                   int64
	When, Who, What, Period, Rows, Bytes string
	Complete                             bool
}

type crossingRow struct {
	When, Who, Threshold, Total string
	Export                      int64
}

type exportsData struct {
	Records   []exportRow
	Crossings []crossingRow
	Limit     int
	Current   export.Thresholds
	CurrentMB int64
	Bounds    struct{ MinRows, MaxRows, MinMB, MaxMB, MinExports, MaxExports int64 }
	Defaults  struct{ Rows, MB, Exports string }
	Ranges    struct{ Rows, MB, Exports string }
}

func (s *Server) exportsPage(w http.ResponseWriter, r *http.Request) {
	s.renderExports(w, r, 200, "", "")
}

// renderExports shows the page, with an error or a notice.
func (s *Server) renderExports(w http.ResponseWriter, r *http.Request, code int, msg, notice string) {
	if s.Exports == nil {
		http.NotFound(w, r)
		return
	}
	d, err := s.exportsData(r.Context(), viewerOf(r).user.AccountID)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "exports page", "err", err)
		http.Error(w, "reading the exports failed", 500)
		return
	}
	s.renderPage(w, r, code, exportsTmpl, pageData{Title: "Exports", Error: msg, Notice: notice, Data: d})
}

func (s *Server) exportsData(ctx context.Context, account int64) (exportsData, error) {
	st := s.Exports.Store
	d := exportsData{Limit: exportsLimit}
	d.Bounds.MinRows, d.Bounds.MaxRows = export.MinRowsPerDay, export.MaxRowsPerDay
	d.Bounds.MinMB, d.Bounds.MaxMB = export.MinMBPerDay, export.MaxMBPerDay
	d.Bounds.MinExports, d.Bounds.MaxExports = export.MinExportsPerHour, export.MaxExportsPerHour
	d.Defaults.Rows, d.Defaults.MB, d.Defaults.Exports = export.Thousands(export.DefaultRowsPerDay), export.Thousands(export.DefaultBytesPerDay/export.MB), export.Thousands(export.DefaultExportsPerHour)
	d.Ranges.Rows = export.Thousands(export.MinRowsPerDay) + " to " + export.Thousands(export.MaxRowsPerDay)
	d.Ranges.MB = export.Thousands(export.MinMBPerDay) + " to " + export.Thousands(export.MaxMBPerDay)
	d.Ranges.Exports = export.Thousands(export.MinExportsPerHour) + " to " + export.Thousands(export.MaxExportsPerHour)
	var err error
	if d.Current, err = st.ExportThresholds(ctx, account); err != nil {
		return d, err
	}
	d.CurrentMB = (d.Current.BytesPerDay + export.MB - 1) / export.MB
	names, err := s.exportNames(ctx, account)
	if err != nil {
		return d, err
	}
	recs, err := st.Exports(ctx, account, exportsLimit)
	if err != nil {
		return d, err
	}
	for _, x := range recs {
		row := exportRow{ID: x.ID, When: x.Time.Format("2006-01-02 15:04:05") + " UTC", Who: names.who(ctx, x.User, x.Staff),
			Period: x.Period, Rows: export.Thousands(x.Rows), Bytes: export.Thousands(x.Bytes), Complete: x.Complete}
		if x.APIKey != 0 {
			row.Who += fmt.Sprintf(" through API key %d", x.APIKey)
		}
		row.What = names.what(x)
		d.Records = append(d.Records, row)
	}
	cs, err := st.Crossings(ctx, account, exportsLimit)
	if err != nil {
		return d, err
	}
	for _, c := range cs {
		row := crossingRow{When: c.Time.Format("2006-01-02 15:04:05") + " UTC", Threshold: thresholdWords(c), Total: export.Thousands(c.Total), Export: c.Export}
		var user, staffID int64
		if _, err := fmt.Sscanf(c.Actor, "user:%d", &user); err != nil {
			fmt.Sscanf(c.Actor, "staff:%d", &staffID)
		}
		row.Who = names.who(ctx, user, staffID)
		d.Crossings = append(d.Crossings, row)
	}
	return d, nil
}

// thresholdWords says which threshold a crossing went over, and its
// value then.
func thresholdWords(c export.Crossing) string {
	switch c.Threshold {
	case export.RowsPerDay:
		return fmt.Sprintf("over %s rows on %s", export.Thousands(c.Limit), c.Window.Format("2006-01-02"))
	case export.BytesPerDay:
		return fmt.Sprintf("over %s bytes on %s", export.Thousands(c.Limit), c.Window.Format("2006-01-02"))
	}
	return fmt.Sprintf("over %s exports in the hour from %s UTC", export.Thousands(c.Limit), c.Window.Format("2006-01-02 15:04"))
}

// exportNames turns the ids of records into names for the page: people's
// addresses (a removed or purged person is named by id), staff members'
// names, sites' domains, saved reports' names.
type exportNames struct {
	s       *Server
	users   map[int64]string
	sites   map[int64]string
	reports map[int64]string
	staff   map[int64]string
}

func (s *Server) exportNames(ctx context.Context, account int64) (*exportNames, error) {
	n := &exportNames{s: s, users: map[int64]string{}, sites: map[int64]string{}, reports: map[int64]string{}, staff: map[int64]string{}}
	users, err := s.Accounts.Users(ctx, account)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		n.users[u.ID] = u.Email
	}
	sites, err := s.Accounts.AccountSites(ctx, account)
	if err != nil {
		return nil, err
	}
	for _, st := range sites {
		n.sites[st.ID] = st.Domain
		reps, err := s.Accounts.SavedReports(ctx, st.ID)
		if err != nil {
			return nil, err
		}
		for _, rep := range reps {
			n.reports[rep.ID] = rep.Name
		}
	}
	return n, nil
}

func (n *exportNames) who(ctx context.Context, user, staffID int64) string {
	if staffID != 0 {
		name, ok := n.staff[staffID]
		if !ok {
			name = fmt.Sprintf("Fjord staff member %d", staffID)
			if n.s.Staff != nil {
				if m, err := n.s.Staff.Store.Staff(ctx, staffID); err == nil {
					name = "Fjord staff: " + m.Name
					if m.Name == "" {
						name = "Fjord staff: " + m.Email
					}
				}
			}
			n.staff[staffID] = name
		}
		return name
	}
	if e, ok := n.users[user]; ok {
		return e
	}
	return fmt.Sprintf("person %d (no longer in the account)", user)
}

func (n *exportNames) what(x export.Record) string {
	site, ok := n.sites[x.Site]
	if !ok {
		site = fmt.Sprintf("site %d", x.Site)
	}
	var b strings.Builder
	b.WriteString(site)
	switch x.Via {
	case export.ViaDashboard:
		b.WriteString(": dashboard panel " + x.Panel)
	case export.ViaReport:
		b.WriteString(": saved report")
	case export.ViaAPI:
		b.WriteString(": Stats API " + x.Panel)
	}
	if x.Report != 0 {
		name, ok := n.reports[x.Report]
		if !ok {
			name = "(deleted)"
		}
		fmt.Fprintf(&b, " #%d %s", x.Report, name)
	}
	b.WriteString(", " + strings.ToUpper(x.Format))
	return b.String()
}

// exportsSettings sets the account's thresholds; they apply from the next
// export on.
func (s *Server) exportsSettings(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if s.Exports == nil {
		http.NotFound(w, r)
		return
	}
	if v.staff != nil {
		// the thresholds watch staff's exports too: only the customer
		// moves them
		v.staff.refused = true
		s.staffEvent(r, EventStaffRefused, v.user.AccountID, staffActorName(v.staff.member), "changing the export thresholds: they are the customer's")
		s.renderExports(w, r, http.StatusForbidden, "The export thresholds are the account's Administrators' to change.", "")
		return
	}
	th, err := export.ParseThresholds(formValue(r, "rows_per_day"), formValue(r, "mb_per_day"), formValue(r, "exports_per_hour"))
	if err != nil {
		s.renderExports(w, r, http.StatusBadRequest, "Not saved: "+err.Error()+".", "")
		return
	}
	was, err := s.Exports.Store.ExportThresholds(r.Context(), v.user.AccountID)
	if err == nil {
		err = s.Exports.Store.SetExportThresholds(r.Context(), v.user.AccountID, th)
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "export thresholds", "err", err)
		http.Error(w, "the change failed", 500)
		return
	}
	s.record(r, v.user.AccountID, "export.thresholds", fmt.Sprintf("account:%d", v.user.AccountID),
		fmt.Sprintf("rows per day %d, bytes per day %d, exports per hour %d (were %d, %d, %d)",
			th.RowsPerDay, th.BytesPerDay, th.ExportsPerHour, was.RowsPerDay, was.BytesPerDay, was.ExportsPerHour))
	s.renderExports(w, r, 200, "", "Thresholds saved; they apply from the next export on.")
}
