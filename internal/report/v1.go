package report

import (
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fjord/internal/store"
)

// Plausible's legacy Stats API v1 as a thin layer over the same engine.

// V1Query builds a Query from v1 parameters (site_id is resolved by the
// caller). dimension is "" for aggregate, a property for breakdown, or a
// time dimension for timeseries.
func V1Query(site store.Site, goals []store.Goal, p url.Values, dimension string, defMetrics string, now time.Time) (*Query, error) {
	metrics := p.Get("metrics")
	if metrics == "" {
		metrics = defMetrics
	}
	q := &Query{Site: site, Goals: goals, Metrics: strings.Split(metrics, ",")}
	period := p.Get("period")
	if period == "" {
		period = "30d"
	}
	if period == "custom" {
		from, to, ok := strings.Cut(p.Get("date"), ",")
		if !ok {
			return nil, qerr("date", "period=custom needs date=YYYY-MM-DD,YYYY-MM-DD")
		}
		r, err := parseDateRange([]byte(`["`+jsonSafe(from)+`","`+jsonSafe(to)+`"]`), site.TimeZone, now)
		if err != nil {
			return nil, qerr("date", "%v", err.(*QueryError).Msg)
		}
		q.Range = r
	} else {
		r, err := ParsePeriod(period, site.TimeZone, now)
		if err != nil {
			return nil, qerr("period", "%v", err)
		}
		q.Range = r
	}
	if dimension != "" {
		d, ok := LookupDim(dimension)
		if !ok {
			return nil, qerr("property", "unknown property %q", dimension)
		}
		q.Dimensions = []Dim{d}
	}
	if f := p.Get("filters"); f != "" {
		flt, err := parseV1Filters(f)
		if err != nil {
			return nil, err
		}
		q.Filter = flt
	}
	if l := p.Get("limit"); l != "" && dimension != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return nil, qerr("limit", "want 1 to 1000")
		}
		q.Limit = n
		if pg := p.Get("page"); pg != "" {
			k, err := strconv.Atoi(pg)
			if err != nil || k < 1 {
				return nil, qerr("page", "want a page number from 1")
			}
			q.Offset = (k - 1) * n
		}
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return q, nil
}

func jsonSafe(s string) string {
	return strings.NewReplacer(`"`, "", `\`, "").Replace(s)
}

// ParseURLFilters reads the dashboard's filters: each "dim==value" (or
// !=, ~) string is one condition, all combined with and.
func ParseURLFilters(list []string) (*Filter, error) {
	var parts []string
	for _, f := range list {
		if strings.TrimSpace(f) != "" {
			parts = append(parts, strings.ReplaceAll(f, ";", ""))
		}
	}
	if len(parts) == 0 {
		return nil, nil
	}
	return parseV1Filters(strings.Join(parts, ";"))
}

// parseV1Filters reads "visit:browser==Firefox;event:page!=/a|/b" (";" is
// and, "|" separates values, "!=" negates, "~" is contains).
func parseV1Filters(s string) (*Filter, error) {
	var subs []Filter
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		var op, dim, vals string
		switch {
		case strings.Contains(part, "!="):
			dim, vals, _ = strings.Cut(part, "!=")
			op = "is_not"
		case strings.Contains(part, "=="):
			dim, vals, _ = strings.Cut(part, "==")
			op = "is"
		case strings.Contains(part, "~"):
			dim, vals, _ = strings.Cut(part, "~")
			op = "contains"
		default:
			return nil, qerr("filters", "%q: want dimension==value, dimension!=value or dimension~value", part)
		}
		d, ok := LookupDim(strings.TrimSpace(dim))
		if !ok || d.Time != "" {
			return nil, qerr("filters", "unknown dimension %q", dim)
		}
		subs = append(subs, Filter{Op: op, Dim: d, Values: strings.Split(vals, "|")})
	}
	if len(subs) == 1 {
		return &subs[0], nil
	}
	return &Filter{Op: "and", Sub: subs}, nil
}

// Previous is the range of the same length just before r (comparison).
func (r Range) Previous() Range {
	loc, err := time.LoadLocation(r.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	from, to := r.From.In(loc), r.To.In(loc)
	days := int(math.Round(to.Sub(from).Hours() / 24))
	pfrom := from.AddDate(0, 0, -days)
	return Range{From: pfrom.UTC(), To: from.UTC(), FromDay: pfrom.Format(time.DateOnly),
		ToDay: from.AddDate(0, 0, -1).Format(time.DateOnly), Period: "previous_period", TimeZone: r.TimeZone}
}

// Change is Plausible's comparison figure: percent change for counts,
// the difference in points for bounce rate; nil when undefined.
func Change(metric string, now, before float64) any {
	if metric == MBounceRate {
		return now - before
	}
	if before == 0 {
		if now == 0 {
			return 0
		}
		return 100
	}
	return math.Round((now - before) / before * 100)
}

// V1Key is the result key of a dimension in v1 answers ("visit:source" ->
// "source", "event:page" -> "page").
func V1Key(d Dim) string {
	_, k, _ := strings.Cut(d.Name, ":")
	if d.Time != "" {
		return "date"
	}
	return k
}

// V2 is the filter in the Stats API v2 form, for a saved definition: the
// top-level list of conditions that must all hold, each [op, dimension,
// values], with "or" and "not" as [op, [conditions...]].
func (f *Filter) V2() []any {
	switch f.Op {
	case "and":
		var out []any
		for i := range f.Sub {
			out = append(out, f.Sub[i].V2()...)
		}
		return out
	case "or", "not":
		var sub []any
		for i := range f.Sub {
			sub = append(sub, f.Sub[i].V2()...)
		}
		if f.Op == "not" && len(sub) == 1 {
			return []any{[]any{"not", sub[0]}}
		}
		return []any{[]any{f.Op, sub}}
	}
	return []any{[]any{f.Op, f.Dim.Name, f.Values}}
}
