package digest

import (
	"strings"
	"testing"
)

func TestChange(t *testing.T) {
	for _, c := range []struct {
		cur, prev     float64
		points, lower bool
		text          string
		better, worse bool
	}{
		{120, 100, false, false, "+20%", true, false},
		{80, 100, false, false, "−20%", false, true},
		{100, 100, false, false, "±0%", false, false},
		{0, 0, false, false, "±0%", false, false},
		{5, 0, false, false, "new", true, false},
		{45.5, 40, true, true, "+5.5 pts", false, true},
		{35, 40, true, true, "−5.0 pts", true, false},
	} {
		text, better, worse := Change(c.cur, c.prev, c.points, c.lower)
		if text != c.text || better != c.better || worse != c.worse {
			t.Errorf("Change(%v, %v): %q %v %v, want %q %v %v", c.cur, c.prev, text, better, worse, c.text, c.better, c.worse)
		}
	}
}

func TestFormats(t *testing.T) {
	if got := Count(1234567); got != "1\u202f234\u202f567" {
		t.Errorf("Count: %q", got)
	}
	if got := Count(999); got != "999" {
		t.Errorf("Count: %q", got)
	}
	if got := Duration(65.4); got != "1m 05s" {
		t.Errorf("Duration: %q", got)
	}
	if got := Duration(9); got != "9s" {
		t.Errorf("Duration: %q", got)
	}
}

// TestParts: both parts carry the numbers, the table and the links; the
// HTML escapes what the data holds (a page path is visitors' input).
func TestParts(t *testing.T) {
	d := Digest{Report: "Top pages", Site: "shop.example", Period: "23 – 29 March 2026",
		Numbers:  []Number{{Label: "Visitors", Value: "1\u202f234", Change: "+20%", Better: true}},
		ChartCID: "chart@fjord", ChartAlt: "Visitors per day",
		Head: []string{"event:page", "visitors"}, Rows: [][]string{{"/<script>alert(1)</script>", "7"}, {"/", "5"}},
		More: 3, CSVName: "report.csv", ReportURL: "https://fjord.example/reports/1", UnsubscribeURL: "https://fjord.example/unsubscribe/x"}
	h, err := HTML(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Top pages", "Visitors", "1\u202f234", "&#43;20%", `src="cid:chart@fjord"`, `alt="Visitors per day"`,
		"&lt;script&gt;", "and 3 more rows", "https://fjord.example/unsubscribe/x", "color-scheme"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(h, "<script>") {
		t.Error("HTML holds an unescaped script tag")
	}
	txt := Text(d)
	for _, want := range []string{"Visitors: 1\u202f234 (+20%)", "event:page", "/<script>alert(1)</script>  7", "and 3 more rows, all in the attached report.csv",
		"Unsubscribe from this e-mail report: https://fjord.example/unsubscribe/x"} {
		if !strings.Contains(txt, want) {
			t.Errorf("text lacks %q:\n%s", want, txt)
		}
	}
	d.Rows = nil
	if txt := Text(d); !strings.Contains(txt, "Nothing in this period.") {
		t.Errorf("empty table: %s", txt)
	}
}
