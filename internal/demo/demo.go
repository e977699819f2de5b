// Package demo fills a fresh data dir with three sites and 90 days of
// realistic traffic, written through the same path as collected events
// (decode-free Hit -> Collector -> journal -> loader).
package demo

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"time"

	"fjord/internal/account"
	"fjord/internal/auth"
	"fjord/internal/collect"
	"fjord/internal/feed"
	"fjord/internal/ingest"
	"fjord/internal/ingest/journal"
	"fjord/internal/store"
	"fjord/internal/usage"
)

// Deps is what the generator writes through.
type Deps struct {
	Accounts  store.AccountStore
	Collector *collect.Collector
	Journal   *journal.Journal
	// Usage, when set, is given the demo's events as accepted on their
	// days, so that the Usage page has something to show.
	Usage usage.Store
}

// Result says what Ensure did.
type Result struct {
	Sites  []store.Site
	Events int
}

// The demo account's people: an Administrator, and a User granted the
// shop's site and one saved report of the blog.
const (
	AdminEmail = "admin@demo.fjord.example"
	UserEmail  = "user@demo.fjord.example"
	// ReportName is the blog's saved report granted to the User.
	ReportName = "Blog: top pages"
)

// SignIn is a demo person's e-mail address and password.
type SignIn struct{ Role, Email, Password string }

type siteSpec struct {
	domain, tz string
	daily      float64 // visitors on an average weekday
	paths      []string
}

var sites = []siteSpec{
	{"demo-shop.example", "Europe/Helsinki", 900, []string{"/", "/products", "/products/kettle", "/products/mug", "/products/teapot", "/cart", "/checkout", "/about", "/blog/brewing-guide", "/blog/green-tea", "/contact", "/faq", "/products/grinder", "/products/filters", "/shipping", "/returns"}},
	{"demo-blog.example", "Europe/Berlin", 350, []string{"/", "/posts/why-privacy-matters", "/posts/go-generics", "/posts/sqlite-tips", "/posts/duckdb-vs-postgres", "/posts/hiking-norway", "/about", "/archive", "/tags/go", "/tags/privacy", "/posts/fjords", "/newsletter"}},
	{"demo-docs.example", "America/New_York", 120, []string{"/", "/docs/install", "/docs/quickstart", "/docs/config", "/docs/api", "/docs/faq", "/changelog", "/docs/security"}},
}

type weighted[T any] struct {
	w float64
	v T
}

func pick[T any](r *rand.Rand, xs []weighted[T]) T {
	total := 0.0
	for _, x := range xs {
		total += x.w
	}
	f := r.Float64() * total
	for _, x := range xs {
		f -= x.w
		if f < 0 {
			return x.v
		}
	}
	return xs[len(xs)-1].v
}

type ref struct{ referrer, query string }

var referrers = []weighted[ref]{
	{35, ref{}},
	{25, ref{"https://www.google.com/", ""}},
	{4, ref{"https://www.bing.com/", ""}},
	{3, ref{"https://duckduckgo.com/", ""}},
	{1, ref{"https://www.ecosia.org/", ""}},
	{5, ref{"https://www.facebook.com/", ""}},
	{3, ref{"https://t.co/x1y2z3", ""}},
	{2, ref{"https://www.linkedin.com/", ""}},
	{2, ref{"https://www.reddit.com/r/tea/", ""}},
	{1, ref{"https://news.ycombinator.com/", ""}},
	{2, ref{"https://github.com/", ""}},
	{3, ref{"", "utm_source=newsletter&utm_medium=email&utm_campaign=november"}},
	{3, ref{"https://www.google.com/", "utm_source=google&utm_medium=cpc&utm_campaign=winter-sale&utm_term=green+tea"}},
	{2, ref{"https://l.facebook.com/", "utm_source=facebook&utm_medium=paid_social&utm_campaign=winter-sale"}},
	{3, ref{"https://partner-blog.example/review", ""}},
	{2, ref{"https://forum.example.org/thread/42", ""}},
}

var clients = []weighted[string]{
	{30, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
	{8, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"},
	{7, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"},
	{10, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"},
	{5, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
	{3, "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"},
	{18, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"},
	{14, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"},
	{3, "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"},
	{3, "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1"},
}

type place struct{ country, region, city string }

var places = []weighted[place]{
	{22, place{"FI", "FI-18", "Helsinki"}}, {6, place{"FI", "FI-11", "Tampere"}}, {14, place{"DE", "DE-BE", "Berlin"}},
	{6, place{"DE", "DE-BY", "Munich"}}, {12, place{"US", "US-NY", "New York"}}, {6, place{"US", "US-CA", "San Francisco"}},
	{8, place{"SE", "SE-AB", "Stockholm"}}, {6, place{"GB", "GB-ENG", "London"}}, {5, place{"NL", "NL-NH", "Amsterdam"}},
	{4, place{"FR", "FR-IDF", "Paris"}}, {4, place{"NO", "NO-03", "Oslo"}}, {3, place{"EE", "EE-37", "Tallinn"}},
	{2, place{"JP", "JP-13", "Tokyo"}}, {2, place{"BR", "BR-SP", "São Paulo"}},
}

// Ensure creates the demo sites and their traffic unless they exist.
func Ensure(ctx context.Context, d Deps, now time.Time) (Result, error) {
	if _, err := d.Accounts.SiteByDomain(ctx, sites[0].domain); err == nil {
		return Result{}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return Result{}, err
	}
	var res Result
	acc, _, err := d.Accounts.CreateAccount(ctx, store.Account{Name: "Demo"}, store.User{Email: AdminEmail, Name: "Demo Administrator"})
	if err != nil {
		return res, fmt.Errorf("demo account: %w", err)
	}
	user, err := d.Accounts.AddUser(ctx, store.User{AccountID: acc.ID, Email: UserEmail, Name: "Demo User", Role: store.RoleUser})
	if err != nil {
		return res, fmt.Errorf("demo user: %w", err)
	}
	r := rand.New(rand.NewPCG(42, uint64(now.Unix()/86400)))
	// The demo's past days never had salts; it makes its own, kept only in
	// memory, so nothing of the real salt store is touched.
	col := *d.Collector
	col.Salts = demoSalts{}
	var used usage.Tally
	for _, spec := range sites {
		site, err := account.AddSite(ctx, d.Accounts, acc.ID, spec.domain, spec.tz)
		if err != nil {
			return res, err
		}
		switch spec.domain {
		case "demo-shop.example":
			err = d.Accounts.Grant(ctx, user.ID, site.ID, 0)
		case "demo-blog.example":
			var rep store.SavedReport
			rep, err = d.Accounts.SaveReport(ctx, store.SavedReport{SiteID: site.ID, Name: ReportName,
				Definition: `{"metrics":["visitors","pageviews"],"date_range":"30d","dimensions":["event:page"]}`})
			if err == nil {
				err = d.Accounts.Grant(ctx, user.ID, 0, rep.ID)
			}
		}
		if err != nil {
			return res, fmt.Errorf("demo grants: %w", err)
		}
		d.Collector.Sites.Put(site) // col shares the cache
		res.Sites = append(res.Sites, site)
		n, err := generate(ctx, r, &col, d.Journal, &used, site, spec, now)
		res.Events += n
		if err != nil {
			return res, err
		}
	}
	if d.Usage != nil {
		return res, used.Flush(ctx, d.Usage)
	}
	return res, nil
}

// Passwords gives the demo's people new random passwords and returns
// them, for the server to print at each start (nothing is kept in clear).
func Passwords(ctx context.Context, st store.AccountStore) ([]SignIn, error) {
	var out []SignIn
	for _, p := range []struct{ role, email string }{{"Administrator", AdminEmail}, {"User", UserEmail}} {
		u, err := st.UserByEmail(ctx, p.email)
		if err != nil {
			return nil, fmt.Errorf("demo %s: %w", p.role, err)
		}
		b := make([]byte, 12)
		crand.Read(b)
		pw := base64.RawURLEncoding.EncodeToString(b)
		hash, err := auth.HashPassword(pw)
		if err != nil {
			return nil, err
		}
		if err := st.SetPassword(ctx, u.ID, hash); err != nil {
			return nil, err
		}
		if err := st.SigninSucceeded(ctx, u.ID); err != nil {
			return nil, err
		}
		out = append(out, SignIn{Role: p.role, Email: p.email, Password: pw})
	}
	return out, nil
}

// KeyName is the name of the demo Administrator's API key.
const KeyName = "Demo key"

// Key revokes the demo Administrator's earlier demo keys and makes a new
// one for every demo site, valid for 30 days, for the server to print at
// each start (so the README's curl example of the Stats API works).
func Key(ctx context.Context, st store.AccountStore, a *auth.Service) (string, error) {
	u, err := st.UserByEmail(ctx, AdminEmail)
	if err != nil {
		return "", fmt.Errorf("demo Administrator: %w", err)
	}
	keys, err := st.APIKeys(ctx, u.ID)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if k.Name == KeyName && k.Revoked.IsZero() {
			if err := a.RevokeKey(ctx, u.ID, k.ID); err != nil {
				return "", err
			}
		}
	}
	var ids []int64
	for _, spec := range sites {
		site, err := st.SiteByDomain(ctx, spec.domain)
		if err != nil {
			return "", fmt.Errorf("demo site: %w", err)
		}
		ids = append(ids, site.ID)
	}
	tok, _, err := a.CreateKey(ctx, u, auth.NewKey{Name: KeyName, Sites: ids, Life: 30 * 24 * time.Hour})
	return tok, err
}

type demoSalts struct{}

func (demoSalts) Salt(_ context.Context, s store.Site, at time.Time) ([]byte, error) {
	h := sha256.Sum256(fmt.Appendf(nil, "demo-%d-%s", s.ID, at.Format(time.DateOnly)))
	return h[:], nil
}

func zipf(r *rand.Rand, n int) int {
	// P(k) ∝ 1/(k+1): inverse-CDF over harmonic weights
	h := 0.0
	for k := 1; k <= n; k++ {
		h += 1 / float64(k)
	}
	f := r.Float64() * h
	for k := 1; k <= n; k++ {
		f -= 1 / float64(k)
		if f < 0 {
			return k - 1
		}
	}
	return n - 1
}

func generate(ctx context.Context, r *rand.Rand, col *collect.Collector, j *journal.Journal, used *usage.Tally, site store.Site, spec siteSpec, now time.Time) (int, error) {
	loc, err := time.LoadLocation(spec.tz)
	if err != nil {
		return 0, err
	}
	total := 0
	var batch [][]byte
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := j.AppendBatch(ctx, batch); err != nil {
			return fmt.Errorf("demo: journal: %w", err)
		}
		total += len(batch)
		batch = batch[:0]
		return nil
	}
	local := now.In(loc)
	today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	for day := 89; day >= 0; day-- {
		start := today.AddDate(0, 0, -day)
		weekly := 1.0
		if wd := start.Weekday(); wd == time.Saturday || wd == time.Sunday {
			weekly = 0.6
		}
		growth := 0.8 + 0.2*float64(90-day)/90
		visitors := int(spec.daily * weekly * growth * (0.9 + 0.2*r.Float64()))
		if day == 0 {
			// today: only the part of the day that has passed
			visitors = int(float64(visitors) * now.Sub(start).Hours() / 24)
		}
		for v := 0; v < visitors; v++ {
			ip := netip.AddrFrom4([4]byte{byte(20 + r.IntN(180)), byte(r.IntN(256)), byte(r.IntN(256)), byte(1 + r.IntN(254))})
			ua := pick(r, clients)
			pl := pick(r, places)
			// traffic peaks in the afternoon, local time
			t := start.Add(time.Duration((6 + math.Abs(r.NormFloat64()*4+8)) * float64(time.Hour)))
			t = t.Add(time.Duration(r.IntN(3600)) * time.Second)
			if t.After(now) || t.Sub(start) >= 24*time.Hour {
				continue
			}
			nvisits := 1
			if r.Float64() < 0.12 {
				nvisits = 2
			}
			for visit := 0; visit < nvisits; visit++ {
				rf := pick(r, referrers)
				pages := 1
				for r.Float64() < 0.58 && pages < 12 {
					pages++
				}
				for p := 0; p < pages; p++ {
					path := spec.paths[zipf(r, len(spec.paths))]
					u := "https://" + spec.domain + path
					refURL := ""
					if p == 0 {
						refURL = rf.referrer
						if rf.query != "" {
							u += "?" + rf.query
						}
					} else {
						refURL = "https://" + spec.domain + "/"
					}
					if err := add(ctx, col, &batch, used, site, "pageview", u, refURL, nil, ip, ua, pl, t, now); err != nil {
						return total, err
					}
					if r.Float64() < 0.04 {
						name, props := "Signup", map[string]string{"plan": []string{"free", "pro", "team"}[r.IntN(3)]}
						if spec.domain == "demo-shop.example" && r.Float64() < 0.6 {
							name, props = "Purchase", map[string]string{"product": path, "currency": "EUR"}
						}
						if err := add(ctx, col, &batch, used, site, name, u, refURL, props, ip, ua, pl, t.Add(20*time.Second), now); err != nil {
							return total, err
						}
					}
					t = t.Add(time.Duration(10+r.IntN(170)) * time.Second)
				}
				t = t.Add(time.Duration(40+r.IntN(300)) * time.Minute)
			}
			if len(batch) >= 1000 {
				if err := flush(); err != nil {
					return total, err
				}
			}
		}
	}
	return total, flush()
}

func add(ctx context.Context, col *collect.Collector, batch *[][]byte, used *usage.Tally, site store.Site, name, u, refURL string, props map[string]string, ip netip.Addr, ua string, pl place, t, now time.Time) error {
	if t.After(now) {
		return nil
	}
	pu, err := url.Parse(u)
	if err != nil {
		return err
	}
	h := collect.Hit{Name: name, URL: pu, Domains: []string{site.Domain}, Referrer: refURL, Props: props, Interactive: true, ScrollDepth: -1, Time: t}
	evs, _, err := col.Process(ctx, h, collect.Client{IP: ip, UserAgent: ua}, now)
	if err != nil {
		return err
	}
	for i := range evs {
		if col.Geo == nil {
			// no geo database ships with Fjord; the demo places visitors itself
			evs[i].Country, evs[i].Region, evs[i].City = pl.country, pl.region, pl.city
		}
		*batch = append(*batch, ingest.EncodeEvent(nil, &evs[i]))
	}
	used.Add(site.AccountID, site.ID, usage.Events, t, int64(len(evs)))
	return nil
}

// FeedName is the name of the demo's datafeed.
const FeedName = "Demo feed"

// Feed gives the demo's datafeed (the blog's saved report, published by
// the demo Administrator) a new token, making the feed first if there is
// none, and returns the token, for the server to print at each start
// (a feed's token is shown once and kept only as a hash).
func Feed(ctx context.Context, st store.AccountStore, feeds feed.Store, now time.Time) (string, error) {
	u, err := st.UserByEmail(ctx, AdminEmail)
	if err != nil {
		return "", fmt.Errorf("demo Administrator: %w", err)
	}
	all, err := feeds.Feeds(ctx, u.AccountID)
	if err != nil {
		return "", err
	}
	token, hash := feed.NewToken()
	for _, f := range all {
		if f.Name == FeedName {
			if !f.Disabled.IsZero() {
				if err := feeds.EnableFeed(ctx, f.ID, u.ID, now); err != nil {
					return "", err
				}
			}
			return token, feeds.SetFeedToken(ctx, f.ID, hash)
		}
	}
	blog, err := st.SiteByDomain(ctx, "demo-blog.example")
	if err != nil {
		return "", fmt.Errorf("demo site: %w", err)
	}
	reps, err := st.SavedReports(ctx, blog.ID)
	if err != nil || len(reps) == 0 {
		return "", fmt.Errorf("demo report: %v", err)
	}
	_, err = feeds.CreateFeed(ctx, feed.Feed{AccountID: u.AccountID, ReportID: reps[0].ID, OwnerID: u.ID, Name: FeedName, TokenHash: hash,
		Limits: feed.DefaultLimits, Created: now})
	return token, err
}
