package e2e

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"fjord/internal/demo"
	_ "modernc.org/sqlite"
)

// fjordFails runs a command that must fail and returns its combined output.
func fjordFails(t *testing.T, env []string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(fjordBin(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Run(); err == nil {
		t.Fatalf("fjord %s succeeded:\n%s", strings.Join(args, " "), out.String())
	}
	return out.String()
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	os.WriteFile(good, []byte("# a comment\ndata-dir = "+filepath.Join(dir, "d")+"\nlisten = 127.0.0.1:9999\n"), 0o600)
	if out := fjord(t, "config", "check", "--config", good); !strings.Contains(out, "configuration is valid") || !strings.Contains(out, "127.0.0.1:9999") {
		t.Fatalf("good config: %s", out)
	}
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("listen = nowhere\nduckdb-threads = many\n"), 0o600)
	out := fjordFails(t, nil, "config", "check", "--config", bad)
	for _, want := range []string{"listen", "duckdb-threads"} {
		if !strings.Contains(out, want) {
			t.Errorf("bad config: %q not named in\n%s", want, out)
		}
	}
	out = fjordFails(t, nil, "config", "check", "--config", filepath.Join(dir, "typo.conf"))
	if !strings.Contains(out, "typo.conf") {
		t.Errorf("missing file not named: %s", out)
	}
	typo := filepath.Join(dir, "typo2.conf")
	os.WriteFile(typo, []byte("data_dir = x\n"), 0o600)
	if out := fjordFails(t, nil, "config", "check", "--config", typo); !strings.Contains(out, `unknown setting "data_dir"`) || !strings.Contains(out, "line 1") {
		t.Errorf("unknown key: %s", out)
	}
	// the environment is read, and a non-loopback plain-HTTP listener is explained
	out = fjordFails(t, []string{"FJORD_LISTEN=0.0.0.0:80", "FJORD_DATA_DIR=" + filepath.Join(dir, "e")}, "config", "check")
	if !strings.Contains(out, "not a loopback address") {
		t.Errorf("env listen: %s", out)
	}
	// secrets in store URLs are not printed
	out = fjord(t, "config", "check", "--data-dir", filepath.Join(dir, "f"), "--database", "postgres://u:hunter2@127.0.0.1/db")
	if strings.Contains(out, "hunter2") {
		t.Errorf("password printed: %s", out)
	}
}

// TestResidencyRefused: config check refuses a backup target outside
// allowed-regions and serve refuses to start on a node outside them, each
// saying which setting and region (PRODUCT §9.7).
func TestResidencyRefused(t *testing.T) {
	dir := t.TempDir()
	fjord(t, "backup", "keygen", filepath.Join(dir, "backup.key"))
	conf := filepath.Join(dir, "fjord.conf")
	os.WriteFile(conf, []byte("data-dir = "+filepath.Join(dir, "d")+"\nregion = eu-fi-helsinki\nbackup-dir = "+filepath.Join(dir, "backups")+
		"\nbackup-key = "+filepath.Join(dir, "backup.key")+"\nbackup-region = us-east-1\n"), 0o600)
	out := fjordFails(t, nil, "config", "check", "--config", conf)
	if !strings.Contains(out, "configuration problems:") || !strings.Contains(out, `backup-region = "us-east-1" is outside allowed-regions (eu-*): backups would place data there`) {
		t.Errorf("config check of backups in us-east-1:\n%s", out)
	}
	// the same target inside the allowed regions passes
	if out := fjord(t, "config", "check", "--config", conf, "--allowed-regions", "eu-*, us-east-1"); !strings.Contains(out, "configuration is valid") {
		t.Errorf("config check with us-east-1 allowed:\n%s", out)
	}
	out = fjordFails(t, nil, "serve", "--data-dir", filepath.Join(dir, "s"), "--listen", freePort(t), "--region", "us-east-1")
	if !strings.Contains(out, `region = "us-east-1" is outside allowed-regions (eu-*): this node and its data dir would place data there`) {
		t.Errorf("serve in us-east-1:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "s", "journal")); err == nil {
		t.Error("serve in us-east-1 created its journal: it went on before refusing")
	}
}

func TestSiteCommandsWithoutServer(t *testing.T) {
	dir := t.TempDir()
	fjord(t, "site", "add", "One.Example", "--data-dir", dir, "--timezone", "Europe/Oslo")
	if out := fjordFails(t, nil, "site", "add", "one.example", "--data-dir", dir); !strings.Contains(out, "already exists") {
		t.Errorf("duplicate: %s", out)
	}
	if out := fjordFails(t, nil, "site", "add", "two.example", "--data-dir", dir, "--timezone", "Mars/Olympus"); !strings.Contains(out, "Mars/Olympus") {
		t.Errorf("bad zone: %s", out)
	}
	if out := fjordFails(t, nil, "site", "add", "https://three.example/", "--data-dir", dir); !strings.Contains(out, "bare host name") {
		t.Errorf("url as domain: %s", out)
	}
	out := fjord(t, "site", "list", "--data-dir", dir)
	if !strings.Contains(out, "one.example") || !strings.Contains(out, "Europe/Oslo") || strings.Contains(out, "two.example") {
		t.Errorf("list: %s", out)
	}
	if out := fjordFails(t, nil, "stats", "--data-dir", dir, "--site", "nope.example"); !strings.Contains(out, "nope.example") {
		t.Errorf("stats of unknown site: %s", out)
	}
	if out := fjordFails(t, nil, "stats", "--data-dir", dir, "--site", "one.example", "--period", "forever"); !strings.Contains(out, "forever") {
		t.Errorf("bad period: %s", out)
	}
	if out := fjord(t, "stats", "--data-dir", dir, "--site", "one.example", "--period", "today"); !strings.Contains(out, "visitors") {
		t.Errorf("stats text: %s", out)
	}
	if out := fjord(t, "version"); !strings.HasPrefix(out, "fjord ") {
		t.Errorf("version: %s", out)
	}
}

func TestServeRefusesSecondServerOnSameDataDir(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir)
	out := fjordFails(t, nil, "serve", "--data-dir", dir, "--listen", freePort(t))
	if !strings.Contains(out, "in use") {
		t.Fatalf("second server: %s", out)
	}
}

func TestGoalsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "--trusted-proxies", "127.0.0.1")
	fjord(t, "account", "create", "--name", "Goals", "--admin-email", "admin@goals.test", "--data-dir", dir)
	fjord(t, "site", "add", "goals.test", "--account", "1", "--data-dir", dir)
	// the Stats API wants a key: the operator makes one over the control socket
	token := printedKey(t, fjord(t, "apikey", "create", "--email", "admin@goals.test", "--name", "e2e", "--site", "goals.test", "--expires", "1d", "--data-dir", dir))
	if out := fjord(t, "goal", "add", "goals.test", "--event", "Signup", "--data-dir", dir); !strings.Contains(out, "Signup") {
		t.Fatal(out)
	}
	fjord(t, "goal", "add", "goals.test", "--page", "/thanks/*", "--data-dir", dir)
	if out := fjordFails(t, nil, "goal", "add", "goals.test", "--page", "thanks", "--data-dir", dir); !strings.Contains(out, "starting with /") {
		t.Fatalf("bad pattern: %s", out)
	}
	post := func(ip, body string) {
		req, _ := http.NewRequest("POST", "http://"+s.Addr+"/api/event", strings.NewReader(body))
		req.Header.Set("User-Agent", browserUA)
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
	}
	// four visitors; two sign up, one of them also reaches /thanks/a
	for i, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"} {
		post(ip, `{"n":"pageview","u":"https://goals.test/","d":"goals.test"}`)
		if i < 2 {
			post(ip, `{"n":"Signup","u":"https://goals.test/","d":"goals.test"}`)
		}
		if i == 0 {
			post(ip, `{"n":"pageview","u":"https://goals.test/thanks/a","d":"goals.test"}`)
		}
	}
	req, _ := http.NewRequest("POST", "http://"+s.Addr+"/api/v2/query", strings.NewReader(
		`{"site_id":"goals.test","metrics":["visitors","events","conversion_rate"],"date_range":"day","dimensions":["event:goal"]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Dimensions []string
			Metrics    []float64
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	want := map[string][3]float64{"Signup": {2, 2, 50}, "Visit /thanks/*": {1, 1, 25}}
	if len(out.Results) != 2 {
		t.Fatalf("%+v", out.Results)
	}
	for _, r := range out.Results {
		w := want[r.Dimensions[0]]
		if r.Metrics[0] != w[0] || r.Metrics[1] != w[1] || r.Metrics[2] != w[2] {
			t.Errorf("%s: %v, want %v", r.Dimensions[0], r.Metrics, w)
		}
	}
	// listed (never the key), revoked, refused
	if list := fjord(t, "apikey", "list", "--email", "admin@goals.test", "--data-dir", dir); !strings.Contains(list, "e2e") || !strings.Contains(list, "active") || strings.Contains(list, token) {
		t.Fatalf("apikey list: %s", list)
	}
	fjord(t, "apikey", "revoke", "--id", "1", "--data-dir", dir)
	if code := apiStatus(t, s, token); code != 401 {
		t.Fatalf("a revoked key: %d", code)
	}
	list := fjord(t, "goal", "list", "goals.test", "--data-dir", dir)
	if !strings.Contains(list, "Visit /thanks/*") {
		t.Fatal(list)
	}
	fjord(t, "goal", "remove", "goals.test", "1", "--data-dir", dir)
	if list := fjord(t, "goal", "list", "goals.test", "--data-dir", dir); strings.Contains(list, "Signup") {
		t.Fatalf("removed goal still listed: %s", list)
	}
}

// TestAccountCommands: the operator's account and user commands, without
// a server (on the data dir) and through a running server's control
// socket, including a leaver's removal and restore.
func TestAccountCommands(t *testing.T) {
	dir := t.TempDir()
	out := fjord(t, "account", "create", "--name", "Acme Oy", "--admin-email", "boss@acme.example", "--data-dir", dir)
	if !strings.Contains(out, "/signin/link/") {
		t.Fatalf("account create prints no link: %s", out)
	}
	if out := fjord(t, "account", "list", "--data-dir", dir); !strings.Contains(out, "Acme Oy") {
		t.Fatalf("account list: %s", out)
	}
	fjord(t, "site", "add", "acme.example", "--account", "1", "--data-dir", dir)
	if out := fjord(t, "user", "add", "--account", "1", "--email", "ana@acme.example", "--role", "user", "--data-dir", dir); !strings.Contains(out, "/signin/link/") {
		t.Fatalf("user add: %s", out)
	}
	fjord(t, "user", "grant", "--email", "ana@acme.example", "--site", "acme.example", "--data-dir", dir)
	if out := fjordFails(t, nil, "user", "remove", "--id", "1", "--data-dir", dir); !strings.Contains(out, "main contact") {
		t.Fatalf("removing the main contact: %s", out)
	}
	startServer(t, dir) // from here on through its control socket
	list := fjord(t, "user", "list", "--account", "1", "--data-dir", dir)
	m := regexp.MustCompile(`(?m)^(\d+)\s+ana@acme\.example`).FindStringSubmatch(list)
	if m == nil {
		t.Fatalf("user list: %s", list)
	}
	fjord(t, "user", "remove", "--id", m[1], "--data-dir", dir)
	if out := fjord(t, "user", "list", "--account", "1", "--data-dir", dir); strings.Contains(out, "ana@acme.example") {
		t.Fatalf("a removed user is listed: %s", out)
	}
	fjord(t, "user", "restore", "--id", m[1], "--data-dir", dir)
	if out := fjord(t, "user", "list", "--account", "1", "--data-dir", dir); !strings.Contains(out, "ana@acme.example") {
		t.Fatalf("a restored user is not listed: %s", out)
	}
	if out := fjordFails(t, nil, "user", "restore", "--id", m[1], "--data-dir", dir); !strings.Contains(out, "no removed user") {
		t.Fatalf("restoring twice: %s", out)
	}
}

// printedKey is the API key in the output of fjord apikey create.
func printedKey(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s+(fjk_[A-Za-z0-9_-]{43})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no key printed:\n%s", out)
	}
	return m[1]
}

// apiStatus is the status of a Stats API query with a key.
func apiStatus(t *testing.T, s *server, key string) int {
	return queryStatus(t, s, key, `{"site_id":"goals.test","metrics":["visitors"],"date_range":"day"}`)
}

// queryStatus is the status of a Stats API query with a key.
func queryStatus(t *testing.T, s *server, key, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+s.Addr+"/api/v2/query", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAPIKeyCommandsWithoutServer: the operator's key commands on the
// stores directly; a User's key only for what is granted; the removed
// stats-api-token setting is explained.
func TestAPIKeyCommandsWithoutServer(t *testing.T) {
	dir := t.TempDir()
	fjord(t, "account", "create", "--name", "Acme", "--admin-email", "admin@acme.test", "--data-dir", dir)
	fjord(t, "site", "add", "a.test", "--account", "1", "--data-dir", dir)
	fjord(t, "site", "add", "b.test", "--account", "1", "--data-dir", dir)
	fjord(t, "user", "add", "--account", "1", "--email", "ann@acme.test", "--data-dir", dir)
	fjord(t, "user", "grant", "--email", "ann@acme.test", "--site", "a.test", "--data-dir", dir)
	out := fjordFails(t, nil, "apikey", "create", "--email", "ann@acme.test", "--name", "x", "--site", "a.test", "--site", "b.test", "--expires", "30d", "--data-dir", dir)
	if !strings.Contains(out, `"b.test"`) || !strings.Contains(out, "not a site this user may read") {
		t.Fatalf("a key for an ungranted site: %s", out)
	}
	for _, c := range [][]string{{"--expires", "2y"}, {"--expires", "30m"}} {
		args := append([]string{"apikey", "create", "--email", "ann@acme.test", "--name", "x", "--site", "a.test", "--data-dir", dir}, c...)
		if out := fjordFails(t, nil, args...); !strings.Contains(out, "expiry") {
			t.Errorf("%v: %s", c, out)
		}
	}
	if out := fjordFails(t, nil, "apikey", "create", "--email", "ann@acme.test", "--site", "a.test", "--data-dir", dir); !strings.Contains(out, "usage") {
		t.Errorf("no name, no expiry: %s", out)
	}
	key := printedKey(t, fjord(t, "apikey", "create", "--email", "ann@acme.test", "--name", "Ann's laptop", "--site", "a.test", "--expires", "30d", "--data-dir", dir))
	list := fjord(t, "apikey", "list", "--email", "ann@acme.test", "--data-dir", dir)
	if !strings.Contains(list, "Ann's laptop") || !strings.Contains(list, key[:10]) || strings.Contains(list, key) || !strings.Contains(list, "active") {
		t.Fatalf("list: %s", list)
	}
	fjord(t, "apikey", "revoke", "--id", "1", "--data-dir", dir)
	if list := fjord(t, "apikey", "list", "--email", "ann@acme.test", "--data-dir", dir); !strings.Contains(list, "revoked") {
		t.Fatalf("list after revoking: %s", list)
	}
	if out := fjordFails(t, nil, "apikey", "revoke", "--id", "99", "--data-dir", dir); !strings.Contains(out, "not found") {
		t.Errorf("revoke unknown: %s", out)
	}
	conf := filepath.Join(dir, "old.conf")
	os.WriteFile(conf, []byte("stats-api-token = 0123456789abcdef0123456789abcdef\n"), 0o600)
	if out := fjordFails(t, nil, "config", "check", "--config", conf); !strings.Contains(out, "was removed") || !strings.Contains(out, "apikey") {
		t.Errorf("the old setting: %s", out)
	}
}

// TestAuditVerifyCommand: with a signing key, a sign-in lands in the audit
// log, fjord audit verify passes through the running server; after the
// server stops, an edited entry makes the command fail and name it.
func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "audit.key")
	if out := fjord(t, "audit", "keygen", key); !strings.Contains(out, "public key: ") {
		t.Fatalf("keygen: %s", out)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	if out := fjordFails(t, nil, "audit", "keygen", key); !strings.Contains(out, "exists") {
		t.Fatalf("keygen over an existing key: %s", out)
	}
	s := startServer(t, dir, "--demo", "--audit-key", key)
	demoSignIn(t, s, demo.AdminEmail)
	if out := fjord(t, "audit", "verify", "--data-dir", dir, "--audit-key", key); !strings.Contains(out, "audit log intact") || strings.Contains(out, " 0 entries") {
		t.Fatalf("verify through the server: %s", out)
	}
	s.Stop()
	db, err := sql.Open("sqlite", filepath.Join(dir, "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_log SET detail = 'nothing' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if out := fjordFails(t, nil, "audit", "verify", "--data-dir", dir, "--audit-key", key); !strings.Contains(out, "broken at entry 1") {
		t.Fatalf("verify after an edit: %s", out)
	}
}

// TestStaffCommands: fjord staff add, list, trained, link and remove, on
// the data dir and through a running server, whose console then answers
// the set-up link from its staff ranges only; every change is in the
// audit log with the operator as actor.
func TestStaffCommands(t *testing.T) {
	dir := t.TempDir()
	out := fjord(t, "staff", "add", "--email", "Ann@Fjord.test", "--name", "Ann", "--role", "engineer", "--trained", "2026-11-20", "--data-dir", dir)
	if !strings.Contains(out, "staff member 1 added (engineer)") || !strings.Contains(out, "/staff/setup/") {
		t.Fatalf("add: %s", out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "--email", "b@fjord.test", "--role", "boss", "--trained", "2026-11-20"}, "unknown staff role"},
		{[]string{"add", "--email", "b@fjord.test", "--role", "dpo", "--trained", "20.11.2026"}, "YYYY-MM-DD"},
		{[]string{"add", "--email", "b@fjord.test", "--role", "dpo"}, "usage"},
		{[]string{"add", "--email", "ann@fjord.test", "--role", "dpo", "--trained", "2026-11-20"}, "already exists"},
		{[]string{"trained", "--id", "1", "--date", "2999-01-01"}, "future"},
		{[]string{"remove", "--id", "7"}, "not found"},
		{[]string{"promote", "--id", "1"}, "usage"},
	} {
		args := append(append([]string{"staff"}, c.args...), "--data-dir", dir)
		if out := fjordFails(t, nil, args...); !strings.Contains(out, c.want) {
			t.Errorf("%v: %s, want %q", c.args, out, c.want)
		}
	}
	fjord(t, "staff", "trained", "--id", "1", "--date", "2026-11-25", "--data-dir", dir)
	if out := fjord(t, "staff", "list", "--data-dir", dir); !strings.Contains(out, "ann@fjord.test") || !strings.Contains(out, "2026-11-25") || !strings.Contains(out, "false") {
		t.Fatalf("list: %s", out)
	}
	s := startServer(t, dir, "--staff-ranges", "127.0.0.0/8")
	out = fjord(t, "staff", "link", "--id", "1", "--data-dir", dir)
	i := strings.Index(out, "/staff/setup/")
	if i < 0 {
		t.Fatalf("link: %s", out)
	}
	link := strings.TrimSpace(out[i:])
	resp, err := http.Get("http://" + s.Addr + link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the set-up page from the staff ranges: %d", resp.StatusCode)
	}
	fjord(t, "staff", "remove", "--id", "1", "--data-dir", dir)
	resp, err = http.Get("http://" + s.Addr + link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("the set-up page of a removed member: %d", resp.StatusCode)
	}
	s.Stop()
	db, err := sql.Open("sqlite", filepath.Join(dir, "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var actions string
	if err := db.QueryRow(`SELECT group_concat(action, ' ') FROM (SELECT action FROM audit_log WHERE actor = 'operator' ORDER BY seq)`).Scan(&actions); err != nil {
		t.Fatal(err)
	}
	if actions != "staff.add staff.trained staff.link staff.remove" {
		t.Fatalf("the operator's actions in the audit log: %q", actions)
	}
}

// TestIncidentAndAlertCommands: the operator records an incident without
// a server and updates, closes and lists it through a running one; bad
// input names the problem; alerts are listed and an unknown one is not
// resolved; security.txt comes from the settings.
func TestIncidentAndAlertCommands(t *testing.T) {
	dir := t.TempDir()
	fjord(t, "account", "create", "--name", "Acme Oy", "--admin-email", "boss@acme.example", "--data-dir", dir)
	fjord(t, "account", "create", "--name", "Other Oy", "--admin-email", "boss@other.example", "--data-dir", dir)
	if out := fjord(t, "incident", "open", "--account", "1", "--account", "2", "--title", "Lost laptop", "--description", "A laptop was lost.", "--data-dir", dir); !strings.Contains(out, "INC-1 opened for 2 account(s)") {
		t.Fatalf("incident open: %s", out)
	}
	if out := fjordFails(t, nil, "incident", "open", "--account", "9", "--title", "t", "--description", "d", "--data-dir", dir); !strings.Contains(out, "account 9") {
		t.Fatalf("an unknown account: %s", out)
	}
	s := startServer(t, dir, "--security-contact", "mailto:security@fjord.example", "--public-url", "https://fjord.example")
	if out := fjord(t, "incident", "update", "INC-1", "It was found.", "--data-dir", dir); !strings.Contains(out, "INC-1 updated") {
		t.Fatalf("incident update: %s", out)
	}
	if out := fjordFails(t, nil, "incident", "update", "INC-1", "", "--data-dir", dir); !strings.Contains(out, "text is empty") {
		t.Fatalf("an empty update: %s", out)
	}
	fjord(t, "incident", "close", "INC-1", "Nothing was exposed.", "--data-dir", dir)
	if out := fjordFails(t, nil, "incident", "close", "INC-1", "again", "--data-dir", dir); !strings.Contains(out, "closed") {
		t.Fatalf("closing twice: %s", out)
	}
	list := fjord(t, "incident", "list", "--data-dir", dir)
	if !regexp.MustCompile(`INC-1\s+\S+ \S+\s+operator\s+closed \S+ \S+\s+1,2\s+3\s+Lost laptop`).MatchString(list) {
		t.Fatalf("incident list:\n%s", list)
	}
	if out := fjord(t, "alerts", "list", "--open", "--data-dir", dir); !strings.HasPrefix(out, "ALERT") || strings.Contains(out, "ALR-") {
		t.Fatalf("alerts list: %s", out)
	}
	if out := fjordFails(t, nil, "alerts", "resolve", "ALR-5", "--data-dir", dir); !strings.Contains(out, "alert 5") {
		t.Fatalf("resolving an unknown alert: %s", out)
	}
	if out := fjordFails(t, nil, "alerts", "resolve", "five", "--data-dir", dir); !strings.Contains(out, "not an alert id") {
		t.Fatalf("a bad alert id: %s", out)
	}
	resp, err := http.Get("http://" + s.Addr + "/.well-known/security.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "Contact: mailto:security@fjord.example\n") || !strings.Contains(string(b), "Canonical: https://fjord.example/.well-known/security.txt") {
		t.Fatalf("security.txt: %d\n%s", resp.StatusCode, b)
	}
}
