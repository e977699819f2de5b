// Package digest writes the mail of an e-mail report (PRODUCT §6.1): an
// HTML part for mail clients (tables and inline CSS, which the common
// clients render alike; colours that hold in dark mode, where clients
// invert or keep them) and a plain-text part with the same numbers.
package digest

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// Digest is what one mailing shows.
type Digest struct {
	Report                    string // the saved report's name
	Site                      string
	Period                    string // e.g. "23 – 29 March 2026"
	Numbers                   []Number
	ChartCID                  string // the inline chart's Content-ID; "": no chart
	ChartAlt                  string
	Head                      []string
	Rows                      [][]string
	More                      int    // rows of the report not in the table (they are in the CSV)
	CSVName                   string // the attachment's file name; "": none
	CSVNote                   string // e.g. that the attachment holds only the first rows
	ReportURL, UnsubscribeURL string
}

// Number is a key figure of the period, with its change against the
// period before.
type Number struct {
	Label, Value string
	Change       string // "+12%", "−3 pts", "" when there is nothing to compare
	Better       bool   // the change is good news (fewer bounces are)
	Worse        bool
}

// Change describes cur against prev: a percentage for counts and
// durations, points for rates; lowerIsBetter for the bounce rate.
func Change(cur, prev float64, points, lowerIsBetter bool) (text string, better, worse bool) {
	var d float64
	switch {
	case points:
		d = cur - prev
		text = fmt.Sprintf("%+.1f pts", d)
	case prev == 0 && cur == 0:
		return "±0%", false, false
	case prev == 0:
		return "new", !lowerIsBetter, lowerIsBetter
	default:
		d = (cur - prev) / prev * 100
		text = fmt.Sprintf("%+.0f%%", math.Round(d))
	}
	text = strings.Replace(text, "-", "−", 1)
	if math.Abs(d) < 0.05 {
		return strings.Replace(strings.Replace(text, "+", "±", 1), "−", "±", 1), false, false
	}
	up := d > 0
	return text, up != lowerIsBetter, up == lowerIsBetter
}

// Count formats a count with thin spaces between thousands.
func Count(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Duration formats seconds as "1m 05s".
func Duration(sec float64) string {
	d := time.Duration(math.Round(sec)) * time.Second
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
}

var htmlTmpl = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><meta name="supported-color-schemes" content="light dark">
<title>{{.Report}} · {{.Site}}</title>
<style>
@media (prefers-color-scheme: dark) {
  .card { background: #1f2430 !important; color: #e8eaf0 !important; }
  .muted { color: #a9b0c0 !important; }
  .cell { border-color: #3a4152 !important; }
  a { color: #8fb8ff !important; }
}
</style></head>
<body style="margin:0;padding:0;background:#eef1f6;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#eef1f6;"><tr><td align="center" style="padding:24px 12px;">
<table role="presentation" class="card" width="100%" cellpadding="0" cellspacing="0" style="max-width:640px;background:#ffffff;color:#1b1f2a;border-radius:8px;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;">
<tr><td style="padding:24px 24px 8px 24px;">
<p class="muted" style="margin:0;color:#5a6272;font-size:13px;">{{.Site}} · {{.Period}}</p>
<h1 style="margin:4px 0 0 0;font-size:22px;line-height:1.3;">{{.Report}}</h1>
</td></tr>
<tr><td style="padding:8px 24px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr>
{{range .Numbers}}<td valign="top" style="padding:8px 8px 8px 0;">
<div class="muted" style="color:#5a6272;font-size:12px;">{{.Label}}</div>
<div style="font-size:20px;font-weight:bold;">{{.Value}}</div>
{{if .Change}}<div style="font-size:12px;font-weight:bold;color:{{if .Better}}#16794a{{else if .Worse}}#b3261e{{else}}#5a6272{{end}};">{{.Change}}</div>{{end}}
</td>{{end}}
</tr></table>
</td></tr>
{{if .ChartCID}}<tr><td style="padding:8px 24px;"><img src="cid:{{.ChartCID}}" width="592" alt="{{.ChartAlt}}" style="display:block;width:100%;max-width:592px;height:auto;border:0;"></td></tr>{{end}}
<tr><td style="padding:8px 24px;">
<table width="100%" cellpadding="0" cellspacing="0" style="border-collapse:collapse;font-size:14px;">
<thead><tr>{{range .Head}}<th align="left" class="cell muted" style="padding:6px 8px 6px 0;border-bottom:2px solid #d5dae3;color:#5a6272;font-weight:bold;">{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr>{{range .}}<td class="cell" style="padding:6px 8px 6px 0;border-bottom:1px solid #e3e7ee;">{{.}}</td>{{end}}</tr>{{else}}<tr><td class="cell" colspan="{{len .Head}}" style="padding:6px 0;">Nothing in this period.</td></tr>{{end}}</tbody>
</table>
{{if .More}}<p class="muted" style="margin:8px 0 0 0;color:#5a6272;font-size:13px;">and {{.More}} more rows{{if .CSVName}}, all in the attached {{.CSVName}}{{end}}.</p>{{end}}
</td></tr>
<tr><td style="padding:16px 24px 24px 24px;">
<p style="margin:0 0 12px 0;"><a href="{{.ReportURL}}" style="color:#1a56db;font-weight:bold;">Open the report in Fjord</a></p>
{{if .CSVNote}}<p class="muted" style="margin:0 0 12px 0;color:#5a6272;font-size:13px;">{{.CSVNote}}</p>{{end}}
<p class="muted" style="margin:0;color:#5a6272;font-size:12px;">You receive this because you are a recipient of this e-mail report. <a href="{{.UnsubscribeURL}}" style="color:#1a56db;">Unsubscribe</a> from it.</p>
</td></tr>
</table></td></tr></table>
</body></html>
`))

// HTML is the mail's HTML part.
func HTML(d Digest) (string, error) {
	var b bytes.Buffer
	if err := htmlTmpl.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Text is the mail's plain-text part: the same numbers and table.
func Text(d Digest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s · %s\n\n", d.Report, d.Site, d.Period)
	for _, n := range d.Numbers {
		fmt.Fprintf(&b, "%s: %s", n.Label, n.Value)
		if n.Change != "" {
			fmt.Fprintf(&b, " (%s)", n.Change)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	writeTable(&b, d.Head, d.Rows)
	if d.More > 0 {
		fmt.Fprintf(&b, "… and %d more rows", d.More)
		if d.CSVName != "" {
			fmt.Fprintf(&b, ", all in the attached %s", d.CSVName)
		}
		b.WriteString(".\n")
	}
	if d.CSVNote != "" {
		b.WriteString(d.CSVNote + "\n")
	}
	fmt.Fprintf(&b, "\nThe report in Fjord: %s\nUnsubscribe from this e-mail report: %s\n", d.ReportURL, d.UnsubscribeURL)
	return b.String()
}

// writeTable lays the rows out in columns padded to their widest cell
// (counted in runes; at most 40 per cell).
func writeTable(b *strings.Builder, head []string, rows [][]string) {
	cut := func(s string) string {
		r := []rune(s)
		if len(r) > 40 {
			return string(r[:39]) + "…"
		}
		return s
	}
	width := make([]int, len(head))
	all := append([][]string{head}, rows...)
	for _, row := range all {
		for i, c := range row {
			if i < len(width) {
				width[i] = max(width[i], len([]rune(cut(c))))
			}
		}
	}
	if len(rows) == 0 {
		b.WriteString("Nothing in this period.\n")
		return
	}
	for _, row := range all {
		for i, c := range row {
			if i >= len(width) {
				break
			}
			c = cut(c)
			b.WriteString(c)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-len([]rune(c))+2))
			}
		}
		b.WriteString("\n")
	}
}
