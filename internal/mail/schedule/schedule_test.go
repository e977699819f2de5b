package schedule

import (
	"strings"
	"testing"
	"time"
)

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestNextAfterAcrossDST: a weekly Monday 07:00 schedule in Berlin fires
// at 06:00 UTC in winter and 05:00 UTC in summer, the week of the change
// included; daily and monthly schedules step as their calendars say.
func TestNextAfterAcrossDST(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	weekly := Schedule{Frequency: Weekly, Weekday: time.Monday, Hour: 7}
	// Berlin moves to summer time on Sunday 29 March 2026
	at := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	want := []string{"2026-03-23T06:00:00Z", "2026-03-30T05:00:00Z", "2026-04-06T05:00:00Z"}
	for _, w := range want {
		at = weekly.NextAfter(at, berlin)
		if got := at.Format(time.RFC3339); got != w {
			t.Fatalf("weekly: %s, want %s", got, w)
		}
	}
	// exactly at a firing time: the next one, not the same
	if got := weekly.NextAfter(at, berlin); !got.Equal(at.AddDate(0, 0, 7)) {
		t.Errorf("at a firing: %s", got)
	}
	// and back to winter time on Sunday 25 October 2026
	at = weekly.NextAfter(time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC), berlin)
	if got := at.Format(time.RFC3339); got != "2026-10-26T06:00:00Z" {
		t.Errorf("weekly after the change back: %s", got)
	}

	daily := Schedule{Frequency: Daily, Hour: 0}
	if got := daily.NextAfter(time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC), berlin).Format(time.RFC3339); got != "2026-03-29T22:00:00Z" {
		t.Errorf("daily at midnight across the change: %s", got)
	}
	// 02:00 does not exist in Berlin on 29 March: 03:00 summer time, as
	// far past midnight
	two := Schedule{Frequency: Daily, Hour: 2}
	if got := two.NextAfter(time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), berlin).Format(time.RFC3339); got != "2026-03-29T01:00:00Z" {
		t.Errorf("a missing hour: %s", got)
	}
	monthly := Schedule{Frequency: Monthly, Day: 28, Hour: 9}
	got := monthly.NextAfter(time.Date(2026, 1, 28, 9, 0, 0, 0, time.UTC), time.UTC)
	if got.Format(time.RFC3339) != "2026-02-28T09:00:00Z" {
		t.Errorf("monthly: %s", got)
	}
	ny := mustZone(t, "America/New_York")
	if got := monthly.NextAfter(time.Date(2026, 2, 28, 14, 0, 0, 0, time.UTC), ny).Format(time.RFC3339); got != "2026-03-28T13:00:00Z" {
		t.Errorf("monthly in New York after its change: %s", got)
	}
}

// TestPeriod: the days a mailing covers, in the site's zone.
func TestPeriod(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	fire := time.Date(2026, 3, 30, 5, 0, 0, 0, time.UTC) // Monday 07:00 Berlin
	for _, c := range []struct {
		freq     string
		from, to string
	}{
		{Daily, "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"},
		{Weekly, "2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00"},
		{Monthly, "2026-02-01T00:00:00+01:00", "2026-03-01T00:00:00+01:00"},
	} {
		from, to := Schedule{Frequency: c.freq}.Period(fire, berlin)
		if from.Format(time.RFC3339) != c.from || to.Format(time.RFC3339) != c.to {
			t.Errorf("%s: %s – %s, want %s – %s", c.freq, from.Format(time.RFC3339), to.Format(time.RFC3339), c.from, c.to)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		s    Schedule
		want string
	}{
		{Schedule{Frequency: Daily, Hour: 23}, ""},
		{Schedule{Frequency: Weekly, Weekday: time.Saturday, Hour: 0}, ""},
		{Schedule{Frequency: Monthly, Day: 28}, ""},
		{Schedule{Frequency: Monthly, Day: 29}, "day:"},
		{Schedule{Frequency: Monthly, Day: 0}, "day:"},
		{Schedule{Frequency: Weekly, Weekday: 7}, "weekday:"},
		{Schedule{Frequency: Daily, Hour: 24}, "hour:"},
		{Schedule{Frequency: Daily, Hour: -1}, "hour:"},
		{Schedule{Frequency: "hourly"}, `frequency "hourly"`},
	} {
		err := c.s.Check()
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.s, err, c.want)
		}
	}
}

func TestTokens(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	d := Delivery{ID: 77, ScheduleID: 5, RecipientID: 9}
	v := VERP(key, "bounces@mail.example.com", d)
	if !strings.HasPrefix(v, "bounces+5.9.77.") || !strings.HasSuffix(v, "@mail.example.com") || len(v[:strings.IndexByte(v, '@')]) > 64 {
		t.Fatalf("VERP %q", v)
	}
	ids, ok := ParseVERP(key, "bounces@mail.example.com", v)
	if !ok || ids != (Ids{5, 9, 77}) {
		t.Fatalf("ParseVERP: %v %v", ids, ok)
	}
	// case folded by a mail server
	if ids, ok := ParseVERP(key, "bounces@mail.example.com", strings.ToUpper(v)); !ok || ids.Delivery != 77 {
		t.Errorf("upper case: %v %v", ids, ok)
	}
	bad := []string{
		strings.Replace(v, "77", "78", 1),           // another delivery, same HMAC
		strings.Replace(v, "bounces+", "other+", 1), // another local part
		strings.Replace(v, "mail.example.com", "example.org", 1),
		"bounces@mail.example.com", "bounces+@mail.example.com", "", "@",
		"bounces+5.9.77@mail.example.com",
	}
	for _, b := range bad {
		if ids, ok := ParseVERP(key, "bounces@mail.example.com", b); ok {
			t.Errorf("%q accepted as %v", b, ids)
		}
	}
	if _, ok := ParseVERP([]byte("another key of 32 bytes, really!"), "bounces@mail.example.com", v); ok {
		t.Error("another key's token accepted")
	}
	// a bounce token is no unsubscribe token
	tok := Token(key, "bounce", d)
	if _, ok := ParseToken(key, "unsubscribe", tok); ok {
		t.Error("bounce token taken for unsubscribe")
	}
	if ids, ok := ParseToken(key, "unsubscribe", Token(key, "unsubscribe", d)); !ok || ids.Recipient != 9 {
		t.Errorf("unsubscribe token: %v %v", ids, ok)
	}
}

func TestParseAddress(t *testing.T) {
	if a, err := ParseAddress(" Boss@Example.COM "); err != nil || a != "boss@example.com" {
		t.Errorf("%q %v", a, err)
	}
	for _, b := range []string{"", "boss", "Boss <boss@example.com>", "a@b", "a@example.com, b@example.com", "a@example.com\r\nBcc: x@example.com", strings.Repeat("a", 250) + "@example.com"} {
		if _, err := ParseAddress(b); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, 80 * time.Minute, 160 * time.Minute, 4 * time.Hour, 4 * time.Hour}
	for i, w := range want {
		if got := Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}

// FuzzParseVERP: a bounce's recipient address and an unsubscribe link's
// token come from outside; nothing forged parses, nothing panics.
func FuzzParseVERP(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	f.Add(VERP(key, "bounces@example.com", Delivery{ID: 1, ScheduleID: 2, RecipientID: 3}))
	f.Add("bounces+1.2.3.aaaa@example.com")
	f.Add("bounces+.@example.com")
	f.Fuzz(func(t *testing.T, addr string) {
		ids, ok := ParseVERP(key, "bounces@example.com", addr)
		if ok {
			d := Delivery{ID: ids.Delivery, ScheduleID: ids.Schedule, RecipientID: ids.Recipient}
			if !strings.EqualFold(VERP(key, "bounces@example.com", d), addr) {
				t.Fatalf("%q parsed as %v, which signs differently", addr, ids)
			}
		}
		ParseToken(key, "unsubscribe", addr)
		ParseAddress(addr)
	})
}
