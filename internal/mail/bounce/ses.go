package bounce

import (
	"encoding/json"
	"strings"
)

// sesNotice is the part of an Amazon SES notification (as mailed by an
// SNS "email" subscription, or wrapped in the SNS envelope's Message by an
// "email-json" one) that says what happened to which recipient.
type sesNotice struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Message          string `json:"Message"` // the SNS envelope's payload
	Bounce           *struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Action         string `json:"action"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
}

// fromSES classifies an SES notification found as a text part of its
// own. ok is false when there is none.
func fromSES(m *parsed) (Result, bool) {
	for _, t := range m.texts {
		t = strings.TrimSpace(t)
		if !strings.HasPrefix(t, "{") || !strings.Contains(t, "otificationType") && !strings.Contains(t, "eventType") {
			continue
		}
		// The decoder reads the first JSON value only: SNS appends an
		// unsubscribe footer to the notifications it mails.
		var n sesNotice
		if json.NewDecoder(strings.NewReader(t)).Decode(&n) != nil {
			continue
		}
		if n.Message != "" && n.Bounce == nil && n.NotificationType == "" {
			inner := sesNotice{}
			if json.Unmarshal([]byte(n.Message), &inner) != nil {
				continue
			}
			n = inner
		}
		typ := n.NotificationType
		if typ == "" {
			typ = n.EventType
		}
		switch {
		case typ == "Bounce" && n.Bounce != nil:
			return sesBounce(n), true
		case typ == "Complaint", typ == "Delivery":
			return Result{Kind: NotBounce, Reason: "Amazon SES " + strings.ToLower(typ) + " notification, not a bounce"}, true
		}
	}
	return Result{}, false
}

// sesBounce judges an SES bounce recipient by recipient, like a delivery
// report. SES's own bounceType is trusted only in the safe direction:
// Transient and Undetermined are Soft whatever the status says, while a
// Permanent bounce still needs a status or text that is about the
// address, except for the subtypes that say so (NoEmail, Suppressed,
// OnAccountSuppressionList: SES suppresses after a hard bounce).
func sesBounce(n sesNotice) Result {
	b := n.Bounce
	source := "Amazon SES " + strings.ToLower(b.BounceType) + "/" + b.BounceSubType + " notification"
	var hard, soft Result
	for _, r := range b.BouncedRecipients {
		v := judgeRcpt(rcpt{action: "failed", status: parseStatus(r.Status), diag: diagText(r.DiagnosticCode)})
		switch {
		case b.BounceType != "Permanent":
			v.kind = Soft
		case v.ambiguous && v.status == "" && (b.BounceSubType == "NoEmail" || b.BounceSubType == "Suppressed" || b.BounceSubType == "OnAccountSuppressionList"):
			v = verdict{kind: Hard, why: "address does not exist (SES " + b.BounceSubType + ")"}
		}
		res := &soft
		if v.kind == Hard {
			res = &hard
		}
		if res.Kind == "" {
			*res = Result{Kind: v.kind, Status: v.status, Reason: reason(v.status, v.why, source, r.DiagnosticCode)}
		}
		res.Recipients = addRecipients(res.Recipients, r.EmailAddress)
	}
	switch {
	case hard.Kind != "":
		return hard
	case soft.Kind != "":
		return soft
	}
	return Result{Kind: Soft, Reason: reason("", "bounce without recipients", source, "")}
}
