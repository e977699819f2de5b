// Package opsalert is the built-in alerting of the operator on the
// server's own health (PRODUCT §9.3): a sustained rate of server errors,
// collection shedding load, a nearly full disk, a job failing again and
// again, the PostgreSQL standby down for minutes. Prometheus with the shipped rules does the same and more; this
// is for the operator who runs no Prometheus, and it needs nothing but
// alert-email or alert-webhook.
//
// It raises nothing of its own kind: each condition that begins is one
// secmon event of an ops.* kind, which secmon's rules turn into an alert,
// mailed and posted like a security alert (one sender, one list, one
// place to resolve). When the condition clears, the evaluator resolves
// the alert, so the next occurrence alerts again.
package opsalert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"fjord/internal/metrics"
	"fjord/internal/secmon"
	"fjord/internal/standby"
	"fjord/internal/store"
)

// Thresholds say when a condition holds; zero fields take
// DefaultThresholds'.
type Thresholds struct {
	// Window is the span over which requests and refusals are counted.
	Window time.Duration
	// ErrorRate: the share of requests answered 5xx above which, with at
	// least MinRequests requests in the window, errors alert.
	ErrorRate   float64
	MinRequests uint64
	// DiskFree: the share of the data dir's file system free below which
	// the disk alerts.
	DiskFree float64
	// JobFailures: failed runs in a row after which a job alerts.
	JobFailures int
	// StandbyDown: how long the standby must have been down (or not
	// replicating) before it alerts; a restart of the standby takes
	// seconds and is no news.
	StandbyDown time.Duration
}

// DefaultThresholds are the thresholds stated in the README.
func DefaultThresholds() Thresholds {
	return Thresholds{Window: 5 * time.Minute, ErrorRate: 0.05, MinRequests: 100, DiskFree: 0.05, JobFailures: 3, StandbyDown: 5 * time.Minute}
}

// Evaluator checks the conditions each time Evaluate is called (Run calls
// it every minute). It keeps the counters' recent values to count over
// the window, and which conditions hold, to raise each occurrence once.
type Evaluator struct {
	Metrics *metrics.Metrics
	Monitor *secmon.Monitor // nil: conditions are only logged
	// Disk is the free space and size of the data dir's file system (nil:
	// not checked); metrics.DiskSpace in production.
	Disk func() (free, size uint64, err error)
	// Standby is the last check of the PostgreSQL standby (nil: none
	// configured); standby.Watcher.Status in production.
	Standby    func() standby.Status
	Now        func() time.Time
	Log        *slog.Logger
	Thresholds Thresholds

	mu      sync.Mutex
	samples []sample
	firing  map[string]bool // kind + " " + subject
}

type sample struct {
	at time.Time
	metrics.Totals
}

// condition is one thing that holds or not for a subject ("system", or
// "job:NAME" for a job).
type condition struct {
	kind, subject string
	on            bool
	detail        string
}

func (e *Evaluator) thresholds() Thresholds {
	t, d := e.Thresholds, DefaultThresholds()
	if t.Window <= 0 {
		t.Window = d.Window
	}
	if t.ErrorRate <= 0 {
		t.ErrorRate = d.ErrorRate
	}
	if t.MinRequests == 0 {
		t.MinRequests = d.MinRequests
	}
	if t.DiskFree <= 0 {
		t.DiskFree = d.DiskFree
	}
	if t.JobFailures <= 0 {
		t.JobFailures = d.JobFailures
	}
	if t.StandbyDown <= 0 {
		t.StandbyDown = d.StandbyDown
	}
	return t
}

func (e *Evaluator) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Evaluator) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}

// Run evaluates every interval until ctx ends.
func (e *Evaluator) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
			e.log().Error("operator alerts", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Evaluate checks every condition once, raising an alert for each that
// began and resolving the alert of each that ended.
func (e *Evaluator) Evaluate(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	th := e.thresholds()
	now := e.now()
	cur := sample{now, e.Metrics.Totals()}
	e.samples = append(e.samples, cur)
	// the baseline is the newest sample at least a window old (or, early
	// on, the oldest there is); older ones are no longer needed
	cut := now.Add(-th.Window)
	i := 0
	for i+1 < len(e.samples) && !e.samples[i+1].at.After(cut) {
		i++
	}
	e.samples = e.samples[i:]
	base := e.samples[0]
	reqs, errs, shed := cur.Requests-base.Requests, cur.ServerErrors-base.ServerErrors, cur.Shed-base.Shed
	span := now.Sub(base.at).Round(time.Second)

	conds := []condition{
		{secmon.OpsErrorRate, "system", reqs >= th.MinRequests && float64(errs) > th.ErrorRate*float64(reqs),
			fmt.Sprintf("%d of %d requests answered 5xx within %s (alert above %.1f%% of at least %d)", errs, reqs, span, th.ErrorRate*100, th.MinRequests)},
		{secmon.OpsShedding, "system", shed > 0,
			fmt.Sprintf("%d collection requests refused with queue_full within %s: raise queue-size and collect-in-flight, or add capacity", shed, span)},
	}
	if e.Disk != nil {
		free, size, err := e.Disk()
		if err != nil {
			e.log().Error("operator alerts: disk space", "err", err)
		} else if size > 0 {
			conds = append(conds, condition{secmon.OpsDisk, "system", float64(free) < th.DiskFree*float64(size),
				fmt.Sprintf("%d MiB free of %d MiB in the data dir (alert below %.0f%%)", free>>20, size>>20, th.DiskFree*100)})
		}
	}
	if e.Standby != nil {
		if st := e.Standby(); !st.At.IsZero() {
			down := !st.Up && st.At.Sub(st.DownSince) >= th.StandbyDown
			conds = append(conds, condition{secmon.OpsStandby, "system", down,
				fmt.Sprintf("the PostgreSQL standby has not been replicating since %s: %s", st.DownSince.UTC().Format(time.RFC3339), st.Problem)})
		}
	}
	streaks := e.Metrics.JobStreaks()
	jobs := make([]string, 0, len(streaks))
	for j := range streaks {
		jobs = append(jobs, j)
	}
	sort.Strings(jobs)
	for _, j := range jobs {
		conds = append(conds, condition{secmon.OpsJobFailed, "job:" + j, streaks[j] >= th.JobFailures,
			fmt.Sprintf("job %s failed %d times in a row (see the log for why)", j, streaks[j])})
	}
	var errsOut []error
	for _, c := range conds {
		if err := e.set(ctx, c, now); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	return errors.Join(errsOut...)
}

// set acts on a condition's change: raise when it begins, resolve when it
// ends; nothing while it stays as it was.
func (e *Evaluator) set(ctx context.Context, c condition, now time.Time) error {
	if e.firing == nil {
		e.firing = map[string]bool{}
	}
	key := c.kind + " " + c.subject
	if c.on == e.firing[key] {
		return nil
	}
	if c.on {
		e.log().Warn("operator alert", "kind", c.kind, "subject", c.subject, "detail", c.detail)
	} else {
		e.log().Info("operator alert cleared", "kind", c.kind, "subject", c.subject)
	}
	if e.Monitor == nil {
		e.firing[key] = c.on
		return nil
	}
	rule, ok := e.Monitor.RuleOfKind(c.kind)
	if !ok {
		return fmt.Errorf("operator alerts: no rule for %s in the monitor's table", c.kind)
	}
	open, err := e.openAlert(ctx, rule.Name, c.subject)
	if err != nil {
		return err
	}
	if c.on {
		// an alert still open (raised before a restart, say) stands for
		// this occurrence: no second mail
		if open == nil {
			if err := e.Monitor.Record(ctx, secmon.Event{Kind: c.kind, Actor: c.subject, Detail: c.detail, Time: now.UTC().Truncate(time.Millisecond)}); err != nil {
				return fmt.Errorf("operator alerts: raise %s: %w", c.kind, err)
			}
		}
	} else if open != nil {
		if _, err := e.Monitor.ResolveAlert(ctx, open.ID, 0, "system"); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("operator alerts: resolve %s: %w", open.Name(), err)
		}
	}
	e.firing[key] = c.on
	return nil
}

// openAlert is the open alert of a rule and subject, or nil.
func (e *Evaluator) openAlert(ctx context.Context, rule, subject string) (*secmon.Alert, error) {
	a, err := e.Monitor.Store.LatestAlert(ctx, rule, subject)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("operator alerts: %w", err)
	}
	if !a.Open() {
		return nil, nil
	}
	return &a, nil
}
