package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"
)

// Histogram counts latencies in fixed buckets: 10 µs wide up to 100 ms,
// 1 ms wide up to 60 s, and one overflow bucket. Percentiles are the upper
// edge of their bucket, so below 100 ms they are at most 10 µs high.
type Histogram struct {
	Counts []uint64
	Max    time.Duration
	N      uint64
}

const (
	fineStep   = 10 * time.Microsecond
	fineLimit  = 100 * time.Millisecond
	coarseStep = time.Millisecond
	coarseMax  = 60 * time.Second
	nFine      = int(fineLimit / fineStep)
	nBuckets   = nFine + int((coarseMax-fineLimit)/coarseStep) + 1
)

func NewHistogram() *Histogram { return &Histogram{Counts: make([]uint64, nBuckets)} }

func bucketOf(d time.Duration) int {
	if d < 0 {
		d = 0
	}
	if d < fineLimit {
		return int(d / fineStep)
	}
	b := nFine + int((d-fineLimit)/coarseStep)
	if b >= nBuckets {
		b = nBuckets - 1
	}
	return b
}

func upperEdge(b int) time.Duration {
	if b < nFine {
		return time.Duration(b+1) * fineStep
	}
	return fineLimit + time.Duration(b-nFine+1)*coarseStep
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	h.Counts[bucketOf(d)]++
	h.N++
	if d > h.Max {
		h.Max = d
	}
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.Counts {
		h.Counts[i] += c
	}
	h.N += o.N
	h.Max = max(h.Max, o.Max)
}

// Quantile is the latency below which a fraction q of the samples lie
// (the upper edge of the bucket holding the ceil(q*N)-th sample).
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.N == 0 {
		return 0
	}
	rank := uint64(q * float64(h.N))
	if float64(rank) < q*float64(h.N) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			if i == nBuckets-1 {
				return h.Max // overflow
			}
			return min(upperEdge(i), h.Max)
		}
	}
	return h.Max
}

// loadSpec is one closed-loop load run.
type loadSpec struct {
	URL         string
	Start       time.Time // the warm-up begins
	Concurrency int
	Warmup      time.Duration
	Duration    time.Duration
	Work        *Workload
	Seed        uint64
}

// loadResult is what the generator saw. "Window" counts are responses that
// completed inside the measured window (after the warm-up); the totals
// include the warm-up and the responses to requests sent before the end
// that completed after it (no request is abandoned), so they are what the
// server must have stored.
type loadResult struct {
	Window        time.Duration
	WindowOK      uint64 // 2xx completed in the window
	WindowOther   uint64 // non-2xx or errors completed in the window
	Hist          *Histogram
	TotalOK       uint64 // every 2xx
	TotalOKCustom uint64 // of which custom events
	Dropped       uint64 // 2xx with X-Plausible-Dropped: accepted, not stored
	Non2xx        map[int]uint64
	Errors        uint64 // transport errors: outcome unknown
	FirstErr      string
	Visitors      int // distinct simulated visitors with an acknowledged pageview or event
	Conns         int64
}

type worker struct {
	hist      *Histogram
	ok, other uint64
	totalOK   uint64
	okCustom  uint64
	dropped   uint64
	errors    uint64
	firstErr  error
	non2xx    map[int]uint64
	visitors  []uint64 // bitset
}

// runLoad sends the workload from spec.Concurrency goroutines, each in a
// closed loop over keep-alive connections from one shared Transport,
// until Warmup+Duration has passed, and waits for every request in flight.
func runLoad(ctx context.Context, spec loadSpec) *loadResult {
	// The generator shares the machine with the server: make it cheap.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	var conns counter
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				conns.add(1)
			}
			return c, err
		},
		MaxIdleConns:        spec.Concurrency * 2,
		MaxIdleConnsPerHost: spec.Concurrency * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	warmEnd := spec.Start.Add(spec.Warmup)
	end := warmEnd.Add(spec.Duration)
	nv := len(spec.Work.Visitors)
	ws := make([]*worker, spec.Concurrency)
	var wg sync.WaitGroup
	for i := range ws {
		w := &worker{hist: NewHistogram(), non2xx: map[int]uint64{}, visitors: make([]uint64, (nv+63)/64)}
		ws[i] = w
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			w.loop(ctx, client, spec, rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+1)), warmEnd, end)
		}(spec.Seed + uint64(i)*7919)
	}
	wg.Wait()

	res := &loadResult{Window: spec.Duration, Hist: NewHistogram(), Non2xx: map[int]uint64{}, Conns: conns.get()}
	vis := make([]uint64, (nv+63)/64)
	for _, w := range ws {
		res.Hist.Merge(w.hist)
		res.WindowOK += w.ok
		res.WindowOther += w.other
		res.TotalOK += w.totalOK
		res.TotalOKCustom += w.okCustom
		res.Dropped += w.dropped
		res.Errors += w.errors
		if w.firstErr != nil && res.FirstErr == "" {
			res.FirstErr = w.firstErr.Error()
		}
		for c, n := range w.non2xx {
			res.Non2xx[c] += n
		}
		for i, b := range w.visitors {
			vis[i] |= b
		}
	}
	for _, b := range vis {
		for ; b != 0; b &= b - 1 {
			res.Visitors++
		}
	}
	return res
}

var textPlain = []string{"text/plain"}

func (w *worker) loop(ctx context.Context, client *http.Client, spec loadSpec, r *rand.Rand, warmEnd, end time.Time) {
	work := spec.Work
	for ctx.Err() == nil {
		if !time.Now().Before(end) {
			return
		}
		bi := r.IntN(len(work.Bodies))
		vi := r.IntN(len(work.Visitors))
		body := work.Bodies[bi]
		v := work.Visitors[vi]
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, spec.URL, bytes.NewReader(body))
		if err != nil {
			panic(err)
		}
		req.Header["Content-Type"] = textPlain
		req.Header["User-Agent"] = v.UA
		req.Header["X-Forwarded-For"] = v.XFF
		t0 := time.Now()
		resp, err := client.Do(req)
		code := 0
		dropped := false
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
			dropped = resp.Header.Get("X-Plausible-Dropped") != ""
		}
		t1 := time.Now()
		ok := code >= 200 && code < 300
		switch {
		case err != nil:
			w.errors++
			if w.firstErr == nil {
				w.firstErr = err
			}
		case ok && dropped:
			w.totalOK++
			w.dropped++
		case ok:
			w.totalOK++
			if work.Custom[bi] {
				w.okCustom++
			}
			w.visitors[vi/64] |= 1 << (vi % 64)
		default:
			w.non2xx[code]++
		}
		if !t1.Before(warmEnd) && !t1.After(end) {
			if ok {
				w.ok++
				w.hist.Record(t1.Sub(t0))
			} else {
				w.other++
			}
		}
		if err != nil && ctx.Err() == nil {
			// do not spin on a dead server
			time.Sleep(10 * time.Millisecond)
		}
	}
}

type counter struct {
	mu sync.Mutex
	n  int64
}

func (c *counter) add(d int64) { c.mu.Lock(); c.n += d; c.mu.Unlock() }
func (c *counter) get() int64  { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

func (r *loadResult) problems() []string {
	var out []string
	for c, n := range r.Non2xx {
		out = append(out, fmt.Sprintf("%d × HTTP %d", n, c))
	}
	if r.Errors > 0 {
		out = append(out, fmt.Sprintf("%d transport errors (first: %s)", r.Errors, r.FirstErr))
	}
	return out
}
