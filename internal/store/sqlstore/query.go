package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"fjord/internal/report"
	"fjord/internal/store"
)

// sessionCols are the per-visit values, taken from a visit's first event.
var sessionCols = []string{"source", "referrer", "channel", "utm_source", "utm_medium", "utm_campaign", "utm_content",
	"utm_term", "country", "region", "city", "browser", "browser_version", "os", "os_version", "device"}

// regex is the dialect's regular-expression match of col against pat.
func (d Dialect) regex(col, pat string) string {
	if d.Name == "postgres" {
		return col + " ~ " + pat
	}
	return "regexp_matches(" + col + ", " + pat + ")"
}

// goalMatch is the condition that an event of e completes goal g.
func (b *qbuilder) goalMatch(g store.Goal) string {
	if g.Kind == "page" {
		b.args = append(b.args, report.GoalRegexp(g.Value))
		return "(name = 'pageview' AND " + b.d.regex("path", "?") + ")"
	}
	return "(name = " + b.arg(g.Value) + ")"
}

type qbuilder struct {
	q    *report.Query
	d    Dialect
	args []any
	tz   string
}

func (b *qbuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "?"
}

// bucket is the local-time bucket of a unix-milliseconds column.
func (b *qbuilder) bucket(unit, col string) string {
	return fmt.Sprintf("date_trunc('%s', to_timestamp(%s / 1000.0) AT TIME ZONE %s)", unit, col, b.arg(b.tz))
}

// eventExpr is a dimension's value on a row of e (one event with its
// visit's values); visitExpr the same on a row of fv/v (one visit).
func (b *qbuilder) eventExpr(d report.Dim) string {
	if d.Time != "" {
		return b.bucket(d.Time, "ts")
	}
	return d.Column
}

func (b *qbuilder) visitExpr(d report.Dim) string {
	if d.Time != "" {
		return b.bucket(d.Time, "start_ts")
	}
	return d.Column
}

func (b *qbuilder) filter(f *report.Filter) string {
	if f.Dim.Goal {
		var parts []string
		for _, name := range f.Values {
			g, _ := b.q.GoalByName(name) // Validate checked the names
			parts = append(parts, b.goalMatch(g))
		}
		return "(" + strings.Join(parts, " OR ") + ")"
	}
	switch f.Op {
	case "and", "or":
		parts := make([]string, len(f.Sub))
		for i := range f.Sub {
			parts[i] = b.filter(&f.Sub[i])
		}
		return "(" + strings.Join(parts, " "+strings.ToUpper(f.Op)+" ") + ")"
	case "not":
		return "(NOT " + b.filter(&f.Sub[0]) + ")"
	}
	col := f.Dim.Column
	var parts []string
	for _, v := range f.Values {
		switch strings.TrimSuffix(f.Op, "_not") {
		case "is":
			parts = append(parts, col+" = "+b.arg(v))
		case "contains":
			parts = append(parts, "strpos("+col+", "+b.arg(v)+") > 0")
		case "matches":
			b.args = append(b.args, v)
			parts = append(parts, b.d.regex(col, "?"))
		}
	}
	expr := "(" + strings.Join(parts, " OR ") + ")"
	if strings.HasSuffix(f.Op, "_not") {
		expr = "(NOT " + expr + ")"
	}
	return expr
}

// rawSQL is the question asked of raw events: one row per group, its
// dimensions d0, d1, ... (text, or the bucket's local time for a time
// dimension), then the seven sums of sumRow under sumCols' names. Visits
// are derived as in Summary; a filter keeps the events it matches and the
// visits that have at least one such event. Event metrics (visitors,
// pageviews, events) count matching events; visit metrics (visits, bounce
// rate, duration, views per visit) count whole matching visits. It is ""
// when the answer has no rows: a goal breakdown of a site without goals.
func (b *qbuilder) rawSQL() string {
	q := b.q
	goalDim := false
	for _, d := range q.Dimensions {
		goalDim = goalDim || d.Goal
	}
	if goalDim && len(q.Goals) == 0 {
		return ""
	}
	var sb strings.Builder
	b.ctes(&sb, goalDim)
	nd := len(q.Dimensions)
	var eDims, dAlias []string
	for i, d := range q.Dimensions {
		a := fmt.Sprintf("d%d", i)
		dAlias = append(dAlias, a)
		eDims = append(eDims, b.eventExpr(d)+" AS "+a)
	}
	group := func(prefix string) string {
		if nd == 0 {
			return ""
		}
		return " GROUP BY " + prefix + strings.Join(dAlias, ", "+prefix)
	}
	sel := func(list []string) string {
		if len(list) == 0 {
			return ""
		}
		return strings.Join(list, ", ") + ", "
	}
	fmt.Fprintf(&sb, `, ea AS (
	SELECT %sCOUNT(DISTINCT visitor_id) AS visitors, SUM(CASE WHEN name = 'pageview' THEN 1 ELSE 0 END) AS pageviews, COUNT(*) AS events
	FROM fe%s
)`, sel(eDims), groupBy(nd, dAlias))
	if !b.needVisits() {
		// no visit metric asked: the visits' sums are not gathered (a
		// DISTINCT over the matching events and a join with v)
		sb.WriteString("\nSELECT ")
		for _, a := range dAlias { // no time dimension here
			sb.WriteString(fmt.Sprintf("COALESCE(%s, '') AS %s, ", a, a))
		}
		// (with no dimension, the one row of no events has NULL sums)
		sb.WriteString("COALESCE(visitors, 0) AS visitors, COALESCE(pageviews, 0) AS pageviews, COALESCE(events, 0) AS events, " +
			"0 AS visits, 0 AS bounces, 0 AS dur, 0 AS vpv FROM ea")
		return sb.String()
	}
	// built here: a time bucket's expression adds an argument, which
	// PostgreSQL refuses when the text does not use it
	var vDims []string
	for i, d := range q.Dimensions {
		vDims = append(vDims, b.visitExpr(d)+" AS "+dAlias[i])
	}
	fmt.Fprintf(&sb, `, fv AS (
	SELECT DISTINCT %svisitor_id, visit FROM fe
), va AS (
	SELECT %sCOUNT(*) AS visits, SUM(CASE WHEN v.inter <= 1 THEN 1 ELSE 0 END) AS bounces, SUM(v.dur) AS dur, SUM(v.pv) AS vpv
	FROM fv JOIN v ON fv.visitor_id = v.visitor_id AND fv.visit = v.visit%s
)
SELECT `, sel(vDims), sel(prefixed("fv.", dAlias)), group("fv."))
	var outDims []string
	for i, a := range dAlias {
		// Go reads a NULL text as ""; so does ORDER BY with this (none
		// is expected: every visit has a first and a last event)
		if q.Dimensions[i].Time == "" {
			outDims = append(outDims, fmt.Sprintf("COALESCE(ea.%s, va.%s, '') AS %s", a, a, a))
		} else {
			outDims = append(outDims, fmt.Sprintf("COALESCE(ea.%s, va.%s) AS %s", a, a, a))
		}
	}
	sb.WriteString(sel(outDims))
	sb.WriteString("COALESCE(ea.visitors, 0) AS visitors, COALESCE(ea.pageviews, 0) AS pageviews, COALESCE(ea.events, 0) AS events, " +
		"COALESCE(va.visits, 0) AS visits, COALESCE(va.bounces, 0) AS bounces, COALESCE(va.dur, 0) AS dur, COALESCE(va.vpv, 0) AS vpv FROM ea")
	if nd == 0 {
		sb.WriteString(" CROSS JOIN va")
	} else {
		var on []string
		for _, a := range dAlias {
			on = append(on, fmt.Sprintf("ea.%s = va.%s", a, a))
		}
		sb.WriteString(" FULL JOIN va ON " + strings.Join(on, " AND "))
	}
	return sb.String()
}

// needVisits tells whether the query needs the visits' sums: it asks for,
// or orders by, a metric of visits (visits, bounce rate, visit duration,
// views per visit), or it has a time dimension (a visit counts in the
// bucket it started in, which can hold none of its matching events, and
// that bucket must still be a row of the answer).
func (b *qbuilder) needVisits() bool {
	for _, d := range b.q.Dimensions {
		if d.Time != "" {
			return true
		}
	}
	names := slices.Clone(b.q.Metrics)
	for _, o := range b.q.OrderBy {
		names = append(names, o.By)
	}
	for _, m := range names {
		switch m {
		case report.MVisits, report.MBounceRate, report.MVisitDuration, report.MViewsPerVisit:
			return true
		}
	}
	return false
}

// rawSums answers a query's sums from raw events (rawSQL).
func (e *EventReads) rawSums(ctx context.Context, q *report.Query) ([]sumRow, error) {
	b := &qbuilder{q: q, d: e.D, tz: q.Site.TimeZone}
	query := b.rawSQL()
	if query == "" {
		return nil, nil
	}
	rows, err := e.DB.QueryContext(ctx, e.q(query), b.args...)
	if err != nil {
		return nil, fmt.Errorf("query of site %d: %w", q.Site.ID, err)
	}
	defer rows.Close()
	sc := newSumScanner(q)
	var all []sumRow
	for rows.Next() {
		r, err := sc.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("query of site %d: %w", q.Site.ID, err)
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query of site %d: %w", q.Site.ID, err)
	}
	return all, nil
}

// sumRow is one group's additive sums: visitors, pageviews, events,
// visits, bounces, duration (ms) and pageviews of the visits. Because the
// visitor id changes every local day, each is a sum over days.
type sumRow struct {
	dims []string
	sums [7]int64
}

// sumScanner reads rows of rawSQL's columns, reusing its destinations.
type sumScanner struct {
	q    *report.Query
	dv   []any // the dimensions' destinations
	dest []any // dv, then the sums'
	sums [7]int64
}

func newSumScanner(q *report.Query) *sumScanner {
	sc := &sumScanner{q: q}
	for _, d := range q.Dimensions {
		if d.Time != "" {
			sc.dv = append(sc.dv, new(time.Time))
		} else {
			sc.dv = append(sc.dv, new(sql.NullString))
		}
	}
	sc.dest = append(sc.dest, sc.dv...)
	for i := range sc.sums {
		sc.dest = append(sc.dest, &sc.sums[i])
	}
	return sc
}

// scan reads the current row; the sumRow's dimensions are its own.
func (sc *sumScanner) scan(rows *sql.Rows) (sumRow, error) {
	if err := rows.Scan(sc.dest...); err != nil {
		return sumRow{}, err
	}
	r := sumRow{sums: sc.sums}
	for i, d := range sc.q.Dimensions {
		if d.Time != "" {
			r.dims = append(r.dims, report.TimeLabel(d.Time, *sc.dv[i].(*time.Time)))
		} else {
			r.dims = append(r.dims, sc.dv[i].(*sql.NullString).String)
		}
	}
	return r, nil
}

// Run answers a query: from the rollups where they can (see plan), from
// raw events otherwise.
func (e *EventReads) Run(ctx context.Context, q *report.Query) (*report.Result, error) {
	all, total, err := e.sums(ctx, q)
	if err != nil {
		return nil, err
	}
	bs, err := e.ratioBases(ctx, q)
	if err != nil {
		return nil, err
	}
	res := &report.Result{}
	for _, r := range all {
		res.Rows = append(res.Rows, bs.row(q, r))
	}
	report.Sort(q, res.Rows)
	res.Total = max(total, len(res.Rows))
	res.Rows = report.Page(q, res.Rows)
	return res, nil
}

// ratioBases are what percentage and conversion_rate divide by: the
// visitors of the whole answer (-1 when the answer is one row, 100% of
// itself) and the visitors of the population without the goal filters.
type ratioBases struct {
	totalVisitors, population int64
}

// ratioBases asks Run for the bases the query's metrics need (small
// aggregate questions); the ones not needed are 0.
func (e *EventReads) ratioBases(ctx context.Context, q *report.Query) (ratioBases, error) {
	var bs ratioBases
	for _, m := range q.Metrics {
		switch {
		case m == report.MPercentage && len(q.Dimensions) == 0:
			bs.totalVisitors = -1
		case m == report.MPercentage:
			tq := *q
			tq.Dimensions, tq.Metrics, tq.OrderBy, tq.Limit, tq.Offset = nil, []string{report.MVisitors}, nil, 1, 0
			tr, err := e.Run(ctx, &tq)
			if err != nil {
				return bs, err
			}
			if len(tr.Rows) > 0 {
				bs.totalVisitors = int64(tr.Rows[0].Metrics[0])
			}
		case m == report.MConversion:
			pq := *q
			pq.Dimensions, pq.Metrics, pq.OrderBy, pq.Filter, pq.Limit, pq.Offset = nil, []string{report.MVisitors}, nil, q.WithoutGoalFilters(), 1, 0
			pr, err := e.Run(ctx, &pq)
			if err != nil {
				return bs, err
			}
			bs.population = int64(pr.Rows[0].Metrics[0])
		}
	}
	return bs, nil
}

// row is a group's answer: its dimensions and the query's metrics
// computed from its sums. metricSQL is the same computation in SQL, which
// Stream orders by: change both together.
func (bs ratioBases) row(q *report.Query, r sumRow) report.Row {
	row := report.Row{Dimensions: r.dims, Metrics: make([]float64, 0, len(q.Metrics))}
	if row.Dimensions == nil {
		row.Dimensions = []string{}
	}
	visitors, pageviews, events, visits, bounces, dur, vpv := r.sums[0], r.sums[1], r.sums[2], r.sums[3], r.sums[4], r.sums[5], r.sums[6]
	for _, m := range q.Metrics {
		var x float64
		switch m {
		case report.MVisitors:
			x = float64(visitors)
		case report.MVisits:
			x = float64(visits)
		case report.MPageviews:
			x = float64(pageviews)
		case report.MEvents:
			x = float64(events)
		case report.MBounceRate:
			if visits > 0 {
				x = math.Round(float64(bounces) * 100 / float64(visits))
			}
		case report.MVisitDuration:
			if visits > 0 {
				x = math.Round(float64(dur) / float64(visits) / 1000)
			}
		case report.MViewsPerVisit:
			if visits > 0 {
				x = math.Round(float64(vpv)*100/float64(visits)) / 100
			}
		case report.MConversion:
			if bs.population > 0 {
				x = math.Round(float64(visitors)*1000/float64(bs.population)) / 10
			}
		case report.MPercentage:
			switch {
			case bs.totalVisitors == -1:
				x = 100
			case bs.totalVisitors > 0:
				x = math.Round(float64(visitors)*1000/float64(bs.totalVisitors)) / 10
			}
		}
		row.Metrics = append(row.Metrics, x)
	}
	return row
}

// metricSQL is row's value of metric m as SQL over rawSQL's columns, for
// ORDER BY: the same float64 operations in the same order (FLOAT8 is
// IEEE double in both engines, as float64 is in Go), and roundSQL for
// math.Round, so that rows order by exactly the value row computes, ties
// included. It is "" for a metric with one value on every row, which
// orders nothing (and a constant in ORDER BY would name a column).
func metricSQL(m string, bs ratioBases) string {
	f := func(x string) string { return "CAST(" + x + " AS FLOAT8)" }
	perVisit := func(x string) string { return "CASE WHEN visits > 0 THEN " + x + " ELSE 0 END" }
	switch m {
	case report.MVisitors, report.MVisits, report.MPageviews, report.MEvents:
		return m
	case report.MBounceRate:
		return perVisit(roundSQL(f("bounces") + " * 100 / " + f("visits")))
	case report.MVisitDuration:
		return perVisit(roundSQL(f("dur") + " / " + f("visits") + " / 1000"))
	case report.MViewsPerVisit:
		return perVisit(roundSQL(f("vpv")+" * 100 / "+f("visits")) + " / 100")
	case report.MConversion:
		if bs.population > 0 {
			return roundSQL(f("visitors")+" * 1000 / "+f(fmt.Sprint(bs.population))) + " / 10"
		}
	case report.MPercentage:
		if bs.totalVisitors > 0 {
			return roundSQL(f("visitors")+" * 1000 / "+f(fmt.Sprint(bs.totalVisitors))) + " / 10"
		}
	}
	return ""
}

// roundSQL is math.Round (half away from zero) of a non-negative FLOAT8
// in both engines. Their round() differ: PostgreSQL's round(double
// precision) rounds half to even (round(2.5) = 2), and round(numeric)
// would need a cast from double that keeps only 15 digits
// (2.4999999999999996 becomes 2.5, which rounds to 3 where Go says 2).
// DuckDB's round(DOUBLE) is half away from zero, but one expression for
// both is one thing to get right: x - floor(x) is exact in binary
// floating point, so comparing it with 0.5 decides as math.Round does.
func roundSQL(x string) string {
	return "(CASE WHEN (" + x + ") - floor(" + x + ") >= 0.5 THEN floor(" + x + ") + 1 ELSE floor(" + x + ") END)"
}

// byteOrder is col ordered as strings.Compare orders: by bytes.
// PostgreSQL compares text by the database's collation unless told;
// DuckDB compares bytes unless a collation is set (Fjord sets none).
func (d Dialect) byteOrder(col string) string {
	if d.Name == "postgres" {
		return col + ` COLLATE "C"`
	}
	return col
}

// orderSQL is report.Sort's order over rawSQL's columns: the query's
// sort keys, then the dimensions ascending.
func (e *EventReads) orderSQL(q *report.Query, bs ratioBases) string {
	dimCol := func(i int) string {
		c := fmt.Sprintf("d%d", i)
		if q.Dimensions[i].Time != "" {
			// the bucket's time: its label sorts the same way
			return c
		}
		return e.D.byteOrder(c)
	}
	var keys []string
	for _, k := range q.SortKeys() {
		var col string
		for i, d := range q.Dimensions {
			if d.Name == k.By {
				col = dimCol(i)
			}
		}
		for _, m := range q.Metrics {
			if m == k.By {
				col = metricSQL(m, bs)
			}
		}
		if col == "" {
			continue
		}
		if k.Desc {
			col += " DESC"
		}
		keys = append(keys, col)
	}
	for i := range q.Dimensions {
		keys = append(keys, dimCol(i))
	}
	if len(keys) == 0 {
		return ""
	}
	return " ORDER BY " + strings.Join(keys, ", ")
}

// visitorPushdown narrows the visit derivation to the visitors that have
// at least one event meeting a relaxed form of the filter. A visit matches
// only if one of its events does (event dimensions), or its first event
// does (visit dimensions, and the entry and exit pages are some event's
// path), so every visitor with a matching visit passes: the answer is
// unchanged, and the window passes run over far fewer rows. Only positive
// conditions relax this way; "not", the negated operators and goals are
// left out (an "and" keeps its other members, an "or" with any such member
// gives up).
func (b *qbuilder) visitorPushdown() string {
	if b.q.Filter == nil {
		return ""
	}
	// the condition's arguments follow the range's in the text: build it
	// on a scratch builder and append its arguments after
	sub := &qbuilder{q: b.q, d: b.d, tz: b.tz}
	cond, ok := sub.relaxed(b.q.Filter)
	if !ok {
		return ""
	}
	sql := " AND visitor_id IN (SELECT visitor_id FROM events WHERE site_id = " + b.arg(b.q.Site.ID) +
		" AND ts >= " + b.arg(store.Millis(b.q.Range.From)) + " AND ts < " + b.arg(store.Millis(b.q.Range.To)) + " AND " + cond + ")"
	b.args = append(b.args, sub.args...)
	return sql
}

func (b *qbuilder) relaxed(f *report.Filter) (string, bool) {
	switch f.Op {
	case "and":
		var parts []string
		for i := range f.Sub {
			if c, ok := b.relaxed(&f.Sub[i]); ok {
				parts = append(parts, c)
			}
		}
		if len(parts) == 0 {
			return "", false
		}
		return "(" + strings.Join(parts, " AND ") + ")", true
	case "or":
		var parts []string
		for i := range f.Sub {
			c, ok := b.relaxed(&f.Sub[i])
			if !ok {
				return "", false
			}
			parts = append(parts, c)
		}
		return "(" + strings.Join(parts, " OR ") + ")", true
	case "is", "contains", "matches":
	default:
		return "", false
	}
	if f.Dim.Goal || f.Dim.Time != "" {
		return "", false
	}
	raw := *f
	switch f.Dim.Column {
	case "entry_page", "exit_page":
		raw.Dim.Column = "path"
	}
	return b.filter(&raw), true
}

// feFrom is the source of fe: the events, or with a goal breakdown one
// row per (event, goal it completes).
func (b *qbuilder) feFrom(goalDim bool) string {
	if !goalDim {
		return "* FROM e"
	}
	var vals []string
	for _, g := range b.q.Goals {
		pat := g.Value
		if g.Kind == "page" {
			pat = report.GoalRegexp(g.Value)
		}
		vals = append(vals, "("+b.arg(g.Name())+", "+b.arg(g.Kind)+", "+b.arg(pat)+")")
	}
	return "e.*, g.goal FROM e JOIN (VALUES " + strings.Join(vals, ", ") + ") AS g (goal, kind, val) ON " +
		"((g.kind = 'event' AND e.name = g.val) OR (g.kind = 'page' AND e.name = 'pageview' AND " + b.d.regex("e.path", "g.val") + "))"
}

// ctes writes the common table expressions every query starts from: b
// (events with visit boundaries), n (numbered visits), v (one row per
// visit with its dimensions), e (events with their visit's dimensions) and
// fe (e filtered; with goalDim one row per completed goal).
func (b *qbuilder) ctes(sb *strings.Builder, goalDim bool) {
	q := b.q
	// only the session values the question uses: every other column is
	// neither read nor carried through the window passes
	var cols, sess, vcols string
	for _, c := range b.sessionColsUsed() {
		cols += ", " + c
		sess += fmt.Sprintf(",\n\t\tMAX(CASE WHEN starts = 1 THEN %s END) AS %s", c, c)
		vcols += ", v." + c
	}
	fmt.Fprintf(sb, `WITH b AS (
	SELECT visitor_id, ts, id, name, path, hostname, interactive%s,
		CASE WHEN ts - LAG(ts) OVER w <= %d THEN 0 ELSE 1 END AS starts,
		CASE WHEN LEAD(ts) OVER w - ts <= %d THEN 0 ELSE 1 END AS ends
	FROM events WHERE site_id = %s AND ts >= %s AND ts < %s AND name <> 'engagement'%s
	WINDOW w AS (PARTITION BY visitor_id ORDER BY ts, id)
), n AS (
	SELECT *, SUM(starts) OVER (PARTITION BY visitor_id ORDER BY ts, id ROWS UNBOUNDED PRECEDING) AS visit FROM b
), v AS (
	SELECT visitor_id, visit, MIN(ts) AS start_ts, MAX(ts) - MIN(ts) AS dur,
		SUM(CASE WHEN name = 'pageview' THEN 1 ELSE 0 END) AS pv,
		SUM(CASE WHEN name = 'pageview' OR interactive THEN 1 ELSE 0 END) AS inter,
		MAX(CASE WHEN starts = 1 THEN path END) AS entry_page,
		MAX(CASE WHEN ends = 1 THEN path END) AS exit_page%s
	FROM n GROUP BY visitor_id, visit
), e AS (
	SELECT n.visitor_id, n.visit, n.ts, n.id, n.name, n.path, n.hostname, v.start_ts, v.entry_page, v.exit_page%s
	FROM n JOIN v ON n.visitor_id = v.visitor_id AND n.visit = v.visit
), fe AS (
	SELECT %s`,
		cols,
		store.SessionTimeout.Milliseconds(), store.SessionTimeout.Milliseconds(),
		b.arg(q.Site.ID), b.arg(store.Millis(q.Range.From)), b.arg(store.Millis(q.Range.To)),
		b.visitorPushdown(),
		sess, vcols, b.feFrom(goalDim))
	if q.Filter != nil {
		sb.WriteString(" WHERE " + b.filter(q.Filter))
	}
	sb.WriteString("\n)")
}

// sessionColsUsed are the session columns the query's dimensions and
// filter refer to, in sessionCols order.
func (b *qbuilder) sessionColsUsed() []string {
	used := map[string]bool{}
	for _, d := range b.q.Dimensions {
		used[d.Column] = true
	}
	var walk func(f *report.Filter)
	walk = func(f *report.Filter) {
		if f == nil {
			return
		}
		used[f.Dim.Column] = true
		for i := range f.Sub {
			walk(&f.Sub[i])
		}
	}
	walk(b.q.Filter)
	var out []string
	for _, c := range sessionCols {
		if used[c] {
			out = append(out, c)
		}
	}
	return out
}

func groupBy(n int, alias []string) string {
	if n == 0 {
		return ""
	}
	return " GROUP BY " + strings.Join(alias, ", ")
}

func prefixed(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x + " AS " + x
	}
	return out
}

// Stream answers q as Run does, holding one row at a time: the database
// orders and pages the groups (orderSQL, LIMIT, OFFSET; a Limit of 0 is
// every row) and each row is computed and handed to emit as it is read.
//
// It reads raw events (rawSQL), not the rollups Run plans over: Run
// merges rollup days and raw days by dimension value in Go, which holds
// every group, and an export is the question where that matters; raw
// events answer any question in one ordered SELECT. The database holds
// the groups while it sorts them (within its own memory limit), Go one
// row. Rollups
// and raw events give the same answers by design (the report suite checks
// both against one model, and Stream against Run). The bases of
// percentage and conversion_rate come from Run first, as Run gets them.
func (e *EventReads) Stream(ctx context.Context, q *report.Query, emit func(report.Row) error) error {
	bs, err := e.ratioBases(ctx, q)
	if err != nil {
		return err
	}
	b := &qbuilder{q: q, d: e.D, tz: q.Site.TimeZone}
	inner := b.rawSQL()
	if inner == "" {
		return nil
	}
	cols := []string{}
	for i := range q.Dimensions {
		cols = append(cols, fmt.Sprintf("d%d", i))
	}
	cols = append(cols, sumCols...)
	query := "SELECT " + strings.Join(cols, ", ") + " FROM (" + inner + ") s" + e.orderSQL(q, bs)
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	if q.Offset > 0 {
		query += fmt.Sprintf(" OFFSET %d", q.Offset)
	}
	rows, err := e.DB.QueryContext(ctx, e.q(query), b.args...)
	if err != nil {
		return fmt.Errorf("stream of site %d: %w", q.Site.ID, err)
	}
	defer rows.Close()
	sc := newSumScanner(q)
	for rows.Next() {
		r, err := sc.scan(rows)
		if err != nil {
			return fmt.Errorf("stream of site %d: %w", q.Site.ID, err)
		}
		if err := emit(bs.row(q, r)); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("stream of site %d: %w", q.Site.ID, err)
	}
	return nil
}

// Funnel counts the visitors who completed the steps (goals) in order
// within one visit: visitors[i] reached step i. Filters apply as in Run.
func (e *EventReads) Funnel(ctx context.Context, q *report.Query, steps []store.Goal) ([]int64, error) {
	fq := *q
	fq.Goals, fq.Dimensions = steps, nil
	b := &qbuilder{q: &fq, d: e.D, tz: q.Site.TimeZone}
	var sb strings.Builder
	b.ctes(&sb, true)
	sb.WriteString("\nSELECT visitor_id, visit, goal FROM fe ORDER BY visitor_id, visit, ts, id")
	rows, err := e.DB.QueryContext(ctx, e.q(sb.String()), b.args...)
	if err != nil {
		return nil, fmt.Errorf("funnel of site %d: %w", q.Site.ID, err)
	}
	defer rows.Close()
	reached := make([]map[int64]bool, len(steps))
	for i := range reached {
		reached[i] = map[int64]bool{}
	}
	var curV, curVisit int64 = -1, -1
	next := 0
	for rows.Next() {
		var vid, visit int64
		var goal string
		if err := rows.Scan(&vid, &visit, &goal); err != nil {
			return nil, fmt.Errorf("funnel of site %d: %w", q.Site.ID, err)
		}
		if vid != curV || visit != curVisit {
			curV, curVisit, next = vid, visit, 0
		}
		if next < len(steps) && goal == steps[next].Name() {
			reached[next][vid] = true
			next++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]int64, len(steps))
	for i, m := range reached {
		out[i] = int64(len(m))
	}
	return out, nil
}

// sums is where the planner decides: rollups (with raw events for days not
// built) when the question allows, raw events otherwise.
// The total is the number of rows the answer has when only the top ones
// were read (see topOf), otherwise 0.
func (e *EventReads) sums(ctx context.Context, q *report.Query) ([]sumRow, int, error) {
	if rollupable(q) {
		return e.planned(ctx, q)
	}
	rows, err := e.rawSums(ctx, q)
	return rows, 0, err
}
