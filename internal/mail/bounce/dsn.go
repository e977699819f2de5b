package bounce

import (
	"strconv"
	"strings"
)

// rcpt is one per-recipient block of a delivery report (RFC 3464 §2.3).
type rcpt struct {
	orig   string // Original-Recipient, normalized
	final  string // Final-Recipient, normalized
	action string // lower case, first word
	status string // normalized enhanced code, "" if absent or malformed
	diag   string // Diagnostic-Code without its type ("smtp; ")
	fields int    // recipient fields seen, to tell a block from the per-message one
}

// maxRcptBlocks bounds the blocks taken from one report.
const maxRcptBlocks = 500

// parseReport reads the blocks of a delivery-status body: the
// per-message fields, then one block per recipient, separated by blank
// lines. It is lenient: continuation lines are unfolded, lines that are
// not fields are skipped, and a recipient field that repeats within a
// block (a sender that forgot the blank line) starts a new recipient.
func parseReport(body []byte) []rcpt {
	var out []rcpt
	var cur rcpt
	flush := func() {
		if cur.fields > 0 && len(out) < maxRcptBlocks {
			out = append(out, cur)
		}
		cur = rcpt{}
	}
	for _, f := range reportFields(normalizeLines(body)) {
		if f.name == "" { // a blank line
			flush()
			continue
		}
		name := strings.ToLower(f.name)
		switch name {
		case "original-recipient":
			if cur.orig != "" {
				flush()
			}
			cur.orig = reportAddress(f.value)
		case "final-recipient":
			if cur.final != "" {
				flush()
			}
			cur.final = reportAddress(f.value)
		case "action":
			if cur.action != "" {
				flush()
			}
			cur.action = strings.ToLower(firstWord(f.value))
		case "status":
			if cur.status != "" {
				flush()
			}
			cur.status = parseStatus(f.value)
		case "diagnostic-code":
			cur.diag = diagText(f.value)
		default:
			continue
		}
		cur.fields++
	}
	flush()
	return out
}

// field is one unfolded "Name: value" line; an empty name stands for a
// blank line.
type field struct{ name, value string }

// reportFields splits a report into fields and blank lines. Continuation
// lines are collected and joined once per field, so that a field folded
// over thousands of lines still costs linear time.
func reportFields(text string) []field {
	var out []field
	var name string
	var value []string
	open := false
	end := func() {
		if open {
			out = append(out, field{name, strings.Join(value, " ")})
		}
		open, value = false, value[:0]
	}
	for line := range strings.SplitSeq(text, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			end()
			if len(out) > 0 && out[len(out)-1].name != "" {
				out = append(out, field{})
			}
		case line[0] == ' ' || line[0] == '\t':
			if open {
				value = append(value, strings.TrimSpace(line))
			}
		default:
			end()
			n, v, ok := strings.Cut(line, ":")
			if !ok || n == "" || strings.ContainsAny(n, " \t") {
				continue
			}
			name, value, open = n, append(value, strings.TrimSpace(v)), true
		}
	}
	end()
	return out
}

// diagText drops a Diagnostic-Code's type ("smtp; ").
func diagText(d string) string {
	if _, rest, ok := strings.Cut(d, ";"); ok {
		return strings.TrimSpace(rest)
	}
	return strings.TrimSpace(d)
}

func firstWord(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t;("); i >= 0 {
		s = s[:i]
	}
	return s
}

// reportAddress reads "address-type; address". RFC 6533's utf-8 type may
// write characters as \x{HEX} (and must, in a message/delivery-status).
func reportAddress(v string) string {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok {
		addr = v
	}
	if strings.EqualFold(strings.TrimSpace(typ), "utf-8") {
		addr = unescapeUTF8(addr)
	}
	return normalizeAddr(addr)
}

// unescapeUTF8 decodes RFC 6533 \x{HEX} escapes; malformed ones stay.
func unescapeUTF8(s string) string {
	if !strings.Contains(s, `\x{`) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, `\x{`)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i:]
		// Look for the closing brace only where it can be (six hex
		// digits at most): searching the whole rest for every "\x{" would
		// be quadratic.
		end := strings.IndexByte(s[:min(len(s), 10)], '}')
		if end < 0 {
			b.WriteString(s[:3])
			s = s[3:]
			continue
		}
		n, err := strconv.ParseUint(s[3:end], 16, 32)
		if err != nil || n > 0x10FFFF || n < 0x20 {
			b.WriteString(s[:3])
			s = s[3:]
			continue
		}
		b.WriteRune(rune(n))
		s = s[end+1:]
	}
}

// judgeRcpt judges one recipient block.
func judgeRcpt(r rcpt) verdict {
	status := r.status
	replies := scanReplies(r.diag)
	// A vague status (absent, or x.0.0 as Exim always writes) gives way to
	// the more precise code of the remote server's reply, of the same
	// class.
	if status == "" || strings.HasSuffix(status, ".0.0") {
		for _, rp := range replies {
			if rp.status != "" && (status == "" || rp.status[0] == status[0]) {
				status = rp.status
				break
			}
		}
	}
	var class byte
	switch {
	case status != "":
		class = status[0]
	case len(replies) > 0:
		class = replies[0].class()
	}
	action := r.action
	if action == "" { // Action is required; guess it from the class
		switch class {
		case '2':
			action = "delivered"
		case '4':
			action = "delayed"
		}
	}
	switch action {
	case "delivered", "relayed", "expanded":
		return verdict{kind: NotBounce, status: status, why: "message " + action, at: -1}
	case "delayed":
		return verdict{kind: Soft, status: status, why: "delivery delayed", at: -1}
	}
	return judgeFailure(class, status, r.diag)
}

// fromReports classifies a message by its delivery reports. ok is false
// when the message has none and does not say it is one.
func fromReports(m *parsed) (Result, bool) {
	var rcpts []rcpt
	global := false
	for _, rp := range m.reports {
		rcpts = append(rcpts, parseReport(rp.body)...)
		global = global || rp.global
	}
	source := "RFC 3464 report"
	if global {
		source = "RFC 6533 report"
	}
	if len(rcpts) == 0 {
		switch m.reportType {
		case "delivery-status", "global-delivery-status":
			// A report we cannot read is still a bounce; its text may say more.
			return fromText(m, "delivery report without recipient fields"), true
		case "disposition-notification":
			return Result{Kind: AutoReply, Reason: "read receipt (RFC 8098 disposition notification)"}, true
		case "feedback-report":
			// Decided here, before the sender is looked at: a complaint
			// may come from a postmaster address.
			return Result{Kind: NotBounce, Reason: "feedback (abuse) report (RFC 5965), not a bounce"}, true
		}
		if len(m.reports) > 0 {
			return fromText(m, "delivery report without recipient fields"), true
		}
		return Result{}, false
	}

	verdicts := make([]verdict, len(rcpts))
	for i, r := range rcpts {
		verdicts[i] = judgeRcpt(r)
	}
	upgradeFromText(m, rcpts, verdicts)

	for _, k := range []Kind{Hard, Soft} {
		var res Result
		n := 0
		for i, v := range verdicts {
			if v.kind != k {
				continue
			}
			if n == 0 {
				res = Result{Kind: k, Status: v.status, Reason: reason(v.status, v.why, source, rcpts[i].diag)}
			}
			n++
			res.Recipients = addRecipients(res.Recipients, rcpts[i].orig, rcpts[i].final)
		}
		if n > 1 {
			res.Reason = strconv.Itoa(n) + " recipients; first: " + res.Reason
		}
		if n > 0 {
			return res, true
		}
	}
	return Result{Kind: NotBounce, Reason: "delivery report: " + verdicts[0].why + ", not a failure"}, true
}

// upgradeFromText settles a report whose only failed recipient has a
// vague permanent status (Exim writes 5.0.0 for everything, and puts
// "Unrouteable address" only in its text) by the report's human-readable
// text, when that text alone would be judged Hard. With several failed
// recipients the text cannot be tied to one of them, so nothing changes.
func upgradeFromText(m *parsed, rcpts []rcpt, verdicts []verdict) {
	failed := -1
	for i, v := range verdicts {
		if v.kind == NotBounce {
			continue
		}
		if failed >= 0 || v.kind == Hard {
			return
		}
		failed = i
	}
	if failed < 0 {
		return
	}
	v := verdicts[failed]
	if !v.ambiguous || rcpts[failed].action != "failed" || (v.status != "" && v.status[0] != '5') || !upgradable(v.status) {
		return
	}
	t := judgeText(strings.Join(m.texts, "\n"), false)
	if t.kind != Hard {
		return
	}
	status := v.status
	if t.status != "" && (status == "" || strings.HasSuffix(status, ".0.0")) {
		status = t.status
	}
	verdicts[failed] = verdict{kind: Hard, status: status, why: t.why + ", per the report's text", at: -1}
	if rcpts[failed].diag == "" {
		rcpts[failed].diag = evidenceLine(strings.Join(m.texts, "\n"), t.at)
	}
}
