package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"fjord/internal/demo"
	"fjord/internal/store/duckdb"
)

// TestDemo: serve --demo makes three sites with 90 days of traffic through
// the write path, and a restart reuses them instead of adding more.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "--demo")
	if !strings.Contains(s.stdout.String(), "http://"+s.Addr+"/signin") {
		t.Fatalf("serve --demo did not print where to sign in:\n%s", s.stdout.String())
	}
	// the printed sign-ins work: the Administrator sees every demo site,
	// the User only the one granted
	admin, user := demoSignIn(t, s, demo.AdminEmail), demoSignIn(t, s, demo.UserEmail)
	for _, c := range []struct {
		who, cookie, path string
		code              int
	}{
		{"Administrator", admin, "/dashboard/demo-docs.example", 200},
		{"User", user, "/dashboard/demo-shop.example", 200},
		{"User", user, "/dashboard/demo-docs.example", 404},
		{"User", user, "/dashboard/demo-blog.example", 404},
	} {
		if code := getAs(t, s, c.cookie, c.path); code != c.code {
			t.Errorf("%s %s: %d, want %d", c.who, c.path, code, c.code)
		}
	}
	first := map[string]headline{}
	for _, site := range []string{"demo-shop.example", "demo-blog.example", "demo-docs.example"} {
		h := stats(t, dir, site, "30d")
		if h.Visitors < 1000 || h.Pageviews <= h.Visits || h.Visits < h.Visitors || h.Events == 0 ||
			h.BounceRate < 20 || h.BounceRate > 70 || h.VisitDuration < 10 {
			t.Errorf("%s: implausible demo numbers %+v", site, h)
		}
		first[site] = h
	}
	// the printed API key reads the demo sites (the README's curl example)
	key := printedDemoKey(t, s)
	if code := demoQuery(t, s, key); code != 200 {
		t.Fatalf("the demo key: %d", code)
	}
	// a download from the dashboard is on the Administrator's Exports page
	if code := getAs(t, s, admin, "/dashboard/demo-shop.example/export?panel=pages&period=30d&format=csv"); code != 200 {
		t.Fatalf("a download: %d", code)
	}
	if code, page := pageAs(t, s, admin, "/admin/exports"); code != 200 || !strings.Contains(page, "demo-shop.example") || !strings.Contains(page, demo.AdminEmail) {
		t.Fatalf("the Exports page: %d\n%.2000s", code, page)
	}
	// the printed datafeed answers the blog's report
	feedURL := printedFeed(t, s)
	if code, body := fetchBody(t, feedURL); code != 200 || !strings.HasPrefix(body, "event:page,visitors,pageviews\n") || strings.Count(body, "\n") < 5 {
		t.Fatalf("the demo datafeed: %d\n%.300s", code, body)
	}
	s.Stop()
	s.Restart()
	// a new feed address at every start: the old one is dead
	oldPath := feedURL[strings.Index(feedURL, "/feeds/"):]
	if code, _ := fetchBody(t, "http://"+s.Addr+oldPath); code != 404 {
		t.Fatalf("the previous start's feed address: %d, want 404", code)
	}
	if code, _ := fetchBody(t, printedFeed(t, s)); code != 200 {
		t.Fatalf("the new feed address: %d", code)
	}
	// new passwords at every start: the old session is gone with nothing
	// but the new ones work
	demoSignIn(t, s, demo.UserEmail)
	// and a new key: the old one is revoked
	if code := demoQuery(t, s, key); code != 401 {
		t.Fatalf("the previous start's demo key: %d, want 401", code)
	}
	if code := demoQuery(t, s, printedDemoKey(t, s)); code != 200 {
		t.Fatalf("the new demo key: %d", code)
	}
	if again := stats(t, dir, "demo-shop.example", "30d"); again != first["demo-shop.example"] {
		t.Fatalf("restart changed the demo data: %+v, was %+v", again, first["demo-shop.example"])
	}
	s.Stop()

	st, err := duckdb.Open(context.Background(), filepath.Join(dir, "events.duckdb"), duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var days, channels, countries, devices, paths, campaigns int
	err = st.DB.QueryRow(`SELECT COUNT(DISTINCT ts // 86400000), COUNT(DISTINCT channel), COUNT(DISTINCT country),
		COUNT(DISTINCT device), COUNT(DISTINCT path), COUNT(DISTINCT utm_campaign) FROM events WHERE site_id = 1`).
		Scan(&days, &channels, &countries, &devices, &paths, &campaigns)
	if err != nil {
		t.Fatal(err)
	}
	if days < 89 || channels < 5 || countries < 8 || devices < 3 || paths < 10 || campaigns < 2 {
		t.Fatalf("demo lacks variety: days=%d channels=%d countries=%d devices=%d paths=%d campaigns=%d",
			days, channels, countries, devices, paths, campaigns)
	}
}

// demoSignIn signs in with the password serve --demo printed last for the
// address, through the sign-in form, and returns the session cookie.
func demoSignIn(t *testing.T, s *server, email string) string {
	t.Helper()
	base := "http://" + s.Addr
	resp, err := noRedirect.Get(base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if csrf == nil {
		t.Fatalf("sign-in page has no form:\n%s", page)
	}
	form := url.Values{"csrf": {string(csrf[1])}, "email": {email}, "password": {printedPassword(t, s, email)}}
	req, _ := http.NewRequest("POST", base+"/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "fjord_session" && resp.StatusCode == http.StatusSeeOther {
			return c.Value
		}
	}
	t.Fatalf("sign in as %s: %d", email, resp.StatusCode)
	return ""
}

// printedPassword is the password serve --demo printed last for the address.
func printedPassword(t *testing.T, s *server, email string) string {
	t.Helper()
	out := s.stdout.String()
	m := regexp.MustCompile(regexp.QuoteMeta(email)+`  password (\S+)`).FindAllStringSubmatch(out, -1)
	if m == nil {
		t.Fatalf("no password printed for %s:\n%s", email, out)
	}
	return m[len(m)-1][1]
}

// printedDemoKey is the API key serve --demo printed last.
func printedDemoKey(t *testing.T, s *server) string {
	t.Helper()
	m := regexp.MustCompile(`API key:\s+(fjk_[A-Za-z0-9_-]{43})`).FindAllStringSubmatch(s.stdout.String(), -1)
	if m == nil {
		t.Fatalf("no API key printed:\n%s", s.stdout.String())
	}
	return m[len(m)-1][1]
}

// printedFeed is the datafeed address serve --demo printed last.
func printedFeed(t *testing.T, s *server) string {
	t.Helper()
	m := regexp.MustCompile(`Datafeed:\s+(http://\S+\.csv)`).FindAllStringSubmatch(s.stdout.String(), -1)
	if m == nil {
		t.Fatalf("no datafeed printed:\n%s", s.stdout.String())
	}
	return m[len(m)-1][1]
}

func fetchBody(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func getAs(t *testing.T, s *server, cookie, path string) int {
	t.Helper()
	code, _ := pageAs(t, s, cookie, path)
	return code
}

func pageAs(t *testing.T, s *server, cookie, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.Addr+path, nil)
	req.AddCookie(&http.Cookie{Name: "fjord_session", Value: cookie})
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func demoQuery(t *testing.T, s *server, key string) int {
	return queryStatus(t, s, key, `{"site_id":"demo-docs.example","metrics":["visitors"],"date_range":"30d"}`)
}
