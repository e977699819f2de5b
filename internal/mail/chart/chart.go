// Package chart draws the line chart of an e-mail report as a PNG, in Go,
// so that a report needs no browser and no external renderer: a line over
// a filled area, on a white card with a border, light grid lines at 0,
// half and the maximum, and labels on both axes.
//
// The card brings its own white background, so the chart reads the same
// when a mail client shows the message in dark mode (clients do not
// invert images); only its rounded corners are transparent.
//
// The image is drawn at Scale times the size asked for: PNG(points, 600,
// 200) is 1200×400 pixels, to be shown as <img width="600" height="200">,
// sharp on the high-density screens of phones and laptops.
package chart

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// Point is one value of the chart.
type Point struct {
	Label string // the x-axis label of the point, e.g. "Mon 3"
	Value float64
}

// Limits of PNG's arguments, sizes in display pixels. They bound the
// memory one chart takes, about 8 bytes for each of its image's pixels
// (w×h×Scale²): an e-mail is about 600 display pixels wide.
const (
	Scale     = 2 // image pixels per display pixel
	MinSize   = 100
	MaxWidth  = 1200
	MaxHeight = 800
	MaxPoints = 1000
	MaxLabel  = 64 // bytes
)

// Colours (0xRRGGBB), chosen against the white card, not the reader's
// background.
const (
	colBorder = 0xd5dbe3
	colCard   = 0xffffff
	colGrid   = 0xebeef2
	colAxis   = 0xc9d0d9 // the grid line at 0
	colArea   = 0xdce7fd
	colLine   = 0x2563eb
	colText   = 0x555f6d
)

// fill is an opaque colour as a source image.
func fill(rgb uint32) *image.Uniform {
	return image.NewUniform(color.RGBA{uint8(rgb >> 16), uint8(rgb >> 8), uint8(rgb), 0xff})
}

// Sizes in display pixels.
const (
	pad      = 12  // card edge to labels
	radius   = 8   // of the card's corners
	fontSize = 11  // labels
	gap      = 6   // between a label and the plot
	lineW    = 2.5 // of the chart's line
	labelGap = 10  // the least room between two x labels
)

// PNG draws the points as a line over a filled area, on a white card with
// light grid lines and y-axis labels (0, half, and the maximum rounded up
// to a number whose half is round too), and x labels under the first and
// the last point and evenly between them as far as they fit. The image
// is w×h display pixels, Scale times as many in the PNG. No points, or all
// zeros, draw a flat line at 0 with the labels. A negative, NaN or
// infinite value is an error, and so are sizes, counts and labels out of
// the limits above.
func PNG(points []Point, w, h int) ([]byte, error) {
	if err := check(points, w, h); err != nil {
		return nil, err
	}
	face, err := newFace()
	if err != nil {
		return nil, err
	}
	defer face.Close()
	l := newLayout(points, w, h, face)
	img := image.NewRGBA(image.Rect(0, 0, w*Scale, h*Scale))
	drawCard(img)
	drawGrid(img, l, face)
	drawSeries(img, l)
	drawXLabels(img, l, face)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func check(points []Point, w, h int) error {
	if w < MinSize || w > MaxWidth || h < MinSize || h > MaxHeight {
		return fmt.Errorf("chart: size %d×%d is not within %d×%d to %d×%d", w, h, MinSize, MinSize, MaxWidth, MaxHeight)
	}
	if len(points) > MaxPoints {
		return fmt.Errorf("chart: %d points, at most %d", len(points), MaxPoints)
	}
	for i, p := range points {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) || p.Value < 0 {
			return fmt.Errorf("chart: point %d (%q): the value %v is not a number ≥ 0", i, p.Label, p.Value)
		}
		if len(p.Label) > MaxLabel {
			return fmt.Errorf("chart: point %d: the label is longer than %d bytes", i, MaxLabel)
		}
	}
	return nil
}

// newFace is Go Regular at the label size. It is made per chart: an
// opentype.Face caches glyphs and is not safe for concurrent use.
func newFace() (font.Face, error) {
	f, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return nil, err
	}
	return opentype.NewFace(f, &opentype.FaceOptions{Size: fontSize * Scale, DPI: 72, Hinting: font.HintingNone})
}

// layout places the plot area and the points, in image pixels.
type layout struct {
	w, h                     float64 // the image
	left, right, top, bottom float64 // the plot area
	max                      float64 // the value at the top
	points                   []Point
	capHeight, descent       float64 // of the labels' font
}

func newLayout(points []Point, w, h int, face font.Face) layout {
	m := face.Metrics()
	l := layout{
		w: float64(w * Scale), h: float64(h * Scale),
		max: niceMax(points), points: points,
		capHeight: fixedFloat(m.CapHeight), descent: fixedFloat(m.Descent),
	}
	labelW := 0.0
	for _, v := range []float64{0, l.max / 2, l.max} {
		labelW = math.Max(labelW, fixedFloat(font.MeasureString(face, formatValue(v))))
	}
	l.left = pad*Scale + labelW + gap*Scale
	l.right = l.w - pad*Scale
	// the top label is centred on the top grid line; the x labels hang
	// below the plot
	l.top = pad*Scale + l.capHeight/2
	l.bottom = l.h - pad*Scale - l.descent - l.capHeight - gap*Scale
	return l
}

// x is the position of point i; a single point sits at the left.
func (l layout) x(i int) float64 {
	if len(l.points) < 2 {
		return l.left
	}
	return l.left + (l.right-l.left)*float64(i)/float64(len(l.points)-1)
}

// y is the height of value v.
func (l layout) y(v float64) float64 {
	return l.bottom - (l.bottom-l.top)*(v/l.max)
}

// niceMax is the y-axis maximum: the largest value rounded up to 1, 2,
// 4, 6, 8 or 10 times a power of ten, so that its half is round too; but
// 2 rather than 1, since a count's axis should not read 0.5, and 2 when
// all values are zero.
func niceMax(points []Point) float64 {
	max := 0.0
	for _, p := range points {
		max = math.Max(max, p.Value)
	}
	if max == 0 {
		return 2
	}
	base := math.Pow(10, math.Floor(math.Log10(max)))
	for _, m := range []float64{1, 2, 4, 6, 8, 10} {
		if m == 1 && base == 1 {
			continue
		}
		// the tolerance keeps a value that is nice already (0.6) from
		// going up to the next over a rounding error in the power of ten;
		// Max keeps the value at or below the top all the same
		if nice := m * base; nice >= max*(1-1e-12) && nice > 0 && !math.IsInf(nice, 0) {
			return math.Max(nice, max)
		}
	}
	return max // so large or so small that rounding overflows
}

// formatValue writes an axis value briefly: 1.5k, 20k, 3M.
func formatValue(v float64) string {
	switch {
	case v >= 1e9 && v < 1e15:
		return strconv.FormatFloat(v/1e9, 'g', 4, 64) + "B"
	case v >= 1e6 && v < 1e9:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case v >= 1e3 && v < 1e6:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// drawCard fills the image with a white card with a one-pixel border and
// rounded corners, so the chart stands apart from any background. Only
// the corners are rasterized: the rest is plain rectangles, and much
// faster.
func drawCard(img *image.RGBA) {
	b := img.Bounds()
	draw.Draw(img, b, fill(colBorder), image.Point{}, draw.Src)
	draw.Draw(img, b.Inset(Scale), fill(colCard), image.Point{}, draw.Src)
	const r = radius * Scale
	w, h := b.Dx(), b.Dy()
	for _, m := range []image.Point{{0, 0}, {w - r, 0}, {0, h - r}, {w - r, h - r}} {
		// a corner's square holds a quarter of discs about the inner
		// corner (cx, cy): transparent outside, the border, the card
		sq := image.Rectangle{Min: m, Max: m.Add(image.Pt(r, r))}
		cx, cy := float64(max(m.X, r)-m.X), float64(max(m.Y, r)-m.Y)
		draw.Draw(img, sq, image.Transparent, image.Point{}, draw.Src)
		z := vector.NewRasterizer(r, r)
		disc(z, cx, cy, r)
		z.Draw(img, sq, fill(colBorder), image.Point{})
		z.Reset(r, r)
		disc(z, cx, cy, r-Scale)
		z.Draw(img, sq, fill(colCard), image.Point{})
	}
}

// drawGrid draws the grid lines at 0, half and the maximum, each with its
// label right-aligned left of the plot.
func drawGrid(img *image.RGBA, l layout, face font.Face) {
	for _, v := range []float64{0, l.max / 2, l.max} {
		y := int(math.Round(l.y(v)))
		col := uint32(colGrid)
		if v == 0 {
			col = colAxis
		}
		r := image.Rect(int(l.left), y-Scale/2, int(math.Ceil(l.right)), y-Scale/2+Scale)
		draw.Draw(img, r, fill(col), image.Point{}, draw.Src)
		s := formatValue(v)
		x := l.left - gap*Scale - fixedFloat(font.MeasureString(face, s))
		drawText(img, face, s, x, float64(y)+l.capHeight/2)
	}
}

// drawSeries fills the area under the points and draws their line over
// it; no points draw the line at 0.
func drawSeries(img *image.RGBA, l layout) {
	z := vector.NewRasterizer(img.Bounds().Dx(), img.Bounds().Dy())
	xs, ys := l.path()
	z.MoveTo(float32(xs[0]), float32(l.bottom))
	for i := range xs {
		z.LineTo(float32(xs[i]), float32(ys[i]))
	}
	z.LineTo(float32(xs[len(xs)-1]), float32(l.bottom))
	z.ClosePath()
	z.Draw(img, img.Bounds(), fill(colArea), image.Point{})
	z.Reset(img.Bounds().Dx(), img.Bounds().Dy())
	stroke(z, xs, ys, lineW*Scale/2)
	z.Draw(img, img.Bounds(), fill(colLine), image.Point{})
}

// path is the line's vertices; fewer than two points span the plot at
// their value (0 without any).
func (l layout) path() (xs, ys []float64) {
	switch len(l.points) {
	case 0:
		return []float64{l.left, l.right}, []float64{l.bottom, l.bottom}
	case 1:
		y := l.y(l.points[0].Value)
		return []float64{l.left, l.right}, []float64{y, y}
	}
	for i, p := range l.points {
		xs = append(xs, l.x(i))
		ys = append(ys, l.y(p.Value))
	}
	return xs, ys
}

// stroke adds a polyline of half-width r with round joins and caps: a
// rectangle per segment and a disc per vertex. The rasterizer adds up
// signed coverage, so every shape is wound the same way; otherwise an
// overlap would cancel into a hole.
func stroke(z *vector.Rasterizer, xs, ys []float64, r float64) {
	for i := 1; i < len(xs); i++ {
		dx, dy := xs[i]-xs[i-1], ys[i]-ys[i-1]
		d := math.Hypot(dx, dy)
		if d == 0 {
			continue
		}
		nx, ny := -dy/d*r, dx/d*r
		polygon(z, [][2]float64{
			{xs[i-1] + nx, ys[i-1] + ny}, {xs[i] + nx, ys[i] + ny},
			{xs[i] - nx, ys[i] - ny}, {xs[i-1] - nx, ys[i-1] - ny},
		})
	}
	for i := range xs {
		disc(z, xs[i], ys[i], r)
	}
}

// disc adds a circle as a 32-gon, wound like stroke's rectangles.
func disc(z *vector.Rasterizer, cx, cy, r float64) {
	const n = 32
	var pts [][2]float64
	for k := 0; k < n; k++ {
		a := -2 * math.Pi * float64(k) / n
		pts = append(pts, [2]float64{cx + r*math.Cos(a), cy + r*math.Sin(a)})
	}
	polygon(z, pts)
}

func polygon(z *vector.Rasterizer, pts [][2]float64) {
	z.MoveTo(float32(pts[0][0]), float32(pts[0][1]))
	for _, p := range pts[1:] {
		z.LineTo(float32(p[0]), float32(p[1]))
	}
	z.ClosePath()
}

// drawXLabels writes the x labels that xLabels picks: the first
// left-aligned under its point, the last right-aligned, the others
// centred.
func drawXLabels(img *image.RGBA, l layout, face font.Face) {
	baseline := l.bottom + gap*Scale + l.capHeight
	for _, i := range l.xLabels(face) {
		s := l.points[i].Label
		x, _ := l.labelSpan(face, i)
		drawText(img, face, s, x, baseline)
	}
}

// labelSpan is where point i's label starts and ends.
func (l layout) labelSpan(face font.Face, i int) (x0, x1 float64) {
	w := fixedFloat(font.MeasureString(face, l.points[i].Label))
	x := l.x(i)
	switch i {
	case 0:
		return x, x + w
	case len(l.points) - 1:
		return x - w, x
	}
	return x - w/2, x + w/2
}

// xLabels picks the points whose labels are written: the first, the
// last, and every k-th between them for the least k at which no two
// overlap. The last is left out only when it would overlap the first.
func (l layout) xLabels(face font.Face) []int {
	n := len(l.points)
	if n == 0 {
		return nil
	}
	if n == 1 {
		return []int{0}
	}
	spans := make([][2]float64, n)
	for i := range spans {
		spans[i][0], spans[i][1] = l.labelSpan(face, i)
	}
	fits := func(a, b int) bool { return spans[a][1]+labelGap*Scale <= spans[b][0] }
	if !fits(0, n-1) {
		return []int{0}
	}
	for k := 1; k < n-1; k++ {
		if picked, ok := everyKth(n, k, fits); ok {
			return picked
		}
	}
	return []int{0, n - 1}
}

// everyKth is 0, k, 2k, ... and n-1 if no two neighbours overlap; a
// regular step that crowds the last label is dropped.
func everyKth(n, k int, fits func(a, b int) bool) ([]int, bool) {
	picked := []int{0}
	for i := k; i < n-1; i += k {
		if !fits(picked[len(picked)-1], i) {
			return nil, false
		}
		picked = append(picked, i)
	}
	for len(picked) > 1 && !fits(picked[len(picked)-1], n-1) {
		picked = picked[:len(picked)-1]
	}
	return append(picked, n-1), true
}

func drawText(img *image.RGBA, face font.Face, s string, x, baseline float64) {
	d := font.Drawer{Dst: img, Src: fill(colText), Face: face,
		Dot: fixed.Point26_6{X: floatFixed(x), Y: floatFixed(baseline)}}
	d.DrawString(s)
}

func fixedFloat(v fixed.Int26_6) float64 { return float64(v) / 64 }

func floatFixed(v float64) fixed.Int26_6 { return fixed.Int26_6(math.Round(v * 64)) }
