package bounce

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// expect is the label of one corpus message: its kind, the recipients it
// names (exactly, in order) and its status code.
type expect struct {
	kind   Kind
	rcpts  []string
	status string
}

func rc(a ...string) []string { return a }

// corpus labels every message in testdata. The file names start with
// the kind; TestCorpusComplete checks that the two agree and that every
// file is labelled.
var corpus = map[string]expect{
	// RFC 3464 reports of bad addresses
	"hard-postfix-local-user-unknown.eml":           {Hard, rc("nobody@example.com"), "5.1.1"},
	"hard-postfix-remote-550-5.1.1.eml":             {Hard, rc("alice.smith@example.net"), "5.1.1"},
	"hard-postfix-nullmx-5.1.10.eml":                {Hard, rc("walter@example.org"), "5.1.10"},
	"hard-postfix-two-rcpts-failed-and-delayed.eml": {Hard, rc("trent@example.com"), "5.1.1"},
	"hard-exim-unrouteable-5.0.0.eml":               {Hard, rc("nobody@example.org"), "5.0.0"},
	"hard-exim-dsn-550-5.1.1.eml":                   {Hard, rc("yvonne@example.net"), "5.1.1"},
	"hard-sendmail-dsn-user-unknown.eml":            {Hard, rc("carol@example.com"), "5.1.1"},
	"hard-exchange-recipnotfound.eml":               {Hard, rc("grace@example.org"), "5.1.1"},
	"hard-o365-recipient-not-found-5.1.10.eml":      {Hard, rc("heidi@example.com"), "5.1.10"},
	"hard-gmail-no-such-user.eml":                   {Hard, rc("ivan@example.com"), "5.1.1"},
	"hard-gmail-account-disabled-5.2.1.eml":         {Hard, rc("judy@example.com"), "5.2.1"},
	"hard-ses-dsn-user-unknown.eml":                 {Hard, rc("olivia@example.com"), "5.1.1"},
	"hard-global-dsn-utf8-address.eml":              {Hard, rc("jörg@example.com"), "5.1.1"},
	"hard-nested-report-base64.eml":                 {Hard, rc("sybil@example.org"), "5.1.1"},
	"hard-courier-5.0.0-no-such-user.eml":           {Hard, rc("uma@example.net"), "5.0.0"},
	"hard-5.1.6-mailbox-moved.eml":                  {Hard, rc("vera@example.net"), "5.1.6"},
	// non-standard bounces of bad addresses
	"hard-exim-plain-unknown-user.eml":            {Hard, rc("bob@example.net"), "5.1.1"},
	"hard-sendmail-plain-transcript.eml":          {Hard, rc("dave@example.com"), "5.1.1"},
	"hard-qmail-no-mailbox.eml":                   {Hard, rc("erin@example.net"), "5.1.1"},
	"hard-qmail-remote-no-such-user.eml":          {Hard, rc("frank@example.com"), "5.1.1"},
	"hard-yahoo-no-account.eml":                   {Hard, rc("mallory@example.com"), ""},
	"hard-yahoo-mailbox-disabled.eml":             {Hard, rc("niaj@example.org"), ""},
	"hard-exchange2003-plain-qp.eml":              {Hard, rc("xavier@example.com"), "5.1.1"},
	"hard-gateway-undeliverable-subject-only.eml": {Hard, rc("ursula@example.com"), "5.1.1"},
	// Amazon SES notifications
	"hard-ses-notification-permanent.eml":             {Hard, rc("peggy@example.com"), "5.1.1"},
	"hard-ses-notification-json-envelope-noemail.eml": {Hard, rc("rupert@example.net"), ""},

	// full mailboxes, big messages, delays, temporary failures
	"soft-postfix-mailbox-full-5.2.2.eml":       {Soft, rc("amy@example.net"), "5.2.2"},
	"soft-gmail-over-quota-5.2.2.eml":           {Soft, rc("ben@example.com"), "5.2.2"},
	"soft-qmail-over-quota.eml":                 {Soft, rc("kim@example.net"), "5.2.2"},
	"soft-ses-notification-transient.eml":       {Soft, rc("mia@example.org"), "5.2.2"},
	"soft-exchange-message-too-large-5.3.4.eml": {Soft, rc("ned@example.com"), "5.3.4"},
	"soft-postfix-delayed-timeout.eml":          {Soft, rc("zara@example.com"), "4.4.1"},
	"soft-postfix-greylisted-4.2.0.eml":         {Soft, rc("fay@example.com"), "4.2.0"},
	"soft-postfix-yahoo-deferred-4.7.0.eml":     {Soft, rc("leo@example.com"), "4.7.0"},
	"soft-gmail-delay-4.3.0.eml":                {Soft, rc("cara@example.org"), "4.3.0"},
	"soft-global-dsn-delayed.eml":               {Soft, rc("chloé@example.org"), "4.4.7"},
	"soft-exim-delay-warning.eml":               {Soft, rc("eve@example.net"), "4.7.1"},
	"soft-exim-plain-retry-timeout.eml":         {Soft, rc("dan@example.com"), ""},
	"soft-sendmail-warning-4-hours.eml":         {Soft, rc("jack@example.com"), "4.3.0"},
	// refusals by policy, as spam, for reputation: not about the address
	"soft-postfix-spamhaus-5.7.1.eml":           {Soft, rc("gus@example.com"), "5.7.1"},
	"soft-gmail-unsolicited-5.7.1.eml":          {Soft, rc("hal@example.net"), "5.7.1"},
	"soft-postfix-dmarc-5.7.26.eml":             {Soft, rc("ida@example.org"), "5.7.26"},
	"soft-postfix-o365-access-denied-5.4.1.eml": {Soft, rc("ray@example.com"), "5.4.1"},
	"soft-html-only-ndr-rate-limited.eml":       {Soft, rc("tom@example.com"), ""},
	// ambiguous: a hard-looking status with a soft text, or no evidence
	"soft-postfix-5.2.1-temporarily-disabled.eml": {Soft, rc("sam@example.org"), "5.2.1"},
	"soft-postfix-mailbox-unavailable-5.0.0.eml":  {Soft, rc("oscar@example.net"), "5.0.0"},
	"soft-postfix-host-not-found-5.4.4.eml":       {Soft, rc("pam@nonexistent.example.net"), "5.4.4"},
	"soft-failure-notice-no-evidence.eml":         {Soft, rc("quincy@example.com"), ""},
	"soft-ses-plain-no-detail.eml":                {Soft, rc("quinn@example.com"), ""},

	// automatic replies
	"auto-exchange-automatic-reply.eml":        {AutoReply, nil, ""},
	"auto-exchange-abwesenheitsnotiz.eml":      {AutoReply, nil, ""},
	"auto-outlook-out-of-office-autoreply.eml": {AutoReply, nil, ""},
	"auto-gmail-vacation-re-subject.eml":       {AutoReply, nil, ""},
	"auto-zimbra-out-of-office.eml":            {AutoReply, nil, ""},
	"auto-rfc3834-auto-prefix.eml":             {AutoReply, nil, ""},
	"auto-cpanel-x-autorespond.eml":            {AutoReply, nil, ""},
	"auto-x-autoreply-only.eml":                {AutoReply, nil, ""},
	"auto-precedence-auto-reply.eml":           {AutoReply, nil, ""},
	"auto-reponse-automatique-latin1.eml":      {AutoReply, nil, ""},
	"auto-autosvar-swedish.eml":                {AutoReply, nil, ""},
	"auto-fuera-de-la-oficina-base64.eml":      {AutoReply, nil, ""},
	"auto-unix-vacation.eml":                   {AutoReply, nil, ""},
	"auto-helpdesk-auto-generated.eml":         {AutoReply, nil, ""},
	"auto-read-receipt-mdn.eml":                {AutoReply, nil, ""},

	// everything else
	"none-person-reply.eml":               {NotBounce, nil, ""},
	"none-person-forwarded-bounce.eml":    {NotBounce, nil, ""},
	"none-person-re-out-of-office.eml":    {NotBounce, nil, ""},
	"none-person-latin1-qp.eml":           {NotBounce, nil, ""},
	"none-person-mentions-smtp-error.eml": {NotBounce, nil, ""},
	"none-person-attachment-base64.eml":   {NotBounce, nil, ""},
	"none-newsletter.eml":                 {NotBounce, nil, ""},
	"none-html-marketing.eml":             {NotBounce, nil, ""},
	"none-spam-parcel-not-delivered.eml":  {NotBounce, nil, ""},
	"none-arf-feedback-report.eml":        {NotBounce, nil, ""},
	"none-ses-notification-complaint.eml": {NotBounce, nil, ""},
	"none-postfix-dsn-delivered.eml":      {NotBounce, nil, ""},
	"none-postfix-dsn-relayed.eml":        {NotBounce, nil, ""},
}

// lineEnds returns raw with LF line ends and with CRLF line ends. Every
// corpus message is classified both ways.
func lineEnds(raw []byte) (lf, crlf []byte) {
	lf = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	crlf = bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n"))
	return lf, crlf
}

func TestCorpus(t *testing.T) {
	for name, want := range corpus {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		lf, crlf := lineEnds(raw)
		for ending, msg := range map[string][]byte{"LF": lf, "CRLF": crlf} {
			t.Run(name+"/"+ending, func(t *testing.T) {
				got := Classify(msg)
				if got.Kind != want.kind {
					t.Errorf("Kind = %q, want %q (Reason %q)", got.Kind, want.kind, got.Reason)
				}
				if !slices.Equal(got.Recipients, want.rcpts) {
					t.Errorf("Recipients = %q, want %q", got.Recipients, want.rcpts)
				}
				if got.Status != want.status {
					t.Errorf("Status = %q, want %q", got.Status, want.status)
				}
				checkResult(t, got)
			})
		}
	}
}

// checkResult checks what every Result must be, whatever the input.
func checkResult(t *testing.T, r Result) {
	t.Helper()
	switch r.Kind {
	case Hard, Soft, AutoReply, NotBounce:
	default:
		t.Errorf("Kind %q is none of the four", r.Kind)
	}
	if r.Reason == "" {
		t.Error("empty Reason")
	}
	if len(r.Reason) > 200 {
		t.Errorf("Reason has %d bytes: %q", len(r.Reason), r.Reason)
	}
	for _, c := range r.Reason {
		if !unicode.IsPrint(c) {
			t.Errorf("Reason holds %U: %q", c, r.Reason)
			break
		}
	}
	if r.Status != "" && parseStatus(r.Status) != r.Status {
		t.Errorf("Status %q is not a normalized enhanced status code", r.Status)
	}
	seen := map[string]bool{}
	for _, a := range r.Recipients {
		if a != strings.ToLower(a) || normalizeAddr(a) != a || seen[a] {
			t.Errorf("Recipients %q: %q is not lower case, normalized and unique", r.Recipients, a)
		}
		seen[a] = true
	}
	if (r.Kind == AutoReply || r.Kind == NotBounce) && (len(r.Recipients) > 0 || r.Status != "") {
		t.Errorf("%s result with Recipients %q and Status %q", r.Kind, r.Recipients, r.Status)
	}
}

// TestCorpusComplete keeps the corpus and its labels in step: every file
// labelled, every label a file, names that say the label, enough messages
// of each kind, and both line ends present on disk.
func TestCorpusComplete(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	kinds := map[Kind]int{}
	crlf, lf := 0, 0
	for _, f := range files {
		name := filepath.Base(f)
		onDisk[name] = true
		want, ok := corpus[name]
		if !ok {
			t.Errorf("%s has no label in corpus", name)
			continue
		}
		kinds[want.kind]++
		prefix := map[Kind]string{Hard: "hard-", Soft: "soft-", AutoReply: "auto-", NotBounce: "none-"}[want.kind]
		if !strings.HasPrefix(name, prefix) {
			t.Errorf("%s is labelled %s but its name does not start with %q", name, want.kind, prefix)
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("\r\n")) {
			crlf++
		} else {
			lf++
		}
	}
	for name := range corpus {
		if !onDisk[name] {
			t.Errorf("corpus labels %s, which is not in testdata", name)
		}
	}
	if len(files) < 60 {
		t.Errorf("corpus has %d messages, want at least 60", len(files))
	}
	for _, k := range []Kind{Hard, Soft, AutoReply, NotBounce} {
		if kinds[k] < 10 {
			t.Errorf("corpus has %d %s messages, want at least 10", kinds[k], k)
		}
	}
	if crlf < 10 || lf < 10 {
		t.Errorf("corpus has %d CRLF and %d LF files, want at least 10 of each", crlf, lf)
	}
}
