package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fjord/internal/ingest"
	"fjord/internal/ingest/forward"
	"fjord/internal/ingest/journal"
	"fjord/internal/store"
)

// collectorEnv is a test server that admits one edge collector.
func collectorEnv(t *testing.T) (*testEnv, string) {
	t.Helper()
	e := newEnv(t, journal.Options{})
	token, line, err := forward.NewToken("edge-test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "collectors")
	if err := os.WriteFile(path, []byte("# edges\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.srv.Collectors = &forward.Tokens{Path: path}
	t.Cleanup(func() { checkLogSecrets(t, e.logs.String(), token) })
	return e, token
}

func (e *testEnv) collectorDo(t *testing.T, method, path, token string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCollectorEndpoints: an edge collector's token opens the snapshot
// (sites, today's salts, the allowed regions) and the batch endpoint,
// which makes a batch durable in the journal; anything else is refused
// with a reason.
func TestCollectorEndpoints(t *testing.T) {
	e, token := collectorEnv(t)
	ctx := context.Background()
	e.srv.Residency.Allowed = []string{"eu-*"}

	for _, tc := range []struct{ name, token string }{{"no token", ""}, {"another token", forward.TokenPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, {"an API key", e.key}} {
		if code, body := e.collectorDo(t, "GET", forward.SnapshotPath, tc.token, nil); code != http.StatusUnauthorized || !strings.Contains(body, "collector") {
			t.Errorf("%s: %d %s", tc.name, code, body)
		}
	}

	code, body := e.collectorDo(t, "GET", forward.SnapshotPath, token, nil)
	if code != 200 {
		t.Fatalf("snapshot: %d %s", code, body)
	}
	var snap forward.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatal(err)
	}
	site, err := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.srv.Salts.Salt(ctx, site, e.srv.Now())
	if err != nil {
		t.Fatal(err)
	}
	day, _ := e.srv.Salts.Day(site, e.srv.Now())
	found := false
	for _, s := range snap.Salts {
		if s.Site == site.ID && s.Day == day {
			found = bytes.Equal(s.Salt, want)
		}
	}
	if !found || len(snap.Sites) != 3 || len(snap.AllowedRegions) != 1 {
		t.Errorf("snapshot: today's salt of site.test given: %v; %d sites, regions %v", found, len(snap.Sites), snap.AllowedRegions)
	}

	// a batch: two events of site.test and one of a site that is gone
	var recs [][]byte
	for i, siteID := range []int64{site.ID, site.ID, 999} {
		ev := store.Event{SiteID: siteID, Time: e.srv.Now().Add(-time.Minute), Name: "pageview", VisitorID: 7, Path: "/edge", Interactive: true}
		ev.ID[0], ev.ID[15] = 0xed, byte(i)
		recs = append(recs, ingest.EncodeEvent(nil, &ev))
	}
	before := e.j.End()
	code, body = e.collectorDo(t, "POST", forward.EventsPath, token, forward.EncodeBatch(recs))
	if code != 200 || !strings.Contains(body, `"accepted":2`) || !strings.Contains(body, `"unknown_site":1`) {
		t.Fatalf("batch: %d %s", code, body)
	}
	got, _, err := e.j.Read(before, 10, 1<<20)
	if err != nil || len(got) != 2 {
		t.Fatalf("journal holds %d new records (%v), want 2", len(got), err)
	}
	if _, metrics := e.ctl(t, "GET", "/metrics", nil); !strings.Contains(string(metrics), `fjord_collector_events_total{collector="edge-test"} 2`) {
		t.Error("fjord_collector_events_total does not count the batch")
	}

	// refusals name what is wrong
	bad := ingest.EncodeEvent(nil, &store.Event{SiteID: site.ID, Time: e.srv.Now()})
	bad[0] = 9
	for _, tc := range []struct {
		name string
		body []byte
		code int
		want string
	}{
		{"empty", nil, 400, "empty batch"},
		{"other version", []byte{7, 0, 0, 0, 0}, 400, "unknown batch version"},
		{"truncated", forward.EncodeBatch(recs)[:20], 400, "record 0"},
		{"newer record", forward.EncodeBatch([][]byte{recs[0], bad}), 400, "record 1: unknown record version 9 (written by a newer Fjord: upgrade the main service)"},
		{"bad record", forward.EncodeBatch([][]byte{recs[0], garbled(recs[0])}), 422, "record 1: bad site id"},
		{"too large", make([]byte, forward.MaxBatchBytes+1), 413, "a batch may hold"},
	} {
		code, body := e.collectorDo(t, "POST", forward.EventsPath, token, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d naming %q", tc.name, code, body, tc.code, tc.want)
		}
	}
	if more, _, _ := e.j.Read(before, 10, 1<<20); len(more) != 2 {
		t.Errorf("a refused batch reached the journal: %d records after the good batch's 2", len(more))
	}

	// an unreadable collectors file: 503, not "your token is wrong"
	e.srv.Collectors = &forward.Tokens{Path: filepath.Join(t.TempDir(), "missing")}
	if code, body := e.collectorDo(t, "GET", forward.SnapshotPath, token, nil); code != 503 || !strings.Contains(body, "list of collectors") {
		t.Errorf("unreadable collectors file: %d %s", code, body)
	}
	// without a collectors file the endpoints are not there
	e.srv.Collectors = nil
	if code, _ := e.collectorDo(t, "GET", forward.SnapshotPath, token, nil); code != 404 {
		t.Errorf("no collectors file: %d, want 404", code)
	}
}

// TestForwarderSetsAsideRefused: an edge's spool holding a record the main
// service cannot read (a newer record version) does not block: the
// forwarder finds the refused record, writes it to its reject file and
// delivers every other one; a batch refused as a whole is retried.
func TestForwarderSetsAsideRefused(t *testing.T) {
	e, token := collectorEnv(t)
	ctx := context.Background()
	site, err := e.srv.Accounts.SiteByDomain(ctx, "site.test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spool, err := journal.Open(journal.Options{Dir: filepath.Join(dir, "spool")})
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	const n = 40
	for i := range n {
		ev := store.Event{SiteID: site.ID, Time: e.srv.Now().Add(-time.Minute), Name: "pageview", VisitorID: 7, Path: "/edge", Interactive: true}
		ev.ID[0], ev.ID[15] = 0xee, byte(i)
		rec := ingest.EncodeEvent(nil, &ev)
		if i == 13 {
			rec = garbled(rec)
		}
		if err := spool.Append(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	base, err := forward.ParseBase(e.http.URL)
	if err != nil {
		t.Fatal(err)
	}
	rejects := filepath.Join(dir, "rejected-events.log")
	fw := &forward.Forwarder{J: spool, To: &forward.Client{Base: base, Token: token}, Log: e.srv.Log, PosFile: filepath.Join(dir, "spool.pos"),
		RejectFile: rejects, MaxBatch: 16, MaxBackoff: 20 * time.Millisecond}
	before := e.j.End()
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { fw.Run(fctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for fw.Status().Pending != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if st := fw.Status(); st.Pending != 0 {
		t.Fatalf("the spool did not drain: %+v", st)
	}
	got, _, err := e.j.Read(before, 100, 1<<20)
	if err != nil || len(got) != n-1 {
		t.Fatalf("the main service's journal holds %d new records (%v), want %d", len(got), err, n-1)
	}
	line, err := os.ReadFile(rejects)
	if err != nil || strings.Count(string(line), "\n") != 1 || !strings.Contains(string(line), "bad site id") || fw.Rejected.Load() != 1 {
		t.Fatalf("reject file %q (%v), %d rejected; want the one refused record with the reason", line, err, fw.Rejected.Load())
	}
	if fi, _ := os.Stat(rejects); fi.Mode().Perm() != 0o600 {
		t.Errorf("reject file mode %v", fi.Mode().Perm())
	}
	if fw.Forwarded.Load() != n-1 {
		t.Errorf("%d counted as forwarded, want %d (not the one set aside)", fw.Forwarded.Load(), n-1)
	}

	// a record of a newer version (an edge upgraded first) is not set
	// aside: it waits in the spool until the main service is upgraded,
	// and the status says why
	newer := slices.Clone(got[0])
	newer[0] = 9
	spool.Append(ctx, newer)
	fctx, cancel = context.WithCancel(ctx)
	done = make(chan struct{})
	go func() { fw.Run(fctx); close(done) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	if st := fw.Status(); st.Pending == 0 || !strings.Contains(st.LastError, "upgrade the main service") || fw.Rejected.Load() != 1 {
		t.Errorf("after a newer record: %+v, %d rejected", st, fw.Rejected.Load())
	}
}

// garbled is rec with a version and id this service reads and a body it
// can never read.
func garbled(rec []byte) []byte {
	return append(slices.Clone(rec[:17]), bytes.Repeat([]byte{0xff}, 10)...)
}
