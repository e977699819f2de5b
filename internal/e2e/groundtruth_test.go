package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"fjord/internal/store/storetest"
)

type gtEvent struct {
	ip, ua      string
	at          time.Time
	name        string
	interactive bool
}

// TestGroundTruth sends events with a known answer over HTTP and checks
// that `fjord stats` shows exactly the numbers computed here, independently
// of the server's SQL, from the rules in PRODUCT.md: a visitor is (local
// day, IP, user agent); a visit ends after 30 minutes without events;
// a bounce is a visit with at most one interactive event; engagement
// events and bots count for nothing.
func TestGroundTruth(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { groundTruth(t) })
	t.Run("postgres", func(t *testing.T) {
		groundTruth(t, "--database", storetest.PostgresURL(t))
	})
}

func groundTruth(t *testing.T, storeArgs ...string) {
	dir := t.TempDir()
	s := startServer(t, dir, append([]string{"--trusted-proxies", "127.0.0.1"}, storeArgs...)...)
	fjord(t, append([]string{"site", "add", "truth.test", "--data-dir", dir, "--timezone", "Europe/Helsinki"}, storeArgs...)...)
	fjord(t, append([]string{"site", "add", "other.test", "--data-dir", dir}, storeArgs...)...)
	helsinki, _ := time.LoadLocation("Europe/Helsinki")

	r := rand.New(rand.NewPCG(7, 11))
	now := time.Now()
	uas := []string{
		browserUA,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	}
	var events []gtEvent
	for v := 0; v < 60; v++ {
		ip := fmt.Sprintf("203.0.113.%d", v%40+1) // some IPs shared by two user agents
		ua := uas[v%len(uas)]
		if v >= 40 {
			ua = uas[(v+1)%len(uas)]
		}
		// start somewhere in the last 22 hours, leaving room for the visits
		at := now.Add(-time.Duration(r.IntN(22*60)+60) * time.Minute)
		for visit := 0; visit < 1+r.IntN(3); visit++ {
			for p := 0; p < 1+r.IntN(4); p++ {
				if at.After(now.Add(-time.Minute)) {
					break
				}
				events = append(events, gtEvent{ip, ua, at, "pageview", true})
				switch r.IntN(6) {
				case 0:
					events = append(events, gtEvent{ip, ua, at.Add(5 * time.Second), "Signup", true})
				case 1:
					events = append(events, gtEvent{ip, ua, at.Add(7 * time.Second), "Scrolled", false})
				case 2:
					events = append(events, gtEvent{ip, ua, at.Add(9 * time.Second), "engagement", false})
				}
				at = at.Add(time.Duration(10+r.IntN(25*60)) * time.Second) // up to 25 min: same visit
			}
			at = at.Add(time.Duration(31+r.IntN(90)) * time.Minute) // past 30 min: a new visit
		}
	}

	// the expected answer
	type vkey struct{ day, ip, ua string }
	byVisitor := map[vkey][]gtEvent{}
	for _, e := range events {
		if e.name == "engagement" {
			continue
		}
		k := vkey{e.at.In(helsinki).Format(time.DateOnly), e.ip, e.ua}
		byVisitor[k] = append(byVisitor[k], e)
	}
	var visits, pageviews, bounces, customs int64
	var durMS int64
	for _, evs := range byVisitor {
		sort.Slice(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
		start, last, inter := evs[0].at, evs[0].at, 0
		closeVisit := func() {
			visits++
			durMS += last.Truncate(time.Millisecond).Sub(start.Truncate(time.Millisecond)).Milliseconds()
			if inter <= 1 {
				bounces++
			}
		}
		for i, e := range evs {
			if i > 0 && e.at.Sub(last) > 30*time.Minute {
				closeVisit()
				start, inter = e.at, 0
			}
			last = e.at
			if e.interactive {
				inter++
			}
			if e.name == "pageview" {
				pageviews++
			} else {
				customs++
			}
		}
		closeVisit()
	}
	wantBounce := math.Round(float64(bounces)*1000/float64(visits)) / 10
	wantDur := math.Round(float64(durMS) / float64(visits) / 1000)

	// send it, plus noise that must not count: bots and another site
	c := &http.Client{Timeout: 10 * time.Second}
	post := func(domain, ua, ip, body string) {
		req, _ := http.NewRequest("POST", "http://"+s.Addr+"/api/event", strings.NewReader(body))
		req.Header.Set("User-Agent", ua)
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("%s: status %d", body, resp.StatusCode)
		}
	}
	for i, e := range events {
		var body string
		if e.name == "engagement" {
			// Plausible's payload, as its script sends engagement
			body = fmt.Sprintf(`{"n":"engagement","u":"https://truth.test/p","d":"truth.test","sd":%d,"e":%d}`, 40+i%60, 1000*(i%30))
			// the Plausible payload has no ts; engagement is excluded anyway
		} else {
			inter := ""
			if !e.interactive {
				inter = `,"interactive":false`
			}
			body = fmt.Sprintf(`{"name":%q,"url":"https://truth.test/p/%d?utm_source=x","domain":"truth.test","referrer":"https://www.google.com/","ts":%d%s}`,
				e.name, i%7, e.at.UnixMilli(), inter)
		}
		post("truth.test", e.ua, e.ip, body)
		if i%5 == 0 {
			post("truth.test", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", e.ip,
				fmt.Sprintf(`{"name":"pageview","url":"https://truth.test/","domain":"truth.test","ts":%d}`, e.at.UnixMilli()))
			post("other.test", e.ua, e.ip, fmt.Sprintf(`{"name":"pageview","url":"https://other.test/","domain":"other.test","ts":%d}`, e.at.UnixMilli()))
		}
	}

	got := stats(t, dir, "truth.test", "7d", storeArgs...)
	want := headline{Visitors: int64(len(byVisitor)), Visits: visits, Pageviews: pageviews, Events: customs, BounceRate: wantBounce, VisitDuration: wantDur}
	if got != want {
		t.Fatalf("fjord stats\n got %+v\nwant %+v", got, want)
	}
	t.Logf("%d events: %+v", len(events), got)
	// the same with the server stopped: stats opens the stores itself
	s.Stop()
	if again := stats(t, dir, "truth.test", "7d", storeArgs...); again != want {
		t.Fatalf("fjord stats without a server\n got %+v\nwant %+v", again, want)
	}
}
