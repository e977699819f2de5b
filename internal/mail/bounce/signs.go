package bounce

import (
	"net/mail"
	"strings"
	"unicode"
)

// bounceSign says why a message without a readable report looks like a
// bounce, or "": its sender, or its subject when the message also comes
// from the null sender (RFC 5321 §4.5.5) or its text holds bounce
// evidence. A subject alone is not enough: "Your parcel could not be
// delivered" is a common spam.
func bounceSign(m *parsed) string {
	h := m.header
	if who := bounceSender(h.Get("From")); who != "" {
		return "from " + who
	}
	subj := headerText(h, "Subject")
	// A person replying to or forwarding a bounce, or an out-of-office
	// answering one, is not a bounce; and the quoted SMTP replies in their
	// text must not suppress anybody.
	if isReplyOrForward(subj) || autoReplySubject(subj) || !bounceSubject(subj) {
		return ""
	}
	if strings.TrimSpace(h.Get("Return-Path")) == "<>" || hasBounceEvidence(strings.Join(m.texts, "\n")) {
		return "subject " + quoteShort(subj)
	}
	return ""
}

// hasBounceEvidence: the text quotes an SMTP failure with its enhanced
// status code, or says the address does not exist.
func hasBounceEvidence(text string) bool {
	for _, r := range scanReplies(text) {
		if r.status != "" && r.class() != '2' {
			return true
		}
	}
	why, _ := firstPhrase(hardPhrases, asciiLower(text))
	return why != ""
}

// bounceSender recognises the senders of delivery failures: the
// MAILER-DAEMON and postmaster of RFC 5321, the display names of Sendmail,
// Exim and Gmail, and Exchange Online's system mailbox.
func bounceSender(from string) string {
	lower := strings.ToLower(from)
	name, local := "", ""
	if a, err := mail.ParseAddress(from); err == nil {
		name = strings.ToLower(a.Name)
		local, _, _ = strings.Cut(strings.ToLower(a.Address), "@")
	} else {
		// "MAILER-DAEMON" without a domain does not parse.
		s := strings.TrimSpace(lower)
		if i := strings.LastIndexByte(s, '<'); i >= 0 {
			name, s = s[:i], strings.TrimSuffix(s[i+1:], ">")
		}
		local, _, _ = strings.Cut(s, "@")
	}
	switch {
	case local == "mailer-daemon", local == "mailerdaemon":
		return "MAILER-DAEMON"
	case local == "postmaster":
		return "postmaster"
	case strings.HasPrefix(local, "microsoftexchange329e71ec88ae4615bbc36ab6ce41109e"):
		return "Microsoft Exchange"
	}
	for _, n := range []string{"mail delivery subsystem", "mail delivery system", "mail delivery service", "mailer-daemon"} {
		if strings.Contains(name, n) {
			return quoteShort(name)
		}
	}
	return ""
}

// bounceSubjects are the subjects of delivery failures and delays, lower
// case (Postfix, Exim, Sendmail, qmail, Exchange in a few languages,
// Gmail, Yahoo).
var bounceSubjects = []string{
	"undelivered mail", "undeliverable", "undelivered", "not delivered",
	"mail delivery failed", "mail delivery failure", "delivery failure",
	"delivery has failed", "delivery status notification", "failure notice",
	"returned mail", "could not be delivered", "nondeliverable",
	"non remis", "non distribuable", "unzustellbar", "no se puede entregar",
	"mail system error",
}

func bounceSubject(subj string) bool {
	lower := strings.ToLower(subj)
	if strings.Contains(lower, "(success)") || strings.Contains(lower, "(relay)") {
		return false // a positive DSN without its report is still no failure
	}
	if isDelaySubject(subj) {
		return true
	}
	for _, s := range bounceSubjects {
		if strings.Contains(lower, s) {
			return true
		}
	}
	return false
}

// isDelaySubject recognises the warnings that a message is still queued
// (Gmail "Delivery Status Notification (Delay)", Postfix "Delayed Mail",
// Exim "Warning: message ... delayed", Sendmail "Warning: could not send
// message for past 4 hours").
func isDelaySubject(subj string) bool {
	lower := strings.ToLower(subj)
	for _, s := range []string{"(delay)", "delayed mail", "delivery delayed", "delivery delay", "warning: could not send message", "still being retried"} {
		if strings.Contains(lower, s) {
			return true
		}
	}
	return strings.Contains(lower, "warning: message") && strings.Contains(lower, "delayed")
}

// isReplyOrForward: the subject starts with a reply or forward prefix in
// one of the common languages.
func isReplyOrForward(subj string) bool {
	lower := strings.ToLower(strings.TrimSpace(subj))
	for _, p := range []string{"re:", "re :", "fw:", "fwd:", "aw:", "wg:", "sv:", "vs:", "tr:", "rv:", "antw:", "odp:", "réf:"} {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return false
}

// autoReplyPhrases mark an automatic answer anywhere in a subject;
// autoReplyPrefixes only at its start, where they are not ordinary words.
var (
	autoReplyPhrases = []string{
		"out of office", "out of the office", "automatic reply", "auto-reply", "autoreply", "auto reply",
		"automatische antwort", "abwesenheitsnotiz", "réponse automatique", "reponse automatique",
		"respuesta automática", "respuesta automatica", "fuera de la oficina", "risposta automatica",
		"automatisch antwoord", "autosvar", "automatisk svar", "automaattinen vastaus", "absence du bureau",
		"vacation reply", "vacation notice", "vacation message",
	}
	autoReplyPrefixes = []string{"auto:", "vacation:", "auto response", "autoresponse", "away:"}
)

func autoReplySubject(subj string) bool {
	lower := strings.ToLower(strings.TrimSpace(subj))
	for _, p := range autoReplyPrefixes {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	if lower == "vacation" {
		return true
	}
	for _, p := range autoReplyPhrases {
		if strings.Contains(lower, p) {
			return true
		}
	}
	return false
}

// autoReplySign says why a message is an automatic reply, or "".
// Precedence: bulk alone is not a sign: Gmail's vacation responder sends
// it, but so does every newsletter.
func autoReplySign(m *parsed) string {
	h := m.header
	if v := h.Get("Auto-Submitted"); v != "" {
		if tok := strings.ToLower(firstWord(v)); tok != "no" && tok != "" {
			return "Auto-Submitted: " + quoteShort(tok)
		}
	}
	for _, k := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autogenerated", "X-MS-Exchange-Inbox-Rules-Loop"} {
		if v := strings.ToLower(strings.TrimSpace(h.Get(k))); v != "" && v != "no" && v != "false" {
			return k
		}
	}
	for _, k := range []string{"Precedence", "X-Precedence"} {
		if strings.EqualFold(strings.TrimSpace(h.Get(k)), "auto_reply") {
			return k + ": auto_reply"
		}
	}
	subj := headerText(h, "Subject")
	if isReplyOrForward(subj) || !autoReplySubject(subj) {
		return ""
	}
	if h.Has("X-Auto-Response-Suppress") {
		return "Exchange out-of-office subject " + quoteShort(subj)
	}
	return "subject " + quoteShort(subj)
}

// quoteShort quotes the start of s for a Reason.
func quoteShort(s string) string {
	s = cleanText(s, 60)
	return `"` + s + `"`
}

func isPrintable(r rune) bool { return unicode.IsPrint(r) }
