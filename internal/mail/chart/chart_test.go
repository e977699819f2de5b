package chart

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "write testdata/month.png anew")

// month is 31 days of visitors: the most on day 21, none on day 6.
func month() []Point {
	var pts []Point
	for i := range 31 {
		v := math.Round(400 + 250*math.Sin(float64(i)/4))
		pts = append(pts, Point{Label: fmt.Sprintf("Mar %d", i+1), Value: v})
	}
	pts[5].Value = 0
	pts[20].Value = 1000 // a nice maximum: the axis ends at it
	return pts
}

func decode(t testing.TB, b []byte) *image.NRGBA {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	n, ok := img.(*image.NRGBA)
	if !ok {
		t.Fatalf("decoded as %T", img)
	}
	return n
}

func near(c color.NRGBA, rgb uint32, tol int) bool {
	d := func(a uint8, b uint32) bool { return abs(int(a)-int(b&0xff)) <= tol }
	return c.A == 0xff && d(c.R, rgb>>16) && d(c.G, rgb>>8) && d(c.B, rgb)
}

func abs(i int) int { return max(i, -i) }

func TestSize(t *testing.T) {
	for _, sz := range [][2]int{{600, 200}, {MinSize, MinSize}, {MaxWidth, MaxHeight}, {321, 123}} {
		b, err := PNG(month(), sz[0], sz[1])
		if err != nil {
			t.Fatal(err)
		}
		if got := decode(t, b).Bounds().Size(); got != image.Pt(sz[0]*Scale, sz[1]*Scale) {
			t.Errorf("%v: %v pixels, want %d×%d", sz, got, sz[0]*Scale, sz[1]*Scale)
		}
	}
}

// lineIn is the first pixel from the top of column x in the line's
// colour, -1 when there is none.
func lineIn(img *image.NRGBA, x int) int {
	top, _ := lineSpan(img, x)
	return top
}

// lineSpan is the first and the last pixel of column x in the line's
// colour, -1 when there is none.
func lineSpan(img *image.NRGBA, x int) (top, bottom int) {
	top, bottom = -1, -1
	for y := range img.Bounds().Dy() {
		if near(img.NRGBAAt(x, y), colLine, 24) {
			if top < 0 {
				top = y
			}
			bottom = y
		}
	}
	return top, bottom
}

// TestPoints: the line passes the top of the plot at the highest point
// and its bottom at a zero; the area below the line is filled and the
// card above it is white; the corners are transparent.
func TestPoints(t *testing.T) {
	pts := month()
	b, err := PNG(pts, 600, 200)
	if err != nil {
		t.Fatal(err)
	}
	img := decode(t, b)
	face, _ := newFace()
	l := newLayout(pts, 600, 200, face)
	tol := float64(lineW * Scale) // the line's width about its centre
	peak := int(math.Round(l.x(20)))
	if y := lineIn(img, peak); math.Abs(float64(y)-l.top) > tol {
		t.Errorf("at the highest point the line is at y=%d, want near the plot's top %.1f", y, l.top)
	}
	// the line comes down to the zero and goes up again: its lowest pixel
	if _, y := lineSpan(img, int(math.Round(l.x(5)))); math.Abs(float64(y)-l.bottom) > tol {
		t.Errorf("at the zero the line reaches y=%d, want near the plot's bottom %.1f", y, l.bottom)
	}
	if c := img.NRGBAAt(peak, int(l.top+l.bottom)/2); !near(c, colArea, 4) {
		t.Errorf("below the peak %v, want the area's colour", c)
	}
	if c := img.NRGBAAt(peak, int(l.top)-int(tol)-4); !near(c, colCard, 0) {
		t.Errorf("above the peak %v, want the card", c)
	}
	if c := img.NRGBAAt(0, 0); c.A != 0 {
		t.Errorf("corner %v, want transparent", c)
	}
	if c := img.NRGBAAt(img.Bounds().Dx()/2, 0); !near(c, colBorder, 0) {
		t.Errorf("top edge %v, want the border", c)
	}
}

// TestFlat: no points, one point, all zeros: a flat line with labels.
func TestFlat(t *testing.T) {
	for name, pts := range map[string][]Point{
		"none":  nil,
		"zeros": {{"Mon 1", 0}, {"Tue 2", 0}, {"Wed 3", 0}},
		"one":   {{"Mon 1", 0}},
	} {
		b, err := PNG(pts, 400, 150)
		if err != nil {
			t.Fatal(err)
		}
		img := decode(t, b)
		face, _ := newFace()
		l := newLayout(pts, 400, 150, face)
		for _, x := range []float64{l.left + 2, (l.left + l.right) / 2, l.right - 2} {
			if y := lineIn(img, int(x)); math.Abs(float64(y)-l.bottom) > lineW*Scale {
				t.Errorf("%s: at x=%.0f the line is at y=%d, want %.1f", name, x, y, l.bottom)
			}
		}
		// the y labels are drawn: text-coloured pixels left of the plot
		if n := countNear(img, image.Rect(0, 0, int(l.left), img.Bounds().Dy()), colText); n < 20 {
			t.Errorf("%s: %d pixels of label text left of the plot", name, n)
		}
	}
}

func countNear(img *image.NRGBA, r image.Rectangle, rgb uint32) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if near(img.NRGBAAt(x, y), rgb, 8) {
				n++
			}
		}
	}
	return n
}

func TestErrors(t *testing.T) {
	ok := []Point{{"a", 1}}
	for _, c := range []struct {
		pts  []Point
		w, h int
		want string
	}{
		{ok, MinSize - 1, 200, "size"},
		{ok, MaxWidth + 1, 200, "size"},
		{ok, 600, MinSize - 1, "size"},
		{ok, 600, MaxHeight + 1, "size"},
		{ok, -600, -200, "size"},
		{make([]Point, MaxPoints+1), 600, 200, "points"},
		{[]Point{{"a", 1}, {"b", -1}}, 600, 200, `point 1 ("b")`},
		{[]Point{{"nan", math.NaN()}}, 600, 200, "NaN"},
		{[]Point{{"inf", math.Inf(1)}}, 600, 200, "+Inf"},
		{[]Point{{"-inf", math.Inf(-1)}}, 600, 200, "-Inf"},
		{[]Point{{strings.Repeat("x", MaxLabel+1), 1}}, 600, 200, "label"},
	} {
		b, err := PNG(c.pts, c.w, c.h)
		if err == nil || !strings.Contains(err.Error(), c.want) || b != nil {
			t.Errorf("%d×%d %v: %v, want an error saying %q", c.w, c.h, c.pts[:min(len(c.pts), 2)], err, c.want)
		}
	}
	if _, err := PNG(make([]Point, MaxPoints), MinSize, MinSize); err != nil {
		t.Errorf("%d points: %v", MaxPoints, err)
	}
}

func TestNiceMax(t *testing.T) {
	for _, c := range []struct{ max, want float64 }{
		{0, 2}, {1, 2}, {1.5, 2}, {2, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {10, 10}, {11, 20},
		{999, 1000}, {1000, 1000}, {1001, 2000}, {1770, 2000}, {0.3, 0.4}, {0.07, 0.08},
		{math.MaxFloat64, math.MaxFloat64},
	} {
		if got := niceMax([]Point{{"", c.max}}); got != c.want && math.Abs(got-c.want) > c.want*1e-9 {
			t.Errorf("niceMax(%v) = %v, want %v", c.max, got, c.want)
		}
	}
	// at the ends of float64 the axis may not be nice, but it holds the value
	for _, v := range []float64{5e-324, 1e-310, 1e-300, 1e300, math.MaxFloat64 / 3} {
		if got := niceMax([]Point{{"", v}}); got < v || got <= 0 || math.IsInf(got, 0) {
			t.Errorf("niceMax(%v) = %v", v, got)
		}
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.2: "0.2", 5: "5", 500: "500", 1000: "1k", 1500: "1.5k",
		20000: "20k", 3e6: "3M", 4e9: "4B", 2e15: "2e+15", 0.0004: "0.0004"} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestXLabels: the first and the last label, evenly spaced ones between
// that do not overlap; fewer as the chart narrows.
func TestXLabels(t *testing.T) {
	face, _ := newFace()
	pts := month()
	prev := len(pts) + 1
	for _, w := range []int{MaxWidth, 600, 300, MinSize} {
		l := newLayout(pts, w, 200, face)
		got := l.xLabels(face)
		if got[0] != 0 || (w >= 300 && got[len(got)-1] != len(pts)-1) {
			t.Errorf("width %d: %v, want the first and the last", w, got)
		}
		for i := 1; i < len(got); i++ {
			_, end := l.labelSpan(face, got[i-1])
			if start, _ := l.labelSpan(face, got[i]); start < end+labelGap*Scale {
				t.Errorf("width %d: labels %d and %d overlap", w, got[i-1], got[i])
			}
			if i < len(got)-1 && i > 1 && got[i]-got[i-1] != got[1]-got[0] {
				t.Errorf("width %d: %v are not evenly spaced", w, got)
			}
		}
		if len(got) > prev {
			t.Errorf("width %d: %d labels, more than %d on a wider chart", w, len(got), prev)
		}
		prev = len(got)
		t.Logf("width %d: %v", w, got)
	}
	if got := newLayout(pts[:2], 600, 200, face).xLabels(face); len(got) != 2 {
		t.Errorf("two points: %v", got)
	}
}

// TestGolden: the same points give the same bytes, and the bytes of
// testdata/month.png (look at it after a change; -update writes it).
func TestGolden(t *testing.T) {
	a, err := PNG(month(), 600, 200)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := PNG(month(), 600, 200)
	if !bytes.Equal(a, b) {
		t.Fatal("two charts of the same points differ")
	}
	file := filepath.Join("testdata", "month.png")
	if *update {
		if err := os.WriteFile(file, a, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, want) {
		t.Errorf("the chart differs from %s: look at the new one and run go test -run TestGolden -update", file)
	}
}

func BenchmarkPNG(b *testing.B) {
	pts := month()
	for b.Loop() {
		if _, err := PNG(pts, 600, 200); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzPNG: any values, labels and sizes give an error or a PNG of the
// size asked for, and an error exactly when an argument is out of the
// limits.
// fuzz-count: 100x
func FuzzPNG(f *testing.F) {
	f.Add(600, 200, "Mon ", []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40})
	f.Add(100, 100, "", []byte{})
	f.Add(250, 120, "ü", []byte{0xff, 0xff, 0x7f, 0x7f, 1, 0, 0, 0})
	f.Add(MaxWidth+1, MaxHeight, "x", []byte{})    // large sizes are slow: one seed past them
	f.Add(600, 200, "x", []byte{0, 0, 0xc0, 0x7f}) // NaN
	f.Add(600, 200, "x", []byte{0, 0, 0x80, 0xbf}) // -1
	f.Add(99, 2000, "x", []byte{1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, w, h int, label string, data []byte) {
		// a point from every 4 bytes, a float32 as they come: negative,
		// NaN, infinite, tiny and huge ones included
		var pts []Point
		valid := w >= MinSize && w <= MaxWidth && h >= MinSize && h <= MaxHeight
		for i := 0; i+4 <= len(data); i += 4 {
			v := float64(math.Float32frombits(binary.LittleEndian.Uint32(data[i:])))
			p := Point{Label: label + fmt.Sprint(i/4), Value: v}
			valid = valid && v >= 0 && !math.IsInf(v, 0) && len(p.Label) <= MaxLabel
			pts = append(pts, p)
		}
		valid = valid && len(pts) <= MaxPoints
		b, err := PNG(pts, w, h)
		if (err == nil) != valid {
			t.Fatalf("%d×%d, %d points: error %v, want one: %v", w, h, len(pts), err, !valid)
		}
		if err != nil {
			return
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds().Size() != image.Pt(w*Scale, h*Scale) {
			t.Fatalf("%v pixels for %d×%d", img.Bounds().Size(), w, h)
		}
	})
}
