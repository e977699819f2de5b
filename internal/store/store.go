// Package store defines the two stores of Fjord: the account store (sites,
// later users, grants, audit log) and the event store (collected events,
// salts, the journal position). Each engine lives in a sub-package and
// passes the shared suite in store/storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
	"unicode"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a change would break a rule of the data
// (removing an account's last Administrator); the error says which.
var ErrConflict = errors.New("not possible")

// ErrExists is returned when a row with the same unique key already exists.
var ErrExists = errors.New("already exists")

// Site is one tracked website.
type Site struct {
	ID        int64
	Domain    string // the name the tracker sends as "domain"/"d"
	TimeZone  string // IANA name; days are bucketed in this zone
	AccountID int64  // 0: not in an account yet
	Created   time.Time
	// RespectDNT drops hits from browsers that send Do Not Track or
	// Global Privacy Control; Ignored drops hits from these addresses.
	RespectDNT bool
	Ignored    []netip.Prefix
}

// MaxRanges is how many ignored ranges a site may have.
const MaxRanges = 100

// ParseRanges reads CIDR ranges or single addresses separated by spaces,
// commas or line breaks; an error names the entry it cannot read.
func ParseRanges(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not an address range like 192.0.2.0/24 or 2001:db8::/48", truncateRunes(f, 60))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	if len(out) > MaxRanges {
		return nil, fmt.Errorf("%d address ranges: at most %d", len(out), MaxRanges)
	}
	return out, nil
}

// FormatRanges is the stored form of ParseRanges' input.
func FormatRanges(ps []netip.Prefix) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, " ")
}

// NormalizeEmail is the stored form of an e-mail address: trimmed, ASCII
// letters in lower case. Other letters stay as they are (strings.ToLower
// would make the Kelvin sign a "k" and let one address stand for another).
func NormalizeEmail(e string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, strings.TrimSpace(e))
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// AccountStore holds the OLTP data. It grows with the accounts issue.
type AccountStore interface {
	AddSite(ctx context.Context, s Site) (Site, error)
	SiteByDomain(ctx context.Context, domain string) (Site, error)
	SiteByID(ctx context.Context, id int64) (Site, error)
	Sites(ctx context.Context) ([]Site, error)
	// SetSiteSettings sets a site's collection settings.
	SetSiteSettings(ctx context.Context, id int64, respectDNT bool, ignored []netip.Prefix) error
	// AccountSites lists an account's sites by domain.
	AccountSites(ctx context.Context, accountID int64) ([]Site, error)

	AddGoal(ctx context.Context, g Goal) (Goal, error)
	Goals(ctx context.Context, siteID int64) ([]Goal, error)
	DeleteGoal(ctx context.Context, siteID, id int64) error

	SaveReport(ctx context.Context, r SavedReport) (SavedReport, error)
	SavedReport(ctx context.Context, siteID, id int64) (SavedReport, error)
	// SavedReportByID finds a report on any site; the caller asks authz
	// whether its site's account is the asker's.
	SavedReportByID(ctx context.Context, id int64) (SavedReport, error)
	SavedReports(ctx context.Context, siteID int64) ([]SavedReport, error)
	DeleteSavedReport(ctx context.Context, siteID, id int64) error

	// CreateAccount stores an account with its first Administrator, who is
	// its main contact, and its generic user, in one transaction.
	CreateAccount(ctx context.Context, a Account, admin User) (Account, User, error)
	Accounts(ctx context.Context) ([]Account, error)
	Account(ctx context.Context, id int64) (Account, error)
	AddUser(ctx context.Context, u User) (User, error)
	// Users lists an account's people (not its generic user).
	Users(ctx context.Context, accountID int64) ([]User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	// Grant gives a User a whole site (siteID) or one saved report
	// (reportID); exactly one of them is set, and it must belong to the
	// user's account (else ErrNotFound).
	Grant(ctx context.Context, userID, siteID, reportID int64) error
	Grants(ctx context.Context, userID int64) (Grants, error)
	UserByID(ctx context.Context, id int64) (User, error)
	// SetPassword sets a user's password hash and spends every unused
	// one-time link of theirs, at once.
	SetPassword(ctx context.Context, userID int64, hash string) error
	// SigninAttempt reserves a sign-in attempt of the user before the
	// password is checked: it counts the attempt and returns true, or
	// false when the user is locked or limit attempts are already counted
	// (so parallel guesses cannot outrun the lock). SigninFailed then locks
	// the user until now+lockFor once limit failures are counted, and
	// returns that time (zero while not locked); SigninSucceeded starts the
	// count again.
	SigninAttempt(ctx context.Context, userID int64, limit int, now time.Time) (bool, error)
	SigninFailed(ctx context.Context, userID int64, limit int, lockFor time.Duration, now time.Time) (time.Time, error)
	SigninSucceeded(ctx context.Context, userID int64) error
	// SigninRefund gives back an attempt that neither failed nor completed
	// a sign-in (a right password when the second factor is still due).
	SigninRefund(ctx context.Context, userID int64) error

	CreateSession(ctx context.Context, s Session) error
	// Session finds a session by its token's hash; a removed user has none.
	Session(ctx context.Context, tokenHash string) (Session, error)
	TouchSession(ctx context.Context, tokenHash string, seen time.Time) error
	DeleteSession(ctx context.Context, tokenHash string) error
	// DeleteSessions ends every session of a user (sign out everywhere).
	DeleteSessions(ctx context.Context, userID int64) error
	// PurgeSessions deletes sessions last seen before seenBefore or made
	// before createdBefore, pending ones made before pendingBefore, and
	// links expired before now; it returns how many rows went.
	PurgeSessions(ctx context.Context, seenBefore, createdBefore, pendingBefore, now time.Time) (int64, error)
	CreateLink(ctx context.Context, l Link) error
	// UseLink spends a one-time link of the purpose and returns its user;
	// an unknown, spent or expired link is ErrNotFound.
	UseLink(ctx context.Context, tokenHash, purpose string, now time.Time) (int64, error)

	// SetTOTP makes secret the second factor of a user who has none (else
	// ErrNotFound), with lastStep as its last used time step, and replaces
	// the recovery codes, at once.
	SetTOTP(ctx context.Context, userID int64, secret string, lastStep int64, recoveryHashes []string) error
	// ClearTOTP removes the second factor and the recovery codes.
	ClearTOTP(ctx context.Context, userID int64) error
	// UseTOTPStep records a time step as used if it is later than the last
	// one used, and tells whether it was (a code works once).
	UseTOTPStep(ctx context.Context, userID int64, step int64) (bool, error)
	SetRecoveryCodes(ctx context.Context, userID int64, hashes []string) error
	// UseRecoveryCode spends an unused recovery code of the user, and
	// tells whether there was one.
	UseRecoveryCode(ctx context.Context, userID int64, hash string, now time.Time) (bool, error)
	RecoveryCodesLeft(ctx context.Context, userID int64) (int, error)
	SetRequireSecondFactor(ctx context.Context, accountID int64, require bool) error
	SetLeaverRetention(ctx context.Context, accountID int64, days int) error

	// RemoveUser makes a user a leaver at now: their sessions and links
	// end, their keys are revoked and their saved reports move to the
	// account's generic user, at once. The main contact and the last
	// Administrator cannot leave (ErrConflict).
	RemoveUser(ctx context.Context, userID int64, now time.Time) error
	// RestoreUser undoes RemoveUser before the account's retention period
	// has passed (else ErrNotFound): the reports come back, keys do not.
	RestoreUser(ctx context.Context, userID int64, now time.Time) error
	// RemovedUsers lists an account's leavers not purged yet.
	RemovedUsers(ctx context.Context, accountID int64) ([]User, error)
	// PurgeLeavers deletes the personal data of every user removed at
	// least their account's retention period before now, keeping the row's
	// id as a pseudonym, and returns how many it purged.
	PurgeLeavers(ctx context.Context, now time.Time) (int, error)

	// AddIntegration stores an outbound integration, not approved; its site
	// must be of its account (else ErrNotFound).
	AddIntegration(ctx context.Context, i Integration) (Integration, error)
	Integration(ctx context.Context, id int64) (Integration, error)
	Integrations(ctx context.Context, accountID int64) ([]Integration, error)
	// ApprovedIntegrations lists every approved integration (the sender).
	ApprovedIntegrations(ctx context.Context) ([]Integration, error)
	// DeleteIntegration stops an integration for good, recording who did
	// it; its record of approvals stays.
	DeleteIntegration(ctx context.Context, id, userID int64, now time.Time) error
	// ApproveIntegration and WithdrawIntegration change the approval and
	// record who did it, when, and what it covered, in one transaction;
	// approving an approved integration (or withdrawing one that is not)
	// is ErrConflict.
	ApproveIntegration(ctx context.Context, id, userID int64, now time.Time) error
	WithdrawIntegration(ctx context.Context, id, userID int64, now time.Time) error
	Approvals(ctx context.Context, id int64) ([]Approval, error)
	// IntegrationSent records the last day sent and how it went.
	IntegrationSent(ctx context.Context, id int64, day, status string) error

	// Ungrant withdraws a User's grant of a whole site (siteID) or of one
	// saved report (reportID); ErrNotFound when there is no such grant.
	Ungrant(ctx context.Context, userID, siteID, reportID int64) error
	// CreateAPIKey stores a key with its sites in one transaction and
	// returns it with its id. The user must be a person of an account who
	// has not left, and every site must be of the user's account (else
	// ErrNotFound, and nothing is stored).
	CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error)
	// APIKeyByHash finds a key, with its sites, by its token's hash. A key
	// of a removed user is ErrNotFound; a revoked or expired one is
	// returned as it is (the caller refuses it).
	APIKeyByHash(ctx context.Context, tokenHash string) (APIKey, error)
	// APIKeys lists a user's keys (without their hashes), newest first.
	APIKeys(ctx context.Context, userID int64) ([]APIKey, error)
	// RevokeAPIKey revokes a key of the user at now (revoking a revoked
	// key changes nothing); another user's key or an unknown id is
	// ErrNotFound. userID 0 is any user's key (the operator).
	RevokeAPIKey(ctx context.Context, userID, id int64, now time.Time) error
	// TouchAPIKey records a use of a key at now, unless one later than
	// now-every is recorded already (so that a busy key writes at most
	// once per every).
	TouchAPIKey(ctx context.Context, id int64, now time.Time, every time.Duration) error
	Health
	Close() error
}

// Health is what /readyz asks a store: whether it answers now, and
// whether its schema is the one this binary's migrations make.
type Health interface {
	// Ping reaches the database (a round trip for a server; embedded
	// engines answer from the process).
	Ping(ctx context.Context) error
	// CheckSchema is nil when every migration of the binary is applied
	// and the database records none it lacks (else wraps ErrSchema).
	CheckSchema(ctx context.Context) error
}

// APIKey is a user's key to the Stats API (PRODUCT §3.4). The key itself
// is shown once, when it is made; the store keeps its SHA-256 and Prefix,
// its first characters, which tell keys apart in lists and are no secret.
type APIKey struct {
	ID        int64
	UserID    int64
	Name      string
	TokenHash string // hex SHA-256 of the key; empty in lists
	Prefix    string
	Sites     []int64 // the sites it is scoped to
	Created   time.Time
	Expires   time.Time
	LastUsed  time.Time // zero: never used
	Revoked   time.Time // zero: not revoked
}

// Integration is an outbound integration (PRODUCT §3.6): for now a
// webhook that receives a site's numbers of each day. It sends only while
// approved by the account's main contact.
type Integration struct {
	ID, AccountID, SiteID int64
	Kind                  string // "webhook"
	URL                   string
	CreatedBy             int64
	Created               time.Time
	ApprovedBy            int64     // 0: not approved
	Approved              time.Time // zero: not approved
	LastSentDay           string    // YYYY-MM-DD, "" before the first
	LastStatus            string
}

// What is what an approval covers, recorded with it.
func (i Integration) What() string {
	return fmt.Sprintf("%s of the daily numbers of site %d to %s", i.Kind, i.SiteID, i.URL)
}

// Approval actions.
const (
	Approved  = "approved"
	Withdrawn = "withdrawn"
)

// Approval is one approval or withdrawal of an integration.
type Approval struct {
	Integration int64
	Action      string // Approved, Withdrawn, or "deleted"
	UserID      int64
	At          time.Time
	What        string
}

// Session is a signed-in browser (PRODUCT §3.4).
type Session struct {
	TokenHash string // hex SHA-256 of the token in the cookie
	UserID    int64
	CSRF      string // the token its forms carry
	Created   time.Time
	Seen      time.Time
	Pending   bool // passed the password, owes the second factor
}

// Link is a one-time link sent to a user.
type Link struct {
	TokenHash string
	UserID    int64
	Purpose   string // LinkWelcome or LinkReset
	Created   time.Time
	Expires   time.Time
}

// Link purposes.
const (
	LinkWelcome = "welcome" // a new user's first sign-in: set a password
	LinkReset   = "reset"   // a password reset
)

// Account is a customer organisation (PRODUCT §3.1).
type Account struct {
	ID                  int64
	Name                string
	MainContact         int64 // a user of the account
	RequireSecondFactor bool
	LeaverRetentionDays int // 1..90
	Created             time.Time
}

// User roles.
const (
	RoleAdmin   = "admin"
	RoleUser    = "user"
	RoleGeneric = "generic" // the account's generic user, who inherits leavers' reports
)

// User is a person of an account, or its generic user.
type User struct {
	ID           int64
	AccountID    int64
	Email        string // lower case; "" for the generic user
	Name         string
	Role         string
	PasswordHash string
	Created      time.Time
	LockedUntil  time.Time // zero when sign-in is not locked
	TOTPSecret   string    // base32; "" without a second factor
	TOTPLastStep int64     // the last time step a code was used for
	Removed      time.Time // zero unless the user left (PRODUCT §3.5)
	PurgeAfter   time.Time // a leaver's personal data goes then
}

// Grants are what a User may read: whole sites and single saved reports.
type Grants struct {
	Sites   []int64
	Reports []int64
}

// Goal is a conversion: a custom event by name, or a pageview whose path
// matches a pattern (* is any run of characters but /, ** any run at all).
type Goal struct {
	ID     int64  `json:"id"`
	SiteID int64  `json:"site_id"`
	Kind   string `json:"kind"` // "event" or "page"
	Value  string `json:"value"`
}

// Name is how a goal is shown and filtered: the event name, or
// "Visit /path" as Plausible names pageview goals.
func (g Goal) Name() string {
	if g.Kind == "page" {
		return "Visit " + g.Value
	}
	return g.Value
}

// SavedReport is a named query definition (the body of a v2 query).
type SavedReport struct {
	ID         int64     `json:"id"`
	SiteID     int64     `json:"site_id"`
	OwnerID    *int64    `json:"owner_id"` // users arrive with the accounts issue
	Name       string    `json:"name"`
	Definition string    `json:"definition"`
	Created    time.Time `json:"created"`
}

// Event is one stored event. Visitor IP addresses never reach this type.
type Event struct {
	ID             [16]byte // unique per event; the tracker makes it, the collector when absent
	SiteID         int64
	Time           time.Time // UTC, millisecond precision
	Name           string    // "pageview", "engagement" or a custom event name
	VisitorID      uint64    // keyed hash of (daily salt, site, IP, user agent)
	Hostname       string
	Path           string
	Referrer       string // referrer URL without query, "" when direct or same-site
	Source         string
	Channel        string
	UTMSource      string
	UTMMedium      string
	UTMCampaign    string
	UTMContent     string
	UTMTerm        string
	Country        string
	Region         string
	City           string
	Browser        string
	BrowserVersion string
	OS             string
	OSVersion      string
	Device         string
	Props          string // JSON object of custom properties, "" when none
	Interactive    bool   // counts against bounce (pageviews, and events unless marked otherwise)
	ScrollDepth    int16  // engagement events: max scroll depth in percent, -1 unknown
	EngagedMS      int32  // engagement events: engaged time in milliseconds
}

// JournalPos is how far the loader applied the journal; stored with the
// events in one transaction so a replay after a crash neither loses nor
// repeats events.
type JournalPos struct {
	Journal string // the journal's ID
	Segment uint64
	Offset  int64
}

// Summary is the headline numbers of a site over a time range.
type Summary struct {
	Visitors      int64   `json:"visitors"`
	Visits        int64   `json:"visits"`
	Pageviews     int64   `json:"pageviews"`
	Events        int64   `json:"events"`
	Bounces       int64   `json:"bounces"`
	BounceRate    float64 `json:"bounce_rate"`    // percent, one decimal
	VisitDuration float64 `json:"visit_duration"` // seconds, mean over visits
	DurationSum   int64   `json:"-"`              // milliseconds over all visits
}

// SessionTimeout ends a visit after this long without activity (PRODUCT §1.5).
const SessionTimeout = 30 * time.Minute

// Counter names for events kept out of the numbers.
const (
	CountBot     = "bot"
	CountRefused = "refused"
	// CountOptOut: hits of browsers asking not to be tracked (DNT, GPC)
	// on a site that respects it; CountIgnored: hits from a site's
	// ignored address ranges.
	CountOptOut  = "opt-out"
	CountIgnored = "ignored"
)

// EventStore holds events and what the write path needs to stay exact.
type EventStore interface {
	// Apply stores events and records pos as applied, atomically: either
	// both are durable or neither is. An event whose (site, time, id) is
	// already stored, or came earlier in the batch, is dropped: applying
	// a batch twice stores it once.
	Apply(ctx context.Context, events []Event, pos JournalPos) error
	// Check tells whether Apply would accept the events, storing nothing;
	// the loader uses it to find a record the store refuses for good.
	Check(ctx context.Context, events []Event) error
	// Position is the position of the named journal recorded by the last
	// Apply of its events (zero for a journal never applied).
	Position(ctx context.Context, journal string) (JournalPos, error)
	// Summary answers the headline numbers for [from, to). Visits are
	// derived from the stored events: a visitor's events belong to one
	// visit while each follows the previous within SessionTimeout.
	Summary(ctx context.Context, siteID int64, from, to time.Time) (Summary, error)
	// CountEvents counts stored events of a site in [from, to), any name.
	CountEvents(ctx context.Context, siteID int64, from, to time.Time) (int64, error)
	// AddCounts adds to per-site, per-day counters of events kept out of
	// the numbers (bots, refusals).
	AddCounts(ctx context.Context, counts []Count) error
	// Counts sums the counters of a site over local days fromDay..toDay.
	Counts(ctx context.Context, siteID int64, fromDay, toDay string) (map[string]int64, error)
	// Salt returns the salt of a site's local day, creating it when absent.
	Salt(ctx context.Context, siteID int64, day string, create func() []byte) ([]byte, error)
	// DropSalts destroys every salt created before the cutoff.
	DropSalts(ctx context.Context, createdBefore time.Time) (int, error)
	// Duplicates is how many events Apply has dropped since the store was
	// opened because their id, with their site and time, was already
	// stored or came earlier in the same batch (a re-sent or redelivered
	// batch); only committed batches count.
	Duplicates() uint64
	Health
	Close() error
}

// Count is an increment of a per-day counter.
type Count struct {
	SiteID int64
	Day    string // YYYY-MM-DD in the site's time zone
	Name   string
	N      int64
}

// Finish computes the derived rates from the sums.
func (s *Summary) Finish() {
	if s.Visits > 0 {
		s.BounceRate = math.Round(float64(s.Bounces)*1000/float64(s.Visits)) / 10
		s.VisitDuration = math.Round(float64(s.DurationSum) / float64(s.Visits) / 1000)
	}
}

// Strings returns pointers to every string field in a fixed order, for
// codecs that treat them alike. Adding a field appends to the end.
func (e *Event) Strings() []*string {
	return []*string{&e.Name, &e.Hostname, &e.Path, &e.Referrer, &e.Source, &e.Channel,
		&e.UTMSource, &e.UTMMedium, &e.UTMCampaign, &e.UTMContent, &e.UTMTerm,
		&e.Country, &e.Region, &e.City, &e.Browser, &e.BrowserVersion, &e.OS, &e.OSVersion, &e.Device, &e.Props}
}

// EventField returns the field of e that holds an events column of a
// visit's session value (the columns of report's visit dimensions but
// entry and exit page), or nil.
func EventField(e *Event, col string) *string {
	switch col {
	case "source":
		return &e.Source
	case "referrer":
		return &e.Referrer
	case "channel":
		return &e.Channel
	case "utm_source":
		return &e.UTMSource
	case "utm_medium":
		return &e.UTMMedium
	case "utm_campaign":
		return &e.UTMCampaign
	case "utm_content":
		return &e.UTMContent
	case "utm_term":
		return &e.UTMTerm
	case "country":
		return &e.Country
	case "region":
		return &e.Region
	case "city":
		return &e.City
	case "browser":
		return &e.Browser
	case "browser_version":
		return &e.BrowserVersion
	case "os":
		return &e.OS
	case "os_version":
		return &e.OSVersion
	case "device":
		return &e.Device
	}
	return nil
}
