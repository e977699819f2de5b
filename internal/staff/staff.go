// Package staff is the operator's own people and their need-to-know access
// to customer accounts (PRODUCT §7): staff members with a role and a
// recorded training date, sign-in always with a second factor, and access
// grants that one member asks for and a second one approves. It holds the
// rules; the web console and the audit log are elsewhere.
package staff

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Role is a staff member's job, which decides what they may do.
type Role string

const (
	Support           Role = "support"
	Consultant        Role = "consultant"
	Engineer          Role = "engineer"
	HeadOfDevelopment Role = "head-of-development"
	DPO               Role = "dpo"
)

// Roles lists every role, in the order the CLI shows them.
var Roles = []Role{Support, Consultant, Engineer, HeadOfDevelopment, DPO}

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == strings.ToLower(strings.TrimSpace(s)) {
			return r, nil
		}
	}
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return "", fmt.Errorf("unknown staff role %q: want one of %s", s, strings.Join(names, ", "))
}

// MayApprove: the head of development and the DPO approve access grants
// (never their own). Support, consultants and engineers only ask.
func (r Role) MayApprove() bool { return r == HeadOfDevelopment || r == DPO }

// Tooling: production tooling (backups, restore, configuration, the audit
// key) is for engineers and the head of development only (§7.6).
func (r Role) Tooling() bool { return r == Engineer || r == HeadOfDevelopment }

// Scope is what a grant allows in the customer's account.
type Scope string

const (
	// Read: the account's dashboards, reports and settings, to look at.
	Read Scope = "read"
	// ReadWrite: also change the account's settings, sites and people.
	ReadWrite Scope = "read-write"
)

// ParseScope reads a scope's name.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case Read, ReadWrite:
		return Scope(s), nil
	}
	return "", fmt.Errorf("unknown scope %q: want %q or %q", s, Read, ReadWrite)
}

// Member is a staff member. They are not a customer user: a separate table,
// ids and sessions, so that no customer role ever reaches the console and
// no staff member is ever a user of an account.
type Member struct {
	ID           int64
	Email, Name  string
	Role         Role
	PasswordHash string `json:"-"`
	TOTPSecret   string `json:"-"` // empty until they have set up their sign-in
	TOTPLastStep int64  `json:"-"`
	LockedUntil  time.Time
	TrainedAt    time.Time
	Created      time.Time
	Removed      time.Time // zero while they are staff
	RemindedFor  time.Time // the training date a reminder was sent for
}

// Ready tells whether the member has set up their password and second
// factor (staff cannot sign in with a password alone).
func (m Member) Ready() bool { return m.PasswordHash != "" && m.TOTPSecret != "" }

// Grant is an access grant: one staff member's access to one customer
// account, for a reason, in a scope, for a time, once a second member has
// approved it.
type Grant struct {
	ID         int64
	Staff      int64
	Account    int64
	Reason     string // the ticket
	Scope      Scope
	Duration   time.Duration // asked for; runs from the approval
	Requested  time.Time
	ApprovedBy int64
	Approved   time.Time
	Expires    time.Time // Approved + Duration; zero until approved
	RevokedBy  int64
	Revoked    time.Time
}

// State names where a grant stands at now.
func (g Grant) State(now time.Time) string {
	switch {
	case !g.Revoked.IsZero():
		return "revoked"
	case g.Approved.IsZero() && now.Sub(g.Requested) >= RequestTTL:
		return "lapsed"
	case g.Approved.IsZero():
		return "requested"
	case !now.Before(g.Expires):
		return "expired"
	}
	return "active"
}

// Active: approved, not revoked, not expired at now.
func (g Grant) Active(now time.Time) bool { return g.State(now) == "active" }

// RequestTTL: a request nobody approved within a day lapses; ask again.
const RequestTTL = 24 * time.Hour

// Working hours: staff access outside them, 07:00 to 19:00 UTC on Monday
// to Friday, is a security event (not refused: an incident at night is
// real work, but it is looked at).
const (
	WorkStart = 7
	WorkEnd   = 19
)

// OffHours tells whether t is outside working hours.
func OffHours(t time.Time) bool {
	t = t.UTC()
	return t.Weekday() == time.Saturday || t.Weekday() == time.Sunday || t.Hour() < WorkStart || t.Hour() >= WorkEnd
}

// Rules are the limits of grants and training, from configuration; the
// zero Rules are the product's (and the longest allowed).
type Rules struct {
	// Training: how long a training counts (at most 92 days, a quarter).
	Training time.Duration
	// MaxGrant: the longest grant of anyone but a consultant (at most 24 h).
	MaxGrant time.Duration
	// MaxConsultantGrant: a consultant's longest grant (at most 14 days).
	MaxConsultantGrant time.Duration
}

const (
	MaxTraining         = 92 * 24 * time.Hour
	MaxGrant            = 24 * time.Hour
	MaxConsultantGrant  = 14 * 24 * time.Hour
	ReminderBeforeLapse = 14 * 24 * time.Hour
	maxReasonRunes      = 500
)

// Check refuses limits above the product's maxima.
func (r Rules) Check() error {
	switch {
	case r.Training < 0 || r.Training > MaxTraining:
		return fmt.Errorf("staff training validity %v: must be at most %v (one quarter)", r.Training, MaxTraining)
	case r.MaxGrant < 0 || r.MaxGrant > MaxGrant:
		return fmt.Errorf("staff grant limit %v: must be at most %v", r.MaxGrant, MaxGrant)
	case r.MaxConsultantGrant < 0 || r.MaxConsultantGrant > MaxConsultantGrant:
		return fmt.Errorf("consultant grant limit %v: must be at most %v", r.MaxConsultantGrant, MaxConsultantGrant)
	}
	return nil
}

func orMax(d, max time.Duration) time.Duration {
	if d <= 0 || d > max {
		return max
	}
	return d
}

// TrainingValid is how long a training counts.
func (r Rules) TrainingValid() time.Duration { return orMax(r.Training, MaxTraining) }

// GrantLimit is the longest grant a role may ask for.
func (r Rules) GrantLimit(role Role) time.Duration {
	if role == Consultant {
		return orMax(r.MaxConsultantGrant, MaxConsultantGrant)
	}
	return orMax(r.MaxGrant, MaxGrant)
}

// TrainingLapses is when m's training stops counting.
func (r Rules) TrainingLapses(m Member) time.Time { return m.TrainedAt.Add(r.TrainingValid()) }

// Trained tells whether m's training counts at now.
func (r Rules) Trained(m Member, now time.Time) bool {
	return !m.TrainedAt.IsZero() && now.Before(r.TrainingLapses(m))
}

// Errors of the grant rules; each says what to do.
var (
	ErrUntrained  = errors.New("your security and privacy training is older than allowed: no access to customer accounts until it is renewed and recorded")
	ErrOwnGrant   = errors.New("nobody approves their own access request: another staff member with approve rights must")
	ErrNoApprove  = errors.New("your role may not approve access requests (the head of development and the DPO do)")
	ErrNotPending = errors.New("the request is not waiting for approval (already approved, revoked or lapsed)")
	ErrNoGrant    = errors.New("no active access grant of yours covers this")
)

// Store keeps staff, their sessions and links, and grants.
type Store interface {
	AddStaff(ctx context.Context, m Member) (Member, error)
	// Staff finds a member by id, removed or not.
	Staff(ctx context.Context, id int64) (Member, error)
	// StaffByEmail finds a member who is not removed.
	StaffByEmail(ctx context.Context, email string) (Member, error)
	StaffList(ctx context.Context) ([]Member, error)
	// RemoveStaff ends a member at now: their sessions and links end and
	// their grants are revoked; the row stays, so that the record of what
	// they did keeps their name.
	RemoveStaff(ctx context.Context, id int64, now time.Time) error
	SetStaffTrained(ctx context.Context, id int64, at time.Time) error
	SetStaffReminded(ctx context.Context, id int64, trainedAt time.Time) error
	// SetStaffSignin sets password hash and TOTP secret (with its last used
	// step) of a member and ends their sessions, at once.
	SetStaffSignin(ctx context.Context, id int64, hash, secret string, step int64) error
	UseStaffStep(ctx context.Context, id int64, step int64) (bool, error)
	// StaffAttempt, StaffFailed and StaffSucceeded count sign-in attempts
	// and lock as the customer ones do (store.AccountStore.SigninAttempt).
	StaffAttempt(ctx context.Context, id int64, limit int, now time.Time) (bool, error)
	StaffFailed(ctx context.Context, id int64, limit int, lockFor time.Duration, now time.Time) (time.Time, error)
	StaffSucceeded(ctx context.Context, id int64) error

	CreateStaffLink(ctx context.Context, tokenHash string, id int64, expires time.Time) error
	// UseStaffLink spends a set-up link and returns its member (ErrNotFound
	// when unknown, spent or expired).
	UseStaffLink(ctx context.Context, tokenHash string, now time.Time) (int64, error)
	StaffLinkMember(ctx context.Context, tokenHash string, now time.Time) (int64, error)

	CreateStaffSession(ctx context.Context, s Session) error
	StaffSession(ctx context.Context, tokenHash string) (Session, error)
	TouchStaffSession(ctx context.Context, tokenHash string, seen time.Time) error
	// SetActing makes a session act under a grant (0: in none).
	SetActing(ctx context.Context, tokenHash string, grant int64) error
	DeleteStaffSession(ctx context.Context, tokenHash string) error
	PurgeStaffSessions(ctx context.Context, seenBefore, createdBefore, now time.Time) (int64, error)

	RequestGrant(ctx context.Context, g Grant) (Grant, error)
	StaffGrant(ctx context.Context, id int64) (Grant, error)
	// StaffGrants lists grants newest first: a member's (staff != 0), or
	// everyone's requested since since.
	StaffGrants(ctx context.Context, staff int64, since time.Time) ([]Grant, error)
	// ApproveGrant approves a request made after requestedAfter and still
	// waiting (else store.ErrConflict) by another member than its own
	// (else store.ErrConflict), setting its expiry, in one statement.
	ApproveGrant(ctx context.Context, id, by int64, requestedAfter, now time.Time) (Grant, error)
	RevokeGrant(ctx context.Context, id, by int64, now time.Time) error
}

// Session is a staff member's signed-in session on the console.
type Session struct {
	TokenHash string
	Staff     int64
	CSRF      string
	Created   time.Time
	Seen      time.Time
	Acting    int64 // the grant the member acts under in a customer account
}
