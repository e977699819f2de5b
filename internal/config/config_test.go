package config

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"fjord/internal/mail/mailpit"
	"fjord/internal/testnet"
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

// TestTLSSettings: serving anywhere but loopback needs TLS; certificates
// come from one source; the plain-HTTP port exists only in front of HTTPS.
func TestTLSSettings(t *testing.T) {
	none := func(string) string { return "" }
	for name, f := range map[string]struct {
		flags map[string]string
		want  string
	}{
		"plain HTTP on every interface": {map[string]string{"listen": "0.0.0.0:443"}, `listen "0.0.0.0:443" is not a loopback address: set tls-cert and tls-key, or acme-domains`},
		"plain HTTP, empty host":        {map[string]string{"listen": ":8080"}, `listen ":8080" is not a loopback address`},
		"plain HTTP on a LAN address":   {map[string]string{"listen": "192.168.1.10:80"}, "not a loopback address"},
		"certificate without key":       {map[string]string{"tls-cert": "c.pem"}, "tls-cert and tls-key go together"},
		"key without certificate":       {map[string]string{"tls-key": "k.pem"}, "tls-cert and tls-key go together"},
		"files and ACME":                {map[string]string{"tls-cert": "c.pem", "tls-key": "k.pem", "acme-domains": "a.example.com"}, "tls-cert and acme-domains are both set"},
		"ACME for an address":           {map[string]string{"acme-domains": "192.0.2.1"}, "acme-domains"},
		"ACME for a wildcard":           {map[string]string{"acme-domains": "*.example.com"}, "acme-domains"},
		"ACME for a bare name":          {map[string]string{"acme-domains": "localhost"}, "acme-domains"},
		"ACME e-mail alone":             {map[string]string{"acme-email": "ops@example.com"}, "acme-domains is empty"},
		"bad ACME e-mail":               {map[string]string{"acme-domains": "a.example.com", "acme-email": "Ops <ops@example.com>"}, "acme-email"},
		"redirect port without TLS":     {map[string]string{"http-listen": "127.0.0.1:8081"}, "http-listen"},
		"redirect port without a port":  {map[string]string{"http-listen": "0.0.0.0", "acme-domains": "a.example.com"}, "http-listen"},
	} {
		if _, err := Load("", f.flags, none); err == nil || !strings.Contains(err.Error(), f.want) {
			t.Errorf("%s: %v, want it to say %q", name, err, f.want)
		}
	}
	for name, flags := range map[string]map[string]string{
		"plain HTTP on loopback":          {"listen": "127.0.0.1:8080"},
		"plain HTTP on IPv6 loopback":     {"listen": "[::1]:8080"},
		"plain HTTP on localhost":         {"listen": "localhost:8080"},
		"files on every interface":        {"listen": ":443", "region": "eu-fi-helsinki", "tls-cert": "c.pem", "tls-key": "k.pem", "http-listen": ":80"},
		"TLS on loopback (the tests)":     {"listen": "127.0.0.1:8443", "tls-cert": "c.pem", "tls-key": "k.pem"},
		"ACME on every interface":         {"listen": ":443", "region": "eu-fi-helsinki", "acme-domains": "A.example.com, b.example.com", "acme-email": "ops@example.com", "http-listen": ":80"},
		"ACME with its own cache":         {"listen": ":443", "region": "eu-fi-helsinki", "acme-domains": "a.example.com", "acme-cache": "/var/cache/fjord-acme"},
		"plain HTTP on loopback, no TLS ": {"listen": "127.0.0.1:8080", "http-listen": ""},
	} {
		c, err := Load("", flags, none)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if wantTLS := flags["tls-cert"] != "" || flags["acme-domains"] != ""; c.TLSOn() != wantTLS {
			t.Errorf("%s: TLSOn %v", name, c.TLSOn())
		}
	}
	c, _ := Load("", map[string]string{"listen": ":443", "region": "eu-fi-helsinki", "acme-domains": "A.example.com, b.example.com", "data-dir": "/d"}, none)
	if strings.Join(c.ACMEDomains, " ") != "a.example.com b.example.com" || c.ACMECacheDir() != "/d/acme" {
		t.Fatalf("ACME: %q, cache %s", c.ACMEDomains, c.ACMECacheDir())
	}
}

// TestCheckTLS: config check explains certificate files that would fail
// or soon fail: missing, not a pair, expired or expiring, not for
// public-url's host, a key others can read; and an ACME cache it cannot
// write. A good setup has no problems.
func TestCheckTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testnet.NewCA(t, dir)
	good, goodKey, _ := ca.Issue(t, dir, "good", testnet.Leaf{Hosts: []string{"analytics.example.com", "127.0.0.1"}})
	expired, expiredKey, _ := ca.Issue(t, dir, "expired", testnet.Leaf{NotBefore: time.Now().Add(-90 * 24 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	soon, soonKey, _ := ca.Issue(t, dir, "soon", testnet.Leaf{NotAfter: time.Now().Add(5 * 24 * time.Hour)})
	other, otherKey, _ := ca.Issue(t, dir, "other", testnet.Leaf{Hosts: []string{"other.example.com"}})
	open, openKey, _ := ca.Issue(t, dir, "open", testnet.Leaf{})
	os.Chmod(openKey, 0o644)
	keyBytes, _ := os.ReadFile(goodKey)

	check := func(flags map[string]string) string {
		t.Helper()
		flags["data-dir"] = filepath.Join(t.TempDir(), "d")
		flags["region"] = "eu-fi-helsinki"
		if flags["listen"] == "" {
			flags["listen"] = "0.0.0.0:443"
		}
		c, err := Load("", flags, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(Check(c), "\n")
	}
	pub := "https://analytics.example.com"
	if p := check(map[string]string{"tls-cert": good, "tls-key": goodKey, "public-url": pub}); p != "" {
		t.Fatalf("good files: %s", p)
	}
	for name, f := range map[string]struct {
		flags map[string]string
		want  string
	}{
		"missing certificate": {map[string]string{"tls-cert": filepath.Join(dir, "none.crt"), "tls-key": goodKey}, `tls-cert "` + filepath.Join(dir, "none.crt") + `" cannot be read: no such file`},
		"missing key":         {map[string]string{"tls-cert": good, "tls-key": filepath.Join(dir, "none.key")}, `tls-key "` + filepath.Join(dir, "none.key") + `" cannot be read`},
		"not a pair":          {map[string]string{"tls-cert": good, "tls-key": otherKey}, `tls-cert "` + good + `" and tls-key "` + otherKey + `" are not a certificate and its key`},
		"key as certificate":  {map[string]string{"tls-cert": goodKey, "tls-key": goodKey}, "holds no PEM certificate"},
		"expired":             {map[string]string{"tls-cert": expired, "tls-key": expiredKey}, `tls-cert "` + expired + `" expired on ` + time.Now().Add(-24*time.Hour).UTC().Format("2006-01-02")},
		"expiring":            {map[string]string{"tls-cert": soon, "tls-key": soonKey}, "in less than 14 days: renew it"},
		"key open to others":  {map[string]string{"tls-cert": open, "tls-key": openKey}, `tls-key "` + openKey + `" is readable by other users (mode -rw-r--r--)`},
		"another host":        {map[string]string{"tls-cert": other, "tls-key": otherKey, "public-url": pub}, `does not cover "analytics.example.com", the host of public-url (it covers other.example.com)`},
		"http public-url":     {map[string]string{"tls-cert": good, "tls-key": goodKey, "public-url": "http://analytics.example.com"}, "public-url \"http://analytics.example.com\" is http://"},
		"ACME, other host":    {map[string]string{"acme-domains": "a.example.com", "public-url": pub, "http-listen": ":80"}, `public-url's host "analytics.example.com" is not in acme-domains`},
		"ACME, no way in":     {map[string]string{"acme-domains": "a.example.com", "listen": "0.0.0.0:8443"}, "http-listen is empty"},
		"ACME cache a file":   {map[string]string{"acme-domains": "a.example.com", "acme-cache": good}, `acme-cache "` + good + `" cannot be created`},
	} {
		p := check(f.flags)
		if !strings.Contains(p, f.want) {
			t.Errorf("%s: %q, want it to say %q", name, p, f.want)
		}
		if strings.Contains(p, strings.Split(string(keyBytes), "\n")[1][:20]) {
			t.Errorf("%s: key material in the problems", name)
		}
	}
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o500)
	if os.Getuid() != 0 { // root writes anywhere
		if p := check(map[string]string{"acme-domains": "analytics.example.com", "acme-cache": ro, "public-url": pub}); !strings.Contains(p, `acme-cache "`+ro+`" is not writable`) {
			t.Errorf("read-only ACME cache: %s", p)
		}
	}
	if p := check(map[string]string{"acme-domains": "analytics.example.com", "public-url": pub}); p != "" {
		t.Errorf("good ACME setup: %s", p)
	}
}

// FuzzACMEDomains: a domain the setting accepts is a plain lower-case DNS
// name, never an address, a wildcard or something with a path or port.
func FuzzACMEDomains(f *testing.F) {
	f.Add("analytics.example.com, b.example.com")
	f.Add("*.example.com")
	f.Add("127.0.0.1,::1")
	f.Add("a.example.com/x:80")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := Load("", map[string]string{"listen": ":443", "region": "eu-fi-helsinki", "acme-domains": v}, func(string) string { return "" })
		if err != nil {
			return
		}
		for _, d := range c.ACMEDomains {
			if strings.Trim(d, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" || !strings.Contains(d, ".") || net.ParseIP(d) != nil {
				t.Fatalf("%q accepted from %q", d, v)
			}
		}
	})
}

// TestResidency: every place of the data (the node, a PostgreSQL
// database, the standby, the backups) declares a region within
// allowed-regions (default eu-*), or Load refuses the configuration with
// a message naming the setting and the region; every problem is reported
// at once, and database URLs never appear. Only a node on loopback may
// leave its region out.
func TestResidency(t *testing.T) {
	none := func(string) string { return "" }
	const pg = "postgres://fjord:hunter2@db.internal/fjord"
	// a node others reach: TLS, so that what Load says is about residency
	public := map[string]string{"listen": ":443", "tls-cert": "c.pem", "tls-key": "k.pem"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	backups := []string{"backup-dir", "/backups", "backup-key", "backup.key"}
	for name, f := range map[string]struct {
		flags map[string]string
		want  []string
	}{
		"node outside the default":        {with(public, "region", "us-east-1"), []string{`region = "us-east-1" is outside allowed-regions (eu-*): this node and its data dir would place data there`}},
		"node on loopback outside":        {with(nil, "region", "us-east-1"), []string{`region = "us-east-1" is outside allowed-regions (eu-*)`}},
		"node not in the exact names":     {with(public, "allowed-regions", "eu-fi-helsinki, ch-zurich", "region", "eu-se-stockholm"), []string{`region = "eu-se-stockholm" is outside allowed-regions (eu-fi-helsinki, ch-zurich)`}},
		"an exact name is no prefix":      {with(public, "allowed-regions", "eu-fi", "region", "eu-fi-helsinki"), []string{`region = "eu-fi-helsinki" is outside allowed-regions (eu-fi)`}},
		"node outside the prefix":         {with(public, "allowed-regions", "eu-fi-*", "region", "eu-fin"), []string{`region = "eu-fin" is outside allowed-regions (eu-fi-*)`}},
		"node others reach, no region":    {with(public), []string{`region is empty but listen ":443" is not a loopback address`}},
		"no region, no TLS: both said":    {with(nil, "listen", "0.0.0.0:80"), []string{`listen "0.0.0.0:80" is not a loopback address: set tls-cert`, `region is empty but listen "0.0.0.0:80"`}},
		"database outside":                {with(public, "region", "eu-fi-helsinki", "database", pg, "database-region", "us-east-1"), []string{`database-region = "us-east-1" is outside allowed-regions (eu-*): the PostgreSQL database would place data there`}},
		"events database outside":         {with(public, "region", "eu-fi-helsinki", "events-database", pg, "database-region", "us-east-1"), []string{`database-region = "us-east-1" is outside`}},
		"database in the node's region":   {with(public, "region", "us-east-1", "database", pg), []string{`region = "us-east-1" is outside`}},
		"database region, embedded store": {with(public, "region", "eu-fi-helsinki", "database-region", "eu-fi-helsinki"), []string{"database-region is set but neither database nor events-database is PostgreSQL"}},
		"standby outside":                 {with(public, "region", "eu-fi-helsinki", "database", pg, "standby-url", pg, "standby-region", "us-west-2"), []string{`standby-region = "us-west-2" is outside allowed-regions (eu-*): the standby would place data there`}},
		"standby without a region":        {with(public, "region", "eu-fi-helsinki", "database", pg, "standby-url", pg), []string{"standby-url is set but standby-region is empty"}},
		"standby region, no standby":      {with(public, "region", "eu-fi-helsinki", "standby-region", "eu-se-stockholm"), []string{"standby-region is set but standby-url is empty"}},
		"backups outside":                 {with(public, append(backups, "region", "eu-fi-helsinki", "backup-region", "us-east-1")...), []string{`backup-region = "us-east-1" is outside allowed-regions (eu-*): backups would place data there`}},
		"backups on loopback outside":     {with(nil, append(backups, "backup-region", "us-east-1")...), []string{`backup-region = "us-east-1" is outside allowed-regions (eu-*)`}},
		"backups without a region":        {with(public, append(backups, "region", "eu-fi-helsinki")...), []string{"backup-dir is set but backup-region is empty"}},
		"backup region, no backups":       {with(public, "region", "eu-fi-helsinki", "backup-region", "eu-fi-helsinki"), []string{"backup-region is set but backup-dir is empty"}},
		"every problem at once": {with(public, append(backups, "region", "us-east-1", "database", pg, "database-region", "ap-south-1", "standby-url", pg, "standby-region", "us-west-2", "backup-region", "sa-east-1")...), []string{
			`region = "us-east-1"`, `database-region = "ap-south-1"`, `standby-region = "us-west-2"`, `backup-region = "sa-east-1"`}},
	} {
		_, err := Load("", f.flags, none)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, w := range f.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q, want it to say %q", name, err, w)
			}
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the database password is in %q", name, err)
		}
	}

	for name, f := range map[string]struct {
		flags map[string]string
		want  Residency
	}{
		"local use: nothing declared": {with(nil), Residency{Allowed: []string{"eu-*"}}},
		"local use with backups":      {with(nil, append(backups, "backup-region", "eu-de-frankfurt")...), Residency{Backups: "eu-de-frankfurt", Allowed: []string{"eu-*"}}},
		"node others reach":           {with(public, "region", "eu-fi-helsinki"), Residency{Node: "eu-fi-helsinki", Allowed: []string{"eu-*"}}},
		"exact names":                 {with(public, append(backups, "allowed-regions", "eu-fi-helsinki, ch-zurich", "region", "ch-zurich", "backup-region", "eu-fi-helsinki")...), Residency{Node: "ch-zurich", Backups: "eu-fi-helsinki", Allowed: []string{"eu-fi-helsinki", "ch-zurich"}}},
		"a narrower prefix":           {with(public, "allowed-regions", "eu-fi-*", "region", "eu-fi-helsinki"), Residency{Node: "eu-fi-helsinki", Allowed: []string{"eu-fi-*"}}},
		"database in the node's":      {with(public, "region", "eu-fi-helsinki", "database", pg), Residency{Node: "eu-fi-helsinki", Database: "eu-fi-helsinki", Allowed: []string{"eu-*"}}},
		"every place declared": {with(public, append(backups, "region", "eu-fi-helsinki", "events-database", pg, "database-region", "eu-se-stockholm", "standby-url", pg, "standby-region", "eu-se-gothenburg", "backup-region", "eu-de-frankfurt")...),
			Residency{Node: "eu-fi-helsinki", Database: "eu-se-stockholm", Standby: "eu-se-gothenburg", Backups: "eu-de-frankfurt", Allowed: []string{"eu-*"}}},
	} {
		c, err := Load("", f.flags, none)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := c.Residency(); fmt.Sprint(got) != fmt.Sprint(f.want) {
			t.Errorf("%s: Residency %+v, want %+v", name, got, f.want)
		}
	}

	for _, c := range []struct {
		allowed []string
		region  string
		want    bool
	}{
		{[]string{"eu-*"}, "eu-fi-helsinki", true},
		{[]string{"eu-*"}, "us-east-1", false},
		{[]string{"eu-*"}, "", false},
		{[]string{"eu-fi-helsinki"}, "eu-fi-helsinki", true},
		{[]string{"eu-fi"}, "eu-fi-helsinki", false},
		{[]string{"ch-zurich", "eu-fi-*"}, "eu-fi-espoo", true},
		{[]string{"ch-zurich", "eu-fi-*"}, "eu-se-stockholm", false},
	} {
		if got := RegionAllowed(c.allowed, c.region); got != c.want {
			t.Errorf("RegionAllowed(%q, %q) = %v", c.allowed, c.region, got)
		}
	}
}

// FuzzParseKeep: a retention setting either parses to counts from 0 to
// 1000, not all 0, that print back as they were given, or is refused.
func FuzzParseKeep(f *testing.F) {
	for _, s := range []string{"7:4:12", "0:0:1", "0:0:0", "1:2", "a:b:c", "-1:0:0", "1001:0:0", "007:4:12", ":::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		k, err := ParseKeep(v)
		if err != nil {
			return
		}
		for _, n := range []int{k.Daily, k.Weekly, k.Monthly} {
			if n < 0 || n > 1000 {
				t.Fatalf("%q: %+v out of range", v, k)
			}
		}
		if k == (Keep{}) {
			t.Fatalf("%q: keeps nothing", v)
		}
		again, err := ParseKeep(fmt.Sprintf("%d:%d:%d", k.Daily, k.Weekly, k.Monthly))
		if err != nil || again != k {
			t.Fatalf("%q: %+v does not read back: %+v %v", v, k, again, err)
		}
	})
}
