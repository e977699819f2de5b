package feed

import (
	"net/netip"
	"testing"
	"time"

	"fjord/internal/report"
)

// TestJudge: the limits' boundaries. Up to the limit a request passes;
// over it, 429; the request that makes twice the limit disables. Only the
// first refusal of the hour and the disabling raise an alert.
func TestJudge(t *testing.T) {
	l := Limits{MaxDays: 30, PerHour: 3, Addresses: 2}
	for _, c := range []struct {
		name string
		t    Traffic
		want Verdict
	}{
		{"first request", Traffic{Asking: 1}, Verdict{}},
		{"last request within the hour's limit", Traffic{Hour: 2, Served: 1, Known: true, Asking: 1}, Verdict{}},
		{"first over the hour's limit", Traffic{Hour: 3, Served: 1, Known: true, Asking: 1}, Verdict{Throttle: true, Alert: true}},
		{"second over it", Traffic{Hour: 4, Throttled: 1, Served: 1, Known: true, Asking: 1}, Verdict{Throttle: true}},
		{"twice the hour's limit", Traffic{Hour: 5, Throttled: 2, Served: 1, Known: true, Asking: 1}, Verdict{Throttle: true, Disable: WhyRate, Alert: true}},
		{"a known address when the addresses are full", Traffic{Hour: 1, Served: 2, Known: true, Asking: 2}, Verdict{}},
		{"a new address when they are full", Traffic{Hour: 1, Served: 2, Asking: 3}, Verdict{Throttle: true, Alert: true}},
		{"a new address when there is room", Traffic{Hour: 1, Served: 1, Asking: 2}, Verdict{}},
		{"twice the addresses asking", Traffic{Hour: 2, Throttled: 1, Served: 2, Asking: 4}, Verdict{Throttle: true, Disable: WhyAddresses, Alert: true}},
	} {
		if got := l.Judge(c.t); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestIdle(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f := Feed{Since: t0}
	if f.Idle(t0.Add(IdleAfter - time.Second)) {
		t.Error("idle a second short of 30 days")
	}
	if !f.Idle(t0.Add(IdleAfter)) {
		t.Error("not idle at 30 days unused")
	}
	f.LastUsed = t0.Add(24 * time.Hour)
	if f.Idle(t0.Add(IdleAfter)) || !f.Idle(t0.Add(IdleAfter+24*time.Hour)) {
		t.Error("idleness does not count from the last use")
	}
	f.Disabled = t0
	if f.Idle(t0.Add(100 * IdleAfter)) {
		t.Error("a disabled feed is idle")
	}
}

func TestParseFileAndAllowed(t *testing.T) {
	tok, hash := NewToken()
	if len(tok) != 32 || len(hash) != 64 || HashToken(tok) != hash {
		t.Fatalf("token %q hash %q", tok, hash)
	}
	if a, b := NewToken(); a == tok || b == hash {
		t.Fatal("two tokens alike")
	}
	for file, ok := range map[string]bool{tok + ".csv": true, tok + ".json": true, tok + ".xls": false, tok: false, tok[1:] + ".csv": false,
		tok[:31] + "!.csv": false, tok + ".csv.csv": false, ".csv": false, tok + "a.csv": false} {
		got, format, err := ParseFile(file)
		if (err == nil) != ok || (ok && (got != tok || format == "")) {
			t.Errorf("%q: %q %q %v", file, got, format, err)
		}
	}
	ranges := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	for addr, want := range map[string]bool{"192.0.2.9": true, "::ffff:192.0.2.9": true, "192.0.3.1": false, "2001:db8:ffff::1": true, "2001:db9::1": false} {
		if got := Allowed(ranges, netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %v", addr, got)
		}
	}
	if !Allowed(nil, netip.MustParseAddr("203.0.113.1")) {
		t.Error("no ranges must allow any address")
	}
}

func TestDays(t *testing.T) {
	for _, c := range []struct {
		from, to string
		want     int
	}{{"2026-03-01", "2026-03-01", 1}, {"2026-03-28", "2026-03-30", 3}, {"2025-01-01", "2025-12-31", 365}, {"x", "2026-01-01", 0}} {
		if got := Days(report.Range{FromDay: c.from, ToDay: c.to}); got != c.want {
			t.Errorf("%s..%s: %d, want %d", c.from, c.to, got, c.want)
		}
	}
}
