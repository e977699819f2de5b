package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fjord/internal/collect"
	"fjord/internal/enrich"
)

// TestWorkloadIsValidTraffic: every body decodes as the collector decodes
// it, no User-Agent is a bot and no referrer is spam, so every request the
// harness sends is a stored event.
func TestWorkloadIsValidTraffic(t *testing.T) {
	w := NewWorkload("bench.fjord.example", 2000, 500, 1)
	now := time.Now()
	custom := 0
	for i, b := range w.Bodies {
		h, err := collect.DecodeJSON(b, now)
		if err != nil {
			t.Fatalf("body %s: %v", b, err)
		}
		if (h.Name != "pageview") != w.Custom[i] {
			t.Fatalf("body %s: custom flag %v", b, w.Custom[i])
		}
		if w.Custom[i] {
			custom++
			if len(h.Props) == 0 {
				t.Fatalf("custom event without props: %s", b)
			}
		}
		if src := enrich.Referrer(h.Referrer, "bench.fjord.example", enrich.UTMFromQuery(h.URL.RawQuery)); src.Spam {
			t.Fatalf("spam referrer %q", h.Referrer)
		}
	}
	if custom < 150 || custom > 250 {
		t.Errorf("%d of 2000 bodies are custom events, want about 10%%", custom)
	}
	p := enrich.NewUAParser(0)
	for _, ua := range userAgents {
		if got := p.Parse(ua.s); got.Bot || got.Browser == "" {
			t.Errorf("UA %q parses as %+v", ua.s, got)
		}
	}
	seen := map[string]bool{}
	for _, v := range w.Visitors {
		if seen[v.XFF[0]] {
			t.Fatalf("address %s twice", v.XFF[0])
		}
		seen[v.XFF[0]] = true
	}
}

func TestHistogramQuantiles(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * 100 * time.Microsecond) // 0.1 .. 100 ms
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.001, 100 * time.Microsecond}, {1, 100 * time.Millisecond}} {
		got := h.Quantile(c.q)
		if d := got - c.want; d < 0 || d > 10*time.Microsecond {
			t.Errorf("q%.3f = %v, want %v (+10µs)", c.q, got, c.want)
		}
	}
	h.Record(2 * time.Minute)
	if h.Quantile(1) != 2*time.Minute || h.Max != 2*time.Minute {
		t.Errorf("overflow: q1 %v max %v", h.Quantile(1), h.Max)
	}
}

// TestHarness runs `fjord bench ingest` end to end for a short time at low
// concurrency against a freshly built binary and requires that every
// acknowledged event was stored.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs servers")
	}
	bin := filepath.Join(t.TempDir(), "fjord")
	build := exec.Command("go", "build", "-o", bin, "fjord/cmd/fjord")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := RunIngest(ctx, Options{
		Binary: bin, Duration: 2 * time.Second, Warmup: 300 * time.Millisecond, Concurrency: 4, Rounds: 1,
		Visitors: 300, TempDir: t.TempDir(), Log: &log,
	})
	if err != nil {
		if rep != nil {
			rep.WriteText(os.Stderr)
		}
		t.Fatalf("%v\n%s", err, log.String())
	}
	var out strings.Builder
	rep.WriteText(&out)
	t.Logf("\n%s", out.String())
	rd := rep.Rounds[0]
	c := rd.Fjord.Check
	if !c.OK || c.Stored != int64(c.Acked) || c.Acked == 0 || c.Dropped != 0 {
		t.Fatalf("stored check: %+v", c)
	}
	if c.ServerAccepted != c.Acked || c.LoaderApplied < c.Acked {
		t.Errorf("server counters: accepted %d, applied %d, acked %d", c.ServerAccepted, c.LoaderApplied, c.Acked)
	}
	// the server must see each simulated visitor (X-Forwarded-For trusted
	// from 127.0.0.1) as its own
	if c.Visitors != int64(c.VisitorsSent) {
		t.Errorf("stored visitors %d, sent %d", c.Visitors, c.VisitorsSent)
	}
	for _, r := range []*Run{rd.Ceiling, rd.Fjord} {
		if r.Rate <= 0 || r.P50MS <= 0 || r.P99MS < r.P50MS || r.PeakRSSMB <= 0 || len(r.Non2xx) > 0 || r.Errors > 0 {
			t.Errorf("%s run: %+v", r.Target, r)
		}
		if r.ShutdownErr != "" {
			t.Errorf("%s shutdown: %s", r.Target, r.ShutdownErr)
		}
	}
	if rd.Ratio <= 0 || len(rep.Summary.Targets) != 3 {
		t.Errorf("ratio %v, targets %+v", rd.Ratio, rep.Summary.Targets)
	}
}
