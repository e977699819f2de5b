// Package schedule is the model of e-mail reports (PRODUCT §6): a
// schedule mails a saved report daily, weekly or monthly at an hour of
// its site's time zone to chosen recipients; each mailing is a delivery
// per recipient, with its attempts; bounces come back to a VERP address
// that names the delivery under an HMAC, and a recipient whose last sends
// hard-bounced is suppressed.
package schedule

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"fjord/internal/store"
)

// Frequencies of a schedule.
const (
	Daily   = "daily"
	Weekly  = "weekly"
	Monthly = "monthly"
)

// MaxDay is the last day of the month a monthly schedule may name: every
// month has it, so a schedule fires once a month, every month.
const MaxDay = 28

// MaxRecipients bounds a schedule's recipients.
const MaxRecipients = 50

// Schedule mails a saved report. Its owner is the report's: whoever may
// manage the report's schedules (authz.ScheduleReport).
type Schedule struct {
	ID         int64
	AccountID  int64
	ReportID   int64
	Frequency  string       // Daily, Weekly or Monthly
	Weekday    time.Weekday // Weekly: the day it is sent
	Day        int          // Monthly: the day of the month it is sent, 1..MaxDay
	Hour       int          // 0..23, in the site's time zone
	CreatedBy  int64
	Created    time.Time
	Next       time.Time // when it fires next (UTC)
	Last       time.Time // when it last fired; zero before the first
	Recipients []Recipient
}

// Recipient is one address of a schedule: a user of the account (UserID
// set; the address is the user's) or an outside address.
type Recipient struct {
	ID           int64
	ScheduleID   int64
	UserID       int64 // 0: an outside address
	Email        string
	Unsubscribed time.Time // zero: subscribed
}

// Check says what is wrong with a schedule's timing, naming the field.
func (s Schedule) Check() error {
	switch s.Frequency {
	case Daily:
	case Weekly:
		if s.Weekday < time.Sunday || s.Weekday > time.Saturday {
			return errors.New("weekday: want a day of the week")
		}
	case Monthly:
		if s.Day < 1 || s.Day > MaxDay {
			return fmt.Errorf("day: want a day of the month from 1 to %d (every month has it)", MaxDay)
		}
	default:
		return fmt.Errorf("frequency %q: want daily, weekly or monthly", truncate(s.Frequency, 20))
	}
	if s.Hour < 0 || s.Hour > 23 {
		return errors.New("hour: want 0 to 23")
	}
	return nil
}

// When says in words when it is sent.
func (s Schedule) When() string {
	at := fmt.Sprintf("%02d:00", s.Hour)
	switch s.Frequency {
	case Weekly:
		return "every " + s.Weekday.String() + " at " + at
	case Monthly:
		return fmt.Sprintf("on day %d of every month at %s", s.Day, at)
	}
	return "every day at " + at
}

// NextAfter is the first time after t at which the schedule fires, in
// loc. Where the hour does not exist on a day (a clock moved forward over
// it) the mail goes at the same distance past midnight, which Go's
// time.Date gives: 02:00 becomes 03:00; where it exists twice (moved
// back), at the first.
func (s Schedule) NextAfter(t time.Time, loc *time.Location) time.Time {
	local := t.In(loc)
	y, m, d := local.Date()
	// at most a month and a few days ahead; 40 covers a missed month end
	for i := 0; i < 40; i++ {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, loc)
		if !s.firesOn(day) {
			continue
		}
		at := time.Date(day.Year(), day.Month(), day.Day(), s.Hour, 0, 0, 0, loc)
		if at.After(t) {
			return at.UTC()
		}
	}
	// unreachable for a checked schedule; a far date stops it rather
	// than mailing in a loop
	return t.AddDate(1, 0, 0).UTC()
}

func (s Schedule) firesOn(day time.Time) bool {
	switch s.Frequency {
	case Weekly:
		return day.Weekday() == s.Weekday
	case Monthly:
		return day.Day() == s.Day
	}
	return true
}

// Period is the local days a mailing at fire covers, [From, To): the day
// before for a daily schedule, the seven days before for a weekly one, the
// month before for a monthly one. Whole days of the site's zone, so the
// numbers are those the dashboard shows for the same days.
func (s Schedule) Period(fire time.Time, loc *time.Location) (from, to time.Time) {
	l := fire.In(loc)
	to = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	switch s.Frequency {
	case Weekly:
		from = to.AddDate(0, 0, -7)
	case Monthly:
		to = time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
		from = to.AddDate(0, -1, 0)
	default:
		from = to.AddDate(0, 0, -1)
	}
	return from, to
}

// ParseAddress reads an outside recipient's address: one plain address,
// in its stored form (store.NormalizeEmail); an error names the problem.
func ParseAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 || strings.ContainsAny(s, "\r\n<>\", ") {
		return "", fmt.Errorf("%q is not an e-mail address (want name@example.com)", truncate(s, 60))
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s[strings.LastIndex(s, "@")+1:], ".") {
		return "", fmt.Errorf("%q is not an e-mail address (want name@example.com)", truncate(s, 60))
	}
	return store.NormalizeEmail(s), nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// Delivery states.
const (
	Pending = "pending" // not tried yet
	Retry   = "retry"   // a temporary failure: tried again at Delivery.NextTry
	Sent    = "sent"    // the SMTP server took it
	Failed  = "failed"  // refused for good, or tried MaxAttempts times
	Skipped = "skipped" // not sent: the recipient may no longer read the report, unsubscribed or is suppressed (Detail says which)
)

// Bounce kinds recorded on a delivery.
const (
	BounceHard = "hard"
	BounceSoft = "soft"
)

// MaxAttempts is how often a delivery is tried before it fails.
const MaxAttempts = 6

// Backoff is the wait after the n-th failed attempt (n from 1): 5
// minutes, doubling, at most 4 hours, so six attempts span about 2.5 hours.
func Backoff(n int) time.Duration {
	d := 5 * time.Minute
	for i := 1; i < n && d < 4*time.Hour; i++ {
		d *= 2
	}
	return min(d, 4*time.Hour)
}

// Delivery is one mailing of a schedule to one recipient.
type Delivery struct {
	ID          int64
	ScheduleID  int64
	RecipientID int64
	AccountID   int64
	Email       string // where it went (the user's address at sending)
	From, To    time.Time
	Created     time.Time
	Status      string
	Attempts    int
	NextTry     time.Time
	Detail      string // the last attempt's result, without addresses
	Bounce      string // "", BounceHard or BounceSoft
	BounceWhy   string
	BounceAt    time.Time
}

// Suppressed is an address that is no longer mailed (its last sends
// hard-bounced).
type Suppressed struct {
	AccountID int64
	Email     string
	Since     time.Time
	Why       string
	UserID    int64 // the account's user with this address, 0: outside
}

// DefaultHardBounces is how many consecutive sends to an address must
// hard-bounce before it is suppressed (PRODUCT §6.2).
const DefaultHardBounces = 2

// Store keeps schedules and deliveries (the account store implements
// it).
type Store interface {
	// CreateSchedule stores a schedule with its recipients.
	CreateSchedule(ctx context.Context, s Schedule) (Schedule, error)
	// Schedule finds one with its recipients (store.ErrNotFound).
	Schedule(ctx context.Context, id int64) (Schedule, error)
	// Schedules lists an account's schedules with their recipients.
	Schedules(ctx context.Context, accountID int64) ([]Schedule, error)
	// ReportSchedules lists a report's schedules with their recipients.
	ReportSchedules(ctx context.Context, reportID int64) ([]Schedule, error)
	// SetScheduleTiming changes when it fires (and its next time).
	SetScheduleTiming(ctx context.Context, s Schedule) error
	DeleteSchedule(ctx context.Context, id int64) error
	AddRecipient(ctx context.Context, r Recipient) (Recipient, error)
	RemoveRecipient(ctx context.Context, scheduleID, id int64) error
	// Unsubscribe stops a schedule for one recipient; false when they
	// were unsubscribed already.
	Unsubscribe(ctx context.Context, recipientID int64, now time.Time) (bool, error)
	// DueSchedules lists schedules whose next time is not after now.
	DueSchedules(ctx context.Context, now time.Time) ([]Schedule, error)
	// FireSchedule moves a due schedule from next (as read) to its new
	// next time and stores a pending delivery per delivery given, at
	// once; false when another run moved it first (nothing is stored).
	FireSchedule(ctx context.Context, id int64, next, newNext, now time.Time, ds []Delivery) (bool, error)
	// DueDeliveries lists pending deliveries, and retries whose time has
	// come, oldest first.
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	Delivery(ctx context.Context, id int64) (Delivery, error)
	// Deliveries lists a schedule's newest deliveries.
	Deliveries(ctx context.Context, scheduleID int64, limit int) ([]Delivery, error)
	// Attempted records an attempt's outcome: status, detail, next try.
	Attempted(ctx context.Context, d Delivery) error
	// RecordBounce sets a delivery's bounce (a hard one is never
	// overwritten by a soft one); false when it was recorded already.
	RecordBounce(ctx context.Context, id int64, kind, why string, at time.Time) (bool, error)
	// RecentSends lists the newest sent deliveries to an address in an
	// account, newest first.
	RecentSends(ctx context.Context, accountID int64, email string, limit int) ([]Delivery, error)
	// ClaimDelivery takes a due delivery for sending until until, if its
	// next try is still next as read (false: another run took it), so
	// that overlapping runs never send one delivery twice.
	ClaimDelivery(ctx context.Context, id int64, next, until time.Time) (bool, error)
	// Suppress marks an address bouncing; false when it was already.
	Suppress(ctx context.Context, s Suppressed) (bool, error)
	// Unsuppress mails an address again; false when it was not suppressed.
	Unsuppress(ctx context.Context, accountID int64, email string) (bool, error)
	IsSuppressed(ctx context.Context, accountID int64, email string) (bool, error)
	Suppressions(ctx context.Context, accountID int64) ([]Suppressed, error)
	// OutsideRecipients tells whether an account lets schedules mail
	// addresses that are not its users'.
	OutsideRecipients(ctx context.Context, accountID int64) (bool, error)
	SetOutsideRecipients(ctx context.Context, accountID int64, allow bool) error
	// MailKey is the server's key for VERP and unsubscribe tokens,
	// made at first use.
	MailKey(ctx context.Context) ([]byte, error)
	// HardBounces is how many consecutive hard-bounced sends suppress an
	// address; SetHardBounces sets it per account (0: the default).
	HardBounces(ctx context.Context, accountID int64) (int, error)
	SetHardBounces(ctx context.Context, accountID int64, n int) error
	// PurgeDeliveries forgets deliveries made before before.
	PurgeDeliveries(ctx context.Context, before time.Time) (int64, error)
}

// DeliveryRetention is how long deliveries are kept: long enough to
// count consecutive bounces of a monthly schedule.
const DeliveryRetention = 400 * 24 * time.Hour

// Tokens: the VERP address and the unsubscribe link name a delivery (and
// through it the schedule and the recipient) under an HMAC of the
// server's mail key, so a forged bounce or unsubscribe names nothing.

var tokenEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

func mac(key []byte, purpose, body string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(purpose + "\x00" + body))
	// 80 bits: a forger must guess it per delivery, online
	return strings.ToLower(tokenEnc.EncodeToString(h.Sum(nil)[:10]))
}

// Token names a delivery for purpose ("bounce", "unsubscribe").
func Token(key []byte, purpose string, d Delivery) string {
	body := fmt.Sprintf("%d.%d.%d", d.ScheduleID, d.RecipientID, d.ID)
	return body + "." + mac(key, purpose, body)
}

// Ids are what a token names.
type Ids struct{ Schedule, Recipient, Delivery int64 }

// ParseToken checks a token of purpose; false for anything forged or
// damaged.
func ParseToken(key []byte, purpose, tok string) (Ids, bool) {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || len(tok) > 120 {
		return Ids{}, false
	}
	body, sum := tok[:i], strings.ToLower(tok[i+1:])
	if !hmac.Equal([]byte(sum), []byte(mac(key, purpose, body))) {
		return Ids{}, false
	}
	parts := strings.Split(body, ".")
	if len(parts) != 3 {
		return Ids{}, false
	}
	var n [3]int64
	for j, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil || v <= 0 {
			return Ids{}, false
		}
		n[j] = v
	}
	return Ids{n[0], n[1], n[2]}, true
}

// VERP is the envelope sender of a delivery: the local part of base
// ("bounces@example.com") with "+" and the delivery's bounce token.
func VERP(key []byte, base string, d Delivery) string {
	at := strings.LastIndexByte(base, '@')
	return base[:at] + "+" + Token(key, "bounce", d) + base[at:]
}

// ParseVERP finds the delivery an address to base's VERP form names;
// false for any other address or a bad HMAC. Matching is case-blind (mail
// servers may fold the local part's case; the token is lower case).
func ParseVERP(key []byte, base, addr string) (Ids, bool) {
	at := strings.LastIndexByte(base, '@')
	aat := strings.LastIndexByte(addr, '@')
	if at < 0 || aat < 0 || !strings.EqualFold(addr[aat:], base[at:]) {
		return Ids{}, false
	}
	prefix := strings.ToLower(base[:at] + "+")
	local := strings.ToLower(addr[:aat])
	if !strings.HasPrefix(local, prefix) {
		return Ids{}, false
	}
	return ParseToken(key, "bounce", local[len(prefix):])
}
