package bounce

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// dsnMessage builds a delivery report from MAILER-DAEMON: a human-readable
// part saying text, and a message/delivery-status part of the given
// per-recipient blocks.
func dsnMessage(text string, blocks ...string) string {
	return "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n" +
		"To: reports@fjord.example.org\n" +
		"Subject: Undelivered Mail Returned to Sender\n" +
		"Auto-Submitted: auto-replied\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\n\n" +
		"--b1\nContent-Type: text/plain\n\n" + text + "\n" +
		"--b1\nContent-Type: message/delivery-status\n\n" +
		"Reporting-MTA: dns; mx.example.net\n\n" + strings.Join(blocks, "\n") +
		"\n--b1--\n"
}

func block(rcpt, action, status, diag string) string {
	s := "Final-Recipient: rfc822; " + rcpt + "\n"
	if action != "" {
		s += "Action: " + action + "\n"
	}
	if status != "" {
		s += "Status: " + status + "\n"
	}
	if diag != "" {
		s += "Diagnostic-Code: smtp; " + diag + "\n"
	}
	return s
}

// plainBounce is a non-standard bounce from MAILER-DAEMON whose text is body.
func plainBounce(body string) string {
	return "From: MAILER-DAEMON@mx.example.net\nTo: reports@fjord.example.org\n" +
		"Subject: failure notice\n\n" + body
}

// nest wraps inner (a whole entity: header and body) in depth
// multipart/mixed layers.
func nest(inner string, depth int) string {
	for i := range depth {
		b := fmt.Sprintf("n%d", i)
		inner = "Content-Type: multipart/mixed; boundary=" + b + "\n\n--" + b + "\n" + inner + "\n--" + b + "--\n"
	}
	return inner
}

const dsnPart = "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n" +
	"Final-Recipient: rfc822; deep@example.com\nAction: failed\nStatus: 5.1.1\n"

func TestEdgeCases(t *testing.T) {
	giant := strings.Repeat("a", 900_000)
	tests := []struct {
		name   string
		raw    string
		kind   Kind
		rcpts  []string
		status string
	}{
		{"empty", "", NotBounce, nil, ""},
		{"only a blank line", "\n", NotBounce, nil, ""},
		{"headers only", "From: a@example.com\nSubject: hello", NotBounce, nil, ""},
		{"bounce headers only", "From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n", Soft, nil, ""},
		{"MAILER-DAEMON without a domain", "From: Mail Delivery System <MAILER-DAEMON>\nSubject: Warning\n\n<a@example.com>: 550 5.1.1 user unknown\n",
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"bare MAILER-DAEMON", "From: MAILER-DAEMON\nSubject: Warning\n\n<a@example.com>: 550 5.1.1 user unknown\n",
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"Mail Delivery Subsystem without an address", "From: Mail Delivery Subsystem <>\nSubject: Warning\n\n<a@example.com>: 550 5.1.1 user unknown\n",
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"giant header line", "From: a@example.com\nSubject: " + giant + "\n\nhello\n", NotBounce, nil, ""},
		{"giant header line before a bounce",
			"X-Junk: " + giant + "\n" + plainBounce("<x@example.com>:\n550 5.1.1 User unknown\n"),
			Hard, []string{"x@example.com"}, "5.1.1"},
		{"malformed header line", "From: MAILER-DAEMON@mx.example.net\nthis is no header\nSubject: failure notice\n\n<x@example.com>: 550 5.1.1 User unknown\n",
			Hard, []string{"x@example.com"}, "5.1.1"},
		{"malformed first header line", " folded first\nFrom: MAILER-DAEMON@mx.example.net\n\n<x@example.com>: 550 5.1.1 User unknown\n",
			Hard, []string{"x@example.com"}, "5.1.1"},
		{"fields after a malformed line do not override", "From: a@example.com\nbad line\nFrom: MAILER-DAEMON@mx.example.net\n\n<x@example.com>: 550 5.1.1 User unknown\n",
			NotBounce, nil, ""},
		{"too many malformed header lines", "From: MAILER-DAEMON@mx.example.net\n" + strings.Repeat("bad\n", 25) + "\n<x@example.com>: 550 5.1.1 User unknown\n",
			Soft, nil, ""},
		{"mbox From line", "From MAILER-DAEMON Mon Mar  3 06:00:00 2025\n" + plainBounce("<x@example.com>:\n550 5.1.1 User unknown\n"),
			Hard, []string{"x@example.com"}, "5.1.1"},
		// Only the first 64 KiB of a text part are read; and the text part
		// after a big attachment is read only if it starts before MaxSize.
		{"evidence past 64 KiB of text", plainBounce(strings.Repeat("padding line\n", 6000) + "<x@example.com>: 550 5.1.1 User unknown\n"),
			Soft, nil, ""},
		{"evidence within 64 KiB of text", plainBounce(strings.Repeat("padding line\n", 4000) + "<x@example.com>: 550 5.1.1 User unknown\n"),
			Hard, []string{"x@example.com"}, "5.1.1"},
		{"evidence past MaxSize", afterAttachment(MaxSize), Soft, nil, ""},
		{"evidence before MaxSize", afterAttachment(MaxSize - 2000), Hard, []string{"x@example.com"}, "5.1.1"},

		// Multipart limits: a report nested 5 deep is read, one nested 30
		// deep is not (and the bounce then has no evidence); likewise a
		// report after 20 parts and one after 150.
		{"report nested 5 deep", "From: MAILER-DAEMON@mx.example.net\n" + nest(dsnPart, 5), Hard, []string{"deep@example.com"}, "5.1.1"},
		{"report nested 30 deep", "From: MAILER-DAEMON@mx.example.net\n" + nest(dsnPart, 30), Soft, nil, ""},
		{"text past the total budget", manyTexts(5), Soft, nil, ""},
		{"text within the total budget", manyTexts(3), Hard, []string{"x@example.com"}, "5.1.1"},
		{"report after 20 parts", manyParts(20), Hard, []string{"deep@example.com"}, "5.1.1"},
		{"report after 150 parts", manyParts(150), Soft, nil, ""},
		{"multipart without boundary", "From: MAILER-DAEMON@mx.example.net\nContent-Type: multipart/report\n\n--x\n\n" + dsnPart, Soft, nil, ""},
		{"unterminated multipart", "From: MAILER-DAEMON@mx.example.net\nContent-Type: multipart/report; boundary=x\n\n--x\n" + dsnPart,
			Hard, []string{"deep@example.com"}, "5.1.1"},

		// Broken transfer encodings keep what decoded before the error.
		{"broken base64 report", "From: MAILER-DAEMON@mx.example.net\nContent-Type: multipart/report; boundary=x\n\n--x\n" +
			"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n!!!! not base64 @@@@\n--x--\n", Soft, nil, ""},
		{"base64 report with a broken tail", "From: MAILER-DAEMON@mx.example.net\nContent-Type: multipart/report; boundary=x\n\n--x\n" +
			"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n" +
			base64.StdEncoding.EncodeToString([]byte("Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; b64@example.com\nAction: failed\nStatus: 5.1.1\n\n")) +
			"\n@@@@!!!!\n--x--\n", Hard, []string{"b64@example.com"}, "5.1.1"},
		{"unknown transfer encoding", "From: MAILER-DAEMON@mx.example.net\nContent-Transfer-Encoding: x-uuencode\n\n<x@example.com>: 550 5.1.1 User unknown\n",
			Hard, []string{"x@example.com"}, "5.1.1"},
		{"unknown charset", "From: MAILER-DAEMON@mx.example.net\nContent-Type: text/plain; charset=x-klingon\n\n<x@example.com>: 550 5.1.1 User unknown\n",
			Hard, []string{"x@example.com"}, "5.1.1"},

		// Reports: several recipients, and what each field does.
		{"failed and delayed", dsnMessage("", block("a@example.com", "failed", "5.1.1", "550 5.1.1 user unknown"), block("b@example.com", "delayed", "4.4.1", "")),
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"delayed and failed", dsnMessage("", block("b@example.com", "delayed", "4.4.1", ""), block("a@example.com", "failed", "5.1.1", "")),
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"hard and full", dsnMessage("", block("a@example.com", "failed", "5.1.1", ""), block("full@example.com", "failed", "5.2.2", "mailbox full")),
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"two hard", dsnMessage("", block("a@example.com", "failed", "5.1.1", ""), block("b@example.com", "failed", "5.1.10", "")),
			Hard, []string{"a@example.com", "b@example.com"}, "5.1.1"},
		{"full and delayed", dsnMessage("", block("full@example.com", "failed", "5.2.2", ""), block("b@example.com", "delayed", "4.4.1", "")),
			Soft, []string{"full@example.com", "b@example.com"}, "5.2.2"},
		{"delivered", dsnMessage("", block("a@example.com", "delivered", "2.0.0", "250 2.0.0 OK")), NotBounce, nil, ""},
		{"expanded", dsnMessage("", block("list@example.com", "expanded", "2.0.0", "")), NotBounce, nil, ""},
		{"delivered and failed", dsnMessage("", block("a@example.com", "delivered", "2.0.0", ""), block("b@example.com", "failed", "5.1.1", "")),
			Hard, []string{"b@example.com"}, "5.1.1"},
		{"no Action, status 5.1.1", dsnMessage("", block("a@example.com", "", "5.1.1", "")), Hard, []string{"a@example.com"}, "5.1.1"},
		{"no Action, status 4.2.2", dsnMessage("", block("a@example.com", "", "4.2.2", "")), Soft, []string{"a@example.com"}, "4.2.2"},
		{"no Action, status 2.0.0", dsnMessage("", block("a@example.com", "", "2.0.0", "")), NotBounce, nil, ""},
		{"delayed with status 5.1.1", dsnMessage("", block("a@example.com", "delayed", "5.1.1", "")), Soft, []string{"a@example.com"}, "5.1.1"},
		{"failed with status 4.4.7", dsnMessage("", block("a@example.com", "failed", "4.4.7", "")), Soft, []string{"a@example.com"}, "4.4.7"},
		{"5.0.0 made precise by the diagnostic", dsnMessage("", block("a@example.com", "failed", "5.0.0", "550 5.1.1 <a@example.com>... User unknown")),
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"5.0.0 refined, soft words still count", dsnMessage("", block("a@example.com", "failed", "5.0.0", "451 4.4.1 earlier try timed out; then 550 5.1.1 user unknown")),
			Soft, []string{"a@example.com"}, "5.1.1"},
		{"5.0.0 refined by the reply of its class, not an earlier 4xx", dsnMessage("", block("a@example.com", "failed", "5.0.0", "first 451 4.3.0, last 550 5.1.1 no such user")),
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"5.0.0 with a vague diagnostic", dsnMessage("", block("a@example.com", "failed", "5.0.0", "550 mailbox unavailable")),
			Soft, []string{"a@example.com"}, "5.0.0"},
		{"5.0.0 settled by the text", dsnMessage("  a@example.com\n    Unrouteable address", block("a@example.com", "failed", "5.0.0", "")),
			Hard, []string{"a@example.com"}, "5.0.0"},
		{"5.0.0 not settled by a text with a soft sign", dsnMessage("  a@example.com\n    unknown user; mailbox full", block("a@example.com", "failed", "5.0.0", "")),
			Soft, []string{"a@example.com"}, "5.0.0"},
		{"text does not settle two recipients", dsnMessage("  a@example.com\n    Unrouteable address",
			block("a@example.com", "failed", "5.0.0", ""), block("b@example.com", "failed", "5.0.0", "")),
			Soft, []string{"a@example.com", "b@example.com"}, "5.0.0"},
		{"5.1.1 with a spam diagnostic", dsnMessage("", block("a@example.com", "failed", "5.1.1", "550 5.1.1 rejected as spam")),
			Soft, []string{"a@example.com"}, "5.1.1"},
		{"5.7.1 user unknown", dsnMessage("", block("a@example.com", "failed", "5.7.1", "550 5.7.1 user unknown")),
			Soft, []string{"a@example.com"}, "5.7.1"},
		{"no status, SMTP 550 user unknown", dsnMessage("", block("a@example.com", "failed", "", "550 User unknown")),
			Hard, []string{"a@example.com"}, ""},
		{"no status, no diagnostic", dsnMessage("", block("a@example.com", "failed", "", "")), Soft, []string{"a@example.com"}, ""},
		{"recipients de-duplicated and lower-cased", dsnMessage("",
			"Original-Recipient: rfc822;A@Example.COM\nFinal-Recipient: rfc822; <a@example.com>\nAction: failed\nStatus: 5.1.1\n"),
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"original and final differ", dsnMessage("",
			"Original-Recipient: rfc822;alias@example.com\nFinal-Recipient: rfc822;person@example.net\nAction: failed\nStatus: 5.1.1\n"),
			Hard, []string{"alias@example.com", "person@example.net"}, "5.1.1"},
		{"blocks without a blank line", dsnMessage("",
			"Final-Recipient: rfc822;a@example.com\nAction: failed\nStatus: 5.1.1\nFinal-Recipient: rfc822;b@example.com\nAction: delayed\nStatus: 4.0.0\n"),
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"Action before Final-Recipient", dsnMessage("", "Action: failed\nStatus: 5.1.1\nFinal-Recipient: rfc822;a@example.com\n"),
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"folded diagnostic", dsnMessage("", "Final-Recipient: rfc822;a@example.com\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550\n 5.1.1 no such\n\tuser\n"),
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"invalid recipient address", dsnMessage("", block("not an address", "failed", "5.1.1", "")), Hard, nil, "5.1.1"},
		{"report without recipient fields", dsnMessage("  a@example.com\n  retry timeout exceeded", ""), Soft, []string{"a@example.com"}, ""},
		{"report type without report part", "From: x@example.com\nSubject: hi\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n" +
			"--b\nContent-Type: text/plain\n\n<a@example.com>: 550 5.1.1 user unknown\n--b--\n", Hard, []string{"a@example.com"}, "5.1.1"},

		// Auto-replies against bounces.
		{"report with auto-replied header", dsnMessage("", block("a@example.com", "failed", "5.1.1", "")), Hard, []string{"a@example.com"}, "5.1.1"},
		{"auto-reply to a bounce subject", "From: a@example.com\nSubject: Automatic reply: Undeliverable: report\nAuto-Submitted: auto-replied\n\nAway.\n",
			AutoReply, nil, ""},
		{"Auto-Submitted: no", "From: a@example.com\nSubject: Hello\nAuto-Submitted: no\n\nHi.\n", NotBounce, nil, ""},
		{"Precedence bulk alone", "From: news@example.com\nSubject: News\nPrecedence: bulk\n\nNews.\n", NotBounce, nil, ""},
		{"reply to a bounce quoting it", "From: a@example.com\nSubject: RE: Undeliverable: report\nReturn-Path: <>\n\n> 550 5.1.1 <b@example.com> user unknown\n",
			NotBounce, nil, ""},
		{"bounce subject from the null sender", "From: gw@example.org\nReturn-Path: <>\nSubject: Mail delivery failed\n\nCould not deliver to b@example.com.\n",
			Soft, []string{"b@example.com"}, ""},
		{"bounce subject alone", "From: shop@example.org\nSubject: Your parcel could not be delivered\n\nPay the fee.\n", NotBounce, nil, ""},
		{"delay subject beats a 5xx", "From: MAILER-DAEMON@mx.example.net\nSubject: Delivery Status Notification (Delay)\n\n<a@example.com>: 550 5.1.1 user unknown\n",
			Soft, []string{"a@example.com"}, "5.1.1"},

		// Non-standard bounce texts.
		{"4xx anywhere makes it soft", plainBounce("<a@example.com>: 550 5.1.1 user unknown\n<b@example.com>: 451 4.3.0 try later\n"),
			Soft, []string{"a@example.com", "b@example.com"}, "4.3.0"},
		{"copy of the original is not evidence", plainBounce("<a@example.com>: 550 5.1.1 user unknown\n\n------ This is a copy of the message, including all the headers. ------\n\nYour mailbox is full. Quota: 99%\n"),
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"IP addresses are not status codes", plainBounce("<a@example.com>: host 10.5.1.1 said: 550 no thanks\n"),
			Soft, []string{"a@example.com"}, ""},
		// The forms that name the failed recipient win over other
		// addresses in the text.
		{"recipient in angle brackets", plainBounce("<a@example.com>: 550 5.1.1 user unknown\nQuestions: help@mx.example.net\n"),
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"recipient alone on its line", plainBounce("The following address failed:\n\n  a@example.com\n    Unrouteable address\n\nQuestions: help@mx.example.net\n"),
			Hard, []string{"a@example.com"}, ""},
		{"recipient after to", plainBounce("Your message wasn't delivered to a@example.com. The email account that you tried to reach does not exist. Questions: help@mx.example.net\n"),
			Hard, []string{"a@example.com"}, ""},
		{"no named form: every address", plainBounce("a@example.com (a@example.com) user unknown\nb@example.com (b@example.com) user unknown\n"),
			Hard, []string{"a@example.com", "b@example.com"}, ""},
		{"failure notice from the null sender", "From: qmail@mx.example.net\nReturn-Path: <>\nSubject: failure notice\n\n<a@example.com>:\nSorry, no mailbox here by that name.\n",
			Hard, []string{"a@example.com"}, ""},
		{"postmaster is not a recipient", plainBounce("Could not deliver to a@example.com.\nUser unknown.\nContact postmaster@mx.example.net.\n"),
			Hard, []string{"a@example.com"}, ""},
		{"the bounce's own addresses are not recipients", "From: MAILER-DAEMON@mx.example.net\nTo: reports@fjord.example.org\nSubject: failure notice\n\n" +
			"The message from <reports@fjord.example.org> to <a@example.com> failed: 550 5.1.1 user unknown\n",
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"an attached copy of the original is not evidence", "From: MAILER-DAEMON@mx.example.net\nContent-Type: multipart/mixed; boundary=m\n\n" +
			"--m\nContent-Type: text/plain\n\n<a@example.com>: 550 5.1.1 user unknown\n" +
			"--m\nContent-Type: text/plain\nContent-Disposition: attachment; filename=original.txt\n\nYour quota is 90% full. Try again later.\n--m--\n",
			Hard, []string{"a@example.com"}, "5.1.1"},

		{"transcript sender is not a recipient", "From: MAILER-DAEMON@mx.example.net\nTo: someone-else@example.org\nSubject: Returned mail\n\n" +
			">>> MAIL From:<bounces+x1@fjord.example.org>\n<<< 250 ok\n>>> RCPT To:<a@example.com>\n<<< 550 5.1.1 <a@example.com>... User unknown\n",
			Hard, []string{"a@example.com"}, "5.1.1"},
		{"feedback report from a postmaster", "From: postmaster@example.net\nSubject: complaint\nContent-Type: multipart/report; report-type=feedback-report; boundary=f\n\n" +
			"--f\nContent-Type: text/plain\n\nabuse report; 550 5.1.1 user unknown\n--f\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n--f--\n",
			NotBounce, nil, ""},

		// Amazon SES.
		{"SES permanent without status", "From: sns@example.com\nSubject: AWS Notification Message\n\n" +
			`{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"a@example.com"}]}}`,
			Soft, []string{"a@example.com"}, ""},
		{"SES transient with 5.1.1", "From: sns@example.com\nSubject: AWS Notification Message\n\n" +
			`{"notificationType":"Bounce","bounce":{"bounceType":"Transient","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"a@example.com","status":"5.1.1"}]}}`,
			Soft, []string{"a@example.com"}, "5.1.1"},
		{"SES delivery", "From: sns@example.com\nSubject: AWS Notification Message\n\n" + `{"notificationType":"Delivery","delivery":{}}`, NotBounce, nil, ""},
		{"JSON that is not SES", "From: a@example.com\nSubject: data\n\n" + `{"eventType":"click"}`, NotBounce, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for ending, raw := range map[string]string{"LF": tt.raw, "CRLF": strings.ReplaceAll(tt.raw, "\n", "\r\n")} {
				got := Classify([]byte(raw))
				if got.Kind != tt.kind || !slices.Equal(got.Recipients, tt.rcpts) || got.Status != tt.status {
					t.Errorf("%s: got %s %q %q (%s), want %s %q %q", ending, got.Kind, got.Recipients, got.Status, got.Reason, tt.kind, tt.rcpts, tt.status)
				}
				checkResult(t, got)
			}
		})
	}
}

// afterAttachment is a bounce from MAILER-DAEMON whose evidence is in a
// text part after an attachment of n bytes.
func afterAttachment(n int) string {
	return "From: MAILER-DAEMON@mx.example.net\nContent-Type: multipart/mixed; boundary=m\n\n" +
		"--m\nContent-Type: application/octet-stream\n\n" + strings.Repeat("z", n) + "\n" +
		"--m\nContent-Type: text/plain\n\n<x@example.com>: 550 5.1.1 User unknown\n--m--\n"
}

// manyTexts is a bounce from MAILER-DAEMON with n text parts of about 60 KiB,
// the last of which ends with the evidence.
func manyTexts(n int) string {
	var b strings.Builder
	b.WriteString("From: MAILER-DAEMON@mx.example.net\nContent-Type: multipart/mixed; boundary=p\n\n")
	for i := range n {
		b.WriteString("--p\nContent-Type: text/plain\n\n" + strings.Repeat("padding line\n", 60*1024/14))
		if i == n-1 {
			b.WriteString("<x@example.com>: 550 5.1.1 User unknown\n")
		}
	}
	b.WriteString("--p--\n")
	return b.String()
}

// manyParts is a multipart/mixed bounce from MAILER-DAEMON with n empty
// text parts followed by a delivery report.
func manyParts(n int) string {
	var b strings.Builder
	b.WriteString("From: MAILER-DAEMON@mx.example.net\nContent-Type: multipart/mixed; boundary=p\n\n")
	for range n {
		b.WriteString("--p\nContent-Type: text/plain\n\nnothing here\n")
	}
	b.WriteString("--p\n" + dsnPart + "\n--p--\n")
	return b.String()
}

func TestManyRecipientsCapped(t *testing.T) {
	var blocks []string
	for i := range 300 {
		blocks = append(blocks, block(fmt.Sprintf("u%d@example.com", i), "failed", "5.1.1", ""))
	}
	got := Classify([]byte(dsnMessage("", blocks...)))
	if got.Kind != Hard || len(got.Recipients) != maxRcpts || got.Recipients[0] != "u0@example.com" {
		t.Errorf("got %s with %d recipients (%q...)", got.Kind, len(got.Recipients), got.Recipients[:min(3, len(got.Recipients))])
	}
	if !strings.HasPrefix(got.Reason, "300 recipients") {
		t.Errorf("Reason %q does not count the recipients", got.Reason)
	}
}

func TestReasonIsClean(t *testing.T) {
	// A report's line break ends the field, so only other control
	// characters can reach the Reason from a Diagnostic-Code.
	diag := "550 5.1.1 user unknown \x1b[31m\u202egnp.exe\x00\a injected\tline\xff\xfe " + strings.Repeat("very long ", 100)
	got := Classify([]byte(dsnMessage("", block("a@example.com", "failed", "5.1.1", diag))))
	checkResult(t, got)
	if got.Kind != Hard {
		t.Errorf("Kind = %s", got.Kind)
	}
	if !strings.HasSuffix(got.Reason, "...") || strings.ContainsAny(got.Reason, "\x1b\u202e\x00\a\t") {
		t.Errorf("Reason %q", got.Reason)
	}
	if !strings.HasPrefix(got.Reason, "5.1.1 address does not exist (RFC 3464 report): 550 5.1.1 user unknown [31m gnp.exe injected line very long") {
		t.Errorf("Reason %q", got.Reason)
	}
}

func TestHTMLText(t *testing.T) {
	got := htmlText("<html><body><p>Delivery to <b>a@example.com</b> failed.</p><div>550&nbsp;5.1.1 user&lt;x&gt;<br/>unknown</div><p unclosed")
	want := "  \nDelivery to  a@example.com  failed.\n\n550\u00a05.1.1 user<x>\nunknown\n"
	if got != want {
		t.Errorf("htmlText = %q, want %q", got, want)
	}
}

func TestCleanText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"  a \r\n b\t\tc  ", "a b c"},
		{"\u202eevil\u200b", "evil"},
		{"bad \xff utf8", "bad utf8"},
		{strings.Repeat("x", 300), strings.Repeat("x", 197) + "..."},
		{strings.Repeat("é", 150), strings.Repeat("é", 98) + "..."},
	} {
		got := cleanText(tt.in, 200)
		if got != tt.want {
			t.Errorf("cleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if len(got) > 200 {
			t.Errorf("cleanText(%q) has %d bytes", tt.in, len(got))
		}
	}
}

func TestScanReplies(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string // code/status of each reply
	}{
		{"550 5.1.1 user unknown", []string{"550/5.1.1"}},
		{"smtp;550-5.1.1 a\n550 5.1.1 b", []string{"550/5.1.1", "550/5.1.1"}},
		{"554: delivery error", []string{"554/"}},
		{"Sorry. (#5.1.1)", []string{"/5.1.1"}},
		{"<<< 250 2.1.0 ok\n<<< 451 4.03.000 later", []string{"451/4.3.0"}},
		{"host 10.4.5.1 and 192.0.2.50 port 25", nil},
		{"Exim 4.94.2 and 5.1.1.3 and 550.30 and x550 y", nil},
		{"4.16.55.1; see", nil},
		{"#5.1", nil},
		{"550 5.1.1234 odd", []string{"550/"}},
		{"650 600 350 5.1.1", nil},
	} {
		var got []string
		for _, r := range scanReplies(tt.in) {
			got = append(got, r.code+"/"+r.status)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("scanReplies(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]string{
		"5.1.1": "5.1.1", " 5.1.10 (bad)": "5.1.10", "4.07.001": "4.7.1", "2.0.0": "2.0.0",
		"5.1": "", "6.1.1": "", "5.1.1.1": "", "5.1234.1": "", "": "", "x5.1.1": "",
	} {
		if got := parseStatus(in); got != want {
			t.Errorf("parseStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeAddr(t *testing.T) {
	for in, want := range map[string]string{
		"User@Example.COM":      "user@example.com",
		" <a.b+c@example.org>.": "a.b+c@example.org",
		"(a@example.net)":       "a@example.net",
		"JÖRG@example.com":      "jörg@example.com",
		"a@localhost":           "",
		"@example.com":          "",
		"a@b@example.com":       "",
		"a b@example.com":       "",
		"a@example..com":        "",
		"a@.example.com":        "",
		"a\x00@example.com":     "",
		"\u202ea@example.com":   "",
		"":                      "",
	} {
		if got := normalizeAddr(in); got != want {
			t.Errorf("normalizeAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnescapeUTF8(t *testing.T) {
	for in, want := range map[string]string{
		`j\x{F6}rg@example.com`:   "jörg@example.com",
		`\x{1F600}@example.com`:   "😀@example.com",
		`a\x{}b`:                  `a\x{}b`,
		`a\x{110000}b`:            `a\x{110000}b`,
		`a\x{0A}b`:                `a\x{0A}b`,
		`a\x{F6`:                  `a\x{F6`,
		`a\x{F6 } \x{E9}`:         `a\x{F6 } é`,
		`plain@example.com`:       "plain@example.com",
		`\x{\x{F6}@example.com`:   `\x{ö@example.com`,
		`a\x{0000000F6}@example.`: `a\x{0000000F6}@example.`,
	} {
		if got := unescapeUTF8(in); got != want {
			t.Errorf("unescapeUTF8(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestJudgeFailure pins the rules of the package doc, above all that a
// soft sign always wins over a hard one.
func TestJudgeFailure(t *testing.T) {
	for _, tt := range []struct {
		class  byte
		status string
		text   string
		want   Kind
	}{
		{'5', "5.1.1", "", Hard},
		{'5', "5.1.10", "", Hard},
		{'5', "5.1.6", "", Hard},
		{'5', "5.2.1", "", Hard},
		{'5', "5.1.0", "550 5.1.0 no such user", Hard},
		{'5', "5.1.0", "550 5.1.0 address rejected", Soft},
		{'5', "5.0.0", "User unknown in local recipient table", Hard},
		{'5', "5.0.0", "", Soft},
		{'5', "5.1.2", "bad destination system", Soft},
		{'5', "5.5.0", "user unknown", Hard},
		{'5', "5.4.4", "user unknown", Soft},
		{'5', "5.3.0", "user unknown", Soft},
		{'5', "5.6.0", "no such user", Soft},
		{'5', "5.2.2", "user unknown", Soft},
		{'5', "5.2.3", "", Soft},
		{'5', "5.3.4", "", Soft},
		{'5', "5.7.1", "", Soft},
		{'5', "5.7.1", "user unknown", Soft},
		{'5', "5.7.606", "banned sending IP", Soft},
		{'4', "4.1.1", "user unknown", Soft},
		{'4', "", "", Soft},
		{'5', "5.1.1", "mailbox full", Soft},
		{'5', "5.1.1", "over quota", Soft},
		{'5', "5.1.1", "greylisted", Soft},
		{'5', "5.1.1", "try again later", Soft},
		{'5', "5.1.1", "blocked using Spamhaus", Soft},
		{'5', "5.1.1", "DMARC policy", Soft},
		{'5', "5.1.1", "Access denied", Soft},
		{'5', "5.1.1", "message too large", Soft},
		{'5', "5.2.1", "mailbox temporarily disabled", Soft},
		{'5', "5.2.1", "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered", Soft},
		{'5', "5.2.1", "the account was disabled at a moderate pace", Hard},
		{'5', "", "The email account that you tried to reach does not exist", Hard},
		{'5', "", "This user doesn't have a example.com account", Hard},
		{'5', "", "mailbox is disabled", Hard},
		{'5', "", "Sorry, no mailbox here by that name", Hard},
		{'5', "", "Unrouteable address", Hard},
		{'5', "", "RESOLVER.ADR.RecipNotFound", Hard},
		{'5', "", "Recipient address has null MX", Hard},
		{'5', "", "mailbox unavailable", Soft},
		{0, "", "unknown user", Hard},
		{0, "", "", Soft},
		{'2', "2.0.0", "user unknown", Soft},
	} {
		got := judgeFailure(tt.class, tt.status, tt.text)
		if got.kind != tt.want {
			t.Errorf("judgeFailure(%q, %q, %q) = %s (%s), want %s", tt.class, tt.status, tt.text, got.kind, got.why, tt.want)
		}
	}
	// The words of a Reason say which rule decided.
	for _, tt := range []struct {
		class        byte
		status, text string
		why          string
	}{
		{'5', "5.7.1", "550 5.7.1 recipient rejected", "refused by policy, as spam or for reputation (not about the address)"},
		{'5', "5.2.2", "", "mailbox full"},
		{'5', "5.0.0", "550 no", "permanent failure that does not say the address is bad"},
		{0, "", "", "failure of unclear cause"},
		{'5', "5.1.1", "550 5.1.1 user unknown", "address does not exist"},
		{'5', "", "mailbox is disabled", "mailbox disabled"},
	} {
		if got := judgeFailure(tt.class, tt.status, tt.text); got.why != tt.why {
			t.Errorf("judgeFailure(%q, %q, %q) says %q, want %q", tt.class, tt.status, tt.text, got.why, tt.why)
		}
	}
}

func TestAutoReplySubjects(t *testing.T) {
	for subj, want := range map[string]bool{
		"Out of Office: report":               true,
		"Automatic reply: report":             true,
		"Auto: report":                        true,
		"Abwesenheitsnotiz: Bericht":          true,
		"Réponse automatique : rapport":       true,
		"RÉPONSE AUTOMATIQUE : rapport":       true,
		"Autosvar: rapport":                   true,
		"Fuera de la oficina":                 true,
		"Vacation":                            true,
		"Vacation: back Monday":               true,
		"Vacation deals inside":               false,
		"Your weekly report":                  false,
		"Automobile news":                     false,
		"Undelivered Mail Returned to Sender": false,
		"Autumn sale":                         false,
		"Office hours":                        false,
	} {
		if got := autoReplySubject(subj); got != want {
			t.Errorf("autoReplySubject(%q) = %v, want %v", subj, got, want)
		}
	}
}

// TestLinearTime classifies hostile inputs of MaxSize. Each would take
// minutes if some step were quadratic in its input; linear, each takes
// well under a second even under the race detector.
func TestLinearTime(t *testing.T) {
	n := MaxSize
	fill := func(unit string) string { return strings.Repeat(unit, n/len(unit)+1)[:n] }
	inputs := map[string]string{
		"reply codes":        plainBounce(fill("550 ")),
		"enhanced codes":     plainBounce(fill("#5.1.1 ")),
		"addresses":          plainBounce(fill("<a@example.com> ")),
		"at signs":           plainBounce(fill("a@")),
		"address lines":      plainBounce(fill("a@example.com\n")),
		"phrases":            plainBounce(fill("user unknown ")),
		"near-phrases":       plainBounce(fill("user ")),
		"html tags":          "From: MAILER-DAEMON@x.example\nContent-Type: text/html\n\n" + fill("<"),
		"html tags closed":   "From: MAILER-DAEMON@x.example\nContent-Type: text/html\n\n" + fill("<p>"),
		"header folds":       "From: a@example.com\nSubject: x\n" + fill(" x\n") + "\n",
		"header fields":      "From: a@example.com\n" + fill("X-A: b\n") + "\n",
		"bad header lines":   "From: a@example.com\n" + fill("bad\nX-A: b\n") + "\n",
		"boundary lines":     "From: MAILER-DAEMON@x.example\nContent-Type: multipart/mixed; boundary=b\n\n" + fill("--b\n"),
		"nested openings":    "From: MAILER-DAEMON@x.example\n" + fill("Content-Type: multipart/mixed; boundary=b\n\n--b\n"),
		"report folds":       dsnMessage("", "Final-Recipient: rfc822; a@example.com\nDiagnostic-Code: smtp; 550\n"+fill(" x\n")),
		"report blocks":      dsnMessage("", fill("Action: failed\nStatus: 5.1.1\n\n")),
		"utf-8 escapes":      dsnMessage("", "Final-Recipient: utf-8; "+fill(`\x{`)),
		"utf-8 escape pairs": dsnMessage("", "Final-Recipient: utf-8; "+fill(`\x{F6}`)),
		"base64 garbage":     "From: MAILER-DAEMON@x.example\nContent-Transfer-Encoding: base64\n\n" + fill("!@#$"),
		"json":               "From: a@example.com\n\n{\"notificationType\":\"Bounce\",\"x\":" + fill("["),
		"auto subject":       "From: a@example.com\nSubject: " + fill("re: ") + "\n\n",
		"long boundary":      "From: MAILER-DAEMON@x.example\nContent-Type: multipart/mixed; boundary=" + fill("b") + "\n\n",
	}
	for name, in := range inputs {
		start := time.Now()
		got := Classify([]byte(in))
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: %v", name, d)
		}
		checkResult(t, got)
	}
}
