package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"
)

// These tests run the script under node (testdata/harness.js fakes window,
// document, location, history, navigator and fetch) and check what it sends.
// They run on the served fjord.js and on the readable fjord.src.js, so the
// two cannot drift apart. A real-browser test lives with the server.

type sent struct {
	Step int    `json:"step"`
	URL  string `json:"url"`
	Init struct {
		Method    string            `json:"method"`
		Keepalive bool              `json:"keepalive"`
		Headers   map[string]string `json:"headers"`
	} `json:"init"`
	Body map[string]any `json:"body"`
}

type scenario map[string]any

// page is a typical embed on https://example.com/page.
func page(attrs map[string]string) scenario {
	a := map[string]string{"data-domain": "example.com"}
	for k, v := range attrs {
		a[k] = v
	}
	return scenario{
		"href":     "https://example.com/page?x=1#top",
		"referrer": "https://ref.example/post",
		"src":      "https://fjord.test/js/fjord.js",
		"attrs":    a,
	}
}

func runScript(t *testing.T, node, file string, sc scenario) []sent {
	t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	sc["file"] = abs
	in, _ := json.Marshal(sc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "testdata/harness.js")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var out struct {
		Requests []sent   `json:"requests"`
		Console  []string `json:"console"`
		Errors   []string `json:"errors"`
	}
	if err := json.Unmarshal(outb, &out); err != nil {
		t.Fatalf("harness output: %v\n%s", err, outb)
	}
	if len(out.Errors) > 0 {
		t.Fatalf("script errors: %v", out.Errors)
	}
	if len(out.Console) > 0 {
		t.Errorf("script wrote to the console: %v", out.Console)
	}
	return out.Requests
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func names(rs []sent) []string {
	n := []string{}
	for _, r := range rs {
		n = append(n, r.Body["name"].(string))
	}
	return n
}

func urls(rs []sent) []string {
	u := []string{}
	for _, r := range rs {
		u = append(u, r.URL)
	}
	return u
}

func want[T any](t *testing.T, what string, got, exp T) {
	t.Helper()
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("%s:\n got %#v\nwant %#v", what, got, exp)
	}
}

func TestScriptUnderNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found on PATH: skipping the tests that run fjord.js under node")
	}
	for _, file := range []string{"fjord.js", "fjord.src.js"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			scriptTests(t, node, file)
		})
	}
}

func scriptTests(t *testing.T, node, file string) {
	run := func(t *testing.T, sc scenario) []sent { t.Helper(); return runScript(t, node, file, sc) }

	t.Run("pageview on load", func(t *testing.T) {
		rs := run(t, page(nil))
		if len(rs) != 1 {
			t.Fatalf("sent %d requests, want 1: %+v", len(rs), rs)
		}
		r := rs[0]
		want(t, "endpoint", r.URL, "https://fjord.test/api/event")
		want(t, "method", r.Init.Method, "POST")
		want(t, "keepalive", r.Init.Keepalive, true)
		want(t, "headers", r.Init.Headers, map[string]string{"Content-Type": "text/plain"})
		id, _ := r.Body["id"].(string)
		if !hexID.MatchString(id) {
			t.Errorf("id %q is not 32 hex chars", id)
		}
		want(t, "payload", r.Body, map[string]any{
			"name":     "pageview",
			"url":      "https://example.com/page?x=1",
			"domain":   "example.com",
			"referrer": "https://ref.example/post",
			"id":       id,
		})
	})

	t.Run("defaults: domain from hostname, no referrer", func(t *testing.T) {
		sc := page(nil)
		sc["attrs"] = map[string]string{}
		sc["referrer"] = ""
		rs := run(t, sc)
		if len(rs) != 1 {
			t.Fatalf("sent %d requests, want 1", len(rs))
		}
		want(t, "domain", rs[0].Body["domain"], any("example.com"))
		want(t, "referrer", rs[0].Body["referrer"], nil)
	})

	t.Run("history navigation", func(t *testing.T) {
		sc := page(nil)
		sc["steps"] = []any{
			map[string]any{"push": "/next"},           // 0: new path
			map[string]any{"push": "/next"},           // 1: same URL again
			map[string]any{"replace": "/next?y=2"},    // 2: same path
			map[string]any{"hash": "#section"},        // 3: hash change, not hash mode
			map[string]any{"pop": "/page?x=1"},        // 4: back
			map[string]any{"replace": "/settings"},    // 5: new path
			map[string]any{"call": []any{"pageview"}}, // 6: not an API call
		}
		rs := run(t, sc)
		want(t, "names", names(rs), []string{"pageview", "pageview", "pageview", "pageview"})
		var steps []int
		var pages []string
		ids := map[string]bool{}
		for _, r := range rs {
			steps = append(steps, r.Step)
			pages = append(pages, r.Body["url"].(string))
			ids[r.Body["id"].(string)] = true
		}
		want(t, "steps", steps, []int{-1, 0, 4, 5})
		want(t, "urls", pages, []string{
			"https://example.com/page?x=1",
			"https://example.com/next",
			"https://example.com/page?x=1",
			"https://example.com/settings",
		})
		if len(ids) != 4 {
			t.Errorf("event ids repeat: %v", ids)
		}
	})

	t.Run("custom events", func(t *testing.T) {
		sc := page(nil)
		sc["steps"] = []any{
			map[string]any{"call": []any{"event", "Signup", map[string]any{"props": map[string]any{"plan": "pro"}}}},
			map[string]any{"call": []any{"event", "Scroll", map[string]any{"interactive": false}}},
			map[string]any{"call": []any{"event", "Empty", map[string]any{"props": map[string]any{}, "interactive": true}}},
			map[string]any{"call": []any{"event", "Bare"}},
		}
		rs := run(t, sc)
		want(t, "names", names(rs), []string{"pageview", "Signup", "Scroll", "Empty", "Bare"})
		if len(rs) != 5 {
			return
		}
		want(t, "Signup props", rs[1].Body["props"], any(map[string]any{"plan": "pro"}))
		want(t, "Signup url", rs[1].Body["url"], any("https://example.com/page?x=1"))
		if _, ok := rs[1].Body["interactive"]; ok {
			t.Error("interactive sent without being asked")
		}
		want(t, "Scroll interactive", rs[2].Body["interactive"], any(false))
		for _, r := range rs[3:] {
			if _, ok := r.Body["props"]; ok {
				t.Errorf("%s: empty props sent", r.Body["name"])
			}
			if _, ok := r.Body["interactive"]; ok {
				t.Errorf("%s: interactive sent", r.Body["name"])
			}
		}
	})

	t.Run("queued calls before load", func(t *testing.T) {
		sc := page(nil)
		sc["stub"] = true
		sc["before"] = []any{
			[]any{"event", "Early", map[string]any{"props": map[string]any{"from": "queue"}}},
			[]any{"event", "Earlier"},
		}
		rs := run(t, sc)
		want(t, "names", names(rs), []string{"pageview", "Early", "Earlier"})
		if len(rs) == 3 {
			want(t, "props", rs[1].Body["props"], any(map[string]any{"from": "queue"}))
		}
	})

	t.Run("included twice counts once", func(t *testing.T) {
		sc := page(nil)
		sc["loadTwice"] = true
		sc["steps"] = []any{map[string]any{"push": "/b"}}
		want(t, "names", names(run(t, sc)), []string{"pageview", "pageview"})
	})

	const a, b, c = "https://a.test/api/event", "https://b.test/api/event", "https://c.test/api/event"
	failover := func(resp map[string]any) scenario {
		sc := page(map[string]string{"data-api": a + ", " + b + "," + c})
		sc["responses"] = resp
		return sc
	}
	sameID := func(t *testing.T, rs []sent) {
		t.Helper()
		for _, r := range rs[1:] {
			if r.Body["id"] != rs[0].Body["id"] || !reflect.DeepEqual(r.Body, rs[0].Body) {
				t.Errorf("retry body %v differs from first %v", r.Body, rs[0].Body)
			}
		}
	}

	t.Run("fail-over on network error and 503, same id", func(t *testing.T) {
		sc := failover(map[string]any{a: []any{"reject", 202}, b: []any{503}})
		sc["steps"] = []any{map[string]any{"call": []any{"event", "Next"}}}
		rs := run(t, sc)
		want(t, "endpoints", urls(rs), []string{a, b, c, a})
		want(t, "names", names(rs), []string{"pageview", "pageview", "pageview", "Next"})
		if len(rs) == 4 {
			sameID(t, rs[:3])
		}
	})

	t.Run("fail-over on 429 and 500", func(t *testing.T) {
		rs := run(t, failover(map[string]any{a: []any{429}, b: []any{500}}))
		want(t, "endpoints", urls(rs), []string{a, b, c})
		if len(rs) == 3 {
			sameID(t, rs)
		}
	})

	t.Run("no fail-over after 400", func(t *testing.T) {
		rs := run(t, failover(map[string]any{a: []any{400}}))
		want(t, "endpoints", urls(rs), []string{a})
	})

	t.Run("all endpoints fail silently", func(t *testing.T) {
		rs := run(t, failover(map[string]any{a: []any{"reject"}, b: []any{502}, c: []any{"reject"}}))
		want(t, "endpoints", urls(rs), []string{a, b, c})
	})

	t.Run("ignored environments", func(t *testing.T) {
		for _, href := range []string{"http://localhost:3000/", "http://127.0.0.1/", "http://app.localhost/", "http://[::1]:8080/", "file:///home/me/site/index.html"} {
			sc := page(nil)
			sc["href"] = href
			sc["steps"] = []any{map[string]any{"call": []any{"event", "Signup"}}, map[string]any{"push": "/x"}}
			if rs := run(t, sc); len(rs) != 0 {
				t.Errorf("%s: sent %v", href, names(rs))
			}
			sc = page(map[string]string{"data-allow-local": ""})
			sc["href"] = href
			if rs := run(t, sc); len(rs) != 1 {
				t.Errorf("%s with data-allow-local: sent %d requests, want 1", href, len(rs))
			}
		}
		sc := page(nil)
		sc["webdriver"] = true
		sc["steps"] = []any{map[string]any{"call": []any{"event", "Signup"}}}
		if rs := run(t, sc); len(rs) != 0 {
			t.Errorf("navigator.webdriver: sent %v", names(rs))
		}
		sc = page(map[string]string{"data-allow-automation": "true"})
		sc["webdriver"] = true
		if rs := run(t, sc); len(rs) != 1 {
			t.Errorf("navigator.webdriver with data-allow-automation: sent %d, want 1", len(rs))
		}
		sc = page(map[string]string{"data-allow-automation": "false"})
		sc["webdriver"] = true
		if rs := run(t, sc); len(rs) != 0 {
			t.Errorf(`data-allow-automation="false": sent %d, want 0`, len(rs))
		}
	})

	t.Run("hash mode", func(t *testing.T) {
		sc := page(map[string]string{"data-hash": ""})
		sc["href"] = "https://example.com/app#/home"
		sc["steps"] = []any{
			map[string]any{"hash": "#/settings"},
			map[string]any{"hash": "#/settings"},
			map[string]any{"push": "/app#/other"},
		}
		rs := run(t, sc)
		var got []string
		for _, r := range rs {
			got = append(got, r.Body["url"].(string))
		}
		want(t, "urls", got, []string{
			"https://example.com/app#/home",
			"https://example.com/app#/settings",
			"https://example.com/app#/other",
		})
	})

	t.Run("outbound links", func(t *testing.T) {
		sc := page(map[string]string{"data-outbound": ""})
		sc["steps"] = []any{
			map[string]any{"click": "https://other.example/x?q=1"},
			map[string]any{"click": "/local"},
			map[string]any{"click": "https://example.com/report.pdf"},
			map[string]any{"clickText": true},
			map[string]any{"auxclick": "https://third.example/", "button": 1},
			map[string]any{"auxclick": "https://third.example/", "button": 2},
		}
		rs := run(t, sc)
		want(t, "names", names(rs), []string{"pageview", "Outbound Link: Click", "Outbound Link: Click"})
		if len(rs) == 3 {
			want(t, "props", rs[1].Body["props"], any(map[string]any{"url": "https://other.example/x?q=1"}))
			want(t, "props", rs[2].Body["props"], any(map[string]any{"url": "https://third.example/"}))
			want(t, "page url", rs[1].Body["url"], any("https://example.com/page?x=1"))
		}
		// Off unless asked.
		sc = page(nil)
		sc["steps"] = []any{map[string]any{"click": "https://other.example/x"}}
		want(t, "names without data-outbound", names(run(t, sc)), []string{"pageview"})
	})

	t.Run("file downloads", func(t *testing.T) {
		sc := page(map[string]string{"data-downloads": ""})
		sc["steps"] = []any{
			map[string]any{"click": "/files/Report.PDF?token=secret#p2"},
			map[string]any{"click": "https://cdn.example/app-1.2.dmg"},
			map[string]any{"click": "/about.html"},
			map[string]any{"click": "https://other.example/"},
		}
		rs := run(t, sc)
		want(t, "names", names(rs), []string{"pageview", "File Download", "File Download"})
		if len(rs) == 3 {
			want(t, "props", rs[1].Body["props"], any(map[string]any{"url": "https://example.com/files/Report.PDF"}))
			want(t, "props", rs[2].Body["props"], any(map[string]any{"url": "https://cdn.example/app-1.2.dmg"}))
		}
		sc = page(map[string]string{"data-downloads": "", "data-download-ext": "tar.gz, .csv"})
		sc["steps"] = []any{
			map[string]any{"click": "/a.pdf"},
			map[string]any{"click": "/b.tar.gz"},
			map[string]any{"click": "/c.csv"},
			map[string]any{"click": "/d.targz"},
		}
		rs = run(t, sc)
		want(t, "names with data-download-ext", names(rs), []string{"pageview", "File Download", "File Download"})
		sc = page(nil)
		sc["steps"] = []any{map[string]any{"click": "/a.pdf"}}
		want(t, "names without data-downloads", names(run(t, sc)), []string{"pageview"})
	})

	t.Run("prerendering waits for activation", func(t *testing.T) {
		sc := page(nil)
		sc["prerendering"] = true
		sc["steps"] = []any{map[string]any{"activate": true}}
		rs := run(t, sc)
		if len(rs) != 1 || rs[0].Step != 0 {
			t.Errorf("want one pageview after activation, got %+v", rs)
		}
	})

	t.Run("no script element", func(t *testing.T) {
		sc := page(nil)
		sc["noScript"] = true
		rs := run(t, sc)
		want(t, "endpoints", urls(rs), []string{"/api/event"})
		if len(rs) == 1 {
			want(t, "domain", rs[0].Body["domain"], any("example.com"))
		}
	})
}
