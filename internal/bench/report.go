package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON prints the report as one JSON object.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func commas(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func metWord(m bool) string {
	if m {
		return "met"
	}
	return "MISSED"
}

// WriteText prints the report as tables.
func (rep *Report) WriteText(w io.Writer) error {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d CPUs (%s), %d GiB RAM, Linux %s, %s; load average at start %s\n",
		m.CPUs, m.CPUModel, m.MemTotalG, m.Kernel, m.Go, m.LoadAvg)
	fs := ""
	if len(rep.Rounds) > 0 {
		fs = rep.Rounds[0].Fjord.DataFS
	}
	fmt.Fprintf(w, "load: %d keep-alive connections, closed loop, %s warm-up + %s measured per run; data dir on %s\n\n",
		rep.Concurrency, rep.Warmup, rep.Duration, fs)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tserver\t2xx/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tpeak RSS MB\tserver CPU s\tloadgen CPU s\tkernel CPU s\tother CPU s\tidle %\tratio\t")
	for _, rd := range rep.Rounds {
		for _, r := range []*Run{rd.Ceiling, rd.Fjord} {
			ratio := ""
			if r.Target == "fjord" {
				ratio = fmt.Sprintf("%.3f", rd.Ratio)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.1f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%s\t\n",
				rd.Round, r.Target, commas(r.Rate), r.P50MS, r.P90MS, r.P99MS, r.MaxMS, r.PeakRSSMB,
				r.CPU.Server, r.CPU.LoadGen, r.CPU.Kernel, r.CPU.Foreign, r.CPU.IdlePct, ratio)
		}
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tacked\tstored\tpageviews\tcustom\tserver accepted\tvisitors stored/sent\tstats call ms\tjournal group\tshutdown ms\tstored == acked\t")
	for _, rd := range rep.Rounds {
		c := rd.Fjord.Check
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%.0f\t%.1f\t%.0f\t%s\t\n", rd.Round, commas(float64(c.Acked)),
			commas(float64(c.Stored)), commas(float64(c.StoredPageviews)), commas(float64(c.StoredCustom)),
			commas(float64(c.ServerAccepted)), c.Visitors, c.VisitorsSent, c.StatsMS, rd.Fjord.AvgGroup, rd.Fjord.ShutdownMS, yesNo(c.OK))
	}
	tw.Flush()

	s := rep.Summary
	fmt.Fprintf(w, "\nmean: ceiling %s req/s, fjord %s acked events/s, ratio %.3f (rounds %.3f to %.3f); ceiling peak RSS %.0f MB\n",
		commas(s.MeanCeiling), commas(s.MeanFjord), s.MeanRatio, s.MinRatio, s.MaxRatio, s.CeilingRSS)
	for _, t := range s.Targets {
		line := fmt.Sprintf("target %s %s: %.3g, %s", t.Name, t.Want, t.Got, metWord(t.Met))
		if t.Note != "" {
			line += ": " + t.Note
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "stored == acknowledged in every round: %s\n", yesNo(s.StoredOK))
	disc := 0
	for _, rd := range rep.Rounds {
		disc += rd.Ceiling.Discarded + rd.Fjord.Discarded
	}
	if disc > 0 {
		fmt.Fprintf(w, "%d runs were repeated because other processes disturbed them (not shown)\n", disc)
	}
	for _, p := range rep.Warnings {
		fmt.Fprintln(w, "WARNING:", p)
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(w, "PROBLEM:", p)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
