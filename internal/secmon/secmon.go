// Package secmon is Fjord's security monitoring (PRODUCT §8): security
// events recorded in one place, rules that turn them into alerts for the
// operator and the customer's Administrators, and incidents the DPO
// records with their timeline.
//
// Nothing in here ever holds a visitor's IP address, a password, a token
// or a secret: events name people by id ("user:12", "staff:3") and client
// addresses only by a keyed pseudonym of their network (see Network).
package secmon

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"fjord/internal/audit"
	"fjord/internal/mail"
	"fjord/internal/store"
)

// Kinds of security events (PRODUCT §8.1).
const (
	// SigninFailed: a wrong password (or an unknown e-mail address).
	SigninFailed = "signin.failed"
	// SecondFactorFailed: a wrong second-factor code after the right
	// password, so whoever tried knows the password.
	SecondFactorFailed = "signin.code_failed"
	// SigninThrottled: a sign-in refused by the per-address limit or
	// because the user is locked out (and the failure that locked them).
	SigninThrottled = "signin.throttled"
	// StaffRefused: a staff request to a customer account without a
	// valid access grant.
	StaffRefused = "staff.refused"
	// StaffOffHours: staff access to a customer account outside normal
	// hours; StaffVolume: more of it than normal.
	StaffOffHours = "staff.off_hours"
	StaffVolume   = "staff.volume"
	// StaffConsoleOutside: a request for the staff console from outside
	// the configured (VPN) ranges.
	StaffConsoleOutside = "staff.console_outside"
	// IPRefused: a request refused by an IP restriction.
	IPRefused = "ip.refused"
	// AuditBroken: the audit log's chain or a checkpoint does not verify.
	AuditBroken = "audit.broken"
	// ExportLarge, FeedAbuse and BackupDrillFailed are recorded by the
	// exports, datafeeds and backups when they arrive; their rules are
	// here already.
	ExportLarge       = "export.large"
	FeedAbuse         = "feed.abuse"
	BackupDrillFailed = "backup.drill_failed"
	// AddressBlocked: a client address blocked for a while after it kept
	// crossing the request limits.
	AddressBlocked = "edge.blocked"
)

// Kinds of operations events (PRODUCT §9.3): raised by the built-in
// operator alerts (internal/opsalert) while a condition holds, for the
// operator alone (no account). They go through the same rules, alerts,
// mail and webhook as the security events, so the operator has one
// place to configure and one list to read.
const (
	// OpsErrorRate: many requests answered 5xx.
	OpsErrorRate = "ops.error_rate"
	// OpsShedding: collection refused events because its queue was full.
	OpsShedding = "ops.shedding"
	// OpsDisk: the data dir's disk is nearly full.
	OpsDisk = "ops.disk"
	// OpsJobFailed: a periodic job failed several times in a row.
	OpsJobFailed = "ops.job_failed"
	// OpsStandby: the PostgreSQL standby has not been replicating for
	// minutes.
	OpsStandby = "ops.standby"
)

// IsOps reports whether a kind is an operations kind, not a security one.
func IsOps(kind string) bool { return strings.HasPrefix(kind, "ops.") }

// Event is one security event.
type Event struct {
	ID      int64
	Kind    string
	Account int64 // the customer account concerned, 0 for none
	// Actor is who acted: "user:12", "staff:3", "system", or for a client
	// not signed in the pseudonym of its network (Network).
	Actor  string
	Detail string // a short text: ids and words, never a secret or an address
	Time   time.Time
}

// Subject is what the rules count an event under: its account, or else
// its actor (a network's pseudonym, a staff member, "system").
func (e Event) Subject() string {
	if e.Account != 0 {
		return "account:" + strconv.FormatInt(e.Account, 10)
	}
	return e.Actor
}

// Alert is a rule's threshold crossed for one subject.
type Alert struct {
	ID         int64
	Rule       string
	Kind       string
	Account    int64 // 0: the operator's alone
	Subject    string
	Count      int // events seen while it was open and not quiet
	First      time.Time
	Last       time.Time
	Resolved   time.Time // zero while open
	ResolvedBy string
}

// Name is how an alert is shown: ALR-42.
func (a Alert) Name() string { return "ALR-" + strconv.FormatInt(a.ID, 10) }

// Open reports whether the alert is not resolved.
func (a Alert) Open() bool { return a.Resolved.IsZero() }

// ParseAlertID reads "ALR-42" or "42".
func ParseAlertID(s string) (int64, error) {
	return parseID(s, "ALR-", "alert")
}

// ParseIncidentID reads "INC-7" or "7".
func ParseIncidentID(s string) (int64, error) {
	return parseID(s, "INC-", "incident")
}

func parseID(s, prefix, what string) (int64, error) {
	t := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), prefix)
	id, err := strconv.ParseInt(t, 10, 64)
	if err != nil || id <= 0 {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return 0, fmt.Errorf("%q is not an %s id (want %s12 or 12)", s, what, prefix)
	}
	return id, nil
}

// AlertFilter selects alerts: of one account (0: all) and only open ones.
type AlertFilter struct {
	Account  int64
	OpenOnly bool
	Limit    int // 0: 200
}

// Store keeps events, alerts and incidents (the account store, both
// engines).
type Store interface {
	AddSecurityEvent(ctx context.Context, e Event) (Event, error)
	// CountSecurityEvents counts the events of a kind and subject at or
	// after since, and returns the time of the first of them.
	CountSecurityEvents(ctx context.Context, kind, subject string, since time.Time) (int, time.Time, error)
	// PurgeSecurityEvents deletes events before a time.
	PurgeSecurityEvents(ctx context.Context, before time.Time) (int64, error)
	// LatestAlert is the newest alert of a rule and subject, resolved or
	// not; store.ErrNotFound when there is none.
	LatestAlert(ctx context.Context, rule, subject string) (Alert, error)
	AddAlert(ctx context.Context, a Alert) (Alert, error)
	// AlertSeen adds one event to an alert, seen at a time.
	AlertSeen(ctx context.Context, id int64, at time.Time) error
	Alert(ctx context.Context, id int64) (Alert, error)
	Alerts(ctx context.Context, f AlertFilter) ([]Alert, error)
	// ResolveAlert marks an open alert resolved; a resolved or unknown
	// one is store.ErrNotFound.
	ResolveAlert(ctx context.Context, id int64, by string, at time.Time) error

	// AddIncident stores an incident with its accounts and its first
	// timeline entry.
	AddIncident(ctx context.Context, in Incident) (Incident, error)
	// Incident reads an incident with its accounts and timeline.
	Incident(ctx context.Context, id int64) (Incident, error)
	// Incidents lists incidents (with timelines) affecting an account,
	// or all with account 0, newest first.
	Incidents(ctx context.Context, account int64) ([]Incident, error)
	// AddIncidentEntry appends to an open incident's timeline, closing it
	// with an EntryClosed; a closed or unknown incident is ErrNotFound.
	AddIncidentEntry(ctx context.Context, id int64, e Entry) error
}

// Monitor records events, applies the rules and sends alerts. Its zero
// parts are off: without Mail no mail, without Webhook no POST, without
// Audit no audit entries.
type Monitor struct {
	Store    Store
	Accounts store.AccountStore // to find each account's Administrators
	Mail     *mail.Outbox
	Audit    *audit.Log
	Log      *slog.Logger
	// AlertEmail receives every alert; Webhook gets every alert as JSON.
	AlertEmail    string
	Webhook       string
	WebhookClient *http.Client // nil: NewWebhookClient
	PublicURL     string       // for links in mail
	// Key keys the pseudonyms of client networks (Network).
	Key   []byte
	Now   func() time.Time
	Rules []Rule // nil: DefaultRules
	// Quiet is how long an alert must see no event before a new one
	// opens for its rule and subject (nil: DefaultQuiet).
	Quiet time.Duration

	// mu: one process decides about one alert at a time, so two events
	// crossing a threshold together open one alert, not two.
	mu      sync.Mutex
	posts   sync.WaitGroup
	slots   chan struct{}
	slotsMu sync.Mutex
}

// DefaultQuiet is the quiet period of alerts, stated in the README.
const DefaultQuiet = time.Hour

// EventRetention is how long events are kept: far longer than any rule's
// window, long enough to look back at an incident.
const EventRetention = 90 * 24 * time.Hour

func (m *Monitor) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC().Truncate(time.Millisecond)
	}
	return time.Now().UTC().Truncate(time.Millisecond)
}

func (m *Monitor) quiet() time.Duration {
	if m.Quiet > 0 {
		return m.Quiet
	}
	return DefaultQuiet
}

func (m *Monitor) rules() []Rule {
	if m.Rules != nil {
		return m.Rules
	}
	return DefaultRules
}

func (m *Monitor) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

// Network is the pseudonym of a client address's network, "net:" and 16
// hex digits: an HMAC under Key of the address's /24 (IPv4) or /48
// (IPv6). Why not the address: the people behind sign-in attempts are
// customers' staff and strangers, and an address identifies a person
// (GDPR); what the rules need is only whether many attempts come from one
// place. Why a keyed hash and not the network itself: a /24 is still
// close to a person, and with the key kept out of the database (a file
// in the data dir) a copy of the database does not give the networks
// back, while one server keeps grouping them alike.
func (m *Monitor) Network(a netip.Addr) string {
	if !a.IsValid() {
		return "net:unknown"
	}
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	mac := hmac.New(sha256.New, m.Key)
	mac.Write([]byte(p.String()))
	return "net:" + hex.EncodeToString(mac.Sum(nil)[:8])
}

// ErrBadEvent: an event without a kind, or with an unknown one.
var ErrBadEvent = errors.New("secmon: bad event")

// Record stores an event and applies the rules of its kind: an alert
// opens when a threshold is crossed and no alert of the rule and subject
// saw an event within the quiet period; otherwise the open alert counts
// the event. A nil Monitor records nothing (no monitoring configured).
func (m *Monitor) Record(ctx context.Context, e Event) error {
	if m == nil {
		return nil
	}
	if !KnownKind(e.Kind) {
		return fmt.Errorf("%w: unknown kind %q", ErrBadEvent, e.Kind)
	}
	if e.Actor == "" {
		e.Actor = "system"
	}
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	e.Detail = clip(e.Detail, 500)
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.Store.AddSecurityEvent(ctx, e)
	if err != nil {
		return fmt.Errorf("secmon: record %s: %w", e.Kind, err)
	}
	for _, r := range m.rules() {
		if r.Kind != e.Kind {
			continue
		}
		if err := m.apply(ctx, r, e); err != nil {
			return fmt.Errorf("secmon: rule %s: %w", r.Name, err)
		}
	}
	return nil
}

func (m *Monitor) apply(ctx context.Context, r Rule, e Event) error {
	subject := e.Subject()
	since := e.Time.Add(-r.Window)
	latest, err := m.Store.LatestAlert(ctx, r.Name, subject)
	switch {
	case err == nil && latest.Open() && !latest.Last.Before(e.Time.Add(-m.quiet())):
		return m.Store.AlertSeen(ctx, latest.ID, e.Time)
	case err == nil && !latest.Last.Before(since):
		// what the last alert counted (or saw until it was resolved) is
		// not counted again
		since = latest.Last.Add(time.Millisecond)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	n, first, err := m.Store.CountSecurityEvents(ctx, r.Kind, subject, since)
	if err != nil {
		return err
	}
	if n < r.Count {
		return nil
	}
	a, err := m.Store.AddAlert(ctx, Alert{Rule: r.Name, Kind: r.Kind, Account: e.Account, Subject: subject, Count: n, First: first, Last: e.Time})
	if err != nil {
		return err
	}
	m.log().Warn("security alert", "alert", a.Name(), "rule", r.Name, "account", a.Account, "count", a.Count)
	m.notify(ctx, r, a)
	return nil
}

// ResolveAlert marks an alert resolved by someone ("user:12",
// "operator"); with account non-zero only an alert of that account (else
// store.ErrNotFound, as for an unknown id). It writes an audit entry.
func (m *Monitor) ResolveAlert(ctx context.Context, id, account int64, by string) (Alert, error) {
	a, err := m.Store.Alert(ctx, id)
	if err != nil {
		return a, err
	}
	if account != 0 && a.Account != account {
		return Alert{}, fmt.Errorf("alert %d: %w", id, store.ErrNotFound)
	}
	now := m.now()
	if err := m.Store.ResolveAlert(ctx, id, by, now); err != nil {
		return a, err
	}
	a.Resolved, a.ResolvedBy = now, by
	m.audit(ctx, by, a.Account, "alert.resolve", a.Name(), "rule "+a.Rule)
	return a, nil
}

// OpenAlerts counts the open security alerts of every account and the
// operator's, leaving out the operations alerts (they have metrics of
// their own). At most 10,000 are counted.
func (m *Monitor) OpenAlerts(ctx context.Context) (int, error) {
	if m == nil {
		return 0, nil
	}
	as, err := m.Store.Alerts(ctx, AlertFilter{OpenOnly: true, Limit: 10000})
	if err != nil {
		return 0, fmt.Errorf("secmon: count open alerts: %w", err)
	}
	n := 0
	for _, a := range as {
		if !IsOps(a.Kind) {
			n++
		}
	}
	return n, nil
}

// Flush waits until the alerts' webhook posts and mail queued so far are
// done, or ctx ends.
func (m *Monitor) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() { m.posts.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if m.Mail != nil {
		return m.Mail.Flush(ctx)
	}
	return nil
}

// audit records an action of secmon's in the audit log; a failure is
// logged, as the action has happened.
func (m *Monitor) audit(ctx context.Context, actor string, account int64, action, target, detail string) {
	if m.Audit == nil {
		return
	}
	if _, err := m.Audit.Record(ctx, audit.Entry{Actor: actor, Account: account, Action: action, Target: target, Detail: clip(detail, 200)}); err != nil {
		m.log().Error("audit", "action", action, "err", err)
	}
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// KeyFile reads the pseudonym key from path, making a new random one
// (readable by its owner only) when the file does not exist. It lives in
// the data dir, not in the database, so that a copy of the database alone
// cannot map pseudonyms back to networks.
func KeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("secmon key %s: %d bytes, want 32 (remove it to make a new one)", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("secmon key: %w", err)
	}
	// written whole to a temporary file, then linked into place: a
	// second process starting at once reads a whole key or makes none
	b = make([]byte, 32)
	rand.Read(b)
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("secmon key: %w", err)
	}
	defer os.Remove(tmp)
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, path)
	}
	if errors.Is(err, os.ErrExist) {
		return KeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("secmon key %s: %w", path, err)
	}
	return b, nil
}
