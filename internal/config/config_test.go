package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
