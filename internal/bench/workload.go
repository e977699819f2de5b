package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
)

// The traffic the load generator sends: what real browsers running
// Plausible's script (or Fjord's) send for a content site. Bodies and
// visitors are generated once, from a fixed seed, so every run and every
// round sends the same mix; each request picks one body and one visitor.

// userAgents are current desktop and mobile browsers, weighted roughly by
// share. None of them contains a bot marker, so none is dropped as a bot.
var userAgents = []weighted{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 30},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 12},
	{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36", 14},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 16},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", 7},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 6},
	{"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", 2},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", 7},
	{"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", 3},
	{"Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1", 3},
}

// referrers, weighted; "" is direct traffic and "self" an internal link.
var referrers = []weighted{
	{"", 40},
	{"https://www.google.com/", 25},
	{"self", 10},
	{"https://www.bing.com/", 4},
	{"https://duckduckgo.com/", 4},
	{"https://t.co/", 3},
	{"https://news.ycombinator.com/", 3},
	{"https://www.reddit.com/r/webdev/", 3},
	{"https://github.com/", 3},
	{"https://www.facebook.com/", 3},
	{"https://l.instagram.com/", 2},
}

var customEvents = []struct {
	name  string
	props func(r *rand.Rand) map[string]any
}{
	{"Signup", func(r *rand.Rand) map[string]any {
		return map[string]any{"plan": []string{"free", "pro", "team"}[r.IntN(3)], "method": []string{"email", "github", "google"}[r.IntN(3)]}
	}},
	{"Download", func(r *rand.Rand) map[string]any {
		return map[string]any{"file": fmt.Sprintf("report-%d.pdf", r.IntN(40))}
	}},
	{"Outbound Link: Click", func(r *rand.Rand) map[string]any {
		return map[string]any{"url": fmt.Sprintf("https://docs.example.org/page/%d", r.IntN(200))}
	}},
	{"Purchase", func(r *rand.Rand) map[string]any {
		return map[string]any{"amount": float64(5+r.IntN(300)) + 0.99, "currency": "EUR", "first": r.IntN(4) == 0}
	}},
}

// Workload is the pre-generated traffic of a run.
type Workload struct {
	Domain   string
	Bodies   [][]byte
	Custom   []bool // Bodies[i] is a custom event (not a pageview)
	Visitors []Visitor
}

// Visitor is one simulated browser: a client address (sent as
// X-Forwarded-For, which the server trusts from 127.0.0.1) and a UA.
type Visitor struct {
	XFF []string // header value, shared read-only
	UA  []string
}

// weighted is a value and its relative frequency.
type weighted struct {
	s string
	w int
}

func pickWeighted(r *rand.Rand, items []weighted) string {
	total := 0
	for _, it := range items {
		total += it.w
	}
	n := r.IntN(total)
	for _, it := range items {
		n -= it.w
		if n < 0 {
			return it.s
		}
	}
	return items[len(items)-1].s
}

// paths is a content site's URL space: a few top pages and a long tail.
func paths() []string {
	ps := []string{"/", "/pricing", "/blog", "/docs", "/about", "/features", "/signup", "/login", "/contact", "/changelog"}
	for i := 1; i <= 150; i++ {
		ps = append(ps, fmt.Sprintf("/blog/%d-notes-on-topic-%d", 2020+i%6, i))
	}
	for i := 1; i <= 100; i++ {
		ps = append(ps, fmt.Sprintf("/docs/section-%d/page-%d", i%12, i))
	}
	for i := 1; i <= 40; i++ {
		ps = append(ps, fmt.Sprintf("/products/item-%04d", i*37))
	}
	return ps
}

// NewWorkload generates nBodies request bodies and nVisitors visitors.
// Paths follow a Zipf distribution, 10% of the bodies are custom events
// with props, half use Plausible's short field names and half Fjord's.
func NewWorkload(domain string, nBodies, nVisitors int, seed uint64) *Workload {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ps := paths()
	zipf := rand.NewZipf(r, 1.1, 1, uint64(len(ps)-1))
	w := &Workload{Domain: domain}
	for i := 0; i < nBodies; i++ {
		path := ps[zipf.Uint64()]
		if r.IntN(20) == 0 {
			path += "?utm_source=newsletter&utm_medium=email&utm_campaign=autumn"
		}
		pageURL := "https://" + domain + path
		ref := pickWeighted(r, referrers)
		if ref == "self" {
			ref = "https://" + domain + ps[zipf.Uint64()]
		}
		custom := r.IntN(10) == 0
		name := "pageview"
		var props map[string]any
		if custom {
			ce := customEvents[r.IntN(len(customEvents))]
			name, props = ce.name, ce.props(r)
		}
		var body []byte
		var err error
		if r.IntN(2) == 0 {
			// Plausible's script
			p := map[string]any{"n": name, "u": pageURL, "d": domain}
			if ref != "" {
				p["r"] = ref
			}
			if props != nil {
				p["p"] = props
			}
			body, err = json.Marshal(p)
		} else {
			p := map[string]any{"name": name, "url": pageURL, "domain": domain}
			if ref != "" {
				p["referrer"] = ref
			}
			if props != nil {
				p["props"] = props
			}
			body, err = json.Marshal(p)
		}
		if err != nil {
			panic(err)
		}
		w.Bodies = append(w.Bodies, body)
		w.Custom = append(w.Custom, custom)
	}
	seen := map[netip.Addr]bool{}
	for len(w.Visitors) < nVisitors {
		ip := randomPublicIPv4(r)
		if seen[ip] {
			continue
		}
		seen[ip] = true
		ua := pickWeighted(r, userAgents)
		w.Visitors = append(w.Visitors, Visitor{XFF: []string{ip.String()}, UA: []string{ua}})
	}
	return w
}

// randomPublicIPv4 returns a unicast address outside the private, loopback,
// link-local, CGNAT, documentation and multicast ranges.
func randomPublicIPv4(r *rand.Rand) netip.Addr {
	for {
		a := [4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(1 + r.IntN(254))}
		ip := netip.AddrFrom4(a)
		switch {
		case a[0] == 10, a[0] == 127, a[0] == 0,
			a[0] == 100 && a[1]&0xc0 == 64,
			a[0] == 169 && a[1] == 254,
			a[0] == 172 && a[1]&0xf0 == 16,
			a[0] == 192 && a[1] == 168,
			a[0] == 192 && a[1] == 0,
			a[0] == 198 && (a[1] == 18 || a[1] == 19 || a[1] == 51),
			a[0] == 203 && a[1] == 0 && a[2] == 113:
			continue
		}
		return ip
	}
}
