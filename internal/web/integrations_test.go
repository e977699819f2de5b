package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"fjord/internal/auth"
	"fjord/internal/ingest/journal"
	"fjord/internal/store"
)

// TestThirdPartyApproval: a webhook set up by an Administrator sends
// nothing until the main contact approves it; another Administrator
// cannot approve (403), a User and another account see nothing (404);
// the approval is recorded with who, when and what; once approved the
// day's numbers arrive, once; after the approval is withdrawn nothing
// more is sent.
func TestThirdPartyApproval(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	var mu sync.Mutex
	var got []webhookPayload
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p webhookPayload
		if err := json.Unmarshal(b, &p); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook body %q: %v", b, err)
		}
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	}))
	defer hook.Close()
	received := func() []webhookPayload { mu.Lock(); defer mu.Unlock(); return append([]webhookPayload{}, got...) }
	e.srv.WebhookClient = hook.Client()
	e.post(t, `{"n":"pageview","u":"https://site.test/","d":"site.test"}`).Body.Close()
	if err := e.srv.Loader.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Add(24 * time.Hour) // the event above is of "yesterday"
	e.srv.Now = func() time.Time { return now }

	acme := e.user(t, "admin@acme.test")
	pw, _ := auth.HashPassword(testPassword)
	if _, err := e.srv.Accounts.AddUser(ctx, store.User{AccountID: acme.AccountID, Email: "deputy@acme.test", Role: store.RoleAdmin, PasswordHash: pw}); err != nil {
		t.Fatal(err)
	}
	deputy := e.signIn(t, "deputy@acme.test")
	userSession := e.signIn(t, "user@acme.test")
	otherSession := e.signIn(t, "admin@other.test")
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	foreign, _ := e.srv.Accounts.SiteByDomain(ctx, "other.test")

	if code, body := e.adminPost(t, deputy, "/admin/integrations", url.Values{"site": {fmt.Sprint(site.ID)}, "url": {"http://insecure.example/"}}); code != http.StatusBadRequest || !strings.Contains(body, "https://") {
		t.Fatalf("a plain-HTTP webhook: %d", code)
	}
	if code, _ := e.adminPost(t, deputy, "/admin/integrations", url.Values{"site": {fmt.Sprint(foreign.ID)}, "url": {hook.URL}}); code != http.StatusNotFound {
		t.Fatalf("a webhook for another account's site: %d, want 404", code)
	}
	if code, body := e.adminPost(t, deputy, "/admin/integrations", url.Values{"site": {fmt.Sprint(site.ID)}, "url": {hook.URL + "/in"}}); code != 200 || !strings.Contains(body, "awaiting the main contact") {
		t.Fatalf("add a webhook: %d\n%s", code, body)
	}
	list, _ := e.srv.Accounts.Integrations(ctx, acme.AccountID)
	if len(list) != 1 {
		t.Fatalf("integrations: %+v", list)
	}
	id := list[0].ID
	approve := fmt.Sprintf("/admin/integrations/%d/approve", id)

	// not approved: nothing goes out
	if err := e.srv.SendWebhooks(ctx); err != nil || len(received()) != 0 {
		t.Fatalf("sent before approval: %v %v", received(), err)
	}
	for _, c := range []struct {
		who, session string
		want         int
	}{{"another Administrator", deputy, http.StatusForbidden}, {"a User", userSession, http.StatusNotFound}, {"another account's Administrator", otherSession, http.StatusNotFound}} {
		if code, _ := e.adminPost(t, c.session, approve, url.Values{}); code != c.want {
			t.Errorf("%s approves: %d, want %d", c.who, code, c.want)
		}
	}
	if code, _ := e.getAs(t, otherSession, "/admin/integrations"); code != 200 {
		t.Fatal("Other's own integrations page")
	} else if _, page := e.getAs(t, otherSession, "/admin/integrations"); strings.Contains(page, hook.URL) {
		t.Fatal("another account's Administrator sees Acme's webhook")
	}
	if err := e.srv.SendWebhooks(ctx); err != nil || len(received()) != 0 {
		t.Fatalf("sent after refused approvals: %v %v", received(), err)
	}

	// the main contact approves: recorded, and the day is sent once
	code, body := e.adminPost(t, e.cookie, approve, url.Values{})
	if code != 200 || !strings.Contains(body, "approved by admin@acme.test") {
		t.Fatalf("approve: %d\n%s", code, body)
	}
	aps, _ := e.srv.Accounts.Approvals(ctx, id)
	if len(aps) != 1 || aps[0].UserID != acme.ID || aps[0].Action != store.Approved || !strings.Contains(aps[0].What, hook.URL+"/in") {
		t.Fatalf("approval record %+v", aps)
	}
	if err := e.srv.SendWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SendWebhooks(ctx); err != nil {
		t.Fatal(err)
	}
	r := received()
	if len(r) != 1 || r[0].Site != "site.test" || r[0].Pageviews != 1 || r[0].Visitors != 1 {
		t.Fatalf("received %+v, want the day's numbers once", r)
	}

	// withdrawn: recorded, and the next day nothing goes out
	if code, body := e.adminPost(t, e.cookie, fmt.Sprintf("/admin/integrations/%d/withdraw", id), url.Values{}); code != 200 || !strings.Contains(body, "withdrawn by admin@acme.test") {
		t.Fatalf("withdraw: %d\n%s", code, body)
	}
	now = now.Add(24 * time.Hour)
	if err := e.srv.SendWebhooks(ctx); err != nil || len(received()) != 1 {
		t.Fatalf("sent after withdrawal: %v %v", received(), err)
	}
	if aps, _ := e.srv.Accounts.Approvals(ctx, id); len(aps) != 2 || aps[1].Action != store.Withdrawn {
		t.Fatalf("approval records %+v", aps)
	}
}

// TestWebhookClientRefusesPrivateAddresses: the webhook sender's own
// client does not reach this host or a private network, whatever the URL.
func TestWebhookClientRefusesPrivateAddresses(t *testing.T) {
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the private receiver was reached")
	}))
	defer hook.Close()
	if _, err := webhookClient().Post(hook.URL, "application/json", strings.NewReader("{}")); err == nil || !strings.Contains(err.Error(), "not a public one") {
		t.Fatalf("posting to %s: %v", hook.URL, err)
	}
	for a, want := range map[string]bool{"203.0.113.9": true, "2a00:1450::1": true, "127.0.0.1": false, "10.1.2.3": false, "192.168.0.1": false,
		"169.254.169.254": false, "::1": false, "fd00::1": false, "fe80::1": false, "100.64.0.1": false, "0.0.0.0": false, "::ffff:127.0.0.1": false} {
		if got := publicAddr(netip.MustParseAddr(a)); got != want {
			t.Errorf("%s: public %v, want %v", a, got, want)
		}
	}
}
