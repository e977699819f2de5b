package web

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"fjord/internal/export"
	"fjord/internal/report"
	"fjord/internal/store"
)

// panelDef is one table of the dashboard.
type panelDef struct {
	ID, Title, Dim, Empty string
	Metric                string
	hideEmpty             bool
	exclude               string // a value left out (pageview in events)
}

var panels = []panelDef{
	{ID: "pages", Title: "Top pages", Dim: "event:page", Metric: report.MVisitors},
	{ID: "entry", Title: "Entry pages", Dim: "visit:entry_page", Metric: report.MVisitors},
	{ID: "exit", Title: "Exit pages", Dim: "visit:exit_page", Metric: report.MVisitors},
	{ID: "sources", Title: "Sources", Dim: "visit:source", Metric: report.MVisitors, Empty: "Direct / None"},
	{ID: "channels", Title: "Channels", Dim: "visit:channel", Metric: report.MVisitors},
	{ID: "campaigns", Title: "UTM campaigns", Dim: "visit:utm_campaign", Metric: report.MVisitors, hideEmpty: true},
	{ID: "countries", Title: "Countries", Dim: "visit:country", Metric: report.MVisitors, Empty: "Unknown"},
	{ID: "regions", Title: "Regions", Dim: "visit:region", Metric: report.MVisitors, hideEmpty: true},
	{ID: "cities", Title: "Cities", Dim: "visit:city", Metric: report.MVisitors, hideEmpty: true},
	{ID: "browsers", Title: "Browsers", Dim: "visit:browser", Metric: report.MVisitors, Empty: "Unknown"},
	{ID: "os", Title: "Operating systems", Dim: "visit:os", Metric: report.MVisitors, Empty: "Unknown"},
	{ID: "devices", Title: "Devices", Dim: "visit:device", Metric: report.MVisitors, Empty: "Unknown"},
	{ID: "events", Title: "Custom events", Dim: "event:name", Metric: report.MEvents, exclude: "pageview"},
	{ID: "goals", Title: "Goals", Dim: "event:goal", Metric: report.MVisitors},
}

var dashPeriods = []struct{ ID, Label string }{
	{"day", "Today"}, {"yesterday", "Yesterday"}, {"7d", "Last 7 days"}, {"30d", "Last 30 days"},
	{"month", "This month"}, {"90d", "Last 90 days"}, {"12mo", "Last 12 months"},
}

type dashLink struct {
	Label, URL string
	Active     bool
}

type dashStat struct {
	Label, Value, Change string
	Up, Down, Good       bool
	HasChange            bool
}

type dashRow struct {
	Label, Value, Filter string
	Bar                  int
}

type dashPanel struct {
	ID, Title, Metric, CSV, JSON string
	Rows                         []dashRow
}

type dashData struct {
	Site     store.Site
	Sites    []dashLink
	Periods  []dashLink
	Compare  dashLink
	Filters  []dashLink
	Realtime int64
	Stats    []dashStat
	Chart    template.HTML
	Panels   []dashPanel
	Range    string
	Elapsed  string
	// the signed-in user, and the CSRF token of the sign-out form
	User, CSRF string
	// Acting: the banner of staff acting under a grant
	Acting string
	// the view's state, for "save as a report"
	Period     string
	RawFilters []string
	PanelDefs  []panelDef
}

// dashURL builds a dashboard URL with the given state.
func dashURL(domain, period string, compare bool, filters []string, extra ...string) string {
	v := url.Values{}
	v.Set("period", period)
	if compare {
		v.Set("compare", "1")
	}
	for _, f := range filters {
		v.Add("f", f)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return "/dashboard/" + url.PathEscape(domain) + "?" + v.Encode()
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	site := siteOf(r)
	qs := r.URL.Query()
	period := qs.Get("period")
	if period == "" {
		period = "30d"
	}
	compare := qs.Get("compare") == "1"
	fstrs := qs["f"]
	base, err := s.dashQuery(ctx, site, period, fstrs)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.flushBriefly(ctx)
	v := viewerOf(r)
	d := dashData{Site: site, CSRF: v.session.CSRF, User: v.user.Email, Acting: actingNotice(v), Period: period, RawFilters: fstrs, PanelDefs: panels}
	sites, err := s.readableSites(ctx, v)
	if err != nil {
		http.Error(w, "listing sites failed", 500)
		return
	}
	for _, x := range sites {
		d.Sites = append(d.Sites, dashLink{Label: x.Domain, URL: dashURL(x.Domain, period, compare, nil), Active: x.ID == site.ID})
	}
	for _, p := range dashPeriods {
		d.Periods = append(d.Periods, dashLink{Label: p.Label, URL: dashURL(site.Domain, p.ID, compare, fstrs), Active: p.ID == period})
	}
	d.Compare = dashLink{Label: "Compare with the previous period", URL: dashURL(site.Domain, period, !compare, fstrs), Active: compare}
	for i, f := range fstrs {
		rest := append(append([]string{}, fstrs[:i]...), fstrs[i+1:]...)
		d.Filters = append(d.Filters, dashLink{Label: strings.Replace(strings.Replace(f, "==", " is ", 1), "visit:", "", 1), URL: dashURL(site.Domain, period, compare, rest)})
	}
	d.Range = base.Range.FromDay + " – " + base.Range.ToDay

	// Every panel is its own query; they run side by side.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	headMetrics := []string{report.MVisitors, report.MVisits, report.MPageviews, report.MViewsPerVisit, report.MBounceRate, report.MVisitDuration}
	var head, prev *report.Result
	var series *report.Result
	wg.Add(3)
	go func() {
		defer wg.Done()
		q := *base
		q.Metrics = headMetrics
		res, err := s.Reports.Run(ctx, &q)
		if err != nil {
			fail(err)
			return
		}
		head = res
		if compare {
			q.Range = base.Range.Previous()
			if prev, err = s.Reports.Run(ctx, &q); err != nil {
				fail(err)
			}
		}
	}()
	unit := "day"
	if period == "day" || period == "yesterday" {
		unit = "hour"
	} else if period == "12mo" {
		unit = "month"
	}
	go func() {
		defer wg.Done()
		q := *base
		q.Metrics = []string{report.MVisitors}
		dim, _ := report.LookupDim("time:" + unit)
		q.Dimensions = []report.Dim{dim}
		res, err := s.Reports.Run(ctx, &q)
		if err != nil {
			fail(err)
			return
		}
		series = res
	}()
	go func() {
		defer wg.Done()
		q := report.Realtime(site, s.Now())
		q.Goals, q.Filter = base.Goals, base.Filter
		res, err := s.Reports.Run(ctx, q)
		if err != nil {
			fail(err)
			return
		}
		d.Realtime = int64(res.Rows[0].Metrics[0])
	}()
	d.Panels = make([]dashPanel, len(panels))
	for i, p := range panels {
		if p.Dim == "event:goal" && len(base.Goals) == 0 {
			continue
		}
		wg.Add(1)
		go func(i int, p panelDef) {
			defer wg.Done()
			res, err := s.panelQuery(ctx, base, p, 10)
			if err != nil {
				fail(err)
				return
			}
			d.Panels[i] = s.panelView(site, period, compare, fstrs, p, res)
		}(i, p)
	}
	wg.Wait()
	if firstErr != nil {
		s.Log.ErrorContext(r.Context(), "dashboard", "site", site.Domain, "err", firstErr)
		http.Error(w, "the dashboard could not be computed", 500)
		return
	}
	kept := d.Panels[:0]
	for _, p := range d.Panels {
		if p.ID != "" {
			kept = append(kept, p)
		}
	}
	d.Panels = kept
	d.Stats = headStats(headMetrics, head, prev)
	d.Chart = chartSVG(series, base.Range, unit, s.Now())
	d.Elapsed = time.Since(start).Round(time.Millisecond).String()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := dashTmpl.Execute(w, d); err != nil {
		s.Log.ErrorContext(r.Context(), "dashboard template", "err", err)
	}
}

// flushBriefly lets the loader catch up, but a page does not wait long for
// it: slightly stale numbers beat no numbers.
func (s *Server) flushBriefly(ctx context.Context) {
	if s.Loader == nil {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s.Loader.Flush(fctx)
}

// dashQuery is the query every panel starts from.
func (s *Server) dashQuery(ctx context.Context, site store.Site, period string, fstrs []string) (*report.Query, error) {
	rng, err := report.ParsePeriod(period, site.TimeZone, s.Now())
	if err != nil {
		return nil, err
	}
	goals, err := s.Accounts.Goals(ctx, site.ID)
	if err != nil {
		return nil, err
	}
	flt, err := report.ParseURLFilters(fstrs)
	if err != nil {
		return nil, err
	}
	q := &report.Query{Site: site, Range: rng, Goals: goals, Filter: flt, Metrics: []string{report.MVisitors}}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return q, nil
}

func (s *Server) panelQuery(ctx context.Context, base *report.Query, p panelDef, limit int) (*report.Result, error) {
	q := *base
	dim, _ := report.LookupDim(p.Dim)
	q.Dimensions = []report.Dim{dim}
	q.Metrics = []string{p.Metric}
	if p.Dim == "event:goal" {
		q.Metrics = []string{report.MVisitors, report.MConversion}
	}
	q.Limit = limit + 1 // one spare for a left-out value
	res, err := s.Reports.Run(ctx, &q)
	if err != nil {
		return nil, err
	}
	kept := res.Rows[:0]
	for _, r := range res.Rows {
		if (p.hideEmpty && r.Dimensions[0] == "") || (p.exclude != "" && r.Dimensions[0] == p.exclude) {
			continue
		}
		kept = append(kept, r)
	}
	if len(kept) > limit {
		kept = kept[:limit]
	}
	res.Rows = kept
	return res, nil
}

func (s *Server) panelView(site store.Site, period string, compare bool, fstrs []string, p panelDef, res *report.Result) dashPanel {
	out := dashPanel{ID: p.ID, Title: p.Title, Metric: strings.ReplaceAll(p.Metric, "_", " "),
		CSV:  "/dashboard/" + url.PathEscape(site.Domain) + "/export?" + exportQuery(p.ID, period, fstrs, "csv"),
		JSON: "/dashboard/" + url.PathEscape(site.Domain) + "/export?" + exportQuery(p.ID, period, fstrs, "json")}
	maxV := 0.0
	for _, r := range res.Rows {
		maxV = math.Max(maxV, r.Metrics[0])
	}
	for _, r := range res.Rows {
		label := r.Dimensions[0]
		if label == "" {
			label = p.Empty
			if label == "" {
				label = "(none)"
			}
		}
		value := strconv.FormatFloat(r.Metrics[0], 'f', -1, 64)
		if p.Dim == "event:goal" {
			value += " · " + strconv.FormatFloat(r.Metrics[1], 'f', 1, 64) + "%"
		}
		bar := 0
		if maxV > 0 {
			bar = int(math.Round(r.Metrics[0] * 100 / maxV))
		}
		op := "=="
		row := dashRow{Label: label, Value: value, Bar: bar}
		if !strings.Contains(r.Dimensions[0], ";") && !strings.Contains(r.Dimensions[0], "|") {
			row.Filter = dashURL(site.Domain, period, compare, append(append([]string{}, fstrs...), p.Dim+op+r.Dimensions[0]))
		}
		out.Rows = append(out.Rows, row)
	}
	return out
}

func exportQuery(panel, period string, fstrs []string, format string) string {
	v := url.Values{"panel": {panel}, "period": {period}, "format": {format}}
	for _, f := range fstrs {
		v.Add("f", f)
	}
	return v.Encode()
}

// headStats formats the headline numbers and their change.
func headStats(metrics []string, head, prev *report.Result) []dashStat {
	labels := map[string]string{report.MVisitors: "Unique visitors", report.MVisits: "Total visits", report.MPageviews: "Total pageviews",
		report.MViewsPerVisit: "Views per visit", report.MBounceRate: "Bounce rate", report.MVisitDuration: "Visit duration"}
	var out []dashStat
	for i, m := range metrics {
		v := head.Rows[0].Metrics[i]
		st := dashStat{Label: labels[m], Value: formatMetric(m, v)}
		if prev != nil {
			c := report.Change(m, v, prev.Rows[0].Metrics[i])
			if f, ok := c.(float64); ok {
				st.HasChange = true
				st.Up, st.Down = f > 0, f < 0
				st.Good = (f > 0) != (m == report.MBounceRate)
				unit := "%"
				if m == report.MBounceRate {
					unit = " pt"
				}
				st.Change = fmt.Sprintf("%+.0f%s", f, unit)
				if f == 0 {
					st.Good = true
				}
			}
		}
		out = append(out, st)
	}
	return out
}

func formatMetric(m string, v float64) string {
	switch m {
	case report.MBounceRate:
		return strconv.FormatFloat(v, 'f', -1, 64) + "%"
	case report.MVisitDuration:
		d := time.Duration(v) * time.Second
		if d >= time.Minute {
			return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
		}
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case report.MViewsPerVisit:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	if v >= 10000 {
		return strconv.FormatFloat(v/1000, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// chartSVG draws visitors per bucket as an area chart. Every bucket of the
// range is drawn, empty ones as zero. Only numbers and escaped labels go
// into the markup.
func chartSVG(series *report.Result, rng report.Range, unit string, now time.Time) template.HTML {
	byLabel := map[string]float64{}
	for _, r := range series.Rows {
		byLabel[r.Dimensions[0]] = r.Metrics[0]
	}
	// every bucket of the range up to the current one (none in the future)
	loc, err := time.LoadLocation(rng.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	l := now.In(loc)
	current := report.TimeLabel(unit, time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), 0, 0, 0, time.UTC))
	var labels []string
	var vals []float64
	for _, lb := range report.TimeLabels(rng, unit) {
		if lb > current {
			break
		}
		labels = append(labels, lb)
		vals = append(vals, byLabel[lb])
	}
	const W, H, pad = 800.0, 220.0, 30.0
	maxV := 1.0
	for _, v := range vals {
		maxV = math.Max(maxV, v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %g %g" role="img" aria-label="Visitors per %s" class="chart">`, W, H, unit)
	for i := 0; i <= 4; i++ {
		y := pad + (H-2*pad)*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" class="grid"/>`, pad+10, W-pad, y, y)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" class="axis" text-anchor="end">%s</text>`, pad+4, y+4, template.HTMLEscapeString(formatMetric("", math.Round(maxV*float64(4-i)/4))))
	}
	n := len(vals)
	x := func(i int) float64 {
		if n <= 1 {
			return (W + pad) / 2
		}
		return pad + 10 + (W-2*pad-10)*float64(i)/float64(n-1)
	}
	y := func(v float64) float64 { return H - pad - (H-2*pad)*v/maxV }
	if n > 0 {
		var pts strings.Builder
		for i, v := range vals {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(i), y(v))
		}
		fmt.Fprintf(&b, `<polygon points="%.1f,%.1f %s%.1f,%.1f" class="area"/>`, x(0), H-pad, pts.String(), x(n-1), H-pad)
		fmt.Fprintf(&b, `<polyline points="%s" class="line"/>`, pts.String())
		for i, v := range vals {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" class="dot"><title>%s: %s visitors</title></circle>`, x(i), y(v), template.HTMLEscapeString(labels[i]), formatMetric("", v))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" class="axis">%s</text>`, x(0), H-8, template.HTMLEscapeString(labels[0]))
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" class="axis" text-anchor="end">%s</text>`, x(n-1), H-8, template.HTMLEscapeString(labels[n-1]))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// export streams one panel's full breakdown as CSV or JSON.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 120*time.Second)
	defer cancel()
	site := siteOf(r)
	qs := r.URL.Query()
	var p panelDef
	for _, x := range panels {
		if x.ID == qs.Get("panel") {
			p = x
		}
	}
	if p.ID == "" {
		http.Error(w, "panel: unknown panel", 400)
		return
	}
	format := qs.Get("format")
	if format != "csv" && format != "json" {
		http.Error(w, "format: want csv or json", 400)
		return
	}
	period := qs.Get("period")
	if period == "" {
		period = "30d"
	}
	base, err := s.dashQuery(ctx, site, period, qs["f"])
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	base.Metrics = []string{report.MVisitors, report.MVisits, report.MPageviews, report.MBounceRate, report.MVisitDuration}
	dim, _ := report.LookupDim(p.Dim)
	base.Dimensions = []report.Dim{dim}
	base.Limit = 0 // every row: a download streams, however many (PRODUCT §5.1)
	if p.Dim == "event:goal" {
		base.Metrics = append(base.Metrics, report.MConversion)
	}
	s.flushBriefly(ctx)
	s.streamDownload(ctx, w, r, download{
		rec: s.exportBy(r, export.Record{Account: site.AccountID, Site: site.ID, Panel: p.ID, Period: periodText(base.Range),
			Format: format, Via: export.ViaDashboard}),
		name:    fmt.Sprintf("%s-%s-%s.%s", site.Domain, p.ID, period, format),
		dims:    []string{p.Dim},
		metrics: base.Metrics,
		rows: func(ctx context.Context, emit func(report.Row) error) error {
			return s.Reports.Stream(ctx, base, emit)
		},
		target: fmt.Sprintf("site:%d", site.ID),
	})
}

// dashRealtime is the dashboard's realtime count (the page refreshes it).
func (s *Server) dashRealtime(w http.ResponseWriter, r *http.Request) {
	s.flushBriefly(r.Context())
	res, err := s.Reports.Run(r.Context(), report.Realtime(siteOf(r), s.Now()))
	if err != nil || len(res.Rows) == 0 {
		http.Error(w, "the realtime count failed", 500)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "%d\n", int64(res.Rows[0].Metrics[0]))
}
