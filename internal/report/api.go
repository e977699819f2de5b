package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"fjord/internal/store"
)

// APIRequest is the body of POST /api/v2/query, in the shape of
// Plausible's Stats API v2.
type APIRequest struct {
	SiteID     string            `json:"site_id"`
	Metrics    []string          `json:"metrics"`
	DateRange  json.RawMessage   `json:"date_range"`
	Dimensions []string          `json:"dimensions"`
	Filters    []json.RawMessage `json:"filters"`
	OrderBy    [][]string        `json:"order_by"`
	Include    struct {
		TimeLabels  bool `json:"time_labels"`
		TotalRows   bool `json:"total_rows"`
		Comparisons *struct {
			Mode string `json:"mode"`
		} `json:"comparisons"`
	} `json:"include"`
	Pagination struct {
		Limit  int `json:"limit"`
		Offset int `json:"offset"`
	} `json:"pagination"`

	// Fjord's extensions of the same shape.
	SavedReport *int64   `json:"saved_report,omitempty"` // run a saved definition (date_range and pagination given here override it)
	Funnel      []string `json:"funnel,omitempty"`       // goal names in order: one result row per step
}

// APIResponse is the answer of POST /api/v2/query.
type APIResponse struct {
	Results []Row          `json:"results"`
	Meta    map[string]any `json:"meta"`
	Query   map[string]any `json:"query"`
}

// DecodeAPIRequest reads a v2 query body strictly: an unknown field is an
// error naming it, as a typo would otherwise silently change the answer.
func DecodeAPIRequest(body []byte) (*APIRequest, error) {
	var r APIRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, qerr("body", "%v", err)
	}
	if r.SiteID == "" {
		return nil, qerr("site_id", "required")
	}
	return &r, nil
}

// DecodeDefinition reads a saved report's definition: a v2 body without
// site_id.
func DecodeDefinition(def []byte) (*APIRequest, error) {
	var r APIRequest
	dec := json.NewDecoder(bytes.NewReader(def))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, qerr("query", "%v", err)
	}
	if r.SiteID != "" || r.SavedReport != nil {
		return nil, qerr("query", "a definition names neither site_id nor saved_report")
	}
	return &r, nil
}

// Merge applies a saved definition under this request's overrides.
func (r *APIRequest) Merge(def *APIRequest) *APIRequest {
	out := *def
	out.SiteID = r.SiteID
	if len(r.DateRange) > 0 {
		out.DateRange = r.DateRange
	}
	if r.Pagination.Limit != 0 || r.Pagination.Offset != 0 {
		out.Pagination = r.Pagination
	}
	return &out
}

// Build turns a decoded request for a known site into a validated Query.
func (r *APIRequest) Build(site store.Site, goals []store.Goal, now time.Time) (*Query, error) {
	q := &Query{Site: site, Goals: goals, Metrics: r.Metrics, Limit: r.Pagination.Limit, Offset: r.Pagination.Offset}
	if len(r.Funnel) > 0 {
		if len(r.Metrics) > 0 || len(r.Dimensions) > 0 {
			return nil, qerr("funnel", "a funnel query has no metrics or dimensions of its own (it answers %v per step)", FunnelMetrics)
		}
		q.Metrics = []string{MVisitors}
	}
	rng, err := parseDateRange(r.DateRange, site.TimeZone, now)
	if err != nil {
		return nil, err
	}
	q.Range = rng
	for _, name := range r.Dimensions {
		d, ok := LookupDim(name)
		if !ok {
			return nil, qerr("dimensions", "unknown dimension %q", name)
		}
		q.Dimensions = append(q.Dimensions, d)
	}
	if len(r.Filters) > 0 {
		var subs []Filter
		for i, raw := range r.Filters {
			f, err := parseFilter(raw, fmt.Sprintf("filters[%d]", i))
			if err != nil {
				return nil, err
			}
			subs = append(subs, f)
		}
		q.Filter = &Filter{Op: "and", Sub: subs}
		if len(subs) == 1 {
			q.Filter = &subs[0]
		}
	}
	for i, o := range r.OrderBy {
		if len(o) != 2 || (o[1] != "asc" && o[1] != "desc") {
			return nil, qerr("order_by", "entry %d: want [name, \"asc\"|\"desc\"]", i)
		}
		by := o[0]
		if by == "time" {
			by = "time:day"
		}
		q.OrderBy = append(q.OrderBy, Order{By: by, Desc: o[1] == "desc"})
	}
	if c := r.Include.Comparisons; c != nil && c.Mode != "previous_period" {
		return nil, qerr("include.comparisons.mode", "only \"previous_period\" is supported")
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return q, nil
}

// Compare attaches the previous period's figures to each row: matched by
// dimension values, or by position when the first dimension is time (the
// n-th day is compared with the n-th day before).
func Compare(q *Query, cur, prev *Result) {
	byKey := map[string]Row{}
	for _, r := range prev.Rows {
		byKey[strings.Join(r.Dimensions, "\x00")] = r
	}
	timed := len(q.Dimensions) > 0 && q.Dimensions[0].Time != ""
	for i := range cur.Rows {
		var p Row
		var ok bool
		if timed {
			if ok = i < len(prev.Rows); ok {
				p = prev.Rows[i]
			}
		} else {
			p, ok = byKey[strings.Join(cur.Rows[i].Dimensions, "\x00")]
		}
		if !ok {
			p = Row{Dimensions: cur.Rows[i].Dimensions, Metrics: make([]float64, len(q.Metrics))}
		}
		c := &Comparison{Dimensions: p.Dimensions, Metrics: p.Metrics}
		for j, m := range q.Metrics {
			c.Change = append(c.Change, Change(m, cur.Rows[i].Metrics[j], p.Metrics[j]))
		}
		cur.Rows[i].Comparison = c
	}
}

func parseFilter(raw json.RawMessage, field string) (Filter, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) < 2 {
		return Filter{}, qerr(field, "want [operator, dimension, [values]] or [\"and\"|\"or\", [filters]] or [\"not\", filter]")
	}
	var op string
	if err := json.Unmarshal(parts[0], &op); err != nil {
		return Filter{}, qerr(field, "the operator must be a string")
	}
	switch op {
	case "and", "or":
		var subs []json.RawMessage
		if err := json.Unmarshal(parts[1], &subs); err != nil || len(subs) == 0 || len(parts) != 2 {
			return Filter{}, qerr(field, "%q takes a list of filters", op)
		}
		f := Filter{Op: op}
		for i, s := range subs {
			sf, err := parseFilter(s, fmt.Sprintf("%s[1][%d]", field, i))
			if err != nil {
				return Filter{}, err
			}
			f.Sub = append(f.Sub, sf)
		}
		return f, nil
	case "not":
		if len(parts) != 2 {
			return Filter{}, qerr(field, "\"not\" takes one filter")
		}
		sf, err := parseFilter(parts[1], field+"[1]")
		if err != nil {
			return Filter{}, err
		}
		return Filter{Op: "not", Sub: []Filter{sf}}, nil
	case "is", "is_not", "contains", "contains_not", "matches", "matches_not":
	default:
		return Filter{}, qerr(field, "unknown operator %q", op)
	}
	if len(parts) < 3 || len(parts) > 4 {
		return Filter{}, qerr(field, "%q takes a dimension and a list of values", op)
	}
	var dim string
	if err := json.Unmarshal(parts[1], &dim); err != nil {
		return Filter{}, qerr(field, "the dimension must be a string")
	}
	d, ok := LookupDim(dim)
	if !ok || d.Time != "" {
		return Filter{}, qerr(field, "cannot filter on unknown dimension %q", dim)
	}
	var vals []string
	if err := json.Unmarshal(parts[2], &vals); err != nil {
		return Filter{}, qerr(field, "the values must be a list of strings")
	}
	f := Filter{Op: op, Dim: d, Values: vals}
	if err := f.compile(); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// parseDateRange reads Plausible's date_range: a period name or a pair of
// dates (inclusive, in the site's zone).
func parseDateRange(raw json.RawMessage, tz string, now time.Time) (Range, error) {
	if len(raw) == 0 {
		return Range{}, qerr("date_range", "required")
	}
	var name string
	if json.Unmarshal(raw, &name) == nil {
		r, err := ParsePeriod(name, tz, now)
		if err != nil {
			return Range{}, qerr("date_range", "%v", err)
		}
		return r, nil
	}
	var pair []string
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return Range{}, qerr("date_range", "want a period name or [\"YYYY-MM-DD\", \"YYYY-MM-DD\"]")
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return Range{}, err
	}
	from, err1 := time.ParseInLocation(time.DateOnly, pair[0], loc)
	to, err2 := time.ParseInLocation(time.DateOnly, pair[1], loc)
	if err1 != nil || err2 != nil {
		return Range{}, qerr("date_range", "dates must be YYYY-MM-DD")
	}
	if to.Before(from) {
		return Range{}, qerr("date_range", "the end is before the start")
	}
	if to.Sub(from) > 5*366*24*time.Hour {
		return Range{}, qerr("date_range", "longer than five years")
	}
	end := to.AddDate(0, 0, 1)
	return Range{From: from.UTC(), To: end.UTC(), FromDay: pair[0], ToDay: pair[1], Period: "custom", TimeZone: tz}, nil
}

// Response builds the v2 answer.
func Response(q *Query, req *APIRequest, res *Result) APIResponse {
	out := APIResponse{Results: res.Rows, Meta: map[string]any{}, Query: map[string]any{
		"site_id":    req.SiteID,
		"metrics":    q.Metrics,
		"date_range": []string{q.Range.From.Format(time.RFC3339), q.Range.To.Add(-time.Second).Format(time.RFC3339)},
		"dimensions": DimNames(q.Dimensions),
	}}
	if out.Results == nil {
		out.Results = []Row{}
	}
	if req.Include.TotalRows {
		out.Meta["total_rows"] = res.Total
	}
	if req.Include.TimeLabels && len(q.Dimensions) > 0 && q.Dimensions[0].Time != "" {
		out.Meta["time_labels"] = TimeLabels(q.Range, q.Dimensions[0].Time)
	}
	if len(req.Funnel) > 0 {
		out.Query["metrics"] = FunnelMetrics
		out.Query["funnel"] = req.Funnel
	}
	if req.SavedReport != nil {
		out.Query["saved_report"] = *req.SavedReport
	}
	return out
}

// DimNames are the dimensions' API names.
func DimNames(ds []Dim) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

// TimeLabels lists every bucket of a range, empty ones included, as the
// time dimension labels them.
func TimeLabels(r Range, unit string) []string {
	loc, err := time.LoadLocation(r.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	out := []string{}
	seen := map[string]bool{}
	for t := r.From.In(loc); t.Before(r.To); {
		var key time.Time
		switch unit {
		case "hour":
			key = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, time.UTC)
			t = t.Add(time.Hour)
		case "week":
			d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
			key = d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		case "month":
			key = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
		default:
			key = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		}
		l := TimeLabel(unit, key)
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}
