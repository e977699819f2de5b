package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"fjord/internal/auth"
	"fjord/internal/demo"
)

// TestBrowserSecondFactor: in headless Chromium the demo's User signs in
// with the password, sets up TOTP from the security page (reading the key
// as a person would copy it into an app), signs out, signs in again with
// the password and a code, and then sees only what they are granted: the
// shop's dashboard and the blog's one saved report, nothing of the docs
// site or the blog's dashboard.
func TestBrowserSecondFactor(t *testing.T) {
	exec := os.Getenv("FJORD_TEST_CHROMIUM")
	if exec == "" {
		t.Skip("set FJORD_TEST_CHROMIUM=/usr/bin/chromium (or any Chromium binary) to run the browser test")
	}
	s := startServer(t, t.TempDir(), "--demo")
	b := startChromium(t, exec)
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	base := "http://" + s.Addr
	pw := printedPassword(t, s, demo.UserEmail)
	signIn := func() {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/signin"), chromedp.WaitVisible(chromedp.CSS(`#email`)),
			chromedp.SendKeys(chromedp.CSS(`#email`), demo.UserEmail), chromedp.SendKeys(chromedp.CSS(`#password`), pw),
			chromedp.Click(chromedp.CSS(`button[type=submit]`))); err != nil {
			t.Fatalf("sign in: %v\n%s", err, b.out.tail(2000))
		}
	}
	signIn()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`table`)), chromedp.Navigate(base+"/account/2fa"),
		chromedp.WaitVisible(chromedp.CSS(`#totp-secret`))); err != nil {
		t.Fatalf("security page: %v", err)
	}
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#totp-secret`)))
	if err != nil {
		t.Fatal(err)
	}
	qrLoaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('img.qr').complete && document.querySelector('img.qr').naturalWidth > 100`))
	if err != nil || !qrLoaded {
		t.Fatalf("the QR code did not load (%v)", err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#code-e`), auth.TOTPCode(secret, time.Now())),
		chromedp.Click(chromedp.CSS(`form[action="/account/2fa/enrol"] button`)), chromedp.WaitVisible(chromedp.CSS(`ul.codes`))); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	codes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('ul.codes code')].map(e => e.textContent)`))
	if err != nil || len(codes) != auth.RecoveryCodes {
		t.Fatalf("recovery codes shown: %v (%v)", codes, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitVisible(chromedp.CSS(`#email`))); err != nil {
		t.Fatalf("sign out: %v", err)
	}

	// the password now leads to the code form; the next step's code (the
	// enrolment's own may not be used twice) signs in
	signIn()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#code`)),
		chromedp.SendKeys(chromedp.CSS(`#code`), auth.TOTPCode(secret, time.Now().Add(30*time.Second))),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(`#reports`))); err != nil {
		t.Fatalf("sign in with the code: %v\n%s", err, b.out.tail(2000))
	}
	page, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "demo-shop.example") || strings.Contains(page, "demo-docs.example") || !strings.Contains(page, demo.ReportName) {
		t.Fatalf("the User's overview:\n%s", page)
	}
	reports, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#reports a')].map(e => e.textContent)`))
	if err != nil || len(reports) != 1 || !strings.Contains(reports[0], demo.ReportName) {
		t.Fatalf("reports listed: %v (%v)", reports, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#reports a`)), chromedp.WaitVisible(chromedp.CSS(`#report-table`))); err != nil {
		t.Fatalf("open the granted report: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#report-table tbody tr').length`))
	if err != nil || rows < 2 {
		t.Fatalf("the granted report shows %d rows (%v)", rows, err)
	}
	for _, p := range []string{"/dashboard/demo-docs.example", "/dashboard/demo-blog.example", "/admin"} {
		resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(base+p))
		if err != nil || resp.Status != 404 {
			t.Fatalf("%s as the User: %v (%v), want 404", p, resp, err)
		}
	}
}
