package secmon_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fjord/internal/secmon"
	"fjord/internal/store"
	"fjord/internal/store/sqlite"
	"fjord/internal/store/sqlstore"
)

// clock is a settable time.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.UnixMilli(c.t.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.t.Add(d.Milliseconds()) }

func newMonitor(t *testing.T) (*secmon.Monitor, *sqlstore.Accounts, *clock) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{}
	c.t.Store(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixMilli())
	return &secmon.Monitor{Store: st, Accounts: st, Key: []byte("test key"), Now: c.now}, st, c
}

func alerts(t *testing.T, st secmon.Store, f secmon.AlertFilter) []secmon.Alert {
	t.Helper()
	l, err := st.Alerts(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRulesTable: for every rule, one event fewer than its count opens no
// alert and the count-th does; events of another subject, and events
// before the window, do not count towards it.
func TestRulesTable(t *testing.T) {
	ctx := context.Background()
	for _, r := range secmon.DefaultRules {
		t.Run(r.Name, func(t *testing.T) {
			m, st, c := newMonitor(t)
			ev := secmon.Event{Kind: r.Kind, Account: 5, Actor: "net:0011223344556677", Detail: "test"}
			// an event just outside the window, and one of another subject
			if err := m.Record(ctx, ev); err != nil {
				t.Fatal(err)
			}
			if r.Count == 1 {
				if l := alerts(t, st, secmon.AlertFilter{}); len(l) != 1 || l[0].Rule != r.Name || l[0].Account != 5 || l[0].Subject != "account:5" {
					t.Fatalf("one event of a count-1 rule: %+v", l)
				}
				return
			}
			c.advance(r.Window + time.Second)
			other := ev
			other.Account = 6
			if err := m.Record(ctx, other); err != nil {
				t.Fatal(err)
			}
			for i := 1; i < r.Count; i++ {
				if err := m.Record(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
			if l := alerts(t, st, secmon.AlertFilter{}); len(l) != 0 {
				t.Fatalf("%d events in the window (%s): alert %+v", r.Count-1, r.Threshold(), l)
			}
			if err := m.Record(ctx, ev); err != nil {
				t.Fatal(err)
			}
			l := alerts(t, st, secmon.AlertFilter{})
			if len(l) != 1 || l[0].Rule != r.Name || l[0].Count != r.Count || l[0].Subject != "account:5" {
				t.Fatalf("%d events in the window: %+v", r.Count, l)
			}
		})
	}
	// every kind has a rule, and every rule's kind is known
	kinds := map[string]bool{}
	for _, r := range secmon.DefaultRules {
		if !secmon.KnownKind(r.Kind) || r.Count < 1 || r.Window <= 0 || r.What == "" {
			t.Errorf("rule %+v", r)
		}
		kinds[r.Kind] = true
	}
	for _, k := range []string{secmon.SigninFailed, secmon.SecondFactorFailed, secmon.SigninThrottled, secmon.StaffRefused, secmon.StaffOffHours,
		secmon.StaffVolume, secmon.StaffConsoleOutside, secmon.IPRefused, secmon.AuditBroken, secmon.ExportLarge, secmon.FeedAbuse, secmon.BackupDrillFailed} {
		if !kinds[k] {
			t.Errorf("kind %s has no rule", k)
		}
	}
}

// TestDeduplication: while an alert saw an event within the quiet
// period, more events of its rule and subject only count on it; after a
// quiet period a new burst opens a new alert with a new id; a resolved
// alert is not counted on.
func TestDeduplication(t *testing.T) {
	ctx := context.Background()
	m, st, c := newMonitor(t)
	ev := secmon.Event{Kind: secmon.SigninThrottled, Account: 9, Actor: "net:aa"}
	for i := 0; i < 30; i++ {
		if err := m.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
		c.advance(50 * time.Minute) // never quiet for an hour
	}
	l := alerts(t, st, secmon.AlertFilter{})
	if len(l) != 1 || l[0].Count != 30 || !l[0].Last.After(l[0].First) {
		t.Fatalf("30 events, each within the quiet period of the last: %+v", l)
	}
	first := l[0]
	c.advance(secmon.DefaultQuiet + time.Minute)
	if err := m.Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
	l = alerts(t, st, secmon.AlertFilter{})
	if len(l) != 2 || l[0].ID == first.ID || l[0].Count != 1 || l[1].Count != 30 {
		t.Fatalf("after a quiet hour: %+v", l)
	}
	// resolved: the next event opens another
	if _, err := m.ResolveAlert(ctx, l[0].ID, 0, "operator"); err != nil {
		t.Fatal(err)
	}
	c.advance(time.Minute)
	if err := m.Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if l = alerts(t, st, secmon.AlertFilter{OpenOnly: true}); len(l) != 2 || l[0].Count != 1 {
		t.Fatalf("after resolving: %+v", l)
	}
	// resolving another account's alert as that account is not found
	if _, err := m.ResolveAlert(ctx, l[0].ID, 8, "user:1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another account's alert: %v", err)
	}
}

// TestConcurrentRecordsOpenOneAlert: events crossing a threshold together
// open one alert.
func TestConcurrentRecordsOpenOneAlert(t *testing.T) {
	ctx := context.Background()
	m, st, _ := newMonitor(t)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Record(ctx, secmon.Event{Kind: secmon.SigninFailed, Account: 3, Actor: "net:bb"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if l := alerts(t, st, secmon.AlertFilter{}); len(l) != 1 || l[0].Count != 20 {
		t.Fatalf("20 concurrent events: %+v", l)
	}
}

func TestRecordRefusesUnknownKinds(t *testing.T) {
	m, _, _ := newMonitor(t)
	if err := m.Record(context.Background(), secmon.Event{Kind: "made.up"}); !errors.Is(err, secmon.ErrBadEvent) || !strings.Contains(err.Error(), "made.up") {
		t.Fatalf("unknown kind: %v", err)
	}
	var none *secmon.Monitor
	if err := none.Record(context.Background(), secmon.Event{Kind: secmon.AuditBroken}); err != nil {
		t.Fatalf("a nil monitor: %v", err)
	}
}

// TestNetworkPseudonym: one /24 (or /48) is one pseudonym, another
// network another; another key gives others; the address is not in it.
func TestNetworkPseudonym(t *testing.T) {
	m := &secmon.Monitor{Key: []byte("k1")}
	a := m.Network(netip.MustParseAddr("198.51.100.7"))
	if b := m.Network(netip.MustParseAddr("198.51.100.200")); a != b {
		t.Errorf("one /24: %s and %s", a, b)
	}
	if b := m.Network(netip.MustParseAddr("::ffff:198.51.100.9")); a != b {
		t.Errorf("a mapped address of the /24: %s and %s", a, b)
	}
	if b := m.Network(netip.MustParseAddr("198.51.101.7")); a == b {
		t.Error("two /24s got one pseudonym")
	}
	if b := (&secmon.Monitor{Key: []byte("k2")}).Network(netip.MustParseAddr("198.51.100.7")); a == b {
		t.Error("another key gave the same pseudonym")
	}
	if x, y := m.Network(netip.MustParseAddr("2001:db8:1:2::1")), m.Network(netip.MustParseAddr("2001:db8:1:ffff::1")); x != y {
		t.Errorf("one /48: %s and %s", x, y)
	}
	if !strings.HasPrefix(a, "net:") || len(a) != 20 || strings.Contains(a, "198") || strings.Contains(a, "51.100") {
		t.Errorf("pseudonym %q", a)
	}
}

// TestWebhook: a new alert is posted as JSON with its id, rule, account,
// count and times; a further event of the same alert posts nothing; the
// client follows no redirect.
func TestWebhook(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var got []secmon.AlertJSON
	var ctype string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var a secmon.AlertJSON
		if err := json.Unmarshal(b, &a); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		mu.Lock()
		got, ctype = append(got, a), r.Header.Get("Content-Type")
		mu.Unlock()
	}))
	defer hook.Close()
	m, _, _ := newMonitor(t)
	m.Webhook = hook.URL + "/hook?token=s3cret"
	for i := 0; i < 3; i++ {
		if err := m.Record(ctx, secmon.Event{Kind: secmon.StaffRefused, Account: 4, Actor: "staff:2", Detail: "no grant for account 4"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d posts for one alert, want 1", len(got))
	}
	a := got[0]
	if !strings.HasPrefix(a.ID, "ALR-") || a.Alert == 0 || a.Rule != "staff-refused" || a.Kind != secmon.StaffRefused || a.Account != 4 || a.Count != 1 ||
		a.First.IsZero() || a.Last.Before(a.First) || a.Description == "" || ctype != "application/json" {
		t.Fatalf("posted %+v (%s)", a, ctype)
	}

	// a redirect is not followed
	var followed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Store(true) }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	logs := &lockedBuilder{}
	m2, _, _ := newMonitor(t)
	m2.Webhook = redirect.URL + "/x?token=s3cret"
	m2.Log = newLogger(logs)
	if err := m2.Record(ctx, secmon.Event{Kind: secmon.AuditBroken, Detail: "entry 3: hash differs"}); err != nil {
		t.Fatal(err)
	}
	m2.Flush(ctx)
	if followed.Load() {
		t.Fatal("the webhook client followed a redirect")
	}
	if !strings.Contains(logs.String(), "alert webhook not sent") || strings.Contains(logs.String(), "s3cret") {
		t.Fatalf("log of the redirected webhook:\n%s", logs)
	}
}

// TestIncidentInput: bad input is refused with an error naming the
// problem, and nothing is stored.
func TestIncidentInput(t *testing.T) {
	ctx := context.Background()
	m, st, _ := newMonitor(t)
	acc, _, err := st.CreateAccount(ctx, store.Account{Name: "Acme"}, store.User{Email: "a@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		by       string
		accounts []int64
		title    string
		desc     string
		want     string
	}{
		{"staff:1", []int64{acc.ID}, "", "d", "title is empty"},
		{"staff:1", []int64{acc.ID}, "t", " ", "description is empty"},
		{"staff:1", []int64{acc.ID}, "a\nb", "d", "one line"},
		{"staff:1", []int64{acc.ID}, strings.Repeat("x", secmon.MaxTitle+1), "d", "at most 200"},
		{"staff:1", []int64{acc.ID}, "t", "bell\a", "control character"},
		{"staff:1", nil, "t", "d", "at least one affected account"},
		{"staff:1", []int64{acc.ID, 4242}, "t", "d", "account 4242"},
		{"", []int64{acc.ID}, "t", "d", "who acts"},
	} {
		if _, err := m.OpenIncident(ctx, c.by, c.accounts, c.title, c.desc); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("OpenIncident(%q, %v, %.20q, %.20q): %v, want %q", c.by, c.accounts, c.title, c.desc, err, c.want)
		}
	}
	if l, _ := st.Incidents(ctx, 0); len(l) != 0 {
		t.Fatalf("refused incidents were stored: %+v", l)
	}
	in, err := m.OpenIncident(ctx, "staff:1", []int64{acc.ID, acc.ID}, "Title", "What happened.")
	if err != nil || len(in.Accounts) != 1 || in.Name() != "INC-1" {
		t.Fatalf("open: %+v %v", in, err)
	}
	if _, err := m.UpdateIncident(ctx, in.ID, "staff:1", ""); err == nil || !strings.Contains(err.Error(), "text is empty") {
		t.Fatalf("empty update: %v", err)
	}
	if _, err := m.CloseIncident(ctx, in.ID, "staff:1", "Done."); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateIncident(ctx, in.ID, "staff:1", "more"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update after closing: %v", err)
	}
}

func TestParseIDs(t *testing.T) {
	for in, want := range map[string]int64{"ALR-42": 42, "alr-7": 7, "12": 12, " 3 ": 3} {
		if got, err := secmon.ParseAlertID(in); err != nil || got != want {
			t.Errorf("ParseAlertID(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "ALR-", "ALR--1", "0", "INC-3", "x"} {
		if _, err := secmon.ParseAlertID(in); err == nil || !strings.Contains(err.Error(), "not an alert id") {
			t.Errorf("ParseAlertID(%q): %v", in, err)
		}
	}
	if got, err := secmon.ParseIncidentID("INC-9"); err != nil || got != 9 {
		t.Errorf("ParseIncidentID: %d %v", got, err)
	}
}

func FuzzParseIDs(f *testing.F) {
	f.Add("ALR-42")
	f.Add("INC-0009")
	f.Add("-1")
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := secmon.ParseAlertID(s); err == nil && id <= 0 {
			t.Fatalf("%q: id %d", s, id)
		}
		if id, err := secmon.ParseIncidentID(s); err == nil && id <= 0 {
			t.Fatalf("%q: id %d", s, id)
		}
	})
}

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secmon.key")
	k1, err := secmon.KeyFile(path)
	if err != nil || len(k1) != 32 {
		t.Fatalf("new key: %d bytes, %v", len(k1), err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if k2, err := secmon.KeyFile(path); err != nil || string(k2) != string(k1) {
		t.Fatalf("read again: %v", err)
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := secmon.KeyFile(path); err == nil || !strings.Contains(err.Error(), "want 32") {
		t.Fatalf("a damaged key: %v", err)
	}
}
