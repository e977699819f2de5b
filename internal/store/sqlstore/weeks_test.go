package sqlstore

import (
	"reflect"
	"testing"
)

func TestKeyRanges(t *testing.T) {
	days := []string{"2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31", "2026-04-01", "2026-04-02",
		"2026-04-03", "2026-04-04", "2026-04-05", "2026-04-06", "2026-04-07", "2026-04-08", "2026-04-09",
		"2026-04-10", "2026-04-11", "2026-04-12", "2026-04-13"}
	all := map[string]int64{}
	for _, d := range days {
		all[d] = 1
	}
	without := func(day string) map[string]int64 {
		m := map[string]int64{}
		for k, v := range all {
			if k != day {
				m[k] = v
			}
		}
		return m
	}
	both := map[string]int64{"2026-03-30": 7, "2026-04-06": 7}
	cases := []struct {
		name   string
		days   []string
		built  map[string]int64
		weeks  map[string]int64
		ranges [][2]string
	}{
		{"no weeks", days, all, nil, [][2]string{{"2026-03-28", "2026-04-13"}}},
		{"two weeks", days, all, both, [][2]string{{"2026-03-28", "2026-03-29"}, {"W2026-03-30", "W2026-04-06"}, {"2026-04-13", "2026-04-13"}}},
		{"second week not listed", days, all, map[string]int64{"2026-03-30": 7},
			[][2]string{{"2026-03-28", "2026-03-29"}, {"W2026-03-30", "W2026-03-30"}, {"2026-04-06", "2026-04-13"}}},
		// a week listed while one of its days is not (taken out since the
		// planner read the weeks) is read as days
		{"a day of a week not built", days, without("2026-04-08"), both,
			[][2]string{{"2026-03-28", "2026-03-29"}, {"W2026-03-30", "W2026-03-30"}, {"2026-04-06", "2026-04-07"}, {"2026-04-09", "2026-04-13"}}},
		{"range ends inside a week", days[:12], all, both, [][2]string{{"2026-03-28", "2026-03-29"}, {"W2026-03-30", "W2026-03-30"}, {"2026-04-06", "2026-04-08"}}},
		{"nothing built", days, map[string]int64{}, both, nil},
	}
	for _, c := range cases {
		if got := keyRanges(c.days, c.built, c.weeks); !reflect.DeepEqual(got, c.ranges) {
			t.Errorf("%s: %v, want %v", c.name, got, c.ranges)
		}
	}
}

func TestWeekKey(t *testing.T) {
	for day, want := range map[string]string{"2026-03-30": "W2026-03-30", "2026-04-05": "W2026-03-30", "2026-04-06": "W2026-04-06", "2027-01-01": "W2026-12-28"} {
		if got := weekKey(day); got != want {
			t.Errorf("weekKey(%s) = %s, want %s", day, got, want)
		}
	}
	if weekKey("2026-99-01") != "W" {
		t.Error("a bad day has a week")
	}
}
