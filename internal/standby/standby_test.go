package standby

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
)

func TestParseLSN(t *testing.T) {
	for in, want := range map[string]uint64{"0/0": 0, "0/16B3748": 0x16B3748, "16/B374D848": 0x16<<32 | 0xB374D848, "FFFFFFFF/FFFFFFFF": 1<<64 - 1} {
		if got, err := ParseLSN(in); err != nil || got != want {
			t.Errorf("ParseLSN(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "0/", "/0", "G/0", "100000000/0", "0/0/0"} {
		if _, err := ParseLSN(in); err == nil {
			t.Errorf("ParseLSN(%q) took it", in)
		}
	}
}

// TestCheckNotAStandby: a database that is not in recovery (what a
// promoted standby is) is reported as not replicating, and a standby that
// cannot be reached as unreachable, without its URL; the primary's
// question works on a real PostgreSQL. The replaying case runs in the
// e2e test of fail-over (FJORD_TEST_PGCLUSTER).
func TestCheckNotAStandby(t *testing.T) {
	url := os.Getenv("FJORD_TEST_POSTGRES")
	if url == "" {
		t.Skip("set FJORD_TEST_POSTGRES to check the watcher against PostgreSQL")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := Open(url, url, log)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if st := w.Status(); !st.At.IsZero() {
		t.Fatalf("status before any check: %+v", st)
	}
	st := w.Check(context.Background())
	if st.Up || !strings.Contains(st.Problem, "not in recovery") || st.DownSince != st.At {
		t.Fatalf("a primary as the standby: %+v", st)
	}
	if w.Status() != st || !strings.HasPrefix(st.String(), "standby: DOWN since ") {
		t.Fatalf("last status %+v, line %q", w.Status(), st.String())
	}
	first := st.DownSince
	if st = w.Check(context.Background()); st.DownSince != first {
		t.Fatalf("down since moved from %s to %s", first, st.DownSince)
	}

	const secret = "s3cr3t-pw"
	gone, err := Open(url, "postgres://fjord:"+secret+"@127.0.0.1:1/x?sslmode=disable", log)
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	st = gone.Check(context.Background())
	if st.Up || st.Problem != "unreachable" || strings.Contains(st.String(), secret) {
		t.Fatalf("a standby on a closed port: %+v %q", st, st.String())
	}
	if _, err := Open(url, "postgres://fjord:"+secret+"@127.0.0.1:x/", log); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("a bad standby URL: %v", err)
	}
}
