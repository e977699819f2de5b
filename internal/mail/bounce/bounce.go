// Package bounce sorts the mail that comes back to Fjord's sending
// address (PRODUCT §6.2): a bounce that says a recipient's address is bad
// (Hard), one that says delivery failed for now or for an unclear reason
// (Soft), an out-of-office or other automatic answer (AutoReply), and
// everything else (NotBounce).
//
// The caller stops mailing an address only on a Hard result, so Hard
// needs evidence that the address itself is bad: an enhanced status code
// that says so (5.1.1 bad mailbox, 5.1.10 null MX or recipient not found,
// 5.1.6 mailbox moved, 5.2.1 mailbox disabled), or a permanent failure
// with a vague or addressing status (5.0.0, 5.1.x, 5.2.0, 5.5.0, an SMTP
// 5xx reply without one, or a non-standard bounce without any code) whose
// text says the user is unknown, does not exist or is disabled.
//
// Everything else that is still a failure is Soft: a delay, any 4.x.x, a
// full mailbox or a message too large (5.2.2, 5.2.3, 5.3.4), and a
// refusal by policy, as spam or for the sender's reputation (5.7.x):
// those say nothing about the address, which will take the next message.
// Ambiguous bounces are Soft too, and any soft sign beats a hard one. A
// recipient must never be suppressed on a soft bounce: a wrongly
// suppressed address silently loses mail its owner wanted, while a bad
// address left Soft costs only another bounce.
//
// Evidence is taken in this order: an RFC 3464 or RFC 6533 delivery
// report (judged recipient by recipient from Action, Status and
// Diagnostic-Code), an Amazon SES bounce notification, a non-standard
// bounce (recognised by its sender or subject, judged from the SMTP
// replies and known phrases of its text), then the signs of an automatic
// reply (RFC 3834 Auto-Submitted and the headers and subjects of common
// responders). A report comes first because delivery reports often carry
// "Auto-Submitted: auto-replied" themselves.
//
// Classify reads at most MaxSize bytes, visits at most maxParts MIME parts
// nested at most maxDepth deep, scans at most textPerPart bytes of each
// text part, and uses only linear-time matching, so a hostile message
// costs a bounded, small amount of work.
package bounce

import (
	"bytes"
	"unicode/utf8"
)

// Kind is what a message is, as far as mailing its recipients goes.
type Kind string

const (
	Hard      Kind = "hard"       // address does not exist, disabled, refused permanently
	Soft      Kind = "soft"       // mailbox full, temporary failure, delay; also every ambiguous bounce
	AutoReply Kind = "auto-reply" // out-of-office, vacation, auto-responders: ignored by the caller
	NotBounce Kind = "none"       // unrelated mail (a person's reply, spam, a feedback report...)
)

// MaxSize: Classify reads at most this many bytes of a message.
const MaxSize = 1 << 20

// Result is the verdict on one message.
type Result struct {
	Kind Kind
	// Recipients are the failed addresses the bounce names (RFC 3464
	// Final-Recipient / Original-Recipient, or found in the text of
	// non-standard bounces), lower case, de-duplicated; may be empty. For
	// a Hard result they are only the recipients judged hard.
	Recipients []string
	// Status is the enhanced status code like "5.1.1" when known, else "".
	Status string
	// Reason is a short explanation safe to show to an administrator, at
	// most maxReason bytes, printable, without line breaks.
	Reason string
}

// Limits on the work done for one message.
const (
	maxParts    = 100      // MIME parts visited
	maxDepth    = 10       // multipart nesting
	textPerPart = 64 << 10 // bytes of one text or report part that are read
	textTotal   = 256 << 10
	maxReason   = 200
	maxRcpts    = 50 // recipients kept in a Result
)

// Classify says what kind of message raw is. It never panics and runs in
// time linear in its input (bounded by MaxSize).
func Classify(raw []byte) (res Result) {
	// A bug in the parser must not take down the process that reads the
	// mailbox: an unclassifiable message is simply not acted upon. The
	// fuzz test calls classify directly, so this does not hide panics
	// from it.
	defer func() {
		if recover() != nil {
			res = Result{Kind: NotBounce, Reason: "the message could not be read"}
		}
	}()
	return classify(raw)
}

func classify(raw []byte) Result {
	if len(raw) > MaxSize {
		raw = raw[:MaxSize]
	}
	raw = skipMboxLine(raw)
	m := readMessage(raw)

	if r, ok := fromReports(m); ok {
		return r.finish()
	}
	if r, ok := fromSES(m); ok {
		return r.finish()
	}
	if why := bounceSign(m); why != "" {
		return fromText(m, "non-standard bounce, "+why).finish()
	}
	if why := autoReplySign(m); why != "" {
		return Result{Kind: AutoReply, Reason: "automatic reply (" + why + ")"}.finish()
	}
	return Result{Kind: NotBounce, Reason: "not a bounce or an automatic reply"}.finish()
}

// skipMboxLine drops the "From sender date" line that starts a message
// taken from an mbox file, which is not a header field.
func skipMboxLine(raw []byte) []byte {
	if !bytes.HasPrefix(raw, []byte("From ")) {
		return raw
	}
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		return raw[i+1:]
	}
	return nil
}

// finish makes a Result safe to hand out: a clean Reason, and no Status or
// Recipients on results that are not bounces.
func (r Result) finish() Result {
	if r.Kind == AutoReply || r.Kind == NotBounce {
		r.Recipients = nil
		r.Status = ""
	}
	r.Reason = cleanText(r.Reason, maxReason)
	return r
}

// cleanText makes s printable on one line and at most max bytes: control
// and format characters (line breaks, bidi overrides) and invalid UTF-8
// become spaces, runs of spaces one, and a cut is marked with "...".
func cleanText(s string, max int) string {
	var b []byte
	space := true // drops leading spaces
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		if r == utf8.RuneError || !isPrintable(r) || r == ' ' {
			if !space {
				b = append(b, ' ')
			}
			space = true
			continue
		}
		b = utf8.AppendRune(b, r)
		space = false
		if len(b) > max {
			break
		}
	}
	b = bytes.TrimRight(b, " ")
	if len(b) <= max {
		return string(b)
	}
	cut := max - len("...")
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(bytes.TrimRight(b[:cut], " ")) + "..."
}
