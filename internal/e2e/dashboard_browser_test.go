package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"fjord/internal/demo"
)

// TestBrowserDashboard loads a demo site's dashboard in headless Chromium:
// the headline numbers equal the Stats API's, clicking a source filters the
// page, and there is no console error and no CSP violation. With
// FJORD_SCREENSHOT=PATH it saves a full-page screenshot there.
func TestBrowserDashboard(t *testing.T) {
	exec := os.Getenv("FJORD_TEST_CHROMIUM")
	if exec == "" {
		t.Skip("set FJORD_TEST_CHROMIUM=/usr/bin/chromium (or any Chromium binary) to run the browser test")
	}
	dir := t.TempDir()
	s := startServer(t, dir, "--demo")
	b := startChromium(t, exec)

	var mu sync.Mutex
	var problems []string
	if err := chromedp.Listen(b.ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == "error" {
				problems = append(problems, "console error")
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || strings.Contains(ev.Entry.Text, "Content Security Policy") {
				problems = append(problems, "log: "+ev.Entry.Text)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(b.ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(b.ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}

	// what the API says
	req, _ := http.NewRequest("POST", "http://"+s.Addr+"/api/v2/query", strings.NewReader(
		`{"site_id":"demo-shop.example","metrics":["visitors","bounce_rate","views_per_visit"],"date_range":"30d"}`))
	req.Header.Set("Authorization", "Bearer "+printedDemoKey(t, s))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var api struct{ Results []struct{ Metrics []float64 } }
	json.NewDecoder(resp.Body).Decode(&api)
	resp.Body.Close()
	if len(api.Results) != 1 {
		t.Fatalf("api: %+v", api)
	}
	m := api.Results[0].Metrics
	wantVisitors := fmt.Sprintf("%.1fk", m[0]/1000)
	if m[0] < 10000 {
		wantVisitors = fmt.Sprint(m[0])
	}
	want := map[string]string{"Unique visitors": wantVisitors, "Bounce rate": fmt.Sprintf("%g%%", m[1]), "Views per visit": fmt.Sprintf("%.2f", m[2])}

	// signed out, the dashboard leads to the sign-in form, and after it
	// back to the dashboard
	url := "http://" + s.Addr + "/dashboard/demo-shop.example?period=30d"
	pw := printedPassword(t, s, demo.AdminEmail)
	if err := chromedp.Do(b.ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), demo.AdminEmail), chromedp.SendKeys(chromedp.CSS(`#password`), pw),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`#panel-sources`))); err != nil {
		t.Fatalf("sign in and load dashboard: %v\n%s", err, b.out.tail(2000))
	}
	stats, err := chromedp.Run(b.ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll('[data-stat]')].map(e => [e.dataset.stat, e.textContent.trim()]))`))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if stats[k] != v {
			t.Errorf("%s: dashboard shows %q, the API %q", k, stats[k], v)
		}
	}
	if shot := os.Getenv("FJORD_SCREENSHOT"); shot != "" {
		if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// click the Google row of the sources panel: the page reloads filtered
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#panel-sources a[title="Filter by Google"]`)), chromedp.WaitVisible(chromedp.CSS(`.chip`))); err != nil {
		t.Fatalf("click a source: %v", err)
	}
	chip, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.chip`)))
	if err != nil {
		t.Fatal(err)
	}
	sources, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#panel-sources td.label')].map(e => e.textContent.trim())`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(chip, "source is Google") || len(sources) != 1 || sources[0] != "Google" {
		t.Fatalf("after the click: chip %q, sources %v", chip, sources)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the page reported problems: %v", problems)
	}
}
