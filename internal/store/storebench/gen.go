// Package storebench measures the event store engines on Fjord's own
// schema (internal/store/{duckdb,postgres}) with a synthetic, seeded
// dataset. The benchmarks are in storebench_test.go and run only with
// -bench; this file is the data generator.
//
// The dataset imitates one site over Days days, in arrival (ts) order:
//   - visitor ids rotate daily, as the product's are: one id per (person,
//     day), so a visit never spans midnight (events past midnight are
//     dropped);
//   - about 3 pageviews per visit (35% single-page visits, else 2 +
//     geometric), each followed by the next within 1 s..29 min, so the
//     Summary's 30-minute rule sees one visit;
//   - some persons come back later the same day (same visitor id);
//   - engagement events after 30% of pageviews, custom events after 5%;
//   - Zipf-distributed paths (10k), referrers (2k, 40% of visits direct),
//     countries (120), regions, cities; weighted browsers, OSes, devices;
//     UTM tags on 8% of visits; a diurnal and weekly traffic shape with
//     30% growth over the period.
package storebench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"fjord/internal/store"
)

// Config describes a dataset. The zero value of each field but Events
// takes the default.
type Config struct {
	Seed   uint64
	Events int       // target number of events; the result is within about 1%
	Days   int       // default 90
	Start  time.Time // UTC midnight; default 2026-01-01
	SiteID int64     // default 1
}

// Probabilities and shapes of the generator.
const (
	pBounce     = 0.35  // visits with one pageview
	pMorePages  = 0.325 // geometric parameter for pages beyond 2: mean 3 pageviews per visit
	maxPages    = 30
	pEngagement = 0.30 // an engagement event after a pageview
	pCustom     = 0.05 // a custom event after a pageview
	pReturn     = 0.06 // a visit by a person already seen that day
	pDirect     = 0.40
	pUTM        = 0.08
	meanGap     = 75 * time.Second
	maxGap      = 29 * time.Minute
	// eventsPerVisit is the mean number of events of a visit: 3 pageviews
	// times (1 + pEngagement + pCustom) = 4.05, less 1% lost to midnight
	// (measured: 990,559 events for a 1M target without this correction).
	eventsPerVisit = 3 * (1 + pEngagement + pCustom) * 0.9906
)

// Gen produces the events of a dataset in ts order, day by day.
type Gen struct {
	cfg    Config
	r      *rand.Rand
	paths  *rand.Zipf
	refs   *rand.Zipf
	ctry   *rand.Zipf
	region *rand.Zipf
	city   *rand.Zipf
	visits []int // per day

	day     int
	buf     []store.Event
	pos     int
	emitted int
	person  uint64
}

// NewGen returns a generator of the dataset described by cfg.
func NewGen(cfg Config) *Gen {
	if cfg.Days == 0 {
		cfg.Days = 90
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if cfg.SiteID == 0 {
		cfg.SiteID = 1
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x6a6f7264))
	g := &Gen{
		cfg:    cfg,
		r:      r,
		paths:  rand.NewZipf(r, 1.1, 1, uint64(len(pathNames)-1)),
		refs:   rand.NewZipf(r, 1.2, 1, uint64(len(referrers)-1)),
		ctry:   rand.NewZipf(r, 1.3, 1, uint64(len(countries)/2-1)),
		region: rand.NewZipf(r, 1.2, 1, 19),
		city:   rand.NewZipf(r, 1.1, 1, 49),
	}
	// Traffic per day: weekends at 70%, linear growth of 30% over the period.
	w := make([]float64, cfg.Days)
	var sum float64
	for d := range w {
		f := 1 + 0.3*float64(d)/float64(max(cfg.Days-1, 1))
		switch cfg.Start.AddDate(0, 0, d).Weekday() {
		case time.Saturday, time.Sunday:
			f *= 0.7
		}
		w[d] = f
		sum += f
	}
	totalVisits := float64(cfg.Events) / eventsPerVisit
	g.visits = make([]int, cfg.Days)
	for d := range w {
		g.visits[d] = int(math.Round(totalVisits * w[d] / sum))
	}
	return g
}

// Start is the first instant of the dataset, End the instant after it.
func (g *Gen) Start() time.Time { return g.cfg.Start }
func (g *Gen) End() time.Time   { return g.cfg.Start.AddDate(0, 0, g.cfg.Days) }

// Emitted is the number of events returned so far.
func (g *Gen) Emitted() int { return g.emitted }

// Next appends up to n events to buf and returns it; it appends nothing
// when the dataset is exhausted.
func (g *Gen) Next(buf []store.Event, n int) []store.Event {
	for n > 0 {
		if g.pos == len(g.buf) {
			if g.day == g.cfg.Days {
				break
			}
			g.genDay()
			continue
		}
		k := min(n, len(g.buf)-g.pos)
		buf = append(buf, g.buf[g.pos:g.pos+k]...)
		g.pos += k
		n -= k
		g.emitted += k
	}
	return buf
}

// All returns the whole dataset (for small ones).
func (g *Gen) All() []store.Event {
	var out []store.Event
	for {
		n := len(out)
		out = g.Next(out, 1<<16)
		if len(out) == n {
			return out
		}
	}
}

var hourWeights = [24]float64{2, 1.5, 1, 1, 1, 1.5, 2.5, 4, 5.5, 6.5, 7, 7, 6.5, 6.5, 7, 7, 6.5, 6, 6, 6, 5.5, 5, 4, 3}

type seenPerson struct {
	id  uint64
	end time.Time // last event of the visit
}

func (g *Gen) genDay() {
	d := g.day
	g.day++
	dayStart := g.cfg.Start.AddDate(0, 0, d)
	dayEnd := dayStart.AddDate(0, 0, 1)
	g.buf = g.buf[:0]
	g.pos = 0
	var seen []seenPerson
	for range g.visits[d] {
		var person uint64
		var start time.Time
		if len(seen) > 0 && g.r.Float64() < pReturn {
			// A return visit the same day: at least 31 min after the
			// person's previous visit, so usually a new visit.
			i := g.r.IntN(len(seen))
			person = seen[i].id
			start = seen[i].end.Add(31*time.Minute + time.Duration(g.r.Int64N(int64(6*time.Hour))))
		} else {
			g.person++
			person = g.person
			start = dayStart.Add(g.hourOffset())
		}
		if !start.Before(dayEnd) {
			continue
		}
		end := g.visit(person, d, start, dayEnd)
		seen = append(seen, seenPerson{person, end})
	}
	slices.SortStableFunc(g.buf, func(a, b store.Event) int { return a.Time.Compare(b.Time) })
}

func (g *Gen) hourOffset() time.Duration {
	x := g.r.Float64() * 107 // sum of hourWeights
	h := 0
	for ; h < 23; h++ {
		x -= hourWeights[h]
		if x < 0 {
			break
		}
	}
	return time.Duration(h)*time.Hour + time.Duration(g.r.Int64N(int64(time.Hour)))
}

// visitorID is the daily-rotating id: a hash of (person, day), as the
// product's keyed hash of (daily salt, site, IP, user agent) is.
func visitorID(seed, person uint64, day int) uint64 {
	x := seed ^ person*0x9e3779b97f4a7c15 ^ uint64(day)<<48
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// visit appends the events of one visit and returns the time of its last
// event.
func (g *Gen) visit(person uint64, day int, t, dayEnd time.Time) time.Time {
	r := g.r
	base := store.Event{
		SiteID:      g.cfg.SiteID,
		VisitorID:   visitorID(g.cfg.Seed, person, day),
		Hostname:    "example.com",
		Interactive: true,
		ScrollDepth: -1,
	}
	if r.Float64() >= pDirect {
		ref := &referrers[g.refs.Uint64()]
		base.Referrer, base.Source, base.Channel = ref.url, ref.source, ref.channel
	} else {
		base.Channel = "Direct"
	}
	if r.Float64() < pUTM {
		u := &utms[r.IntN(len(utms))]
		base.UTMSource, base.UTMMedium, base.UTMCampaign = u.source, u.medium, campaigns[r.IntN(len(campaigns))]
		base.Source, base.Channel = u.name, u.channel
		if r.IntN(4) == 0 {
			base.UTMContent = "banner"
		}
		if u.channel == "Paid" {
			base.UTMTerm = "web analytics"
		}
	}
	c := g.ctry.Uint64()
	base.Country = countries[c*2 : c*2+2]
	if r.IntN(10) > 0 { // region and city are unknown for 10%
		base.Region = fmt.Sprintf("%s-%02d", base.Country, g.region.Uint64()+1)
		base.City = cityNames[g.city.Uint64()]
	}
	osw := pick(r, oses)
	base.OS = osw.name
	base.OSVersion = osw.versions[r.IntN(len(osw.versions))]
	base.Device = osw.device
	if osw.device == "mobile" && r.IntN(8) == 0 {
		base.Device = "tablet"
	}
	br := pick(r, browsers)
	base.Browser = br.name
	base.BrowserVersion = br.versions[r.IntN(len(br.versions))]

	pages := 1
	if r.Float64() >= pBounce {
		pages = 2
		for pages < maxPages && r.Float64() >= pMorePages {
			pages++
		}
	}
	last := t
	for p := range pages {
		if !t.Before(dayEnd) {
			break // the next day has another visitor id: the rest is lost
		}
		path := pathNames[0]
		if p > 0 || r.IntN(3) > 0 { // at least a third of visits enter on "/"
			path = pathNames[g.paths.Uint64()]
		}
		gap := time.Duration(r.ExpFloat64() * float64(meanGap))
		gap = min(max(gap, time.Second), maxGap)
		g.emit(&base, t, "pageview", path, true)
		last = t
		if r.Float64() < pCustom && t.Add(gap/3).Before(dayEnd) {
			e := g.emit(&base, t.Add(gap/3), customEvents[r.IntN(len(customEvents))], path, r.IntN(5) > 0)
			if r.IntN(2) == 0 {
				e.Props = `{"plan":"` + plans[r.IntN(len(plans))] + `"}`
			}
			last = e.Time
		}
		if r.Float64() < pEngagement && t.Add(gap*9/10).Before(dayEnd) {
			e := g.emit(&base, t.Add(gap*9/10), "engagement", path, false)
			e.EngagedMS = int32(gap.Milliseconds() * 8 / 10)
			e.ScrollDepth = int16(r.IntN(101))
		}
		t = t.Add(gap)
	}
	return last
}

func (g *Gen) emit(base *store.Event, at time.Time, name, path string, interactive bool) *store.Event {
	e := *base
	e.Time = at.Truncate(time.Millisecond)
	e.Name = name
	e.Path = path
	e.Interactive = interactive
	a, b := g.r.Uint64(), g.r.Uint64()
	for i := range 8 {
		e.ID[i] = byte(a >> (8 * i))
		e.ID[8+i] = byte(b >> (8 * i))
	}
	e.ID[6] = e.ID[6]&0x0f | 0x40 // UUID version 4
	e.ID[8] = e.ID[8]&0x3f | 0x80
	g.buf = append(g.buf, e)
	return &g.buf[len(g.buf)-1]
}

type weighted struct {
	name     string
	w        float64
	versions []string
	device   string
}

func pick(r *rand.Rand, ws []weighted) *weighted {
	var sum float64
	for i := range ws {
		sum += ws[i].w
	}
	x := r.Float64() * sum
	for i := range ws {
		x -= ws[i].w
		if x < 0 {
			return &ws[i]
		}
	}
	return &ws[len(ws)-1]
}

var (
	chromeV  = []string{"128.0", "129.0", "130.0", "131.0", "132.0", "133.0"}
	safariV  = []string{"17.6", "18.1", "18.2", "18.3"}
	firefoxV = []string{"132.0", "133.0", "134.0", "135.0"}
	otherV   = []string{"1.0", "2.0", "3.0"}
	browsers = []weighted{
		{"Chrome", 45, chromeV, ""}, {"Safari", 20, safariV, ""}, {"Edge", 8, chromeV, ""},
		{"Firefox", 8, firefoxV, ""}, {"Samsung Internet", 4, otherV, ""}, {"Opera", 2, chromeV, ""},
		{"Chrome Webview", 2, chromeV, ""}, {"Brave", 2, chromeV, ""}, {"Yandex Browser", 1.5, otherV, ""},
		{"UC Browser", 1, otherV, ""}, {"Vivaldi", 0.5, chromeV, ""}, {"DuckDuckGo Privacy Browser", 1, otherV, ""},
		{"Huawei Browser", 0.5, otherV, ""}, {"Mobile App", 2, otherV, ""}, {"Other", 2.5, otherV, ""},
	}
	oses = []weighted{
		{"Windows", 30, []string{"10", "11"}, "desktop"}, {"macOS", 15, []string{"14", "15"}, "desktop"},
		{"iOS", 22, []string{"17.6", "18.1", "18.2", "18.3"}, "mobile"}, {"Android", 25, []string{"13", "14", "15"}, "mobile"},
		{"GNU/Linux", 4, []string{""}, "desktop"}, {"Chrome OS", 1.5, []string{""}, "desktop"},
		{"iPadOS", 1.5, []string{"17.6", "18.3"}, "tablet"}, {"Other", 1, []string{""}, "desktop"},
	}
	customEvents = []string{"Signup", "Download", "Outbound Link: Click", "File Download", "Contact"}
	plans        = []string{"free", "pro", "team"}
	campaigns    = []string{"spring-sale", "launch", "weekly-42", "webinar", "retargeting", "black-friday"}
	utms         = []struct{ source, medium, name, channel string }{
		{"newsletter", "email", "Newsletter", "Email"},
		{"twitter", "social", "Twitter", "Organic Social"},
		{"facebook", "social", "Facebook", "Organic Social"},
		{"linkedin", "social", "LinkedIn", "Organic Social"},
		{"google", "cpc", "Google", "Paid"},
		{"partner-blog", "referral", "partner-blog", "Referral"},
	}
	// Two-letter codes of 120 countries, most visitors first.
	countries = "USDEGBFRINCANLSEFIJPBRESITAUPLCHNOBEDKATIEPTCZRUUAKRCNMXTRILSGHKTWNZARIDZAROHUGRPHVNTHMYSKBGHRSIRSLTLVEEBYKZGEAMAZMDISLUMTCYALMKBAMECOPECLUYVEECBOPYCRPAGTDOCUJMTTEGMATNDZNGKEGHETTZUGSNCMCIAOZWAEQASAKWBHOMJOLBIQIRPKBDLKNPMMKHLAMNUZKGTJSVHNNI"
	cityNames = func() []string {
		out := make([]string, 50)
		for i := range out {
			out[i] = fmt.Sprintf("City %d", i+1)
		}
		return out
	}()
	pathNames = func() []string {
		out := make([]string, 10000)
		out[0] = "/"
		for i := 1; i < len(out); i++ {
			switch i % 4 {
			case 0:
				out[i] = fmt.Sprintf("/blog/%d-a-post-about-privacy-first-analytics", i)
			case 1:
				out[i] = fmt.Sprintf("/docs/section-%d/page-%d", i%37, i)
			case 2:
				out[i] = fmt.Sprintf("/products/item-%d", i)
			default:
				out[i] = fmt.Sprintf("/pricing/plan-%d", i)
			}
		}
		return out
	}()
	referrers = func() []struct{ url, source, channel string } {
		known := []struct{ url, source, channel string }{
			{"https://www.google.com/", "Google", "Organic Search"},
			{"https://news.ycombinator.com/", "Hacker News", "Organic Social"},
			{"https://duckduckgo.com/", "DuckDuckGo", "Organic Search"},
			{"https://www.bing.com/", "Bing", "Organic Search"},
			{"https://www.reddit.com/r/selfhosted/", "Reddit", "Organic Social"},
			{"https://github.com/", "GitHub", "Referral"},
			{"https://t.co/", "Twitter", "Organic Social"},
			{"https://www.linkedin.com/", "LinkedIn", "Organic Social"},
			{"https://www.ecosia.org/", "Ecosia", "Organic Search"},
			{"https://l.facebook.com/", "Facebook", "Organic Social"},
		}
		out := make([]struct{ url, source, channel string }, 2000)
		copy(out, known)
		for i := len(known); i < len(out); i++ {
			host := fmt.Sprintf("blog%d.example.net", i)
			out[i] = struct{ url, source, channel string }{fmt.Sprintf("https://%s/posts/%d", host, i%97), host, "Referral"}
		}
		return out
	}()
)
