// Package feed is Fjord's datafeeds (PRODUCT §4): a saved report
// published at a long secret URL that needs no sign-in, for spreadsheets
// and scripts that fetch numbers on their own. Because the URL is the only
// credential, this package decides everything about it that is not HTTP:
// the token (shown once, stored as a hash), which request may have the
// data (address ranges, limits on requests per hour and on distinct client
// addresses per day), and when a feed dies (unused for 30 days, or abused).
package feed

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"fjord/internal/report"
)

// Feed is a datafeed of one saved report.
type Feed struct {
	ID        int64
	AccountID int64
	ReportID  int64
	// OwnerID is the user who published it; the feed answers only while
	// they may read the report (an Administrator who enables it again
	// becomes its owner).
	OwnerID   int64
	Name      string
	TokenHash string // hex SHA-256 of the token; the token is never stored
	Ranges    []netip.Prefix
	Limits    Limits
	Created   time.Time
	// Since is when it was last made usable (created or enabled again):
	// the 30 days of idleness count from it or the last use.
	Since       time.Time
	LastUsed    time.Time // zero: never
	Disabled    time.Time // zero: answering
	DisabledWhy string
}

// Limits are a feed's own bounds (PRODUCT §4.4), set when it is made and
// changed by whoever manages it.
type Limits struct {
	// MaxDays is the longest period a request may ask for.
	MaxDays int
	// PerHour is how many requests an hour it answers; more are refused
	// with 429, and the request that makes twice as many disables it.
	PerHour int
	// Addresses is how many distinct client addresses a day it answers;
	// a further address is refused with 429, and the address that makes
	// twice as many asking disables it.
	Addresses int
}

// DefaultLimits: a spreadsheet or a script polls a feed a few times an
// hour from one or two places (an office, a server, a cloud sheet whose
// fetches come from a handful of addresses); 60 requests an hour and 5
// addresses a day leave room for that and for retries, while a leaked URL
// passed around shows up as new addresses within a day. A year is the
// longest period: a feed is for current numbers, not an archive.
var DefaultLimits = Limits{MaxDays: 366, PerHour: 60, Addresses: 5}

// Bounds of what a feed's limits may be set to.
const (
	MaxMaxDays   = 3 * 366
	MaxPerHour   = 3600
	MaxAddresses = 100
	MaxName      = 100
)

// IdleAfter is how long a feed may go unused before the daily job
// disables it (PRODUCT §4.3).
const IdleAfter = 30 * 24 * time.Hour

// UseRetention is how long the record of a feed's requests is kept.
const UseRetention = 90 * 24 * time.Hour

// Why a feed was disabled, as the page and the 410 answer say it.
const (
	WhyIdle      = "unused for 30 days"
	WhyRate      = "more requests than its limit"
	WhyAddresses = "requests from more addresses than its limit"
	WhyOwner     = "its owner can no longer read the report"
	WhyManual    = "disabled by hand"
)

// Use is one request of a feed, as its page shows it: who asked (the
// client's address, which the Administrators need to recognise their own
// systems) and what they got.
type Use struct {
	ID     int64
	FeedID int64
	Time   time.Time
	Client string
	Status int // 0 while it is being answered
	Rows   int64
	Bytes  int64
}

// Traffic is what the limits are judged on, at a request: the feed's
// requests in the last hour (those refused as over a limit included, so
// that ignoring the 429 leads to disabling; those refused for their
// address or because the feed was disabled left out) and the distinct
// addresses of the last day, both counted from when the feed was last
// made usable at the earliest (Feed.Since), so that an Administrator who
// enables an abused feed again starts it afresh. Requests being answered
// count as answered.
type Traffic struct {
	Hour      int  // requests in the last hour, not counting this one
	Throttled int  // of them, refused with 429
	Served    int  // distinct addresses answered in the last day
	Known     bool // this request's address is one of them
	Asking    int  // distinct addresses that asked in the last day, this one included
}

// Verdict is what the limits say about a request.
type Verdict struct {
	Throttle bool   // refuse it with 429
	Disable  string // disable the feed, for this reason
	// Alert: the first refusal of the hour, which raises a security
	// event (later ones in the hour join it, see secmon's de-duplication).
	Alert bool
}

// Judge applies the limits to a request.
func (l Limits) Judge(t Traffic) Verdict {
	var v Verdict
	switch {
	case t.Hour+1 >= 2*l.PerHour:
		v.Throttle, v.Disable = true, WhyRate
	case t.Asking >= 2*l.Addresses:
		v.Throttle, v.Disable = true, WhyAddresses
	case t.Hour >= l.PerHour:
		v.Throttle = true
	case !t.Known && t.Served >= l.Addresses:
		v.Throttle = true
	}
	v.Alert = v.Throttle && (t.Throttled == 0 || v.Disable != "")
	return v
}

// Store keeps feeds and their use (the account store, both engines).
type Store interface {
	CreateFeed(ctx context.Context, f Feed) (Feed, error)
	// FeedByHash finds a feed by its token's hash (store.ErrNotFound).
	FeedByHash(ctx context.Context, tokenHash string) (Feed, error)
	Feed(ctx context.Context, id int64) (Feed, error)
	// Feeds lists an account's feeds, newest first.
	Feeds(ctx context.Context, accountID int64) ([]Feed, error)
	// SetFeedToken replaces the token's hash: the old token dies at once.
	SetFeedToken(ctx context.Context, id int64, tokenHash string) error
	SetFeedSettings(ctx context.Context, id int64, name string, ranges []netip.Prefix, l Limits) error
	// DisableFeed disables a feed that answers; false when it did not.
	DisableFeed(ctx context.Context, id int64, why string, now time.Time) (bool, error)
	// EnableFeed makes a disabled feed answer again, owned by ownerID.
	EnableFeed(ctx context.Context, id, ownerID int64, now time.Time) error
	DeleteFeed(ctx context.Context, id int64) error
	// StartFeedUse records a request (status 0 while it is answered)
	// and returns its id; FinishFeedUse records how it ended. An answered
	// one (200) is the feed's last use.
	StartFeedUse(ctx context.Context, u Use) (int64, error)
	FinishFeedUse(ctx context.Context, u Use) error
	// FeedUses lists the newest requests of a feed.
	FeedUses(ctx context.Context, id int64, limit int) ([]Use, error)
	// FeedTraffic counts a feed's requests since hourAgo and addresses
	// since dayAgo (see Traffic), for a request from client.
	FeedTraffic(ctx context.Context, id int64, client string, hourAgo, dayAgo time.Time) (Traffic, error)
	// IdleFeeds lists the answering feeds neither used nor enabled since
	// before.
	IdleFeeds(ctx context.Context, before time.Time) ([]Feed, error)
	PurgeFeedUses(ctx context.Context, before time.Time) (int64, error)
	// UsersPublishFeeds tells whether an account lets its Users publish
	// feeds of the reports they may read; Administrators always may.
	UsersPublishFeeds(ctx context.Context, accountID int64) (bool, error)
	SetUsersPublishFeeds(ctx context.Context, accountID int64, allow bool) error
}

// tokenBytes: 192 random bits, above the 128 PRODUCT §4.1 asks for.
const tokenBytes = 24

// tokenLen is the length of a token in its URL form.
var tokenLen = base64.RawURLEncoding.EncodedLen(tokenBytes)

// NewToken makes a feed token and its hash.
func NewToken() (token, hash string) {
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is what the store keeps of a token. The lookup is by this
// hash: a guess's hash shares nothing useful with a real one, so the time
// an index lookup takes tells nothing about real tokens, and a wrong
// token and a rotated one take the same path to the same 404.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// ErrNoFeed is a feed path that cannot name a feed.
var ErrNoFeed = errors.New("no such datafeed")

// ParseFile reads the last element of a feed's URL, "<token>.csv" or
// "<token>.json".
func ParseFile(file string) (token, format string, err error) {
	token, format, ok := strings.Cut(file, ".")
	if !ok || (format != "csv" && format != "json") || len(token) != tokenLen {
		return "", "", ErrNoFeed
	}
	for _, c := range []byte(token) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", "", ErrNoFeed
		}
	}
	return token, format, nil
}

// Allowed tells whether a client address may use a feed with these
// ranges (none: any address).
func Allowed(ranges []netip.Prefix, client netip.Addr) bool {
	if len(ranges) == 0 {
		return true
	}
	client = client.Unmap()
	for _, p := range ranges {
		if p.Contains(client) {
			return true
		}
	}
	return false
}

// SettingsError is a refused setting; its text names the field.
type SettingsError struct{ Msg string }

func (e *SettingsError) Error() string { return e.Msg }

// Check validates a feed's name and limits.
func Check(name string, l Limits) error {
	switch {
	case strings.TrimSpace(name) == "" || len([]rune(name)) > MaxName || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return &SettingsError{fmt.Sprintf("name: want 1 to %d characters on one line", MaxName)}
	case l.MaxDays < 1 || l.MaxDays > MaxMaxDays:
		return &SettingsError{fmt.Sprintf("longest period: want 1 to %d days", MaxMaxDays)}
	case l.PerHour < 1 || l.PerHour > MaxPerHour:
		return &SettingsError{fmt.Sprintf("requests per hour: want 1 to %d", MaxPerHour)}
	case l.Addresses < 1 || l.Addresses > MaxAddresses:
		return &SettingsError{fmt.Sprintf("addresses per day: want 1 to %d", MaxAddresses)}
	}
	return nil
}

// Idle tells whether a feed has gone unused for IdleAfter at now.
func (f Feed) Idle(now time.Time) bool {
	last := f.Since
	if f.LastUsed.After(last) {
		last = f.LastUsed
	}
	return f.Disabled.IsZero() && !now.Before(last.Add(IdleAfter))
}

// Period is what a feed's URL asks for: a period name, a pair of dates,
// or nothing (the saved report's own period).
type Period struct {
	Name     string // "30d", ...
	From, To string // YYYY-MM-DD, inclusive, in the site's time zone
}

// DateRange is the period as a Stats API date_range; nil for none.
func (p Period) DateRange() json.RawMessage {
	var v any
	switch {
	case p.Name != "":
		v = p.Name
	case p.From != "":
		v = []string{p.From, p.To}
	default:
		return nil
	}
	b, _ := json.Marshal(v)
	return b
}

// QueryError is a feed URL's query refused; its text names the field.
type QueryError struct{ Msg string }

func (e *QueryError) Error() string { return e.Msg }

// ParseQuery reads a feed URL's query: period=NAME (one of
// report.Periods), or from=YYYY-MM-DD&to=YYYY-MM-DD, or neither. Anything
// else is refused, so a mistyped parameter is not silently ignored.
func ParseQuery(q url.Values) (Period, error) {
	for k, vs := range q {
		if k != "period" && k != "from" && k != "to" {
			return Period{}, &QueryError{fmt.Sprintf("%.40q: unknown parameter (want period, or from and to)", k)}
		}
		if len(vs) != 1 {
			return Period{}, &QueryError{k + ": given more than once"}
		}
	}
	p := Period{Name: q.Get("period"), From: q.Get("from"), To: q.Get("to")}
	switch {
	case p.Name != "" && (p.From != "" || p.To != ""):
		return Period{}, &QueryError{"period: give a period or from and to, not both"}
	case p.Name != "":
		if !slices.Contains(report.Periods, p.Name) {
			return Period{}, &QueryError{fmt.Sprintf("period: want one of %s", strings.Join(report.Periods, ", "))}
		}
	case p.From != "" || p.To != "":
		from, err1 := time.Parse(time.DateOnly, p.From)
		to, err2 := time.Parse(time.DateOnly, p.To)
		switch {
		case err1 != nil:
			return Period{}, &QueryError{"from: want a date as YYYY-MM-DD"}
		case err2 != nil:
			return Period{}, &QueryError{"to: want a date as YYYY-MM-DD"}
		case to.Before(from):
			return Period{}, &QueryError{"to: before from"}
		}
	}
	return p, nil
}

// Days is how many local days a range covers.
func Days(r report.Range) int {
	from, err1 := time.Parse(time.DateOnly, r.FromDay)
	to, err2 := time.Parse(time.DateOnly, r.ToDay)
	if err1 != nil || err2 != nil {
		return 0
	}
	return int(to.Sub(from).Hours()/24) + 1
}
