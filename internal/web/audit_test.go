package web

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"fjord/internal/audit"
	"fjord/internal/ingest/journal"
)

// TestAuditTrail: the security-relevant actions of customers land in the
// audit log, each once, with who did it, the account and the target, and
// without a secret; the chain verifies against the server's key.
func TestAuditTrail(t *testing.T) {
	e := newEnv(t, journal.Options{})
	ctx := context.Background()
	user := e.user(t, "user@acme.test")
	admin := e.user(t, "admin@acme.test")
	hidden, _ := e.srv.Accounts.SiteByDomain(ctx, "hidden.test")
	site, _ := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	id := fmt.Sprint(user.ID)
	steps := []struct {
		path   string
		form   url.Values
		action string
	}{
		{"/admin/users/" + id + "/grant", url.Values{"what": {fmt.Sprintf("site:%d", hidden.ID)}}, "grant.add"},
		{"/admin/users/" + id + "/ungrant", url.Values{"site": {fmt.Sprint(hidden.ID)}}, "grant.remove"},
		{"/admin/users/" + id + "/remove", url.Values{}, "user.remove"},
		{"/admin/users/" + id + "/restore", url.Values{}, "user.restore"},
		{"/admin/account", url.Values{"retention": {"60"}}, "account.settings"},
		{fmt.Sprintf("/admin/sites/%d/settings", site.ID), url.Values{"respect_dnt": {"1"}}, "site.settings"},
	}
	for _, st := range steps {
		if code, body := e.adminPost(t, e.cookie, st.path, st.form); code != 200 {
			t.Fatalf("%s: %d\n%s", st.path, code, body)
		}
	}
	if code, _ := e.getAs(t, e.cookie, "/dashboard/site.test/export?panel=pages&format=csv"); code != 200 {
		t.Fatal("export")
	}
	// an Administrator's refused action on another account leaves no entry
	other := e.signIn(t, "admin@other.test")
	if code, _ := e.adminPost(t, other, "/admin/users/"+id+"/remove", url.Values{}); code != 404 {
		t.Fatal("Other removed Acme's user")
	}

	var got []audit.Entry
	if err := e.srv.Audit.Store.Entries(ctx, 1, func(x audit.Entry) error { got = append(got, x); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{"signin"} // newEnv's sign-in of Acme's Administrator
	for _, st := range steps {
		want = append(want, st.action)
	}
	want = append(want, "export", "signin") // and Other's Administrator signing in
	var actions []string
	for _, x := range got {
		actions = append(actions, x.Action)
		for _, secret := range []string{testPassword, e.cookie, other, user.Email, admin.Email} {
			if strings.Contains(x.Detail+x.Target+x.Actor, secret) {
				t.Errorf("entry %d holds %q", x.Seq, secret)
			}
		}
	}
	if strings.Join(actions, " ") != strings.Join(want, " ") {
		t.Fatalf("actions %v, want %v", actions, want)
	}
	grant := got[1]
	if grant.Actor != fmt.Sprintf("user:%d", admin.ID) || grant.Account != admin.AccountID || grant.Target != "user:"+id || grant.Detail != fmt.Sprintf("site:%d", hidden.ID) {
		t.Fatalf("grant entry %+v", grant)
	}
	if err := e.srv.CheckAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := audit.Verify(ctx, e.srv.Audit.Store, e.srv.auditPublic()); err != nil || r.Entries != int64(len(want)) || r.LastSigned != r.Entries {
		t.Fatalf("verify: %+v %v", r, err)
	}
}
