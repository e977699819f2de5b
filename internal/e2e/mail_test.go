package e2e

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"fjord/internal/mail/mailpit"
)

// TestServeMail: fjord serve without smtp-host says once that notices
// cannot be sent; with a real SMTP server (Mailpit) it sends the lock-out
// notice and the reset link, whose address is the server's, and its log
// holds neither the address nor the link.
func TestServeMail(t *testing.T) {
	mp := mailpit.Start(t)
	dir := t.TempDir()
	fjord(t, "account", "create", "--name", "Acme", "--admin-email", "boss@acme.test", "--data-dir", dir)

	off := startServer(t, dir)
	if n := strings.Count(off.stderr.String(), "mail is off"); n != 1 {
		t.Fatalf("without smtp-host: %d lines saying mail is off, want 1:\n%s", n, off.stderr.String())
	}
	off.Stop()

	s := startServer(t, dir, "--smtp-host", "127.0.0.1", "--smtp-port", strconv.Itoa(mp.SMTPPort), "--smtp-tls", "none", "--mail-from", "Fjord <fjord@acme.test>")
	if strings.Contains(s.stderr.String(), "mail is off") {
		t.Fatalf("mail is on, the log says off:\n%s", s.stderr.String())
	}
	base := "http://" + s.Addr
	post := func(path string, form url.Values) int {
		resp, err := noRedirect.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
		if csrf == nil {
			t.Fatalf("%s has no form:\n%s", path, page)
		}
		form.Set("csrf", string(csrf[1]))
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range resp.Cookies() {
			req.AddCookie(c)
		}
		resp, err = noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/signin/reset", url.Values{"email": {"boss@acme.test"}}); code != 200 {
		t.Fatalf("reset request: %d", code)
	}
	m := mp.WaitFor(t, "boss@acme.test", 20*time.Second)
	link := regexp.MustCompile(regexp.QuoteMeta(base) + `/signin/link/([A-Za-z0-9_-]+)\?reset=1`).FindStringSubmatch(m.Text)
	if link == nil {
		t.Fatalf("no link to %s in:\n%s", base, m.Text)
	}
	for i := 0; i < 5; i++ {
		post("/signin", url.Values{"email": {"boss@acme.test"}, "password": {"not the password"}})
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(mp.Search(t, `subject:"sign-in locked"`)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no lock-out notice; log:\n%s", s.stderr.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.Stop()
	log := s.stderr.String()
	for _, secret := range []string{link[1], "boss@acme.test", "not the password"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %q:\n%s", secret, log)
		}
	}
	if !strings.Contains(log, "password reset link sent") || !strings.Contains(log, "lock-out notice sent") {
		t.Errorf("the log does not record the mail:\n%s", log)
	}
}
