// Package rollup computes one site's daily rollups from its events, in Go:
// per local day, dimension and value, the additive sums a report needs
// (visitors, pageviews, events, visits, bounces, duration, pageviews of
// the visits). The event store keeps the newest days current at ingest by
// feeding each batch to a Day, and builds older days by replaying their raw
// events through a Day; both ways give the numbers the raw-event queries
// give (internal/store/sqlstore), and the shared report suite holds all of
// them to one ground truth.
//
// Because a visitor id changes with the site's local day (collect's salts),
// a visit never spans two days: a Day needs no neighbour.
package rollup

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"time"

	"fjord/internal/report"
	"fjord/internal/store"
)

// Sums are a row's counters, in this order: visitors, pageviews, events,
// visits, bounces, duration (ms), pageviews of the visits.
type Sums [7]int64

const (
	sVisitors = iota
	sPageviews
	sEvents
	sVisits
	sBounces
	sDur
	sVPV
)

// Dims are the dimensions rollups keep: [0] is the aggregate (no
// dimension), then every event and visit dimension and the hour. Goals
// and the coarser time buckets are not kept (day, week and month are sums
// of days).
var Dims = func() []report.Dim {
	out := []report.Dim{{}}
	for _, d := range report.Dims {
		if d.Goal || (d.Time != "" && d.Time != "hour") {
			continue
		}
		out = append(out, d)
	}
	return out
}()

// The roles of the dimensions in a visit (see visit.add).
var (
	dimPage, dimHost, dimName, dimEntry, dimExit, dimHour int
	// sessionDims are the dimensions whose value is the visit's first
	// event's, with the accessor of that value on an event.
	sessionDims []int
	sessionCol  []string
)

func init() {
	for i, d := range Dims {
		switch {
		case i == 0:
		case d.Name == "event:page":
			dimPage = i
		case d.Name == "event:hostname":
			dimHost = i
		case d.Name == "event:name":
			dimName = i
		case d.Name == "visit:entry_page":
			dimEntry = i
		case d.Name == "visit:exit_page":
			dimExit = i
		case d.Name == "time:hour":
			dimHour = i
		case d.Session:
			if store.EventField(&store.Event{}, d.Column) == nil {
				panic("rollup: no event field for " + d.Name)
			}
			sessionDims = append(sessionDims, i)
			sessionCol = append(sessionCol, d.Column)
		default:
			panic("rollup: no role for " + d.Name)
		}
	}
}

// Row is one rollup row of a day.
type Row struct {
	Dim  string // API name of the dimension, "" for the aggregate
	Val  string
	Sums Sums
}

type key struct {
	dim int
	val string
}

// Day accumulates one site's events of one local day. An event that
// follows its visitor's latest continues (or starts) a visit, at the cost
// of that visit's keys; one that falls inside the visitor's open visit
// recomputes that visit. Visits end 30 minutes after their last event;
// an ended visit keeps only the set of its keys (so a visitor is counted
// once under a key), and an event that would change it cannot be added:
// the day must then be rebuilt from all its events. Not safe for
// concurrent use.
type Day struct {
	Loc    *time.Location
	Events int64 // every event added, engagement events included

	ids      map[key]int32
	keys     []key
	sessions [][]int32 // interned lists of session dimension keys
	sessIDs  map[string]int32
	sums     []Sums
	written  []Sums // as of the last Deltas
	dirty    []bool
	dlist    []int32
	vis      map[uint64]*visitor
	intern   map[string]string
	// open lists the visitors that may have an open visit; newest is the
	// latest event time seen; sweepIn counts down to the next sweep.
	open    []uint64
	newest  int64
	sweepIn int
	// caches: the hour (as ms bounds) of the last event, and the exit
	// page key of each page key (-1 unknown)
	hourFrom, hourTo int64
	hourKey          int32
	exits            []int32
}

// NewDay starts an empty day of a site whose time zone is loc.
func NewDay(loc *time.Location) *Day {
	return &Day{Loc: loc, ids: map[key]int32{}, vis: map[uint64]*visitor{}, intern: map[string]string{}, sessIDs: map[string]int32{}}
}

// ev is what the open visit's event needs to be replayed, as keys
// (engagement events belong to no visit and are not kept).
type ev struct {
	ts               int64
	id               [16]byte // breaks ties of ts, as the raw-event queries do
	page, host, name int32    // keys of its path, hostname and name
	sess             int32    // its session values' keys (Day.sessions); only on a visit's first event
	pv, inter        bool
}

type visitor struct {
	ended []int32 // sorted: the keys of the visitor's ended visits
	end   int64   // the last event time of the ended visits
	cur   *visit  // the open visit, nil when none
	// evs are the open visit's latest events (at most keepEvents), in
	// time order; base is the visit's state before them (nil when they
	// are all of it)
	evs  []ev
	base *visit
	// lag is what the open visit's visit-level counters grew by that its
	// page, hostname and name keys have not received yet: giving it to
	// each of them at every event would cost as many adds as the visit
	// has pages (a crawler's visit of 25,000 pages made the loader
	// quadratic). Each such key holds the visit's counters minus lag;
	// settle gives it to them before the day is read or the visit ends.
	lag Sums
}

// keepEvents is how many of an open visit's latest events are kept: an
// event that comes out of order among them is placed exactly; one that
// would go before them makes the day be rebuilt.
const keepEvents = 7

// visit is the running state of a visitor's open visit.
type visit struct {
	last              int64
	start             int64
	pv, inter, events int64
	fixed             []int32 // aggregate, session dimensions, entry page
	exit, startHour   int32
	// touched are the event dimension keys, sorted, as key<<1 | 1 when
	// the key also gets the visit's values (page, hostname, name; not
	// the hour)
	touched []uint32
}

// keys are the keys the visit occurs under.
func (v *visit) keys() []int32 {
	out := append([]int32{v.exit}, v.fixed...)
	for _, t := range v.touched {
		out = append(out, int32(t>>1))
	}
	return out
}

// touch records key k among the visit's event dimension keys and tells
// whether it was new.
func (v *visit) touch(k int32, visitLevel bool) bool {
	i, found := slices.BinarySearchFunc(v.touched, k, func(t uint32, k int32) int { return cmp.Compare(int32(t>>1), k) })
	if found {
		return false
	}
	t := uint32(k) << 1
	if visitLevel {
		t |= 1
	}
	v.touched = slices.Insert(v.touched, i, t)
	return true
}

// sink receives a visit's contributions: counters added to a key, and the
// visit coming to occur (n = 1) or ceasing to occur (n = -1) under a key.
type sink interface {
	add(k int32, d *Sums)
	occurs(k int32, n int32)
	// spread adds d to each key v touched that gets its visit-level
	// counters (page, hostname, name), now or later (see visitor.lag);
	// lag is what such a key does not hold yet of the visit's counters.
	spread(v *visit, d *Sums)
	lag() Sums
}

func (d *Day) id(dim int, val string) int32 {
	k := key{dim, val}
	if id, ok := d.ids[k]; ok {
		return id
	}
	k.val = d.str(val)
	id := int32(len(d.keys))
	d.ids[k] = id
	d.keys = append(d.keys, k)
	d.sums = append(d.sums, Sums{})
	d.written = append(d.written, Sums{})
	d.dirty = append(d.dirty, false)
	return id
}

func (d *Day) str(s string) string {
	if v, ok := d.intern[s]; ok {
		return v
	}
	d.intern[s] = s
	return s
}

// Add feeds one event of the day. It returns false, changing nothing but
// the event count, when the event falls into a visit that has ended: the
// day must then be rebuilt, feeding all its events in time order (which
// Add never refuses).
func (d *Day) Add(e *store.Event) bool {
	d.Events++
	if e.Name == "engagement" {
		return true
	}
	x := ev{ts: store.Millis(e.Time), id: e.ID, page: d.id(dimPage, e.Path), host: d.id(dimHost, e.Hostname), name: d.id(dimName, e.Name),
		pv: e.Name == "pageview", inter: e.Name == "pageview" || e.Interactive, sess: -1}
	v := d.vis[e.VisitorID]
	if v == nil {
		v = &visitor{end: math.MinInt64}
		d.vis[e.VisitorID] = v
	}
	timeout := store.SessionTimeout.Milliseconds()
	switch {
	case v.end != math.MinInt64 && x.ts <= v.end+timeout:
		// within reach of an ended visit
		return false
	case v.cur != nil && x.ts < v.cur.start-timeout:
		// before the open visit, and not within its reach: a visit of
		// its own between ended ones; rare (hours late) enough to rebuild
		return false
	case v.cur != nil && v.base != nil && Before(x.ts, x.id, v.evs[0].ts, v.evs[0].id):
		// before the events kept of a long visit
		return false
	case v.cur == nil || x.ts-v.cur.last > timeout:
		// a new visit; the open one, if any, has ended
		d.endVisit(v)
		x.sess = d.session(e)
		v.evs = append(v.evs, x)
		v.cur = d.step(nil, &v.evs[0], dayVisitor{d, v})
		d.open = append(d.open, e.VisitorID)
	case !Before(x.ts, x.id, v.cur.last, v.evs[len(v.evs)-1].id):
		v.evs = append(v.evs, x)
		v.cur = d.step(v.cur, &v.evs[len(v.evs)-1], dayVisitor{d, v})
		d.trim(v)
	default:
		// among the kept events, or just before the visit (then it
		// becomes the first event): take them out, insert, put them back
		// (the replays give each key its part at once: settle first)
		d.settle(v)
		x.sess = d.session(e)
		old, _ := d.replay(v.base, v.evs)
		i := sort.Search(len(v.evs), func(i int) bool { return Before(x.ts, x.id, v.evs[i].ts, v.evs[i].id) })
		v.evs = slices.Insert(v.evs, i, x)
		acc, cur := d.replay(v.base, v.evs)
		for k, s := range old {
			acc.get(k).sub(s)
		}
		ds := dayVisitor{d, v}
		for k, s := range acc {
			if s.sums != (Sums{}) {
				ds.add(k, &s.sums)
			}
			if s.n != 0 {
				ds.occurs(k, s.n)
			}
		}
		v.cur = cur
		d.trim(v)
	}
	d.newest = max(d.newest, x.ts)
	if d.sweepIn--; d.sweepIn <= 0 {
		d.sweep()
	}
	return true
}

// Before orders events as the raw-event queries do: by time, then id.
func Before(ts int64, id [16]byte, ts2 int64, id2 [16]byte) bool {
	return ts < ts2 || ts == ts2 && bytes.Compare(id[:], id2[:]) < 0
}

// session is the (interned) keys of the event's session values.
func (d *Day) session(e *store.Event) int32 {
	ks := make([]int32, len(sessionCol))
	b := make([]byte, 0, 4*len(sessionCol))
	for i, c := range sessionCol {
		ks[i] = d.id(sessionDims[i], *store.EventField(e, c))
		b = binary.LittleEndian.AppendUint32(b, uint32(ks[i]))
	}
	if id, ok := d.sessIDs[string(b)]; ok {
		return id
	}
	id := int32(len(d.sessions))
	d.sessions = append(d.sessions, ks)
	d.sessIDs[string(b)] = id
	return id
}

// endVisit ends the visitor's open visit: its keys join the ended ones,
// its events are dropped.
func (d *Day) endVisit(v *visitor) {
	if v.cur == nil {
		return
	}
	d.settle(v)
	ks := append(v.ended, v.cur.keys()...)
	slices.Sort(ks)
	v.ended = slices.Compact(ks)
	v.end = v.cur.last
	v.cur, v.evs, v.base = nil, nil, nil
}

// settle gives the visitor's open visit's keys what they lag behind.
func (d *Day) settle(v *visitor) {
	if v.lag == (Sums{}) || v.cur == nil {
		return
	}
	ds := dayVisitor{d, v}
	for _, t := range v.cur.touched {
		if t&1 == 1 {
			ds.add(int32(t>>1), &v.lag)
		}
	}
	v.lag = Sums{}
}

// settleAll settles every open visit, before the day's sums are read.
func (d *Day) settleAll() {
	for _, id := range d.open {
		d.settle(d.vis[id])
	}
}

// trim keeps the open visit's latest keepEvents events, moving base past
// the oldest one.
func (d *Day) trim(v *visitor) {
	if len(v.evs) <= keepEvents {
		return
	}
	v.base = d.step(v.base, &v.evs[0], discard{})
	v.evs = append(v.evs[:0], v.evs[1:]...)
}

// sweepGrace is how long after a visit could last end it is still kept
// open: events that come this late (relative to the day's latest) still
// join it without a rebuild.
const sweepGrace = 5 * time.Minute

// sweep ends the visits that no event is expected to continue any more
// (the day has an event more than 30 minutes plus sweepGrace after their
// last), so that a day holds only the open visits' events.
func (d *Day) sweep() {
	keep := d.open[:0]
	for _, id := range d.open {
		v := d.vis[id]
		if v.cur == nil {
			continue
		}
		if d.newest-v.cur.last > (store.SessionTimeout + sweepGrace).Milliseconds() {
			d.endVisit(v)
			continue
		}
		keep = append(keep, id)
	}
	d.open = keep
	d.sweepIn = max(64, len(d.open))
}

// replay computes what a visit's events (in time order) contribute when
// they follow base, and the visit's state after them.
func (d *Day) replay(base *visit, evs []ev) (scratchSink, *visit) {
	acc := scratchSink{}
	cur := base.clone()
	for i := range evs {
		cur = d.step(cur, &evs[i], acc)
	}
	return acc, cur
}

// clone copies a visit's state (nil stays nil); fixed never changes once
// the visit starts, so it is shared.
func (v *visit) clone() *visit {
	if v == nil {
		return nil
	}
	c := *v
	c.touched = slices.Clone(v.touched)
	return &c
}

// hour is the key of the local wall-clock hour of t (ms), labelled as the
// raw-event queries label it.
func (d *Day) hour(ms int64) int32 {
	if ms >= d.hourFrom && ms < d.hourTo {
		return d.hourKey // events mostly come in time order
	}
	l := time.UnixMilli(ms).In(d.Loc)
	d.hourFrom = ms - int64(l.Minute()*60+l.Second())*1000 - int64(l.Nanosecond()/1e6)
	d.hourTo = d.hourFrom + time.Hour.Milliseconds()
	if time.UnixMilli(d.hourTo-1).In(d.Loc).Hour() != l.Hour() {
		d.hourTo = d.hourFrom // an offset change inside the hour: no cache
	}
	d.hourKey = d.id(dimHour, report.TimeLabel("hour", time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), 0, 0, 0, time.UTC)))
	return d.hourKey
}

// exitOf is the exit page key of a page key.
func (d *Day) exitOf(page int32) int32 {
	for int(page) >= len(d.exits) {
		d.exits = append(d.exits, -1)
	}
	if d.exits[page] < 0 {
		d.exits[page] = d.id(dimExit, d.keys[page].val)
	}
	return d.exits[page]
}

// step adds event x, which is not before any event of the visitor's latest
// visit cur, and returns the visit x belongs to.
//
// A visit gives every key it occurs under the event counters of its events
// there, and gives its visit counters (one visit, bounce, duration,
// pageviews) to: the aggregate, its session values, entry and exit page,
// the hour it started in, and each page, hostname and event name it
// touched. This is what the raw-event queries count.
func (d *Day) step(cur *visit, x *ev, s sink) *visit {
	var ec Sums // x's event counters
	ec[sEvents] = 1
	if x.pv {
		ec[sPageviews] = 1
	}
	own := [...]int32{x.page, x.host, x.name, d.hour(x.ts)}
	const hourIdx = 3
	if cur == nil || x.ts-cur.last > store.SessionTimeout.Milliseconds() {
		v := &visit{start: x.ts, last: x.ts, events: 1, pv: ec[sPageviews]}
		if x.inter {
			v.inter = 1
		}
		path := d.keys[x.page].val
		v.fixed = append(append(make([]int32, 0, 2+len(sessionDims)), d.id(0, ""), d.id(dimEntry, path)), d.sessions[x.sess]...)
		v.exit, v.startHour = d.exitOf(x.page), own[hourIdx]
		full := plus(v.counters(), ec)
		for _, k := range append(v.fixed[:len(v.fixed):len(v.fixed)], v.exit) {
			s.add(k, &full)
			s.occurs(k, 1)
		}
		for i, k := range own {
			s.add(k, &full) // the hour of the first event is the start hour
			s.occurs(k, 1)
			v.touch(k, i != hourIdx)
		}
		return v
	}
	v := cur
	before, oldTotals := v.counters(), v.totals()
	v.last = x.ts
	v.events++
	v.pv += ec[sPageviews]
	if x.inter {
		v.inter++
	}
	after := v.counters()
	delta := minus(after, before)
	withEv := plus(delta, ec)
	for _, k := range v.fixed {
		s.add(k, &withEv)
	}
	s.spread(v, &delta)
	s.add(v.startHour, &delta)
	// the exit page is now x's, and the visit's events go with it
	if exit := d.exitOf(x.page); exit == v.exit {
		s.add(v.exit, &withEv)
	} else {
		gone := minus(Sums{}, plus(before, oldTotals))
		s.add(v.exit, &gone)
		s.occurs(v.exit, -1)
		full := plus(after, v.totals())
		s.add(exit, &full)
		s.occurs(exit, 1)
		v.exit = exit
	}
	// x's own page, hostname, name and hour
	for i, k := range own {
		c := ec
		if v.touch(k, i != hourIdx) {
			s.occurs(k, 1)
			if i != hourIdx {
				c = plus(minus(after, s.lag()), ec)
			}
		}
		s.add(k, &c)
	}
	return v
}

func plus(a, b Sums) Sums {
	for i := range a {
		a[i] += b[i]
	}
	return a
}

func minus(a, b Sums) Sums {
	for i := range a {
		a[i] -= b[i]
	}
	return a
}

// counters are a visit's visit-level counters.
func (v *visit) counters() Sums {
	var c Sums
	c[sVisits] = 1
	if v.inter <= 1 {
		c[sBounces] = 1
	}
	c[sDur] = v.last - v.start
	c[sVPV] = v.pv
	return c
}

// totals are a visit's event counters.
func (v *visit) totals() Sums {
	return Sums{sPageviews: v.pv, sEvents: v.events}
}

// dayVisitor applies contributions to the day, counting a visitor under a
// key once, however many of their visits occur there.
type dayVisitor struct {
	d *Day
	v *visitor
}

func (s dayVisitor) add(k int32, c *Sums) {
	r := &s.d.sums[k]
	for i := sPageviews; i < len(r); i++ {
		r[i] += c[i]
	}
	s.d.touch(k)
}

func (s dayVisitor) occurs(k int32, n int32) {
	// the visitor counts under k while the open visit occurs there or an
	// ended one did
	if _, found := slices.BinarySearch(s.v.ended, k); found {
		return
	}
	s.d.sums[k][sVisitors] += int64(n)
	s.d.touch(k)
}

func (s dayVisitor) spread(_ *visit, c *Sums) { s.v.lag = plus(s.v.lag, *c) }

func (s dayVisitor) lag() Sums { return s.v.lag }

func (d *Day) touch(k int32) {
	if !d.dirty[k] {
		d.dirty[k] = true
		d.dlist = append(d.dlist, k)
	}
}

type scratchRow struct {
	sums Sums
	n    int32
}

func (r *scratchRow) sub(o *scratchRow) {
	for i := range r.sums {
		r.sums[i] -= o.sums[i]
	}
	r.n -= o.n
}

// scratchSink collects contributions without touching a day.
type scratchSink map[int32]*scratchRow

func (s scratchSink) get(k int32) *scratchRow {
	r := s[k]
	if r == nil {
		r = &scratchRow{}
		s[k] = r
	}
	return r
}

func (s scratchSink) add(k int32, c *Sums) {
	r := s.get(k)
	for i := range r.sums {
		r.sums[i] += c[i]
	}
}

func (s scratchSink) occurs(k int32, n int32) { s.get(k).n += n }

func (s scratchSink) spread(v *visit, c *Sums) {
	for _, t := range v.touched {
		if t&1 == 1 {
			s.add(int32(t>>1), c)
		}
	}
}

func (scratchSink) lag() Sums { return Sums{} }

// discard is the sink of a step whose contributions are not wanted (the
// base of a long visit moving past its oldest kept event).
type discard struct{}

func (discard) add(int32, *Sums)     {}
func (discard) occurs(int32, int32)  {}
func (discard) spread(*visit, *Sums) {}
func (discard) lag() Sums            { return Sums{} }

// Rows returns every non-empty row of the day.
func (d *Day) Rows() []Row {
	d.settleAll()
	var out []Row
	for i, k := range d.keys {
		if d.sums[i] != (Sums{}) {
			out = append(out, Row{Dim: Dims[k.dim].Name, Val: k.val, Sums: d.sums[i]})
		}
	}
	return out
}

// Deltas returns, for each row changed since the last Deltas,
// what was added to it since (negative where a count went down), and
// takes the day as written. Stored rows plus deltas are the day's rows:
// a reader sums the rows of a key.
func (d *Day) Deltas() []Row {
	d.settleAll()
	out := make([]Row, 0, len(d.dlist))
	for _, i := range d.dlist {
		k := d.keys[i]
		delta := minus(d.sums[i], d.written[i])
		if delta != (Sums{}) {
			out = append(out, Row{Dim: Dims[k.dim].Name, Val: k.val, Sums: delta})
		}
		d.written[i] = d.sums[i]
		d.dirty[i] = false
	}
	d.dlist = d.dlist[:0]
	return out
}

// Pending tells whether rows changed since the last Deltas.
func (d *Day) Pending() bool { return len(d.dlist) > 0 }

// Keys is how many keys (rows, empty ones included) the day has.
func (d *Day) Keys() int { return len(d.keys) }
