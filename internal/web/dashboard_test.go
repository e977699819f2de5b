package web

import (
	"net/http"
	"strings"
	"testing"

	"fjord/internal/ingest/journal"
)

func TestDashboardAndExport(t *testing.T) {
	e := newEnv(t, journal.Options{})
	e.post(t, `{"n":"pageview","u":"https://site.test/a","d":"site.test","r":"https://www.google.com/"}`).Body.Close()
	e.post(t, `{"n":"pageview","u":"https://site.test/=cmd()?utm_campaign=%3DHYPERLINK(1)","d":"site.test"}`, "User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15").Body.Close()
	req, _ := http.NewRequest("GET", e.http.URL+"/dashboard/site.test?period=7d&compare=1", nil)
	req.Header.Set("Cookie", sessionCookie+"="+e.cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := new(strings.Builder)
	buf := make([]byte, 1<<16)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	page := b.String()
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, page)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if csp == "" || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	for _, want := range []string{"Unique visitors", "<svg", "Google", "panel-sources", "f=visit%3Asource%3D%3DGoogle"} {
		if !strings.Contains(page, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	if strings.Contains(page, "style=") || strings.Contains(page, "<script>") {
		t.Error("inline style or script would be blocked by the CSP")
	}
	code, body := e.get(t, "/dashboard/site.test?period=7d&f=visit:source%3D%3DGoogle")
	if code != 200 || !strings.Contains(body, "source is Google") || strings.Contains(body, "/=cmd()</a>") {
		t.Fatalf("filtered dashboard: %d", code)
	}
	code, body = e.get(t, "/dashboard/site.test/export?panel=campaigns&period=7d&format=csv")
	if code != 200 || !strings.HasPrefix(body, "visit:utm_campaign,visitors") || !strings.Contains(body, "\n'=HYPERLINK(1),1,") {
		t.Fatalf("csv export: %d %q", code, body)
	}
	for path, want := range map[string]int{
		"/dashboard/nope.test":                               404,
		"/dashboard/site.test?period=forever":                400,
		"/dashboard/site.test?f=visit:shoe==9":               400,
		"/dashboard/site.test/export?panel=nope&format=csv":  400,
		"/dashboard/site.test/export?panel=pages&format=xls": 400,
		"/dashboard/go?to=https://evil.example/":             400,
		"/dashboard/go?to=/dashboard/../%5Cevil.example":     400,
		"/dashboard/go?to=/dashboard/..%2F%2Fevil.example":   400,
		"/dashboard/go?to=/dashboard/%0A/evil":               400,
		"/dashboard/go?to=/dashboard/site.test":              303,
		"/static/../server.go":                               307, // cleaned to /server.go, no route
	} {
		if code, _ := e.get(t, path); code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
}
