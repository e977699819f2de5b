// Package export writes report data for people and programs to take
// away (PRODUCT §5): downloads from the dashboard, API exports and
// datafeeds all stream through a Writer, which counts what it wrote so the
// export can be recorded.
package export

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"fjord/internal/report"
)

// Formats of an export.
const (
	CSV  = "csv"
	JSON = "json"
)

// ContentType is the media type of a format.
func ContentType(format string) string {
	if format == JSON {
		return "application/json"
	}
	return "text/csv; charset=utf-8"
}

// SafeCell neutralises a text cell a spreadsheet would run as a formula
// (OWASP's CSV injection advice): a cell starting with =, +, -, @, tab or
// carriage return gets a leading apostrophe, which spreadsheets show as
// text. Numbers are written by the Writer itself and never pass here: a
// number cannot hold a formula, and "-3" must stay a number.
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Writer streams rows of a report as CSV (a header line, then one line
// per row) or JSON (an array of objects keyed by the header's names). It
// holds one row at a time.
type Writer struct {
	out    *counter
	buf    *bufio.Writer
	csv    *csv.Writer
	format string
	head   []string
	keys   [][]byte // JSON: each column's encoded key
	nDims  int
	rows   int64
	cells  []string
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// NewWriter starts an export of rows whose dimensions and metrics are
// named dims and metrics, writing the CSV header (or the JSON array's
// opening) at once.
func NewWriter(w io.Writer, format string, dims, metrics []string) (*Writer, error) {
	if format != CSV && format != JSON {
		return nil, fmt.Errorf("format: want csv or json, not %q", format)
	}
	c := &counter{w: w}
	x := &Writer{out: c, buf: bufio.NewWriterSize(c, 32<<10), format: format, nDims: len(dims)}
	x.head = append(append(x.head, dims...), metrics...)
	if format == CSV {
		x.csv = csv.NewWriter(x.buf)
		head := make([]string, len(x.head))
		for i, h := range x.head {
			head[i] = SafeCell(h)
		}
		return x, x.csv.Write(head)
	}
	for _, h := range x.head {
		k, _ := json.Marshal(h)
		x.keys = append(x.keys, k)
	}
	_, err := x.buf.WriteString("[")
	return x, err
}

// Write adds one row.
func (x *Writer) Write(r report.Row) error {
	if len(r.Dimensions) != x.nDims || len(r.Dimensions)+len(r.Metrics) != len(x.head) {
		return fmt.Errorf("export: a row of %d dimensions and %d metrics under a header of %d columns", len(r.Dimensions), len(r.Metrics), len(x.head))
	}
	x.rows++
	if x.format == CSV {
		x.cells = x.cells[:0]
		for _, d := range r.Dimensions {
			x.cells = append(x.cells, SafeCell(d))
		}
		for _, m := range r.Metrics {
			x.cells = append(x.cells, strconv.FormatFloat(m, 'f', -1, 64))
		}
		return x.csv.Write(x.cells)
	}
	if x.rows > 1 {
		x.buf.WriteString(",")
	}
	x.buf.WriteString("\n{")
	for i, d := range r.Dimensions {
		if i > 0 {
			x.buf.WriteString(",")
		}
		x.buf.Write(x.keys[i])
		x.buf.WriteString(":")
		v, _ := json.Marshal(d)
		x.buf.Write(v)
	}
	for i, m := range r.Metrics {
		if i > 0 || x.nDims > 0 {
			x.buf.WriteString(",")
		}
		x.buf.Write(x.keys[x.nDims+i])
		x.buf.WriteString(":")
		v := "null" // JSON has no NaN or infinity; no metric should be one
		if !math.IsNaN(m) && !math.IsInf(m, 0) {
			v = strconv.FormatFloat(m, 'f', -1, 64)
		}
		if _, err := x.buf.WriteString(v); err != nil {
			return err
		}
	}
	_, err := x.buf.WriteString("}")
	return err
}

// Close finishes the export (the JSON array's end) and flushes it.
func (x *Writer) Close() error {
	if x.format == CSV {
		x.csv.Flush()
		if err := x.csv.Error(); err != nil {
			return err
		}
	} else {
		x.buf.WriteString("\n]\n")
	}
	return x.buf.Flush()
}

// Rows is how many rows were written.
func (x *Writer) Rows() int64 { return x.rows }

// Bytes is how many bytes reached the underlying writer so far (all of
// them after Close).
func (x *Writer) Bytes() int64 { return x.out.n }
