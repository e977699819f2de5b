package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"fjord/internal/report"
)

func TestWriterCSVAndJSON(t *testing.T) {
	rows := []report.Row{
		{Dimensions: []string{"/a", "2026-11-01"}, Metrics: []float64{3, 12.5}},
		{Dimensions: []string{"=HYPERLINK(\"x\")", "2026-11-02"}, Metrics: []float64{1, 0}},
	}
	for _, format := range []string{CSV, JSON} {
		var b bytes.Buffer
		w, err := NewWriter(&b, format, []string{"event:page", "time:day"}, []string{"visitors", "bounce_rate"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if w.Rows() != 2 || w.Bytes() != int64(b.Len()) {
			t.Errorf("%s: counted %d rows, %d bytes; wrote %d bytes", format, w.Rows(), w.Bytes(), b.Len())
		}
		if format == CSV {
			recs, err := csv.NewReader(&b).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			want := [][]string{{"event:page", "time:day", "visitors", "bounce_rate"}, {"/a", "2026-11-01", "3", "12.5"}, {`'=HYPERLINK("x")`, "2026-11-02", "1", "0"}}
			if len(recs) != 3 || strings.Join(recs[2], "|") != strings.Join(want[2], "|") || strings.Join(recs[1], "|") != strings.Join(want[1], "|") || strings.Join(recs[0], "|") != strings.Join(want[0], "|") {
				t.Errorf("csv: %q", recs)
			}
			continue
		}
		var got []map[string]any
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatalf("json: %v in %s", err, b.String())
		}
		if len(got) != 2 || got[1]["event:page"] != `=HYPERLINK("x")` || got[0]["bounce_rate"] != 12.5 || got[0]["time:day"] != "2026-11-01" {
			t.Errorf("json: %v", got)
		}
	}
	var b bytes.Buffer
	w, _ := NewWriter(&b, JSON, nil, []string{"visitors"})
	w.Close()
	if b.String() != "[\n]\n" {
		t.Errorf("empty json export: %q", b.String())
	}
	if _, err := NewWriter(&b, "xls", nil, nil); err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("xls: %v", err)
	}
	w, _ = NewWriter(&b, CSV, []string{"a"}, []string{"visitors"})
	if err := w.Write(report.Row{Metrics: []float64{1}}); err == nil {
		t.Error("a row that does not fit the header was written")
	}
}

// TestCSVInjection: every kind of cell an export writes is safe to open
// in a spreadsheet: a text cell of any dimension starting with =, +, -,
// @, tab or carriage return is neutralised (header names too), text that
// does not start so is left alone, and numbers stay numbers.
func TestCSVInjection(t *testing.T) {
	var dims []string
	for _, d := range report.Dims {
		dims = append(dims, d.Name)
	}
	dangerous := []string{"=1+2", "+1+2", "-1+2", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(\"http://x\",\"y\")", "-", "="}
	harmless := []string{"/a=b", "a+b", " =1", "", "1-2", "é=1"}
	var b bytes.Buffer
	w, err := NewWriter(&b, CSV, append([]string{"=head"}, dims...), []string{"visitors", "bounce_rate"})
	if err != nil {
		t.Fatal(err)
	}
	cells := append(append([]string{}, dangerous...), harmless...)
	for _, c := range cells {
		row := report.Row{Metrics: []float64{-3, 12.5}}
		for range len(dims) + 1 {
			row.Dimensions = append(row.Dimensions, c)
		}
		if err := w.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if recs[0][0] != "'=head" || recs[0][1] != dims[0] {
		t.Errorf("header: %q", recs[0])
	}
	for i, c := range cells {
		rec := recs[i+1]
		want := c
		if i < len(dangerous) {
			want = "'" + c
		}
		for j, cell := range rec[:len(rec)-2] {
			if cell != want {
				t.Errorf("%q in column %d written as %q, want %q", c, j, cell, want)
			}
		}
		if rec[len(rec)-2] != "-3" || rec[len(rec)-1] != "12.5" {
			t.Errorf("numbers written as %q", rec[len(rec)-2:])
		}
	}
}
