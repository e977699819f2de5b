package report

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"fjord/internal/store"
)

// Metric names, as Plausible's Stats API v2 spells them.
const (
	MVisitors      = "visitors"
	MVisits        = "visits"
	MPageviews     = "pageviews"
	MViewsPerVisit = "views_per_visit"
	MBounceRate    = "bounce_rate"
	MVisitDuration = "visit_duration"
	MEvents        = "events"
	MPercentage    = "percentage"
	MConversion    = "conversion_rate"
)

// Metrics lists the metrics a query may ask for.
var Metrics = []string{MVisitors, MVisits, MPageviews, MViewsPerVisit, MBounceRate, MVisitDuration, MEvents, MPercentage, MConversion}

// Dim describes one dimension: its API name and where its value comes
// from. Session dimensions are the values of a visit's first event (a
// visit's later pageviews have the site itself as referrer); event
// dimensions are per event.
type Dim struct {
	Name    string
	Column  string // column of events, or of the visit for session dims
	Session bool
	Time    string // time:hour|day|week|month: the date_trunc unit
	Goal    bool   // event:goal: the goals an event completes
}

// Dims are the dimensions of PRODUCT §2.2 under Plausible's names.
var Dims = []Dim{
	{Name: "event:page", Column: "path"},
	{Name: "event:hostname", Column: "hostname"},
	{Name: "event:name", Column: "name"},
	{Name: "event:goal", Column: "goal", Goal: true},
	{Name: "visit:entry_page", Column: "entry_page", Session: true},
	{Name: "visit:exit_page", Column: "exit_page", Session: true},
	{Name: "visit:source", Column: "source", Session: true},
	{Name: "visit:referrer", Column: "referrer", Session: true},
	{Name: "visit:channel", Column: "channel", Session: true},
	{Name: "visit:utm_source", Column: "utm_source", Session: true},
	{Name: "visit:utm_medium", Column: "utm_medium", Session: true},
	{Name: "visit:utm_campaign", Column: "utm_campaign", Session: true},
	{Name: "visit:utm_content", Column: "utm_content", Session: true},
	{Name: "visit:utm_term", Column: "utm_term", Session: true},
	{Name: "visit:country", Column: "country", Session: true},
	{Name: "visit:region", Column: "region", Session: true},
	{Name: "visit:city", Column: "city", Session: true},
	{Name: "visit:browser", Column: "browser", Session: true},
	{Name: "visit:browser_version", Column: "browser_version", Session: true},
	{Name: "visit:os", Column: "os", Session: true},
	{Name: "visit:os_version", Column: "os_version", Session: true},
	{Name: "visit:device", Column: "device", Session: true},
	{Name: "time:hour", Time: "hour"},
	{Name: "time:day", Time: "day"},
	{Name: "time:week", Time: "week"},
	{Name: "time:month", Time: "month"},
}

// LookupDim finds a dimension by API name; "time" is time:day.
func LookupDim(name string) (Dim, bool) {
	if name == "time" {
		name = "time:day"
	}
	for _, d := range Dims {
		if d.Name == name {
			return d, true
		}
	}
	return Dim{}, false
}

// Filter is one condition, or a combination of conditions.
type Filter struct {
	Op     string   // is, is_not, contains, contains_not, matches, matches_not, and, or, not
	Dim    Dim      // for conditions
	Values []string // for conditions: any of them matches
	Sub    []Filter // for and, or, not
	re     []*regexp.Regexp
}

// Query is one question about one site.
type Query struct {
	Site       store.Site
	Metrics    []string
	Range      Range
	Dimensions []Dim
	Filter     *Filter // nil: no filter
	OrderBy    []Order
	Limit      int
	Offset     int
	// Goals are the site's goals; event:goal and conversion_rate use them.
	Goals []store.Goal
}

// Order sorts by a metric or a dimension.
type Order struct {
	By   string // a metric or a dimension name of the query
	Desc bool
}

// Row is one result row.
type Row struct {
	Dimensions []string    `json:"dimensions"`
	Metrics    []float64   `json:"metrics"`
	Comparison *Comparison `json:"comparison,omitempty"`
}

// Comparison is a row's figures in the comparison period and the change.
type Comparison struct {
	Dimensions []string  `json:"dimensions"`
	Metrics    []float64 `json:"metrics"`
	Change     []any     `json:"change"`
}

// Result is a query's answer.
type Result struct {
	Rows  []Row
	Total int // rows before pagination
}

// Engine answers queries; each event store has one.
type Engine interface {
	Run(ctx context.Context, q *Query) (*Result, error)
	// Funnel counts the visitors reaching each step (goal), in order,
	// within one visit.
	Funnel(ctx context.Context, q *Query, steps []store.Goal) ([]int64, error)
	// Stream answers q as Run does, handing the rows to emit one at a
	// time in the query's order, for exports and datafeeds (PRODUCT
	// §5.1): it holds one row at a time, so memory does not grow with
	// the answer, and a Limit of 0 is every row. An error from emit
	// stops it and is returned.
	Stream(ctx context.Context, q *Query, emit func(Row) error) error
}

// Rollups is implemented by engines that keep daily rollups: a job calls
// it to build the days that are over (and their weeks); it returns how many
// days and weeks it built.
type Rollups interface {
	RefreshRollups(ctx context.Context, site store.Site, now time.Time) (int, error)
	// KeepRollupsLive makes ingest keep the newest days' rollups current;
	// zone gives a site's time zone, false for an unknown site.
	KeepRollupsLive(zone func(site int64) (string, bool))
}

// FunnelMetrics are the metrics of a funnel answer, one row per step.
var FunnelMetrics = []string{MVisitors, MConversion, "dropoff"}

// FunnelRows turns step counts into rows: visitors, conversion rate from
// the first step (percent) and the drop from the step before.
func FunnelRows(steps []store.Goal, counts []int64) []Row {
	var rows []Row
	for i, g := range steps {
		var conv float64
		if counts[0] > 0 {
			conv = math.Round(float64(counts[i])*1000/float64(counts[0])) / 10
		}
		var drop int64
		if i > 0 {
			drop = counts[i-1] - counts[i]
		}
		rows = append(rows, Row{Dimensions: []string{g.Name()}, Metrics: []float64{float64(counts[i]), conv, float64(drop)}})
	}
	return rows
}

// FunnelSteps resolves step names to the site's goals: 2 to 8 distinct.
func (q *Query) FunnelSteps(names []string) ([]store.Goal, error) {
	if len(names) < 2 || len(names) > 8 {
		return nil, qerr("funnel", "a funnel has 2 to 8 steps")
	}
	seen := map[string]bool{}
	var out []store.Goal
	for _, n := range names {
		g, ok := q.GoalByName(n)
		if !ok {
			return nil, qerr("funnel", "no goal %q on this site", n)
		}
		if seen[n] {
			return nil, qerr("funnel", "step %q appears twice", n)
		}
		seen[n] = true
		out = append(out, g)
	}
	return out, nil
}

// QueryError is a bad query; its message names the offending field.
type QueryError struct{ Field, Msg string }

func (e *QueryError) Error() string { return e.Field + ": " + e.Msg }

func qerr(field, format string, args ...any) error {
	return &QueryError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks the parts a caller assembled and compiles regexps.
func (q *Query) Validate() error {
	if len(q.Metrics) == 0 {
		return qerr("metrics", "at least one metric is required")
	}
	for _, m := range q.Metrics {
		ok := false
		for _, k := range Metrics {
			ok = ok || k == m
		}
		if !ok {
			return qerr("metrics", "unknown metric %q (known: %s)", m, strings.Join(Metrics, ", "))
		}
	}
	if q.Limit <= 0 {
		q.Limit = 10000
	}
	if q.Limit > 10000 {
		return qerr("pagination", "limit above 10000")
	}
	if q.Offset < 0 {
		return qerr("pagination", "negative offset")
	}
	if q.Filter != nil {
		if err := q.Filter.compile(); err != nil {
			return err
		}
		if err := q.checkGoalFilters(); err != nil {
			return err
		}
	}
	for _, m := range q.Metrics {
		if m == MConversion && !q.HasGoal() {
			return qerr("metrics", "conversion_rate needs the event:goal dimension or an event:goal filter")
		}
	}
	for _, o := range q.OrderBy {
		ok := false
		for _, m := range q.Metrics {
			ok = ok || m == o.By
		}
		for _, d := range q.Dimensions {
			ok = ok || d.Name == o.By
		}
		if !ok {
			return qerr("order_by", "%q is neither a metric nor a dimension of the query", o.By)
		}
	}
	if !q.Range.To.After(q.Range.From) {
		return qerr("date_range", "the range is empty")
	}
	return nil
}

func (f *Filter) compile() error {
	switch f.Op {
	case "and", "or", "not":
		if len(f.Sub) == 0 || (f.Op == "not" && len(f.Sub) != 1) {
			return qerr("filters", "%q needs sub-filters", f.Op)
		}
		for i := range f.Sub {
			if err := f.Sub[i].compile(); err != nil {
				return err
			}
		}
		return nil
	case "is", "is_not", "contains", "contains_not":
	case "matches", "matches_not":
		f.re = f.re[:0]
		for _, v := range f.Values {
			re, err := regexp.Compile(v)
			if err != nil {
				return qerr("filters", "bad regular expression %q: %v", v, err)
			}
			f.re = append(f.re, re)
		}
	default:
		return qerr("filters", "unknown operator %q", f.Op)
	}
	if f.Dim.Time != "" {
		return qerr("filters", "cannot filter on %s", f.Dim.Name)
	}
	if len(f.Values) == 0 {
		return qerr("filters", "%s %s needs at least one value", f.Op, f.Dim.Name)
	}
	return nil
}

// TimeLabel formats a time bucket as Plausible does.
func TimeLabel(unit string, t time.Time) string {
	switch unit {
	case "hour":
		return t.Format("2006-01-02 15:04:05")
	case "month", "week", "day":
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339)
}

// SortKeys are the keys rows are ordered by: the query's own, or by
// default the first dimension ascending when it is a time bucket,
// otherwise the first metric descending. Sort (and an engine that orders
// in SQL, to give the same order) ends with the dimensions as tie-breaks.
func (q *Query) SortKeys() []Order {
	if len(q.OrderBy) > 0 {
		return q.OrderBy
	}
	if len(q.Dimensions) > 0 && q.Dimensions[0].Time != "" {
		return []Order{{By: q.Dimensions[0].Name}}
	}
	return []Order{{By: q.Metrics[0], Desc: true}}
}

// Sort orders rows as the query asks (SortKeys); ties break on the
// dimensions, compared as bytes, so answers are stable across engines.
func Sort(q *Query, rows []Row) {
	keys := q.SortKeys()
	idx := func(name string) (int, bool) {
		for i, m := range q.Metrics {
			if m == name {
				return i, true
			}
		}
		for i, d := range q.Dimensions {
			if d.Name == name {
				return i, false
			}
		}
		return -1, false
	}
	sort.SliceStable(rows, func(a, b int) bool {
		for _, k := range keys {
			i, metric := idx(k.By)
			var c int
			if metric {
				c = cmpFloat(rows[a].Metrics[i], rows[b].Metrics[i])
			} else {
				c = strings.Compare(rows[a].Dimensions[i], rows[b].Dimensions[i])
			}
			if k.Desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		for i := range rows[a].Dimensions {
			if c := strings.Compare(rows[a].Dimensions[i], rows[b].Dimensions[i]); c != 0 {
				return c < 0
			}
		}
		return false
	})
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Page applies offset and limit.
func Page(q *Query, rows []Row) []Row {
	if q.Offset >= len(rows) {
		return []Row{}
	}
	rows = rows[q.Offset:]
	if q.Limit > 0 && len(rows) > q.Limit {
		rows = rows[:q.Limit]
	}
	return rows
}

// Realtime is the query of visitors in the last five minutes (§2.6).
func Realtime(site store.Site, now time.Time) *Query {
	q := &Query{Site: site, Metrics: []string{MVisitors}, Limit: 1,
		Range: Range{From: now.Add(-5 * time.Minute).UTC(), To: now.Add(time.Second).UTC(), Period: "realtime", TimeZone: site.TimeZone}}
	return q
}

// HasGoal reports whether the query breaks down or filters by goal.
func (q *Query) HasGoal() bool {
	for _, d := range q.Dimensions {
		if d.Goal {
			return true
		}
	}
	return len(q.GoalFilters()) > 0
}

// GoalFilters are the top-level event:goal conditions.
func (q *Query) GoalFilters() []Filter {
	if q.Filter == nil {
		return nil
	}
	list := []Filter{*q.Filter}
	if q.Filter.Op == "and" {
		list = q.Filter.Sub
	}
	var out []Filter
	for _, f := range list {
		if f.Dim.Goal {
			out = append(out, f)
		}
	}
	return out
}

// WithoutGoalFilters is the filter with the top-level goal conditions
// removed: the population a conversion rate divides by.
func (q *Query) WithoutGoalFilters() *Filter {
	if q.Filter == nil || (q.Filter.Dim.Goal && q.Filter.Op != "and") {
		return nil
	}
	if q.Filter.Op != "and" {
		return q.Filter
	}
	var keep []Filter
	for _, f := range q.Filter.Sub {
		if !f.Dim.Goal {
			keep = append(keep, f)
		}
	}
	switch len(keep) {
	case 0:
		return nil
	case 1:
		return &keep[0]
	}
	return &Filter{Op: "and", Sub: keep}
}

// checkGoalFilters: goal conditions are "is" at the top level and name
// known goals.
func (q *Query) checkGoalFilters() error {
	var walk func(f *Filter, top bool) error
	walk = func(f *Filter, top bool) error {
		for i := range f.Sub {
			if err := walk(&f.Sub[i], top && f.Op == "and"); err != nil {
				return err
			}
		}
		if !f.Dim.Goal {
			return nil
		}
		if !top || f.Op != "is" {
			return qerr("filters", "event:goal takes \"is\" at the top level of the filters")
		}
		for _, v := range f.Values {
			if _, ok := q.GoalByName(v); !ok {
				return qerr("filters", "no goal %q on this site", v)
			}
		}
		return nil
	}
	return walk(q.Filter, true)
}

// GoalByName finds a goal of the query's site.
func (q *Query) GoalByName(name string) (store.Goal, bool) {
	for _, g := range q.Goals {
		if g.Name() == name {
			return g, true
		}
	}
	return store.Goal{}, false
}

// GoalRegexp turns a page goal's pattern into an anchored regular
// expression: ** is any run of characters, * any run without /.
func GoalRegexp(pattern string) string {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch {
		case strings.HasPrefix(pattern[i:], "**"):
			b.WriteString(".*")
			i++
		case pattern[i] == '*':
			b.WriteString("[^/]*")
		default:
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	b.WriteString("$")
	return b.String()
}
