package secmon

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"fjord/internal/mail"
	"fjord/internal/store"
)

// Incidents (PRODUCT §8.3): the DPO records an incident for the affected
// accounts; their main contacts and Administrators are mailed at once,
// and every update and the closing are appended to its timeline and
// mailed too. Each recipient learns only about their own account: an
// incident's list of accounts is the operator's, never a customer's.

// Timeline entry kinds.
const (
	EntryOpened = "opened"
	EntryUpdate = "update"
	EntryClosed = "closed"
)

// Incident is one incident with its timeline.
type Incident struct {
	ID       int64
	Title    string
	Accounts []int64
	Opened   time.Time
	OpenedBy string
	Closed   time.Time // zero while open
	Entries  []Entry   // oldest first; the first is EntryOpened with the description
}

// Entry is one step of an incident's timeline.
type Entry struct {
	Time time.Time
	By   string // "staff:3", "operator"
	Kind string // EntryOpened, EntryUpdate, EntryClosed
	Text string
}

// Name is how an incident is shown: INC-7.
func (in Incident) Name() string { return "INC-" + strconv.FormatInt(in.ID, 10) }

// Limits of an incident's texts.
const (
	MaxTitle       = 200
	MaxText        = 10000
	MaxAccounts    = 1000
	maxActorLength = 100
)

// ErrBadIncident: input an incident cannot take; the error says which.
var ErrBadIncident = errors.New("incident")

func checkText(what, s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%w: the %s is empty", ErrBadIncident, what)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: the %s is not valid UTF-8", ErrBadIncident, what)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("%w: the %s has %d characters, at most %d", ErrBadIncident, what, n, max)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' || r == 0x7f {
			return fmt.Errorf("%w: the %s holds a control character", ErrBadIncident, what)
		}
	}
	return nil
}

func checkActor(by string) error {
	if by == "" || len(by) > maxActorLength || strings.ContainsAny(by, "\r\n") {
		return fmt.Errorf("%w: who acts must be named (\"staff:3\", \"operator\")", ErrBadIncident)
	}
	return nil
}

// OpenIncident records an incident affecting accounts and mails, at once,
// the main contact and every Administrator of each. Every account must
// exist (else store.ErrNotFound, naming it, and nothing is stored).
func (m *Monitor) OpenIncident(ctx context.Context, by string, accounts []int64, title, description string) (Incident, error) {
	if err := checkActor(by); err != nil {
		return Incident{}, err
	}
	if err := checkText("title", title, MaxTitle); err != nil {
		return Incident{}, err
	}
	if strings.ContainsAny(title, "\r\n") {
		return Incident{}, fmt.Errorf("%w: the title must be one line", ErrBadIncident)
	}
	if err := checkText("description", description, MaxText); err != nil {
		return Incident{}, err
	}
	if len(accounts) == 0 {
		return Incident{}, fmt.Errorf("%w: name at least one affected account", ErrBadIncident)
	}
	if len(accounts) > MaxAccounts {
		return Incident{}, fmt.Errorf("%w: %d accounts, at most %d", ErrBadIncident, len(accounts), MaxAccounts)
	}
	seen := map[int64]bool{}
	var accs []int64
	for _, id := range accounts {
		if seen[id] {
			continue
		}
		seen[id] = true
		if _, err := m.Accounts.Account(ctx, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return Incident{}, fmt.Errorf("account %d: %w", id, store.ErrNotFound)
			}
			return Incident{}, err
		}
		accs = append(accs, id)
	}
	now := m.now()
	in, err := m.Store.AddIncident(ctx, Incident{Title: strings.TrimSpace(title), Accounts: accs, Opened: now, OpenedBy: by,
		Entries: []Entry{{Time: now, By: by, Kind: EntryOpened, Text: description}}})
	if err != nil {
		return Incident{}, fmt.Errorf("open incident: %w", err)
	}
	for _, acc := range in.Accounts {
		m.audit(ctx, by, acc, "incident.open", in.Name(), in.Title)
	}
	m.mailIncident(ctx, in, in.Entries[0])
	return in, nil
}

// UpdateIncident appends an update to an open incident's timeline and
// mails it to the affected accounts' people.
func (m *Monitor) UpdateIncident(ctx context.Context, id int64, by, text string) (Incident, error) {
	return m.addEntry(ctx, id, by, EntryUpdate, text)
}

// CloseIncident closes an incident with a last text, mailed like an
// update; a closed incident takes no more entries.
func (m *Monitor) CloseIncident(ctx context.Context, id int64, by, text string) (Incident, error) {
	return m.addEntry(ctx, id, by, EntryClosed, text)
}

func (m *Monitor) addEntry(ctx context.Context, id int64, by, kind, text string) (Incident, error) {
	if err := checkActor(by); err != nil {
		return Incident{}, err
	}
	if err := checkText("text", text, MaxText); err != nil {
		return Incident{}, err
	}
	e := Entry{Time: m.now(), By: by, Kind: kind, Text: text}
	if err := m.Store.AddIncidentEntry(ctx, id, e); err != nil {
		return Incident{}, err
	}
	in, err := m.Store.Incident(ctx, id)
	if err != nil {
		return Incident{}, err
	}
	action := "incident.update"
	if kind == EntryClosed {
		action = "incident.close"
	}
	for _, acc := range in.Accounts {
		m.audit(ctx, by, acc, action, in.Name(), "")
	}
	m.mailIncident(ctx, in, e)
	return in, nil
}

// mailIncident mails one timeline entry to each affected account's
// people, each message about their account only.
func (m *Monitor) mailIncident(ctx context.Context, in Incident, e Entry) {
	if m.Mail == nil {
		return
	}
	for _, acc := range in.Accounts {
		to, err := m.accountPeople(ctx, acc)
		if err != nil {
			m.log().Error("incident: the account's people", "incident", in.Name(), "account", acc, "err", err)
			continue
		}
		for _, addr := range to {
			m.send("incident notice", incidentMessage(addr, in, e, m.PublicURL))
		}
	}
}

func incidentMessage(to string, in Incident, e Entry, publicURL string) mail.Message {
	var subject, intro string
	switch e.Kind {
	case EntryOpened:
		subject = fmt.Sprintf("Fjord security incident %s: %s", in.Name(), in.Title)
		intro = "We are informing you of a security incident that affects your\norganisation's Fjord account."
	case EntryClosed:
		subject = fmt.Sprintf("Fjord security incident %s closed: %s", in.Name(), in.Title)
		intro = "The security incident below is closed."
	default:
		subject = fmt.Sprintf("Fjord security incident %s, update: %s", in.Name(), in.Title)
		intro = "There is news about the security incident below."
	}
	return mail.Message{To: to, Subject: subject, Text: fmt.Sprintf(`Hello,

%s

%s: %s
%s UTC

%s

You receive this as an Administrator or the main contact of the account.
The incident's whole timeline is here:
%s/incidents

Fjord
`, intro, in.Name(), in.Title, e.Time.UTC().Format("2006-01-02 15:04"), e.Text, publicURL)}
}

// ForAccount is an incident as one account sees it: without the other
// accounts it affects.
func (in Incident) ForAccount() Incident {
	in.Accounts = nil
	return in
}
