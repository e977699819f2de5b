package store

import (
	"strings"
	"testing"
)

func TestParseRanges(t *testing.T) {
	got, err := ParseRanges(" 192.0.2.7/24,2001:db8::1\n198.51.100.9 ")
	if err != nil || FormatRanges(got) != "192.0.2.0/24 2001:db8::1/128 198.51.100.9/32" {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := ParseRanges(""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"192.0.2.0/33", "office", "10.0.0.0/8;", "::1/129"} {
		if _, err := ParseRanges(bad); err == nil || !strings.Contains(err.Error(), "not an address range") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := ParseRanges(strings.Repeat("10.0.0.1 ", MaxRanges)); err != nil {
		t.Errorf("%d ranges: %v", MaxRanges, err)
	}
	if _, err := ParseRanges(strings.Repeat("10.0.0.1 ", MaxRanges+1)); err == nil {
		t.Errorf("%d ranges accepted", MaxRanges+1)
	}
}

func FuzzParseRanges(f *testing.F) {
	f.Add("192.0.2.0/24, 2001:db8::/32")
	f.Add("::ffff:1.2.3.4")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseRanges(s)
		if err != nil {
			return
		}
		again, err := ParseRanges(FormatRanges(ps))
		if err != nil || FormatRanges(again) != FormatRanges(ps) {
			t.Fatalf("%q: stored form %q does not read back (%v)", s, FormatRanges(ps), err)
		}
	})
}
