package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fjord/internal/ingest"
	"fjord/internal/ingest/journal"
	"fjord/internal/store"
)

func record(i int) []byte {
	e := store.Event{SiteID: 1, Time: time.UnixMilli(1_700_000_000_000 + int64(i)).UTC(), Name: "pageview", Path: fmt.Sprintf("/p/%d", i)}
	e.ID[0], e.ID[1], e.ID[2] = byte(i>>16), byte(i>>8), byte(i)
	return ingest.EncodeEvent(nil, &e)
}

func TestBatchRoundTrip(t *testing.T) {
	recs := [][]byte{record(1), record(2), []byte("x")}
	got, err := DecodeBatch(EncodeBatch(recs))
	if err != nil || len(got) != 3 || !bytes.Equal(got[1], recs[1]) || string(got[2]) != "x" {
		t.Fatalf("round trip: %d records, %v", len(got), err)
	}
	for _, tc := range []struct {
		body []byte
		want string
	}{
		{nil, "empty batch"},
		{[]byte{batchVersion}, "no records"},
		{[]byte{2, 1, 0, 0, 0, 'x'}, "unknown batch version 2"},
		{[]byte{batchVersion, 0, 0, 0, 0}, "record 0 at byte 1: empty"},
		{[]byte{batchVersion, 5, 0, 0, 0, 'x'}, "record 0 at byte 1: 5 bytes announced, 1 left"},
		{[]byte{batchVersion, 1, 0, 0, 0, 'x', 1, 0}, "record 1 at byte 6: truncated length"},
		{append([]byte{batchVersion}, 0, 0, 2, 0), "maximum"},
	} {
		if _, err := DecodeBatch(tc.body); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%x: %v, want %q", tc.body, err, tc.want)
		}
	}
	many := make([][]byte, MaxBatchRecords+1)
	for i := range many {
		many[i] = []byte{1}
	}
	if _, err := DecodeBatch(EncodeBatch(many)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("%d records: %v", len(many), err)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch([][]byte{record(1), record(2)}))
	f.Add([]byte{batchVersion, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, err := DecodeBatch(body)
		if err != nil {
			return
		}
		// what decodes encodes to the same bytes
		if again := EncodeBatch(recs); !bytes.Equal(again, body) {
			t.Fatalf("re-encoded %x, got %x", again, body)
		}
	})
}

func TestTokens(t *testing.T) {
	tok, line, err := NewToken("edge-fra-1")
	if err != nil || !strings.HasPrefix(tok, TokenPrefix) || strings.Contains(line, tok) {
		t.Fatalf("NewToken: %q %q %v", tok, line, err)
	}
	if _, _, err := NewToken("Edge 1"); err == nil {
		t.Error("a name with a space and capitals is accepted")
	}
	path := filepath.Join(t.TempDir(), "collectors")
	ts := &Tokens{Path: path}
	if _, err := ts.Check(tok); err == nil || errors.Is(err, ErrBadToken) {
		t.Errorf("missing file: %v, want an error about the file", err)
	}
	if err := os.WriteFile(path, []byte("# our edges\n"+line+"  # Frankfurt\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts = &Tokens{Path: path}
	if name, err := ts.Check(tok); err != nil || name != "edge-fra-1" {
		t.Fatalf("Check: %q %v", name, err)
	}
	if _, err := ts.Check(tok + "x"); !errors.Is(err, ErrBadToken) {
		t.Errorf("another token: %v", err)
	}
	// the file changes: read again (after the 2 s between looks)
	os.WriteFile(path, []byte("edge-fra-1 nothex\n"), 0o600)
	ts.mu.Lock()
	ts.checked = time.Time{}
	ts.mu.Unlock()
	if _, err := ts.Check(tok); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("malformed file: %v, want the line named", err)
	}
	for _, bad := range []string{"one two three", "UPPER " + strings.Repeat("a", 64), "ok abc"} {
		if _, err := ParseTokens([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseTokens(f *testing.F) {
	_, line, _ := NewToken("edge-1")
	f.Add([]byte(line + "\n# x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseTokens(data)
		if err != nil {
			return
		}
		for h, name := range m {
			if len(h) != 64 || CheckName(name) != nil {
				t.Fatalf("accepted %q %q", name, h)
			}
		}
	})
}

// TestMirror: the edge's copy of sites and salts survives a restart; a
// salt it holds is kept when the main service's snapshot brings another;
// one it lacks is made and kept; salts are destroyed 48 hours after.
func TestMirror(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "edge-state.json")
	m := &Mirror{Path: path}
	if _, err := m.Sites(ctx); err == nil {
		t.Error("Sites before any snapshot: no error")
	}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	snap := Snapshot{Sites: []store.Site{{ID: 1, Domain: "a.test", TimeZone: "UTC"}}, Salts: []Salt{{Site: 1, Day: "2026-12-01", Salt: []byte("main-salt")}}, AllowedRegions: []string{"eu-*"}, Time: t0}
	if err := m.Update(snap, t0); err != nil {
		t.Fatal(err)
	}
	made := 0
	create := func() []byte { made++; return []byte("edge-salt") }
	if s, err := m.Salt(ctx, 1, "2026-12-01", create); err != nil || string(s) != "main-salt" || made != 0 {
		t.Fatalf("salt of today: %q %v (made %d)", s, err, made)
	}
	if s, err := m.Salt(ctx, 1, "2026-12-02", create); err != nil || string(s) != "edge-salt" || made != 1 {
		t.Fatalf("salt of a day the main service did not give: %q %v", s, err)
	}
	// the main service's salt of that day comes later: the edge keeps its own
	snap.Salts = append(snap.Salts, Salt{Site: 1, Day: "2026-12-02", Salt: []byte("main-salt-2")})
	if err := m.Update(snap, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	again := &Mirror{Path: path}
	if err := again.Load(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", fi.Mode().Perm())
	}
	if s, _ := again.Salt(ctx, 1, "2026-12-02", create); string(s) != "edge-salt" || made != 1 {
		t.Errorf("after a restart: %q, want the edge's own salt of that day", s)
	}
	if sites, err := again.Sites(ctx); err != nil || len(sites) != 1 || again.AllowedRegions()[0] != "eu-*" {
		t.Errorf("after a restart: %v %v", sites, err)
	}
	// the main service's first salt was held from t0: gone 48 hours later
	n, err := again.DropSalts(ctx, t0.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("DropSalts: %d %v", n, err)
	}
	if s, _ := again.Salt(ctx, 1, "2026-12-01", create); string(s) != "edge-salt" {
		t.Errorf("a destroyed salt came back: %q", s)
	}
}

// flaky is a Sender that fails its first n calls and records the rest.
type flaky struct {
	mu    sync.Mutex
	fail  int
	calls int
	got   [][]byte
}

func (f *flaky) Send(ctx context.Context, recs [][]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail > 0 {
		f.fail--
		return errors.New("main service away")
	}
	f.got = append(f.got, recs...)
	return nil
}

func (f *flaky) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// TestForwarder: the spool reaches the receiver in order after failures,
// whole segments are released once confirmed, and a restarted forwarder
// resumes after what was confirmed.
func TestForwarder(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(journal.Options{Dir: filepath.Join(dir, "spool"), SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	const n = 300
	for i := range n {
		if err := j.Append(context.Background(), record(i)); err != nil {
			t.Fatal(err)
		}
	}
	segs := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "spool", "*.wal"))
		return len(m)
	}
	before := segs()
	to := &flaky{fail: 3}
	f := &Forwarder{J: j, To: to, Log: slog.New(slog.DiscardHandler), PosFile: filepath.Join(dir, "spool.pos"), MaxBatch: 50, MaxBackoff: 20 * time.Millisecond}
	if st := f.Status(); st.Pending == 0 {
		t.Fatal("nothing pending before forwarding")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for to.count() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for f.Status().Pending != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if to.count() != n || f.Forwarded.Load() != n || f.Failures.Load() != 3 {
		t.Fatalf("delivered %d, counted %d forwarded and %d failures", to.count(), f.Forwarded.Load(), f.Failures.Load())
	}
	for i, r := range to.got {
		if !bytes.Equal(r, record(i)) {
			t.Fatalf("record %d out of order", i)
		}
	}
	if st := f.Status(); st.Pending != 0 || st.LastOK.IsZero() || st.LastError != "" {
		t.Errorf("status after draining: %+v", st)
	}
	if after := segs(); after >= before || after != 1 {
		t.Errorf("%d segments before, %d after: confirmed segments must go, the active one stays", before, after)
	}
	// a new forwarder on the same spool sends only what is new
	j.Append(context.Background(), record(n))
	to2 := &flaky{}
	f2 := &Forwarder{J: j, To: to2, Log: slog.New(slog.DiscardHandler), PosFile: f.PosFile}
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { f2.Run(ctx); close(done) }()
	deadline = time.Now().Add(5 * time.Second)
	for to2.count() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	if to2.count() != 1 || !bytes.Equal(to2.got[0], record(n)) {
		t.Errorf("after a restart: %d records sent, want only the new one", to2.count())
	}
}

func TestParseBase(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://analytics.example.com": true, "http://127.0.0.1:8080": true, "http://localhost:1": true,
		"http://analytics.example.com": false, "ftp://x": false, "analytics.example.com": false,
		"http://127.evil.example": false, "http://[::1]:8080": true,
	} {
		if _, err := ParseBase(raw); (err == nil) != ok {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

// TestSendNeedsConfirmation: only the main service's confirmation of every
// record frees the spool; a 200 from something else (a maintenance page)
// or a redirect does not.
func TestSendNeedsConfirmation(t *testing.T) {
	answers := []func(w http.ResponseWriter){
		func(w http.ResponseWriter) { w.Write([]byte("<html>maintenance</html>")) },
		func(w http.ResponseWriter) { w.Write([]byte(`{"accepted":1}`)) },
		func(w http.ResponseWriter) {
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(http.StatusFound)
		},
		func(w http.ResponseWriter) { w.Write([]byte(`{"accepted":1,"unknown_site":1}`)) },
	}
	var next int
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answers[next](w)
		next++
	}))
	defer hs.Close()
	base, err := ParseBase(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{Base: base, Token: "fjc_test"}
	recs := [][]byte{record(1), record(2)}
	for i := range 3 {
		if err := c.Send(context.Background(), recs); err == nil {
			t.Errorf("answer %d taken as a confirmation", i)
		}
	}
	if err := c.Send(context.Background(), recs); err != nil {
		t.Errorf("the main service's confirmation: %v", err)
	}
}
