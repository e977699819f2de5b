package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
