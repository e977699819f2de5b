package metrics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"fjord/internal/ingest"
	"fjord/internal/ingest/journal"
	"fjord/internal/metrics"
)

// TestNilIsANoOp: a server built without metrics calls every method on a
// nil *Metrics.
func TestNilIsANoOp(t *testing.T) {
	var m *metrics.Metrics
	m.ObserveRequest("collect", 202, time.Millisecond)
	m.EventsAccepted(1, "a.test", 1)
	m.EventRefused("queue_full")
	m.EventDropped()
	m.APIRequest(1)
	m.Export(1)
	m.ObserveQuery("run", time.Millisecond)
	m.Watch(metrics.Sources{})
	if err := m.JobDone("x", time.Now(), errors.New("e")); err == nil {
		t.Fatal("JobDone on nil swallowed the error")
	}
	if m.Totals() != (metrics.Totals{}) || m.JobStreaks() != nil || m.Names() != nil || m.Engine(nil) != nil {
		t.Fatal("a nil Metrics reported something")
	}
}

// TestTotalsAndStreaks: the totals the operator alerts read follow the
// counters, and a job's failures in a row reset on success.
func TestTotalsAndStreaks(t *testing.T) {
	m := metrics.New()
	m.ObserveRequest("pages", 200, time.Millisecond)
	m.ObserveRequest("pages", 503, time.Millisecond)
	m.ObserveRequest("collect", 500, time.Millisecond)
	m.EventRefused("queue_full")
	m.EventRefused("bad_json")
	if got := m.Totals(); got != (metrics.Totals{Requests: 3, ServerErrors: 2, Shed: 1}) {
		t.Fatalf("totals %+v", got)
	}
	at := time.Now()
	m.JobDone("a", at, errors.New("x"))
	m.JobDone("a", at, errors.New("x"))
	m.JobDone("b", at, nil)
	if s := m.JobStreaks(); s["a"] != 2 || s["b"] != 0 {
		t.Fatalf("streaks %v", s)
	}
	m.JobDone("a", at, nil)
	if s := m.JobStreaks(); s["a"] != 0 {
		t.Fatalf("streak after a success: %v", s)
	}
}

// TestScrapeSources: the journal's commit latency comes out as a
// histogram whose count is the journal's groups, and an alert count that
// fails leaves the gauge out rather than showing 0.
func TestScrapeSources(t *testing.T) {
	j, err := journal.Open(journal.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i := 0; i < 5; i++ {
		if err := j.Append(context.Background(), []byte("record")); err != nil {
			t.Fatal(err)
		}
	}
	m := metrics.New()
	m.Watch(metrics.Sources{Journal: j, DataDir: t.TempDir(), OpenAlerts: func(context.Context) (int, error) { return 0, errors.New("store down") },
		Loader:     &ingest.Loader{J: j},
		Forwarding: func() metrics.ForwardStatus { return metrics.ForwardStatus{Pending: 10, Rejected: 1} }})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range fams {
		found[f.GetName()] = true
		if f.GetName() == "fjord_journal_commit_duration_seconds" {
			h := f.Metric[0].Histogram
			if h.GetSampleCount() != j.Stats().Groups || h.GetSampleCount() == 0 || h.GetSampleSum() <= 0 {
				t.Fatalf("commit histogram: count %d sum %v, journal groups %d", h.GetSampleCount(), h.GetSampleSum(), j.Stats().Groups)
			}
		}
	}
	for _, n := range []string{"fjord_journal_commit_duration_seconds", "fjord_journal_queue_depth", "fjord_data_dir_free_bytes",
		"fjord_loader_lag_bytes", "fjord_spool_pending_bytes", "fjord_forward_rejected_records_total"} {
		if !found[n] {
			t.Errorf("%s missing", n)
		}
	}
	if found["fjord_security_alerts_open"] {
		t.Error("open alerts shown although counting them failed")
	}
}
