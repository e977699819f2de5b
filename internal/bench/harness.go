// Package bench is Fjord's load harness (`fjord bench ingest`): it runs the
// server under test and a bare net/http "ceiling" server as child processes,
// drives both with the same closed-loop keep-alive load, and checks that
// every acknowledged event was stored. See BENCHMARKS.md.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Targets of the ingest issue, on the 2-core reference machine.
const (
	TargetRatio   = 0.40 // durable acknowledged events/s ÷ ceiling requests/s
	TargetP99MS   = 50.0
	TargetPeakRSS = 200.0 // MB (10^6 bytes), VmHWM of the server
)

// Options configure a harness run.
type Options struct {
	Binary      string        // the fjord binary to run as servers
	Duration    time.Duration // measured window of each run
	Warmup      time.Duration // load before the window, not measured
	Concurrency int           // closed-loop connections
	Rounds      int           // each round runs the ceiling, then fjord
	Domain      string        // site the events are sent to
	Visitors    int           // simulated (address, UA) pairs
	TempDir     string        // parent of the data dirs; "" = os.TempDir()
	Seed        uint64
	Log         io.Writer // progress lines; nil = none
	// QuietWait, if set, makes each run wait (at most this long) until the
	// machine is quiet: other processes using under QuietCPU cores over a
	// second. The reference machine is shared; see BENCHMARKS.md.
	QuietWait time.Duration
	QuietCPU  float64
	// Retries is how many times a run is repeated when other processes
	// used more than 5% of the machine during it (it is then disturbed).
	Retries int
}

func (o *Options) defaults() {
	if o.Duration <= 0 {
		o.Duration = 15 * time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 50
	}
	if o.Rounds <= 0 {
		o.Rounds = 1
	}
	if o.Domain == "" {
		o.Domain = "bench.fjord.example"
	}
	if o.Visitors <= 0 {
		o.Visitors = 10000
	}
	if o.Seed == 0 {
		o.Seed = 20261128
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.QuietCPU <= 0 {
		o.QuietCPU = 0.1
	}
}

// waitQuiet waits until other processes (not the server, this process or
// the kernel) used under o.QuietCPU cores over two seconds, or o.QuietWait
// has passed; it returns how long it waited and the last figure.
func waitQuiet(ctx context.Context, o Options, serverPID int) (time.Duration, float64) {
	if o.QuietWait <= 0 {
		return 0, 0
	}
	t0 := time.Now()
	var busy float64
	for ctx.Err() == nil {
		a := snapCPU(serverPID)
		pause(ctx, 2*time.Second)
		u := cpuBetween(a, snapCPU(serverPID))
		busy = u.Foreign / 2
		if busy < o.QuietCPU || time.Since(t0) >= o.QuietWait {
			break
		}
	}
	return time.Since(t0), busy
}

// Run is one load run against one server.
type Run struct {
	Target      string            `json:"target"` // "ceiling" or "fjord"
	PID         int               `json:"pid"`
	Rate        float64           `json:"rate_per_s"`      // 2xx answers per second in the window
	Acked       uint64            `json:"acked_in_window"` // 2xx answers in the window
	P50MS       float64           `json:"p50_ms"`
	P90MS       float64           `json:"p90_ms"`
	P99MS       float64           `json:"p99_ms"`
	P999MS      float64           `json:"p999_ms"`
	MaxMS       float64           `json:"max_ms"`
	NotOK       uint64            `json:"not_ok_in_window"`
	Non2xx      map[string]uint64 `json:"non_2xx,omitempty"`
	Errors      uint64            `json:"transport_errors"`
	FirstError  string            `json:"first_error,omitempty"`
	Conns       int64             `json:"connections"`
	Discarded   int               `json:"discarded_disturbed_runs"`
	QuietWaitS  float64           `json:"quiet_wait_s"`           // waited for other load to stop
	BusyBefore  float64           `json:"busy_before_cores"`      // other processes' CPU just before the run
	RSSLoadMB   float64           `json:"peak_rss_after_load_mb"` // VmHWM when the load stopped
	PeakRSSMB   float64           `json:"peak_rss_mb"`            // VmHWM at the end (after the stored check)
	CPU         CPUUse            `json:"cpu"`
	Check       *StoreCheck       `json:"check,omitempty"`
	Server      map[string]uint64 `json:"server_metrics,omitempty"`
	AvgGroup    float64           `json:"journal_avg_group,omitempty"`
	ShutdownMS  float64           `json:"shutdown_ms,omitempty"`
	ShutdownErr string            `json:"shutdown_error,omitempty"`
	ServerLog   string            `json:"server_log,omitempty"` // warnings and errors the server logged
	DataFS      string            `json:"data_fs,omitempty"`
}

// StoreCheck compares what the generator got acknowledged with what the
// server stored (read through `stats`, which applies the journal first).
type StoreCheck struct {
	Acked           uint64  `json:"acked"`        // every 2xx, warm-up and tail included
	AckedCustom     uint64  `json:"acked_custom"` // of which custom events
	Dropped         uint64  `json:"dropped"`      // 2xx with X-Plausible-Dropped (not stored by design)
	Stored          int64   `json:"stored"`
	StoredPageviews int64   `json:"stored_pageviews"`
	StoredCustom    int64   `json:"stored_custom"`
	ServerAccepted  uint64  `json:"server_accepted"` // fjord_events_accepted_total
	LoaderApplied   uint64  `json:"loader_applied"`  // fjord_loader_applied_total
	Visitors        int64   `json:"visitors"`        // stats: distinct visitors
	VisitorsSent    int     `json:"visitors_sent"`   // distinct simulated visitors acknowledged
	StatsMS         float64 `json:"stats_ms"`        // the read-your-writes stats call
	OK              bool    `json:"ok"`
	Problem         string  `json:"problem,omitempty"`
}

// Round is one ceiling run and one fjord run.
type Round struct {
	Round   int     `json:"round"`
	Ceiling *Run    `json:"ceiling"`
	Fjord   *Run    `json:"fjord"`
	Ratio   float64 `json:"ratio"`
}

// Report is the whole result.
type Report struct {
	Machine     Machine  `json:"machine"`
	Duration    string   `json:"duration"`
	Warmup      string   `json:"warmup"`
	Concurrency int      `json:"concurrency"`
	Binary      string   `json:"binary"`
	Rounds      []Round  `json:"rounds"`
	Summary     Summary  `json:"summary"`
	Problems    []string `json:"problems,omitempty"` // make the run fail
	Warnings    []string `json:"warnings,omitempty"`
}

// Summary holds the figures the targets are judged on.
type Summary struct {
	MeanCeiling float64  `json:"mean_ceiling_per_s"`
	MeanFjord   float64  `json:"mean_fjord_per_s"`
	MeanRatio   float64  `json:"mean_ratio"`
	MinRatio    float64  `json:"min_ratio"`
	MaxRatio    float64  `json:"max_ratio"`
	WorstP99MS  float64  `json:"worst_p99_ms"`
	PeakRSSMB   float64  `json:"peak_rss_mb"`
	CeilingRSS  float64  `json:"ceiling_peak_rss_mb"`
	StoredOK    bool     `json:"stored_equals_acked"`
	Targets     []Target `json:"targets"`
}

// Target is one requirement and whether it was met.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Met  bool    `json:"met"`
	Note string  `json:"note,omitempty"` // by how much it was missed
}

// ErrMismatch is returned (with the report) when stored != acknowledged in
// some round, a request to fjord ended in a transport error, or a server
// did not shut down cleanly; the report's Problems say which.
var ErrMismatch = errors.New("ingest check failed (see the PROBLEM lines)")

// RunIngest runs the harness. It returns the report even with an error
// when the runs completed but a check failed.
func RunIngest(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if o.Binary == "" {
		return nil, errors.New("bench: no fjord binary")
	}
	bin, err := filepath.Abs(o.Binary)
	if err != nil {
		return nil, err
	}
	o.Binary = bin
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	tmp, err := os.MkdirTemp(o.TempDir, "fjord-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	rep := &Report{Machine: describeMachine(), Duration: o.Duration.String(), Warmup: o.Warmup.String(),
		Concurrency: o.Concurrency, Binary: bin}
	work := NewWorkload(o.Domain, 8192, o.Visitors, o.Seed)
	for i := 1; i <= o.Rounds; i++ {
		rd := Round{Round: i}
		fmt.Fprintf(o.Log, "round %d/%d: ceiling, %d connections, %s warm-up + %s ...\n", i, o.Rounds, o.Concurrency, o.Warmup, o.Duration)
		if rd.Ceiling, err = retry(ctx, o, func(n int) (*Run, error) { return runCeiling(ctx, o, work, tmp, fmt.Sprintf("%d-%d", i, n)) }); err != nil {
			return nil, fmt.Errorf("round %d, ceiling: %w", i, err)
		}
		fmt.Fprintf(o.Log, "  ceiling: %.0f req/s, p50 %.2f ms, p99 %.2f ms, peak RSS %.0f MB\n",
			rd.Ceiling.Rate, rd.Ceiling.P50MS, rd.Ceiling.P99MS, rd.Ceiling.PeakRSSMB)
		pause(ctx, time.Second)
		fmt.Fprintf(o.Log, "round %d/%d: fjord ...\n", i, o.Rounds)
		if rd.Fjord, err = retry(ctx, o, func(n int) (*Run, error) { return runFjord(ctx, o, work, tmp, fmt.Sprintf("%d-%d", i, n)) }); err != nil {
			return nil, fmt.Errorf("round %d, fjord: %w", i, err)
		}
		if rd.Ceiling.Rate > 0 {
			rd.Ratio = rd.Fjord.Rate / rd.Ceiling.Rate
		}
		c := rd.Fjord.Check
		fmt.Fprintf(o.Log, "  fjord: %.0f acked events/s, p50 %.2f ms, p99 %.2f ms, peak RSS %.0f MB; ratio %.3f; stored %d, acked %d: %s\n",
			rd.Fjord.Rate, rd.Fjord.P50MS, rd.Fjord.P99MS, rd.Fjord.PeakRSSMB, rd.Ratio, c.Stored, c.Acked, okWord(c.OK))
		rep.Rounds = append(rep.Rounds, rd)
		if i < o.Rounds {
			pause(ctx, time.Second)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	rep.summarize()
	if len(rep.Problems) > 0 {
		return rep, ErrMismatch
	}
	return rep, nil
}

func okWord(ok bool) string {
	if ok {
		return "equal"
	}
	return "MISMATCH"
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// measure runs the load against a ready server and fills the common fields.
func measure(ctx context.Context, o Options, work *Workload, c *child, addr string, r *Run) *loadResult {
	if o.QuietWait > 0 {
		waited, busy := waitQuiet(ctx, o, c.pid())
		r.QuietWaitS, r.BusyBefore = waited.Seconds(), busy
		if busy >= o.QuietCPU {
			fmt.Fprintf(o.Log, "  machine still busy after %s (%.2f cores used by other processes); running anyway\n", waited.Round(time.Second), busy)
		} else if waited > 3*time.Second {
			fmt.Fprintf(o.Log, "  waited %s for other processes to go quiet\n", waited.Round(time.Second))
		}
	}
	spec := loadSpec{
		URL: "http://" + addr + "/api/event", Start: time.Now(), Concurrency: o.Concurrency,
		Warmup: o.Warmup, Duration: o.Duration, Work: work, Seed: o.Seed,
	}
	var a, b cpuSnap
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pause(ctx, time.Until(spec.Start.Add(spec.Warmup)))
		a = snapCPU(c.pid())
		pause(ctx, time.Until(spec.Start.Add(spec.Warmup+spec.Duration)))
		b = snapCPU(c.pid())
	}()
	res := runLoad(ctx, spec)
	wg.Wait()
	r.PID = c.pid()
	r.CPU = cpuBetween(a, b)
	r.RSSLoadMB = kbToMB(procStatusKB(c.pid(), "VmHWM"))
	r.Acked = res.WindowOK
	r.Rate = float64(res.WindowOK) / res.Window.Seconds()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	r.P50MS = ms(res.Hist.Quantile(0.50))
	r.P90MS = ms(res.Hist.Quantile(0.90))
	r.P99MS = ms(res.Hist.Quantile(0.99))
	r.P999MS = ms(res.Hist.Quantile(0.999))
	r.MaxMS = ms(res.Hist.Max)
	r.NotOK = res.WindowOther
	for code, n := range res.Non2xx {
		if r.Non2xx == nil {
			r.Non2xx = map[string]uint64{}
		}
		r.Non2xx[fmt.Sprint(code)] = n
	}
	r.Errors, r.FirstError, r.Conns = res.Errors, res.FirstErr, res.Conns
	return res
}

func kbToMB(kb int64) float64 { return float64(kb) * 1024 / 1e6 }

// disturbed says whether other processes used more than 5% of the
// machine during the run.
func (r *Run) disturbed() bool { return r.CPU.Available > 0 && r.CPU.Foreign > 0.05*r.CPU.Available }

// retry runs f until its run is not disturbed, at most 1+o.Retries times,
// and returns the last run with the number of discarded ones.
func retry(ctx context.Context, o Options, f func(attempt int) (*Run, error)) (*Run, error) {
	for n := 1; ; n++ {
		r, err := f(n)
		if err != nil {
			return nil, err
		}
		r.Discarded = n - 1
		if !r.disturbed() || n > o.Retries || ctx.Err() != nil {
			return r, nil
		}
		fmt.Fprintf(o.Log, "  disturbed: other processes used %.1f of %.0f CPU-s (%s: %.0f/s); running it again\n",
			r.CPU.Foreign, r.CPU.Available, r.Target, r.Rate)
	}
}

func runCeiling(ctx context.Context, o Options, work *Workload, tmp string, round string) (*Run, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c, err := startChild("ceiling server", o.Binary, []string{"bench", "ceiling-server", "--listen", addr},
		filepath.Join(tmp, "ceiling-"+round+".log"))
	if err != nil {
		return nil, err
	}
	defer c.kill()
	if err := c.waitReady(ctx, addr, 30*time.Second); err != nil {
		return nil, err
	}
	r := &Run{Target: "ceiling"}
	measure(ctx, o, work, c, addr, r)
	r.PeakRSSMB = kbToMB(procStatusKB(c.pid(), "VmHWM"))
	d, err := c.stop(10 * time.Second)
	r.ShutdownMS = float64(d) / float64(time.Millisecond)
	if err != nil {
		r.ShutdownErr = err.Error()
	}
	return r, nil
}

func runFjord(ctx context.Context, o Options, work *Workload, tmp string, round string) (*Run, error) {
	dir := filepath.Join(tmp, "data-"+round)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c, err := startChild("fjord serve", o.Binary, []string{"serve", "--listen", addr, "--data-dir", dir,
		"--trusted-proxies", "127.0.0.1", "--log-level", "warn", "--limit-site-events", "off"},
		filepath.Join(tmp, "fjord-"+round+".log"))
	if err != nil {
		return nil, err
	}
	defer c.kill()
	if err := c.waitReady(ctx, addr, 60*time.Second); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "  fjord serve pid %d on %s, data dir %s\n", c.pid(), addr, dir)
	add := exec.CommandContext(ctx, o.Binary, "site", "add", o.Domain, "--data-dir", dir)
	add.Env = childEnv()
	if out, err := add.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("fjord site add: %v: %s", err, out)
	}

	r := &Run{Target: "fjord", DataFS: fsType(dir)}
	res := measure(ctx, o, work, c, addr, r)
	if c.exited() {
		return nil, fmt.Errorf("fjord serve exited during the run (%v); its output:\n%s", c.waitErr, c.logTail())
	}

	// The stored check: stats applies the journal to the event store first,
	// so it counts every event acknowledged before the call.
	ctl := newControlClient(filepath.Join(dir, "fjord.sock"))
	chk := &StoreCheck{Acked: res.TotalOK, AckedCustom: res.TotalOKCustom, Dropped: res.Dropped, VisitorsSent: res.Visitors}
	r.Check = chk
	var h struct {
		Visitors  int64 `json:"visitors"`
		Pageviews int64 `json:"pageviews"`
		Events    int64 `json:"events"`
	}
	t0 := time.Now()
	err = ctl.getJSON(ctx, "/stats?site="+url.QueryEscape(o.Domain)+"&period=7d", &h)
	chk.StatsMS = float64(time.Since(t0)) / float64(time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("stored count: %w", err)
	}
	chk.StoredPageviews, chk.StoredCustom, chk.Stored, chk.Visitors = h.Pageviews, h.Events, h.Pageviews+h.Events, h.Visitors
	m, err := ctl.metrics(ctx)
	if err != nil {
		return nil, err
	}
	r.Server = map[string]uint64{}
	for _, k := range []string{"fjord_events_accepted_total", "fjord_events_dropped_total", "fjord_journal_groups_total",
		"fjord_journal_records_total", "fjord_loader_applied_total", "fjord_loader_batches_total", "fjord_loader_failures_total"} {
		r.Server[k] = uint64(m[k])
	}
	for k, v := range m {
		if len(k) > len("fjord_events_refused_total") && k[:len("fjord_events_refused_total")] == "fjord_events_refused_total" {
			r.Server[k] = uint64(v)
		}
	}
	chk.ServerAccepted = r.Server["fjord_events_accepted_total"]
	chk.LoaderApplied = r.Server["fjord_loader_applied_total"]
	if g := r.Server["fjord_journal_groups_total"]; g > 0 {
		r.AvgGroup = float64(r.Server["fjord_journal_records_total"]) / float64(g)
	}
	judge(chk, res)
	r.PeakRSSMB = kbToMB(procStatusKB(c.pid(), "VmHWM"))
	d, err := c.stop(60 * time.Second)
	r.ShutdownMS = float64(d) / float64(time.Millisecond)
	if err != nil {
		r.ShutdownErr = err.Error() + "; output:\n" + c.logTail()
	} else if tail := c.logTail(); tail != "" {
		// the server runs with --log-level warn: anything it said is news
		r.ServerLog = tail
	}
	return r, nil
}

// judge decides whether stored == acknowledged. Pageviews and custom
// events are compared separately; events the server acknowledged but
// dropped by design (bots, spam: X-Plausible-Dropped) are not expected in
// the store.
func judge(chk *StoreCheck, res *loadResult) {
	want := int64(chk.Acked - chk.Dropped)
	var probs []string
	if chk.Dropped == 0 {
		if wantPV := int64(chk.Acked - chk.AckedCustom); chk.StoredPageviews != wantPV {
			probs = append(probs, fmt.Sprintf("stored pageviews %d != acknowledged %d (%+d)", chk.StoredPageviews, wantPV, chk.StoredPageviews-wantPV))
		}
		if wantC := int64(chk.AckedCustom); chk.StoredCustom != wantC {
			probs = append(probs, fmt.Sprintf("stored custom events %d != acknowledged %d (%+d)", chk.StoredCustom, wantC, chk.StoredCustom-wantC))
		}
	} else if chk.Stored != want {
		probs = append(probs, fmt.Sprintf("stored %d != acknowledged-and-not-dropped %d (%+d)", chk.Stored, want, chk.Stored-want))
	}
	if int64(chk.ServerAccepted) != chk.Stored {
		probs = append(probs, fmt.Sprintf("server accepted %d events but %d are stored", chk.ServerAccepted, chk.Stored))
	}
	if res.Errors > 0 {
		probs = append(probs, fmt.Sprintf("%d requests ended in a transport error, so their outcome is unknown (first: %s)", res.Errors, res.FirstErr))
	}
	if chk.Acked == 0 {
		probs = append(probs, "nothing was acknowledged")
	}
	chk.OK = len(probs) == 0
	if !chk.OK {
		chk.Problem = joinSemi(probs)
	}
}

func joinSemi(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}

func (rep *Report) summarize() {
	s := &rep.Summary
	s.StoredOK = true
	s.MinRatio = -1
	for _, rd := range rep.Rounds {
		s.MeanCeiling += rd.Ceiling.Rate
		s.MeanFjord += rd.Fjord.Rate
		s.MeanRatio += rd.Ratio
		if s.MinRatio < 0 || rd.Ratio < s.MinRatio {
			s.MinRatio = rd.Ratio
		}
		s.MaxRatio = max(s.MaxRatio, rd.Ratio)
		s.WorstP99MS = max(s.WorstP99MS, rd.Fjord.P99MS)
		s.PeakRSSMB = max(s.PeakRSSMB, rd.Fjord.PeakRSSMB)
		s.CeilingRSS = max(s.CeilingRSS, rd.Ceiling.PeakRSSMB)
		if !rd.Fjord.Check.OK {
			s.StoredOK = false
			rep.Problems = append(rep.Problems, fmt.Sprintf("round %d: %s", rd.Round, rd.Fjord.Check.Problem))
		}
		for _, run := range []*Run{rd.Ceiling, rd.Fjord} {
			if len(run.Non2xx) > 0 {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("round %d, %s: %d non-2xx answers %v", rd.Round, run.Target, sum(run.Non2xx), run.Non2xx))
			}
			if run.Errors > 0 && run.Target == "ceiling" {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("round %d, ceiling: %d transport errors (first: %s)", rd.Round, run.Errors, run.FirstError))
			}
			if run.Check != nil && run.Check.Dropped > 0 {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("round %d: the server dropped %d acknowledged events as bots or spam", rd.Round, run.Check.Dropped))
			}
			if f := run.CPU.Foreign; run.disturbed() {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("round %d, %s: other processes used %.1f CPU-s of the %.0f available during the run; its figures are disturbed",
					rd.Round, run.Target, f, run.CPU.Available))
			}
			if run.ServerLog != "" {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("round %d, %s logged:\n%s", rd.Round, run.Target, run.ServerLog))
			}
			if run.ShutdownErr != "" {
				rep.Problems = append(rep.Problems, fmt.Sprintf("round %d, %s: %s", rd.Round, run.Target, run.ShutdownErr))
			}
		}
	}
	n := float64(len(rep.Rounds))
	if n > 0 {
		s.MeanCeiling /= n
		s.MeanFjord /= n
		s.MeanRatio /= n
	}
	ratio := Target{Name: "durable acknowledged ingest / ceiling (mean of rounds)", Want: fmt.Sprintf(">= %.2f", TargetRatio), Got: s.MeanRatio, Met: s.MeanRatio >= TargetRatio}
	if !ratio.Met {
		ratio.Note = fmt.Sprintf("missed by %.3f (%.0f%% below the target; %.0f events/s short at the mean ceiling)",
			TargetRatio-s.MeanRatio, 100*(TargetRatio-s.MeanRatio)/TargetRatio, (TargetRatio-s.MeanRatio)*s.MeanCeiling)
	}
	p99 := Target{Name: "fjord p99 latency, worst round (ms)", Want: fmt.Sprintf("<= %.0f", TargetP99MS), Got: s.WorstP99MS, Met: s.WorstP99MS <= TargetP99MS}
	if !p99.Met {
		p99.Note = fmt.Sprintf("missed by %.1f ms", s.WorstP99MS-TargetP99MS)
	}
	rss := Target{Name: "fjord peak RSS, worst round (MB)", Want: fmt.Sprintf("<= %.0f", TargetPeakRSS), Got: s.PeakRSSMB, Met: s.PeakRSSMB <= TargetPeakRSS}
	if !rss.Met {
		rss.Note = fmt.Sprintf("missed by %.0f MB", s.PeakRSSMB-TargetPeakRSS)
	}
	s.Targets = []Target{ratio, p99, rss}
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}
