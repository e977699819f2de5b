package opsalert_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fjord/internal/metrics"
	"fjord/internal/opsalert"
	"fjord/internal/secmon"
	"fjord/internal/standby"
	"fjord/internal/store/sqlite"
)

// hook is the operator's webhook: it keeps what it receives.
type hook struct {
	mu    sync.Mutex
	got   []secmon.AlertJSON
	srv   *httptest.Server
	alarm *secmon.Monitor
}

func (h *hook) received(t *testing.T) []secmon.AlertJSON {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.alarm.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]secmon.AlertJSON(nil), h.got...)
}

type env struct {
	ev   *opsalert.Evaluator
	m    *metrics.Metrics
	hook *hook
	now  time.Time
	// free is the share of the disk free, as Disk reports it
	free float64
}

func (e *env) tick(t *testing.T, d time.Duration) {
	t.Helper()
	e.now = e.now.Add(d)
	if err := e.ev.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// newEnv: an evaluator on a real SQLite account store's secmon, whose
// alerts go to a webhook on loopback, with a clock the test moves.
func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a secmon.AlertJSON
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &a); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		h.mu.Lock()
		h.got = append(h.got, a)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	e := &env{m: metrics.New(), hook: h, now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), free: 0.5}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h.alarm = &secmon.Monitor{Store: st, Accounts: st, Log: log, Key: []byte("k"), Webhook: h.srv.URL, Now: func() time.Time { return e.now }}
	e.ev = &opsalert.Evaluator{Metrics: e.m, Monitor: h.alarm, Log: log, Now: func() time.Time { return e.now },
		Disk: func() (uint64, uint64, error) { return uint64(e.free * 1e12), 1e12, nil }}
	return e
}

func (e *env) openAlerts(t *testing.T) []secmon.Alert {
	t.Helper()
	as, err := e.hook.alarm.Store.Alerts(context.Background(), secmon.AlertFilter{OpenOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func requests(m *metrics.Metrics, n, errs int) {
	for i := 0; i < n; i++ {
		code := 200
		if i < errs {
			code = 500
		}
		m.ObserveRequest("pages", code, time.Millisecond)
	}
}

// TestErrorRateAlertsOncePerOccurrence: a sustained error rate raises one
// alert (one webhook post), evaluating again while it holds raises none,
// the alert is resolved when the window has no errors, and the next
// occurrence alerts again. A rate over too few requests raises nothing.
func TestErrorRateAlertsOncePerOccurrence(t *testing.T) {
	e := newEnv(t)
	e.tick(t, 0) // the baseline
	requests(e.m, 50, 50)
	e.tick(t, time.Minute)
	if got := e.hook.received(t); len(got) != 0 {
		t.Fatalf("50 requests, all 5xx (under the 100 minimum): %d alerts", len(got))
	}
	requests(e.m, 150, 10) // 60 of 200 in the window
	e.tick(t, time.Minute)
	got := e.hook.received(t)
	if len(got) != 1 || got[0].Kind != secmon.OpsErrorRate || got[0].Rule != "ops-error-rate" || got[0].Account != 0 || got[0].Subject != "system" {
		t.Fatalf("after 60 of 200 requests 5xx: %+v", got)
	}
	for i := 0; i < 3; i++ {
		e.tick(t, time.Minute)
	}
	if got := e.hook.received(t); len(got) != 1 {
		t.Fatalf("the condition held for 3 more evaluations: %d alerts, want still 1", len(got))
	}
	if open := e.openAlerts(t); len(open) != 1 {
		t.Fatalf("open alerts while the errors are in the window: %+v", open)
	}
	// five minutes without a request: the window holds no error
	for i := 0; i < 5; i++ {
		requests(e.m, 10, 0)
		e.tick(t, time.Minute)
	}
	if open := e.openAlerts(t); len(open) != 0 {
		t.Fatalf("the errors left the window but the alert is open: %+v", open)
	}
	requests(e.m, 100, 100)
	e.tick(t, time.Minute)
	got = e.hook.received(t)
	if len(got) != 2 || got[1].Kind != secmon.OpsErrorRate || got[1].ID == got[0].ID {
		t.Fatalf("a new occurrence after the first cleared: %+v", got)
	}
}

// TestShedDiskAndJobAlerts: shedding, a nearly full disk and a job that
// failed three times in a row each raise one alert of their kind (a job's
// names the job), and each clears when its condition ends.
func TestShedDiskAndJobAlerts(t *testing.T) {
	e := newEnv(t)
	e.tick(t, 0)
	at := e.now
	fail := errors.New("store down")
	e.m.JobDone("rollups", at, fail)
	e.m.JobDone("rollups", at, fail)
	e.m.JobDone("purge_accounts", at, nil)
	e.tick(t, time.Minute)
	if got := e.hook.received(t); len(got) != 0 {
		t.Fatalf("two failures in a row and nothing else: %+v", got)
	}
	e.m.JobDone("rollups", at, fail)
	e.m.EventRefused("queue_full")
	e.m.EventRefused("bad_json") // not shedding
	e.free = 0.04
	e.tick(t, time.Minute)
	e.tick(t, time.Minute)
	got := e.hook.received(t)
	kinds := map[string]string{}
	for _, a := range got {
		kinds[a.Kind] = a.Subject
	}
	if len(got) != 3 || kinds[secmon.OpsShedding] != "system" || kinds[secmon.OpsDisk] != "system" || kinds[secmon.OpsJobFailed] != "job:rollups" {
		t.Fatalf("after a third failure, a queue_full refusal and 4%% free: %+v", got)
	}
	// cleared: the job succeeds, disk space is freed, the refusal leaves
	// the window
	e.m.JobDone("rollups", at, nil)
	e.free = 0.2
	for i := 0; i < 6; i++ {
		e.tick(t, time.Minute)
	}
	if open := e.openAlerts(t); len(open) != 0 {
		t.Fatalf("every condition ended, open alerts: %+v", open)
	}
	if got := e.hook.received(t); len(got) != 3 {
		t.Fatalf("clearing sent alerts: %+v", got)
	}
	// open security alerts count no operations alert
	e.m.EventRefused("queue_full")
	e.tick(t, time.Minute)
	if n, err := e.hook.alarm.OpenAlerts(context.Background()); err != nil || n != 0 {
		t.Fatalf("open security alerts with an operations alert open: %d, %v", n, err)
	}
}

// TestRestartKeepsOneAlert: an evaluator that starts while an alert of
// its condition is still open (as after a restart) raises no second one.
func TestRestartKeepsOneAlert(t *testing.T) {
	e := newEnv(t)
	e.free = 0.01
	e.tick(t, 0)
	fresh := &opsalert.Evaluator{Metrics: e.m, Monitor: e.hook.alarm, Disk: e.ev.Disk, Now: e.ev.Now, Log: e.ev.Log}
	if err := fresh.Evaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.hook.received(t); len(got) != 1 {
		t.Fatalf("a second evaluator on the same open alert: %d posts, want 1", len(got))
	}
}

// TestStandbyDownAlerts: a standby that stopped replicating alerts once it
// has been down for 5 minutes (not before: a restart of the standby is no
// news), once, and the alert is resolved when it replicates again.
func TestStandbyDownAlerts(t *testing.T) {
	e := newEnv(t)
	st := standby.Status{At: e.now, Up: true}
	e.ev.Standby = func() standby.Status { return st }
	e.tick(t, 0)
	down := e.now.Add(time.Minute)
	for i := 0; i < 5; i++ {
		e.tick(t, time.Minute)
		st = standby.Status{At: e.now, Problem: "unreachable", DownSince: down}
	}
	e.tick(t, 0) // down for 4 minutes
	if got := e.hook.received(t); len(got) != 0 {
		t.Fatalf("standby down for %s: %+v", st.At.Sub(down), got)
	}
	e.tick(t, time.Minute)
	st.At = e.now
	e.tick(t, 0)
	e.tick(t, time.Minute)
	st.At = e.now
	e.tick(t, 0)
	got := e.hook.received(t)
	if len(got) != 1 || got[0].Kind != secmon.OpsStandby || got[0].Subject != "system" {
		t.Fatalf("standby down for 6 minutes: %+v", got)
	}
	st = standby.Status{At: e.now, Up: true}
	e.tick(t, time.Minute)
	if open := e.openAlerts(t); len(open) != 0 {
		t.Fatalf("the standby replicates again, open alerts: %+v", open)
	}
}
