package bounce

import (
	"regexp"
	"strconv"
	"strings"
)

// verdict is the judgement of one failure: a DSN recipient's fields, or
// the text of a non-standard bounce.
type verdict struct {
	kind   Kind
	status string // enhanced status code, "" if unknown
	why    string // a few words for the Reason
	at     int    // offset of the evidence in the judged text, -1 if none
	// ambiguous: a failure with nothing said either way about the
	// address, which other evidence (a report's text) may settle.
	ambiguous bool
}

// phrase is a sign looked for in lower-cased (ASCII) text: any of its
// words, whole words, or patterns. Plain substring search keeps the cost
// of scanning a long text low; a pattern is only tried in a small window
// around the first occurrences of its anchor words.
type phrase struct {
	why   string
	words []string // substrings
	whole []string // words that must not be part of a longer word
	near  []near
}

// near is a pattern tried on lower[i-before : i+len(anchor)+after] for
// each of the first maxAnchors occurrences i of one of its anchors. Go's
// regexp runs in time linear in its input, and each window is small.
type near struct {
	anchors       []string
	before, after int
	re            *regexp.Regexp
}

// maxAnchors bounds the windows tried per anchor. Text that repeats an
// anchor more often may hide a hard phrase, never a soft one that is a
// plain word, so the cap errs on the safe side.
const maxAnchors = 32

// softPhrases say the failure is about the mailbox's state, the message,
// the sender or the moment, not about whether the address exists. Any of
// them makes a failure Soft, whatever else it says.
var softPhrases = []phrase{
	{why: "mailbox full",
		words: []string{"quota", "inbox full", "inbox is full", "insufficient storage",
			"insufficient system storage", "out of storage", "out of disk space", "storage space", "storage allocation", "storage limit"},
		near: []near{{[]string{"mailbox"}, 0, 40, regexp.MustCompile(`^mailbox[^.\n]{0,30}\b(full|exceeded)`)}}},
	{why: "message too large",
		words: []string{"too large", "too big", "size limit", "message size"},
		near:  []near{{[]string{"exceed"}, 0, 30, regexp.MustCompile(`^exceeds? (the )?(maximum|max|size|limit)`)}}},
	{why: "greylisted",
		words: []string{"greylist", "graylist", "grey-list", "gray-list"}},
	{why: "delivery delayed or timed out",
		words: []string{"delayed", "deferred", "will keep trying", "will continue trying", "will continue to try", "still being retried",
			"still trying", "not yet been delivered", "retry time", "timeout", "timed out", "time out"}},
	{why: "temporary failure",
		words: []string{"temporar", "try again", "try later", "again later", "transient"}},
	{why: "rate limited",
		words: []string{"rate limit", "rate-limit", "too many", "throttl", "unexpected volume"},
		whole: []string{"rate"}},
	{why: "refused as spam or malware",
		words: []string{"spam", "junk", "unsolicited", "phish", "virus", "malware"}},
	{why: "sender or its server blocked",
		words: []string{"blocklist", "block list", "blacklist", "black list", "denylist", "deny list", "spamhaus", "spamcop",
			"barracuda", "dnsbl", "reputation"},
		whole: []string{"rbl", "blocked", "banned"}},
	{why: "refused by policy",
		words: []string{"policy", "policies", "not authorized", "not authorised", "not permitted", "prohibited", "unauthenticated",
			"authentication"},
		whole: []string{"denied", "dmarc", "spf", "dkim"}},
}

// hardPhrases say the address is bad. They count only on a permanent
// failure (5.x.x, an SMTP 5xx reply, or a non-standard bounce with no code
// at all) without any soft phrase.
var hardPhrases = []phrase{
	{why: "address does not exist",
		words: []string{"user unknown", "unknown user", "unknown recipient", "unknown local recipient", "unknown mailbox",
			"unknown local mailbox", "unknown address", "recipient unknown", "mailbox unknown", "no such user", "no such recipient",
			"no such mailbox", "no such account", "no such person", "user not found", "recipient not found", "mailbox not found",
			"account not found", "address not found", "recipnotfound", "recipientnotfound", "no mailbox here",
			"unroutable address", "unrouteable address", "invalid recipient", "invalid mailbox", "not a valid recipient",
			"not a valid mailbox", "not a valid user"},
		near: []near{
			// Gmail: "The email account that you tried to reach does not exist."
			{[]string{"exist"}, 64, 1, regexp.MustCompile(`\b(user|account|mailbox|address|recipient)\b[^.\n]{0,40}\b(does not|doesn't|doesnt|did not|no longer) exist`)},
			// Yahoo: "This user doesn't have a yahoo.com account"
			{[]string{"account"}, 80, 0, regexp.MustCompile(`doesn'?t have an? [a-z0-9.-]+ account`)},
		}},
	{why: "domain accepts no mail (null MX)",
		words: []string{"null mx", "nullmx"}},
	{why: "mailbox disabled",
		near: []near{{[]string{"disabled", "deactivated"}, 64, 0,
			regexp.MustCompile(`\b(account|mailbox|user|address)\b[^.\n]{0,40}\b(disabled|deactivated)`)}}},
}

// firstPhrase returns the reason of the first phrase of table found in
// lower, and where it was found.
func firstPhrase(table []phrase, lower string) (string, int) {
	for _, p := range table {
		if at := p.find(lower); at >= 0 {
			return p.why, at
		}
	}
	return "", -1
}

// find returns the earliest offset of p in lower found, or -1.
func (p phrase) find(lower string) int {
	best := -1
	better := func(i int) {
		if i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	for _, w := range p.words {
		better(strings.Index(lower, w))
	}
	for _, w := range p.whole {
		better(indexWord(lower, w))
	}
	for _, n := range p.near {
		better(n.find(lower))
	}
	return best
}

func (n near) find(lower string) int {
	for _, a := range n.anchors {
		off := 0
		for range maxAnchors {
			i := strings.Index(lower[off:], a)
			if i < 0 {
				break
			}
			i += off
			start := max(0, i-n.before)
			end := min(len(lower), i+len(a)+n.after)
			if loc := n.re.FindStringIndex(lower[start:end]); loc != nil {
				return start + loc[0]
			}
			off = i + len(a)
		}
	}
	return -1
}

// indexWord finds w in s where it is not part of a longer word (the
// ASCII word characters of regexp's \b).
func indexWord(s, w string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], w)
		if i < 0 {
			return -1
		}
		i += off
		end := i + len(w)
		if (i == 0 || !isWordByte(s[i-1])) && (end == len(s) || !isWordByte(s[end])) {
			return i
		}
		off = i + 1
	}
}

func isWordByte(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
}

// hardStatuses are the enhanced codes that by themselves say the address
// is bad (RFC 3463, RFC 7505 for 5.1.10).
var hardStatuses = map[string]string{
	"5.1.1":  "address does not exist",
	"5.1.10": "recipient not found or domain has a null MX",
	"5.1.6":  "mailbox has moved",
	"5.2.1":  "mailbox disabled",
}

// softByStatus names the enhanced codes that are about the mailbox's
// state, the message or policy, never about the address.
func softByStatus(status string) string {
	if status == "" {
		return ""
	}
	switch status[1:] {
	case ".2.2":
		return "mailbox full"
	case ".2.3", ".3.4":
		return "message too large"
	case ".4.7":
		return "delivery time expired"
	}
	if subject(status) == 7 {
		return "refused by policy, as spam or for reputation (not about the address)"
	}
	return ""
}

// upgradable: statuses vague enough that a text saying the user is
// unknown settles them (other, addressing, mailbox status other,
// protocol other). A routing, system, content or policy status is not.
func upgradable(status string) bool {
	if status == "" {
		return true
	}
	switch subject(status) {
	case 0, 1:
		return true
	case 2, 5:
		return detail(status) == 0
	}
	return false
}

// judgeFailure judges a failure of class ('4', '5', or 0 for unknown) and
// status from its text (a Diagnostic-Code, or a bounce's words).
func judgeFailure(class byte, status, text string) verdict {
	lower := asciiLower(text)
	switch class {
	case '4':
		return verdict{kind: Soft, status: status, why: "temporary failure", at: -1}
	case '2':
		return verdict{kind: Soft, status: status, why: "failure reported with a success code", at: -1, ambiguous: true}
	}
	if why := softByStatus(status); why != "" {
		return verdict{kind: Soft, status: status, why: why, at: -1}
	}
	if why, at := firstPhrase(softPhrases, lower); why != "" {
		return verdict{kind: Soft, status: status, why: why, at: at}
	}
	if why, ok := hardStatuses[status]; ok {
		_, at := firstPhrase(hardPhrases, lower)
		return verdict{kind: Hard, status: status, why: why, at: at}
	}
	if why, at := firstPhrase(hardPhrases, lower); why != "" && upgradable(status) {
		return verdict{kind: Hard, status: status, why: why, at: at}
	}
	if class == '5' {
		return verdict{kind: Soft, status: status, why: "permanent failure that does not say the address is bad", at: -1, ambiguous: true}
	}
	return verdict{kind: Soft, status: status, why: "failure of unclear cause", at: -1, ambiguous: true}
}

// reply is an SMTP reply code ("550") and/or enhanced status code
// ("5.1.1") found in text.
type reply struct {
	code   string // "" when only a status was found, as qmail's "(#5.1.1)"
	status string
	at     int
}

func (r reply) class() byte {
	if r.code != "" {
		return r.code[0]
	}
	return r.status[0]
}

// scanReplies finds SMTP replies in text in one pass: a 4xx or 5xx code
// standing alone as a word and followed by a space, '-' or ':', with an
// optional enhanced status code after it, and qmail's "#5.1.1". A bare
// d.d.d elsewhere is not taken: IP addresses and version numbers look
// the same.
func scanReplies(text string) []reply {
	var out []reply
	for i := 0; i < len(text) && len(out) < 100; i++ {
		c := text[i]
		if c == '#' {
			if st, end := parseEnhanced(text, i+1); st != "" {
				out = append(out, reply{status: st, at: i})
				i = end - 1
			}
			continue
		}
		if (c != '4' && c != '5') || !replyStart(text, i) {
			continue
		}
		if i+3 >= len(text) || text[i+1] < '0' || text[i+1] > '5' || !isDigit(text[i+2]) {
			continue
		}
		if sep := text[i+3]; sep != ' ' && sep != '-' && sep != ':' {
			continue
		}
		r := reply{code: text[i : i+3], at: i}
		j := i + 4
		for j < len(text) && (text[j] == ' ' || text[j] == '#') {
			j++
		}
		if st, end := parseEnhanced(text, j); st != "" {
			r.status = st
			j = end
		}
		out = append(out, r)
		i = j - 1
	}
	return out
}

// replyStart: a reply code must not continue a word, a number or an
// address ("10.4.5", "x550", "+550").
func replyStart(s string, i int) bool {
	if i == 0 {
		return true
	}
	switch c := s[i-1]; {
	case isDigit(c), 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		return false
	case c == '.', c == '-', c == '_', c == '/', c == '=', c == '+', c == '@', c == '%', c == ',':
		return false
	}
	return true
}

// parseEnhanced reads an RFC 3463 status code (class 2, 4 or 5, subject
// and detail of one to three digits) at s[i:], and returns it without
// leading zeros and the offset after it; "" if there is none. A code
// followed by more dotted digits is part of something else.
func parseEnhanced(s string, i int) (string, int) {
	if i >= len(s) || (s[i] != '2' && s[i] != '4' && s[i] != '5') {
		return "", i
	}
	if i+1 >= len(s) || s[i+1] != '.' {
		return "", i
	}
	subj, j := digits(s, i+2)
	if subj == "" || j >= len(s) || s[j] != '.' {
		return "", i
	}
	det, k := digits(s, j+1)
	if det == "" {
		return "", i
	}
	if k < len(s) && (isDigit(s[k]) || s[k] == '.' && k+1 < len(s) && isDigit(s[k+1])) {
		return "", i
	}
	a, _ := strconv.Atoi(subj)
	b, _ := strconv.Atoi(det)
	return string(s[i]) + "." + strconv.Itoa(a) + "." + strconv.Itoa(b), k
}

// digits reads one to three digits at s[i:].
func digits(s string, i int) (string, int) {
	j := i
	for j < len(s) && j-i < 3 && isDigit(s[j]) {
		j++
	}
	return s[i:j], j
}

// parseStatus reads a DSN Status value such as "5.1.1" or
// "5.1.1 (bad destination mailbox)".
func parseStatus(v string) string {
	i := 0
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	st, _ := parseEnhanced(v, i)
	return st
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// subject and detail are the second and third numbers of a normalized
// status code.
func subject(status string) int {
	n, _ := strconv.Atoi(part(status, 1))
	return n
}

func detail(status string) int {
	n, _ := strconv.Atoi(part(status, 2))
	return n
}

func part(status string, n int) string {
	f := strings.Split(status, ".")
	if n < len(f) {
		return f[n]
	}
	return ""
}
