package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math"
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

// Run answers a report query from raw events. Visits are derived as in
// Summary; a filter keeps the events it matches and the visits that have
// at least one such event. Event metrics (visitors, pageviews, events)
// count matching events; visit metrics (visits, bounce rate, duration,
// views per visit) count whole matching visits.
func (e *EventReads) rawSums(ctx context.Context, q *report.Query) ([]sumRow, error) {
	b := &qbuilder{q: q, d: e.D, tz: q.Site.TimeZone}
	goalDim := false
	for _, d := range q.Dimensions {
		goalDim = goalDim || d.Goal
	}
	if goalDim && len(q.Goals) == 0 {
		return nil, nil
	}
	var sb strings.Builder
	b.ctes(&sb, goalDim)
	nd := len(q.Dimensions)
	var eDims, vDims, dAlias []string
	for i, d := range q.Dimensions {
		a := fmt.Sprintf("d%d", i)
		dAlias = append(dAlias, a)
		eDims = append(eDims, b.eventExpr(d)+" AS "+a)
		vDims = append(vDims, b.visitExpr(d)+" AS "+a)
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
), fv AS (
	SELECT DISTINCT %svisitor_id, visit FROM fe
), va AS (
	SELECT %sCOUNT(*) AS visits, SUM(CASE WHEN v.inter <= 1 THEN 1 ELSE 0 END) AS bounces, SUM(v.dur) AS dur, SUM(v.pv) AS vpv
	FROM fv JOIN v ON fv.visitor_id = v.visitor_id AND fv.visit = v.visit%s
)
SELECT `, sel(eDims), groupBy(nd, dAlias), sel(vDims), sel(prefixed("fv.", dAlias)), group("fv."))
	var outDims []string
	for _, a := range dAlias {
		outDims = append(outDims, fmt.Sprintf("COALESCE(ea.%s, va.%s)", a, a))
	}
	sb.WriteString(sel(outDims))
	sb.WriteString("COALESCE(ea.visitors, 0), COALESCE(ea.pageviews, 0), COALESCE(ea.events, 0), COALESCE(va.visits, 0), COALESCE(va.bounces, 0), COALESCE(va.dur, 0), COALESCE(va.vpv, 0) FROM ea")
	if nd == 0 {
		sb.WriteString(" CROSS JOIN va")
	} else {
		var on []string
		for _, a := range dAlias {
			on = append(on, fmt.Sprintf("ea.%s = va.%s", a, a))
		}
		sb.WriteString(" FULL JOIN va ON " + strings.Join(on, " AND "))
	}
	// the time zone of bucket() is bound once per use; rebind in order
	rows, err := e.DB.QueryContext(ctx, e.q(sb.String()), b.args...)
	if err != nil {
		return nil, fmt.Errorf("query of site %d: %w", q.Site.ID, err)
	}
	defer rows.Close()
	var all []sumRow
	for rows.Next() {
		dv := make([]any, nd)
		for i, d := range q.Dimensions {
			if d.Time != "" {
				dv[i] = new(time.Time)
			} else {
				dv[i] = new(sql.NullString)
			}
		}
		var r sumRow
		dest := append([]any{}, dv...)
		for i := range r.sums {
			dest = append(dest, &r.sums[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("query of site %d: %w", q.Site.ID, err)
		}
		for i, d := range q.Dimensions {
			if d.Time != "" {
				r.dims = append(r.dims, report.TimeLabel(d.Time, *dv[i].(*time.Time)))
			} else {
				r.dims = append(r.dims, dv[i].(*sql.NullString).String)
			}
		}
		if nd == 0 && r.sums == [7]int64{} && len(all) > 0 {
			continue
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

// Run answers a query: from the rollups where they can (see plan), from
// raw events otherwise.
func (e *EventReads) Run(ctx context.Context, q *report.Query) (*report.Result, error) {
	all, total, err := e.sums(ctx, q)
	if err != nil {
		return nil, err
	}
	nd := len(q.Dimensions)
	var totalVisitors int64
	for _, m := range q.Metrics {
		if m == report.MPercentage {
			if nd == 0 {
				totalVisitors = -1 // 100% of itself
			} else {
				tq := *q
				tq.Dimensions, tq.Metrics, tq.OrderBy, tq.Limit, tq.Offset = nil, []string{report.MVisitors}, nil, 1, 0
				tr, err := e.Run(ctx, &tq)
				if err != nil {
					return nil, err
				}
				if len(tr.Rows) > 0 {
					totalVisitors = int64(tr.Rows[0].Metrics[0])
				}
			}
		}
	}
	var population int64
	for _, m := range q.Metrics {
		if m == report.MConversion {
			pq := *q
			pq.Dimensions, pq.Metrics, pq.OrderBy, pq.Filter, pq.Limit, pq.Offset = nil, []string{report.MVisitors}, nil, q.WithoutGoalFilters(), 1, 0
			pr, err := e.Run(ctx, &pq)
			if err != nil {
				return nil, err
			}
			population = int64(pr.Rows[0].Metrics[0])
		}
	}
	res := &report.Result{}
	for _, r := range all {
		row := report.Row{Dimensions: r.dims}
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
				if population > 0 {
					x = math.Round(float64(visitors)*1000/float64(population)) / 10
				}
			case report.MPercentage:
				switch {
				case totalVisitors == -1:
					x = 100
				case totalVisitors > 0:
					x = math.Round(float64(visitors)*1000/float64(totalVisitors)) / 10
				}
			}
			row.Metrics = append(row.Metrics, x)
		}
		res.Rows = append(res.Rows, row)
	}
	report.Sort(q, res.Rows)
	res.Total = max(total, len(res.Rows))
	res.Rows = report.Page(q, res.Rows)
	return res, nil
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

// Stream answers q through Run and hands its rows to emit.
func (e *EventReads) Stream(ctx context.Context, q *report.Query, emit func(report.Row) error) error {
	res, err := e.Run(ctx, q)
	if err != nil {
		return err
	}
	for _, r := range res.Rows {
		if err := emit(r); err != nil {
			return err
		}
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
