package config

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"fjord/internal/mail/mailpit"
)

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fjord.conf")
	os.WriteFile(file, []byte("# comment\nlisten = 127.0.0.1:9000\ndata-dir = \"/from/file\"\nduckdb-threads = 3\n"), 0o600)
	env := map[string]string{"FJORD_DATA_DIR": "/from/env", "FJORD_DUCKDB_THREADS": "4"}
	c, err := Load(file, map[string]string{"duckdb-threads": "5"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || c.DataDir != "/from/env" || c.DuckDBThreads != 5 || c.QueueSize != 8192 {
		t.Fatalf("%+v", c)
	}
}

func TestFlagsOnlyOverrideWhenGiven(t *testing.T) {
	t.Setenv("FJORD_LISTEN", "127.0.0.1:7000")
	t.Setenv("FJORD_DEMO", "true")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	build := Flags(fs)
	if err := fs.Parse([]string{"--data-dir", "/x"}); err != nil {
		t.Fatal(err)
	}
	c, err := build()
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:7000" || c.DataDir != "/x" || !c.Demo {
		t.Fatalf("%+v", c)
	}
	fs = flag.NewFlagSet("serve", flag.ContinueOnError)
	build = Flags(fs)
	fs.Parse([]string{"--demo=false"})
	if c, _ := build(); c.Demo {
		t.Fatal("--demo=false did not override FJORD_DEMO")
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	none := func(string) string { return "" }
	cases := map[string]string{
		"listen":          "nonsense",
		"duckdb-threads":  "0",
		"trusted-proxies": "10.0.0.0/33",
		"database":        "mysql://x",
		"log-level":       "loud",
	}
	for k, v := range cases {
		_, err := Load("", map[string]string{k: v}, none)
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: error %v does not name the setting", k, v, err)
		}
	}
	for _, bad := range []string{"nope\n", "unknown = 1\n", "listen = a:1\nlisten = b:2\n", "listen = \"unterminated\n", "data-dir = \"a\\q\"\n"} {
		if _, err := ParseFile([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}

func TestStoreURLs(t *testing.T) {
	c, _ := Load("", map[string]string{"data-dir": "/d"}, func(string) string { return "" })
	if c.AccountsURL() != "/d/accounts.db" || c.EventsURL() != "/d/events.duckdb" {
		t.Fatal(c.AccountsURL(), c.EventsURL())
	}
	c, _ = Load("", map[string]string{"database": "postgres://h/db"}, func(string) string { return "" })
	if c.EventsURL() != "postgres://h/db" || !IsPostgres(c.AccountsURL()) {
		t.Fatal(c.EventsURL())
	}
	c, _ = Load("", map[string]string{"trusted-proxies": "127.0.0.1, 10.1.2.3/8"}, func(string) string { return "" })
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[1].String() != "10.0.0.0/8" {
		t.Fatal(c.TrustedProxies)
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte("listen = 127.0.0.1:1\n# c\ndata-dir = \"x\"\n"))
	f.Add([]byte("=\n"))
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseFile(data)
		if err != nil {
			return
		}
		for k := range m {
			found := false
			for _, s := range Settings {
				found = found || s.Name == k
			}
			if !found {
				t.Fatalf("unknown key %q accepted", k)
			}
		}
	})
}

// TestMailSettings: mail is off without smtp-host; a bad mail setup is an
// error naming the setting, and never repeats the SMTP password.
func TestMailSettings(t *testing.T) {
	none := func(string) string { return "" }
	c, err := Load("", nil, none)
	if err != nil || c.MailOn() {
		t.Fatalf("default: mail on %v, %v", c != nil && c.MailOn(), err)
	}
	env := map[string]string{"FJORD_SMTP_HOST": "smtp.example.com", "FJORD_SMTP_USER": "fjord",
		"FJORD_SMTP_PASSWORD": "hunter2hunter2", "FJORD_MAIL_FROM": "Fjord <fjord@example.com>"}
	c, err = Load("", nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Mail(); !c.MailOn() || m.Addr() != "smtp.example.com:587" || m.TLS != "starttls" || m.Password != "hunter2hunter2" {
		t.Fatalf("%+v", m)
	}
	for name, c := range map[string]struct {
		flags map[string]string
		want  string
	}{
		"plain text to another host": {map[string]string{"smtp-tls": "none"}, "loopback"},
		"unknown TLS mode":           {map[string]string{"smtp-tls": "ssl"}, "smtp-tls"},
		"no sender":                  {map[string]string{"mail-from": ""}, "mail-from"},
		"bad sender":                 {map[string]string{"mail-from": "fjord at example"}, "mail-from"},
		"port in the host":           {map[string]string{"smtp-host": "smtp.example.com:25"}, "smtp-host"},
		"bad port":                   {map[string]string{"smtp-port": "99999"}, "smtp-port"},
	} {
		_, err := Load("", c.flags, func(k string) string { return env[k] })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to name %s", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2hunter2") {
			t.Errorf("%s: the password is in the error", name)
		}
	}
	// loopback may be plain text; the password never shows in an error
	if _, err := Load("", map[string]string{"smtp-host": "127.0.0.1", "smtp-tls": "none"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	env["FJORD_SMTP_PASSWORD"] = "hunter2hunter2"
	env["FJORD_SMTP_USER"] = ""
	if _, err := Load("", nil, func(k string) string { return env[k] }); err == nil || strings.Contains(err.Error(), "hunter2hunter2") || !strings.Contains(err.Error(), "smtp-user") {
		t.Fatalf("password without user: %v", err)
	}
	// settings without smtp-host are explained by config check
	c, err = Load("", map[string]string{"data-dir": t.TempDir(), "mail-from": "fjord@example.com"}, none)
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(Check(c), "\n"); !strings.Contains(p, "smtp-host is empty") || !strings.Contains(p, "mail-from") {
		t.Fatalf("check: %s", p)
	}
}

// TestCheckProbesSMTP: config check connects to the SMTP server (real
// Mailpit) and explains what fails; it sends nothing.
func TestCheckProbesSMTP(t *testing.T) {
	mp := mailpit.Start(t)
	dir := filepath.Join(t.TempDir(), "d") // made 0700 by Check
	flags := map[string]string{"data-dir": dir, "smtp-host": "127.0.0.1", "smtp-port": strconv.Itoa(mp.SMTPPort),
		"smtp-tls": "none", "mail-from": "fjord@example.com"}
	c, err := Load("", flags, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(Check(c), "\n"); !strings.Contains(p, "public-url is empty") || strings.Contains(p, "cannot be sent") {
		t.Fatalf("check: %s", p)
	}
	flags["public-url"] = "https://fjord.example.com"
	flags["smtp-tls"] = "starttls" // Mailpit offers no STARTTLS here
	c, _ = Load("", flags, func(string) string { return "" })
	if p := strings.Join(Check(c), "\n"); !strings.Contains(p, "mail cannot be sent") || !strings.Contains(p, "STARTTLS") {
		t.Fatalf("check: %s", p)
	}
	flags["smtp-tls"] = "none"
	c, _ = Load("", flags, func(string) string { return "" })
	if p := Check(c); len(p) != 0 {
		t.Fatalf("check: %v", p)
	}
	if n := len(mp.Messages(t)); n != 0 {
		t.Fatalf("config check sent %d messages", n)
	}
}

// TestSecuritySettings: alert and security.txt settings are checked, and
// a malformed contact is an error naming it; config check explains the
// settings that cannot work together.
func TestSecuritySettings(t *testing.T) {
	none := func(string) string { return "" }
	c, err := Load("", map[string]string{"security-contact": "mailto:security@example.com, https://example.com/report",
		"security-languages": "en, fi, pt-BR", "security-policy": "https://example.com/policy",
		"alert-email": "ops@example.com", "alert-webhook": "https://alerts.example.com/hook?token=x"}, none)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SecurityContact) != 2 || c.SecurityContact[1] != "https://example.com/report" || len(c.SecurityLanguages) != 3 || c.AlertEmail != "ops@example.com" {
		t.Fatalf("%+v", c)
	}
	for name, f := range map[string]struct {
		flags map[string]string
		want  string
	}{
		"contact without a scheme": {map[string]string{"security-contact": "security@example.com"}, `contact "security@example.com": want a mailto: or https:`},
		"http contact":             {map[string]string{"security-contact": "http://example.com"}, "want a mailto: or https:"},
		"bad mailto":               {map[string]string{"security-contact": "mailto:not an address"}, "without spaces"},
		"mailto with a name":       {map[string]string{"security-contact": "mailto:Sec<s@example.com>"}, "security-contact"},
		"https without a host":     {map[string]string{"security-contact": "https://"}, "not a usable https"},
		"policy over http":         {map[string]string{"security-policy": "http://example.com"}, "security-policy"},
		"bad language":             {map[string]string{"security-languages": "english!"}, `"english!" is not a language tag`},
		"alert-email with a name":  {map[string]string{"alert-email": "Ops <ops@example.com>"}, "alert-email"},
		"webhook over http":        {map[string]string{"alert-webhook": "http://alerts.example.com/"}, "alert-webhook"},
		"webhook with a password":  {map[string]string{"alert-webhook": "https://u:p@alerts.example.com/"}, "alert-webhook"},
	} {
		if _, err := Load("", f.flags, none); err == nil || !strings.Contains(err.Error(), f.want) {
			t.Errorf("%s: %v, want it to say %q", name, err, f.want)
		}
	}
	if _, err := Load("", map[string]string{"alert-webhook": "http://127.0.0.1:9000/hook"}, none); err != nil {
		t.Errorf("a loopback http webhook: %v", err)
	}
	c, err = Load("", map[string]string{"data-dir": t.TempDir(), "alert-email": "ops@example.com", "security-contact": "mailto:s@example.com"}, none)
	if err != nil {
		t.Fatal(err)
	}
	p := strings.Join(Check(c), "\n")
	if !strings.Contains(p, "alert-email is set but smtp-host is empty") || !strings.Contains(p, "public-url is not an https:// URL") {
		t.Fatalf("check: %s", p)
	}
	c, _ = Load("", map[string]string{"data-dir": t.TempDir(), "security-languages": "en"}, none)
	if p := strings.Join(Check(c), "\n"); !strings.Contains(p, "security-contact is empty") {
		t.Fatalf("check: %s", p)
	}
}

// FuzzSecurityTxtSettings: a contact or language the settings accept can
// never add a line or a field to security.txt.
func FuzzSecurityTxtSettings(f *testing.F) {
	f.Add("mailto:security@example.com")
	f.Add("https://example.com/report\nPolicy: https://evil.example")
	f.Add("mailto:a@b.c\rExpires: 2099")
	f.Fuzz(func(t *testing.T, s string) {
		if CheckContactURI(s) == nil && (strings.ContainsAny(s, "\r\n\x00 ") || !(strings.HasPrefix(s, "mailto:") || strings.HasPrefix(s, "https://"))) {
			t.Fatalf("contact %q accepted", s)
		}
		c, err := Load("", map[string]string{"security-contact": s, "security-languages": s, "security-policy": s}, func(string) string { return "" })
		if err != nil {
			return
		}
		for _, v := range append(append(c.SecurityContact, c.SecurityLanguages...), c.SecurityPolicy) {
			if strings.ContainsAny(v, "\r\n") {
				t.Fatalf("%q accepted with a line break", v)
			}
		}
	})
}

// TestBounceSettings: the bounce intake's settings name what is wrong,
// need what they depend on, and never repeat the IMAP password.
func TestBounceSettings(t *testing.T) {
	env := map[string]string{"FJORD_SMTP_HOST": "127.0.0.1", "FJORD_SMTP_TLS": "none", "FJORD_MAIL_FROM": "fjord@example.com",
		"FJORD_DATA_DIR": t.TempDir(), "FJORD_IMAP_PASSWORD": "imap-s3cret-pw"}
	get := func(k string) string { return env[k] }
	for name, c := range map[string]struct {
		flags map[string]string
		want  string
	}{
		"not an address":      {map[string]string{"bounce-address": "bounces"}, "bounce-address"},
		"a plus in it":        {map[string]string{"bounce-address": "bounces+x@example.com"}, "without +"},
		"a name in it":        {map[string]string{"bounce-address": "Bounces <bounces@example.com>"}, "bounce-address"},
		"listen without port": {map[string]string{"bounce-address": "b@example.com", "bounce-listen": "127.0.0.1"}, "bounce-listen"},
		"listen without VERP": {map[string]string{"bounce-listen": ":2525"}, "bounce-address is empty"},
		"IMAP without VERP":   {map[string]string{"imap-addr": "imap.example.com:993"}, "bounce-address is empty"},
		"IMAP without port":   {map[string]string{"bounce-address": "b@example.com", "imap-addr": "imap.example.com"}, "imap-addr"},
		"unknown IMAP TLS":    {map[string]string{"imap-tls": "ssl"}, "imap-tls"},
		"VERP without smtp":   {map[string]string{"bounce-address": "b@example.com", "smtp-host": ""}, "smtp-host is empty"},
	} {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		if v, ok := c.flags["smtp-host"]; ok {
			e["FJORD_SMTP_HOST"] = v
			delete(c.flags, "smtp-host")
		}
		_, err := Load("", c.flags, func(k string) string { return e[k] })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to name %s", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "imap-s3cret-pw") {
			t.Errorf("%s: the password is in the error", name)
		}
	}
	// config check: bounces nobody reads, and plain IMAP to another host
	c, err := Load("", map[string]string{"bounce-address": "bounces@example.com"}, get)
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(Check(c), "\n"); !strings.Contains(p, "neither bounce-listen nor imap-addr") {
		t.Errorf("check: %s", p)
	}
	c, err = Load("", map[string]string{"bounce-address": "bounces@example.com", "imap-addr": "imap.example.com:143", "imap-tls": "none", "imap-user": "b"}, get)
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(Check(c), "\n"); !strings.Contains(p, "imap-tls") || strings.Contains(p, "imap-s3cret-pw") {
		t.Errorf("check of plain IMAP to another host: %s", p)
	}
}

// TestMetricsSettings: the metrics token must be long and never shown
// in an error; the metrics port only on loopback; ranges parse, and a
// range of every address is a problem for config check.
func TestMetricsSettings(t *testing.T) {
	none := func(string) string { return "" }
	token := strings.Repeat("a1", 16)
	c, err := Load("", map[string]string{"metrics-token": token, "metrics-ranges": "10.0.0.5, 192.0.2.0/24", "metrics-listen": "127.0.0.1:9090"}, none)
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsToken != token || len(c.MetricsRanges) != 2 || c.MetricsRanges[0].String() != "10.0.0.5/32" || c.MetricsListen != "127.0.0.1:9090" {
		t.Fatalf("%+v", c)
	}
	for _, ok := range []string{"[::1]:9090", "localhost:9090", ""} {
		if _, err := Load("", map[string]string{"metrics-listen": ok}, none); err != nil {
			t.Errorf("metrics-listen %q: %v", ok, err)
		}
	}
	short := "tooShort-butSecret"
	for name, f := range map[string]struct {
		flags map[string]string
		want  string
	}{
		"short token":         {map[string]string{"metrics-token": short}, "metrics-token = (value hidden: it may hold a secret): shorter than 32 characters"},
		"token with a space":  {map[string]string{"metrics-token": token + " x"}, "metrics-token = (value hidden"},
		"public metrics port": {map[string]string{"metrics-listen": "0.0.0.0:9090"}, "not a loopback address"},
		"named host":          {map[string]string{"metrics-listen": "metrics.example.com:9090"}, "not a loopback address"},
		"no port":             {map[string]string{"metrics-listen": "127.0.0.1"}, "want HOST:PORT"},
		"bad range":           {map[string]string{"metrics-ranges": "10.0.0.0/33"}, "metrics-ranges"},
	} {
		_, err := Load("", f.flags, none)
		if err == nil || !strings.Contains(err.Error(), f.want) {
			t.Errorf("%s: %v, want it to say %q", name, err, f.want)
		}
		if err != nil && strings.Contains(err.Error(), short) {
			t.Errorf("%s: the error shows the token: %v", name, err)
		}
	}
	c, err = Load("", map[string]string{"data-dir": t.TempDir(), "metrics-ranges": "0.0.0.0/0"}, none)
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(Check(c), "\n"); !strings.Contains(p, "metrics-ranges contains 0.0.0.0/0") {
		t.Fatalf("check: %s", p)
	}
}
