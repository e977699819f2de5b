package bounce

import (
	"net/mail"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// fromText classifies a message known to be a bounce by its human-readable
// text: a non-standard bounce, or a report without readable recipient
// fields. source says how it was known.
func fromText(m *parsed, source string) Result {
	text := strings.Join(m.texts, "\n")
	v := judgeText(text, isDelaySubject(headerText(m.header, "Subject")))
	return Result{
		Kind:       v.kind,
		Recipients: textRecipients(text, headerAddrs(m.header)),
		Status:     v.status,
		Reason:     reason(v.status, v.why, source, evidenceLine(text, v.at)),
	}
}

// judgeText judges a bounce's text as a whole. Any sign of a temporary
// failure anywhere (a 4xx reply, a soft phrase, a delay subject) makes it
// Soft: the text cannot be split reliably by recipient, and Soft is the
// safe side.
func judgeText(text string, delayed bool) verdict {
	replies := scanReplies(text)
	var class byte
	status, at := "", -1
	for _, want := range []byte{'4', '5'} {
		for _, r := range replies {
			if r.class() != want {
				continue
			}
			if class == 0 {
				class, at = want, r.at
			}
			if r.status != "" && r.status[0] == want {
				status = r.status
				break
			}
		}
		if class != 0 {
			break
		}
	}
	if delayed {
		return verdict{kind: Soft, status: status, why: "delivery delayed", at: at}
	}
	v := judgeFailure(class, status, text)
	if v.at < 0 {
		v.at = at
	}
	return v
}

// evidenceLine is the line of text around offset at, trimmed, or "".
func evidenceLine(text string, at int) string {
	if at < 0 || at >= len(text) {
		return ""
	}
	start := strings.LastIndexByte(text[:at], '\n') + 1
	end := strings.IndexByte(text[at:], '\n')
	if end < 0 {
		end = len(text)
	} else {
		end += at
	}
	line := strings.TrimSpace(text[start:end])
	if len(line) > 160 {
		line = line[:160]
	}
	return line
}

// reason is "status why (source): evidence", cleaned by Result.finish.
func reason(status, why, source, evidence string) string {
	s := why
	if status != "" {
		s = status + " " + why
	}
	s += " (" + source + ")"
	if ev := strings.TrimSpace(evidence); ev != "" {
		s += ": " + ev
	}
	return s
}

// addRecipients appends the valid, normalized addrs to list, without
// duplicates and up to maxRcpts.
func addRecipients(list []string, addrs ...string) []string {
	for _, a := range addrs {
		a = normalizeAddr(a)
		if a == "" || len(list) >= maxRcpts || contains(list, a) {
			continue
		}
		list = append(list, a)
	}
	return list
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// normalizeAddr returns addr lower-cased without surrounding brackets,
// quotes and punctuation, or "" if it is not a plausible local@domain.
func normalizeAddr(addr string) string {
	addr = strings.Trim(strings.TrimSpace(addr), `<>"'()[],;:.`)
	addr = strings.ToLower(addr)
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" || len(local) > 64 || len(domain) > 255 || len(addr) > 254 {
		return ""
	}
	if strings.Contains(domain, "@") || !strings.Contains(domain, ".") || strings.Contains(domain, "..") ||
		strings.HasPrefix(domain, ".") || strings.HasPrefix(domain, "-") {
		return ""
	}
	for _, r := range addr {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`<>()[],;:"\`, r) || !isPrintable(r) {
			return ""
		}
	}
	return addr
}

// roleLocalPart are the local parts of addresses that bounces mention
// but that are never the failed recipient.
var roleLocalPart = map[string]bool{"mailer-daemon": true, "postmaster": true, "mailerdaemon": true, "abuse": true}

// textRecipients finds the failed addresses named in a bounce's text:
// those in the forms that name the failed recipient (Postfix and qmail
// "<addr>:", Sendmail "<addr>... User unknown", Exim "RCPT TO:<addr>",
// Exim and Gmail's line holding only the address, Gmail and Exchange's
// "delivered to addr" and "message to addr"), or if there are none, any
// address at all. The bounce's own header addresses (our sending
// address) and role addresses such as postmaster are left out.
func textRecipients(text string, exclude []string) []string {
	lower := dropSenderLines(asciiLower(text))
	var named, any []string
	lineStart := 0 // start of the line holding the current '@'
	scanned := 0   // lineStart is right for offsets up to here
	for off := 0; off < len(lower) && len(named) < maxRcpts; {
		at := strings.IndexByte(lower[off:], '@')
		if at < 0 {
			break
		}
		at += off
		l, r := at, at+1
		for l > 0 && isAddrByte(lower[l-1]) {
			l--
		}
		for r < len(lower) && isAddrByte(lower[r]) {
			r++
		}
		off = r
		if i := strings.LastIndexByte(lower[scanned:l], '\n'); i >= 0 {
			lineStart = scanned + i + 1
		}
		scanned = l
		a := normalizeAddr(lower[l:r])
		if a == "" || contains(exclude, a) {
			continue
		}
		if local, _, _ := strings.Cut(a, "@"); roleLocalPart[local] {
			continue
		}
		if namesRecipient(lower, lineStart, l, r) {
			named = addRecipients(named, a)
		} else {
			any = addRecipients(any, a)
		}
	}
	if len(named) > 0 {
		return named
	}
	return any
}

// isAddrByte: bytes an address in running text may hold.
func isAddrByte(c byte) bool {
	return c > ' ' && c != 0x7f && !strings.ContainsRune(`<>()[],;:"@`, rune(c))
}

// namesRecipient says whether the address at lower[l:r] is in one of the
// forms bounces use for the failed recipient. Each look around stops at
// the first byte that does not fit, so the scan stays linear.
func namesRecipient(lower string, lineStart, l, r int) bool {
	if l > 0 && lower[l-1] == '<' && r < len(lower) && lower[r] == '>' {
		return true
	}
	b := l
	for b > lineStart && (lower[b-1] == ' ' || lower[b-1] == '\t' || lower[b-1] == '<') {
		b--
	}
	e := r
	for e < len(lower) && (lower[e] == ' ' || lower[e] == '\t' || lower[e] == '>' || lower[e] == '\r') {
		e++
	}
	if b == lineStart && (e == len(lower) || lower[e] == '\n') {
		return true // alone on its line
	}
	before := strings.TrimSuffix(lower[max(lineStart, b-12):b], ":")
	for _, w := range []string{"to", "recipient", "recipients"} {
		if strings.HasSuffix(before, w) && (len(before) == len(w) || !isWordByte(before[len(before)-len(w)-1])) {
			return true
		}
	}
	return false
}

// dropSenderLines removes the lines of an SMTP transcript that name the
// sender (">>> MAIL From:<...>"), which is us, not a failed recipient.
func dropSenderLines(lower string) string {
	if !strings.Contains(lower, "mail from:") {
		return lower
	}
	var b strings.Builder
	for line := range strings.Lines(lower) {
		if !strings.Contains(line, "mail from:") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// headerAddrs are the addresses of the bounce's own header fields.
func headerAddrs(h textproto.Header) []string {
	var out []string
	for _, k := range []string{"From", "To", "Cc", "Reply-To", "Return-Path", "Sender", "Delivered-To", "X-Original-To"} {
		for _, v := range h.Values(k) {
			list, err := mail.ParseAddressList(v)
			if err != nil {
				out = addRecipients(out, v)
				continue
			}
			for _, a := range list {
				out = addRecipients(out, a.Address)
			}
		}
	}
	return out
}
