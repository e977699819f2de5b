package report

import (
	"regexp"
	"testing"
	"time"
)

func TestTimeLabelsAcrossDST(t *testing.T) {
	now := time.Date(2026, 3, 31, 10, 0, 0, 0, time.UTC)
	r, err := ParsePeriod("7d", "Europe/Helsinki", now)
	if err != nil {
		t.Fatal(err)
	}
	days := TimeLabels(r, "day")
	if len(days) != 7 || days[0] != "2026-03-25" || days[6] != "2026-03-31" {
		t.Fatalf("days: %v", days)
	}
	// 29 March has 23 hours in Helsinki
	r, _ = ParsePeriod("day", "Europe/Helsinki", time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC))
	if hours := TimeLabels(r, "hour"); len(hours) != 23 {
		t.Fatalf("hours on the DST day: %d", len(hours))
	}
	r, _ = ParsePeriod("12mo", "UTC", now)
	if months := TimeLabels(r, "month"); len(months) != 12 || months[11] != "2026-03-01" {
		t.Fatalf("months: %v", months)
	}
}

func TestPreviousPeriod(t *testing.T) {
	r, _ := ParsePeriod("7d", "Europe/Helsinki", time.Date(2026, 3, 31, 10, 0, 0, 0, time.UTC))
	p := r.Previous()
	if p.FromDay != "2026-03-18" || p.ToDay != "2026-03-24" || !p.To.Equal(r.From) {
		t.Fatalf("previous: %+v", p)
	}
}

func TestGoalRegexp(t *testing.T) {
	for pat, cases := range map[string]map[string]bool{
		"/blog/*":  {"/blog/a": true, "/blog/a/b": false, "/blog/": true, "/blogx": false},
		"/blog/**": {"/blog/a/b": true, "/blog": false},
		"/a.b":     {"/a.b": true, "/axb": false},
		"/p/*/buy": {"/p/1/buy": true, "/p/1/2/buy": false},
	} {
		for path, want := range cases {
			if got := regexpMatch(GoalRegexp(pat), path); got != want {
				t.Errorf("%s ~ %s: %v, want %v", pat, path, got, want)
			}
		}
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
