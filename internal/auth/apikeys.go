package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"fjord/internal/authz"
	"fjord/internal/store"
)

// API keys (PRODUCT §3.4): a user's keys to the Stats API, named, scoped
// to sites, expiring, shown once and stored hashed.
//
// What a key reads is decided at each request by authz over the key's
// principal: its user's role and current grants, with the key's sites
// (KeyPrincipal). So a key never reads more than its user may at that
// moment: the effective sites are the key's sites that the user may still
// read (a User's grants can be withdrawn later), and a key dies with its
// user.
//
// Saved reports granted one by one: a User granted single saved reports
// on a site, but not the site, may scope a key to that site, and the key
// then runs those reports (POST /api/v2/query with saved_report, which
// may set only date_range and pagination) and lists them, and nothing
// else of the site: every other question about it answers 404, as for a
// site that does not exist. This is authz's own rule (ReadReport of a
// report granted, on a site among the key's), so a key reads exactly what
// its user reads, never more.

// KeyPrefix starts every API key, so that people and secret scanners
// recognise one.
const KeyPrefix = "fjk_"

// Limits of API keys, stated in the README.
const (
	MinKeyLife = time.Hour
	MaxKeyLife = 365 * 24 * time.Hour
	// MaxKeyName is the longest name of a key, in characters.
	MaxKeyName = 100
	// MaxKeySites is the most sites one key is scoped to.
	MaxKeySites = 1000
	// MaxUserKeys is the most active (neither expired nor revoked) keys
	// one user has.
	MaxUserKeys = 100
	// keyTouchEvery: a key's last use is written at most this often.
	keyTouchEvery = time.Minute
	// keyShown: characters after KeyPrefix kept as the key's prefix, to
	// tell keys apart in lists (36 of the 256 random bits).
	keyShown = 6
	// keyLen is the length of a key: the prefix and 32 random bytes.
	keyLen = len(KeyPrefix) + 43
)

// ErrBadKey is all a request learns of a key that does not work: unknown,
// expired, revoked, or of a user who was removed read the same.
var ErrBadKey = errors.New("the API key is unknown, expired or revoked")

// KeyRequestError is a request for a key that cannot be met; its message
// is for the person asking.
type KeyRequestError struct{ Msg string }

func (e *KeyRequestError) Error() string { return e.Msg }

func badKeyRequest(format string, args ...any) error {
	return &KeyRequestError{Msg: fmt.Sprintf(format, args...)}
}

// NewKey is what a key is made of.
type NewKey struct {
	Name  string
	Sites []int64
	Life  time.Duration // from now to its expiry
}

// ParseKeyLife reads a key's lifetime: a whole number of hours ("12h"),
// days ("90d") or years ("1y", 365 days), from 1 hour to 1 year.
func ParseKeyLife(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("expiry: want a number of hours, days or years like 12h, 90d or 1y, from 1h to 1y")
	if len(s) < 2 || len(s) > 6 {
		return 0, bad
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n < 1 || s[0] == '+' {
		return 0, bad
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	case 'y':
		unit = MaxKeyLife
	default:
		return 0, bad
	}
	if n > int(MaxKeyLife/unit) {
		return 0, bad
	}
	return time.Duration(n) * unit, nil
}

// CheckKeyName tells whether a key's name is usable: 1 to MaxKeyName
// characters on one line, without control characters.
func CheckKeyName(name string) error {
	name = strings.TrimSpace(name)
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxKeyName {
		return badKeyRequest("name: want 1 to %d characters", MaxKeyName)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return badKeyRequest("name: want 1 to %d characters on one line, without control characters", MaxKeyName)
		}
	}
	return nil
}

// PrincipalOf is what authz needs to know of a user: their role, their
// grants (a User's) and whether they are their account's main contact.
// The generic user, who never signs in, is nobody.
func PrincipalOf(ctx context.Context, st store.AccountStore, u store.User) (authz.Principal, error) {
	p := authz.Principal{Account: u.AccountID, User: u.ID}
	switch u.Role {
	case store.RoleAdmin:
		p.Role = authz.Administrator
	case store.RoleUser:
		p.Role = authz.User
		g, err := st.Grants(ctx, u.ID)
		if err != nil {
			return p, err
		}
		p.Sites, p.Reports = g.Sites, g.Reports
	default:
		return authz.Principal{}, nil
	}
	acc, err := st.Account(ctx, u.AccountID)
	if err != nil {
		return p, err
	}
	p.MainContact = acc.MainContact == u.ID
	return p, nil
}

// KeyPrincipal is the principal of a request made with key k of user u:
// the user as they are now, reading only the key's sites.
func KeyPrincipal(ctx context.Context, st store.AccountStore, u store.User, k store.APIKey) (authz.Principal, error) {
	p, err := PrincipalOf(ctx, st, u)
	if err != nil {
		return authz.Principal{}, err
	}
	p.Key, p.KeySites = true, k.Sites
	return p, nil
}

// MayScope tells whether a user (as principal p) may scope a key to a
// site: one they may read whole, or, for a User, one with a saved report
// granted to them (see the package comment).
func MayScope(ctx context.Context, st store.AccountStore, p authz.Principal, site store.Site) (bool, error) {
	if authz.Decide(p, authz.ReadSite, authz.Resource{Kind: authz.Site, Account: site.AccountID, Site: site.ID}) == authz.Allow {
		return true, nil
	}
	if p.Role != authz.User || len(p.Reports) == 0 || site.AccountID != p.Account {
		return false, nil
	}
	reports, err := st.SavedReports(ctx, site.ID)
	if err != nil {
		return false, err
	}
	for _, r := range reports {
		if authz.Decide(p, authz.ReadReport, ReportResource(site, r)) == authz.Allow {
			return true, nil
		}
	}
	return false, nil
}

// ReportResource is a saved report as authz sees it.
func ReportResource(site store.Site, r store.SavedReport) authz.Resource {
	res := authz.Resource{Kind: authz.Report, Account: site.AccountID, Site: site.ID, Report: r.ID}
	if r.OwnerID != nil {
		res.Owner = *r.OwnerID
	}
	return res
}

// CreateKey makes a key for a user and returns it (the only time it is
// seen) with what is stored of it. Every site must be one the user may
// read (MayScope); the name 1 to MaxKeyName characters; the life from
// MinKeyLife to MaxKeyLife. A refusal is a *KeyRequestError.
func (s *Service) CreateKey(ctx context.Context, u store.User, nk NewKey) (string, store.APIKey, error) {
	if err := CheckKeyName(nk.Name); err != nil {
		return "", store.APIKey{}, err
	}
	if nk.Life < MinKeyLife || nk.Life > MaxKeyLife {
		return "", store.APIKey{}, badKeyRequest("expiry: want from 1 hour to 1 year")
	}
	if len(nk.Sites) == 0 {
		return "", store.APIKey{}, badKeyRequest("sites: choose at least one site")
	}
	if len(nk.Sites) > MaxKeySites {
		return "", store.APIKey{}, badKeyRequest("sites: at most %d", MaxKeySites)
	}
	if u.Role != store.RoleAdmin && u.Role != store.RoleUser {
		return "", store.APIKey{}, badKeyRequest("only a person of an account has API keys")
	}
	now := s.now()
	keys, err := s.Store.APIKeys(ctx, u.ID)
	if err != nil {
		return "", store.APIKey{}, err
	}
	active := 0
	for _, k := range keys {
		if KeyState(k, now) == "active" {
			active++
		}
	}
	if active >= MaxUserKeys {
		return "", store.APIKey{}, badKeyRequest("there are %d active keys already, the most one user may have: revoke one first", active)
	}
	p, err := PrincipalOf(ctx, s.Store, u)
	if err != nil {
		return "", store.APIKey{}, err
	}
	for _, id := range nk.Sites {
		site, err := s.Store.SiteByID(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", store.APIKey{}, err
		}
		ok := false
		if err == nil {
			if ok, err = MayScope(ctx, s.Store, p, site); err != nil {
				return "", store.APIKey{}, err
			}
		}
		if !ok {
			// unknown and not allowed read the same
			return "", store.APIKey{}, badKeyRequest("sites: site %d is not a site you may read", id)
		}
	}
	b := make([]byte, 32)
	rand.Read(b)
	token := KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	k, err := s.Store.CreateAPIKey(ctx, store.APIKey{UserID: u.ID, Name: strings.TrimSpace(nk.Name), TokenHash: HashToken(token),
		Prefix: token[:len(KeyPrefix)+keyShown], Sites: nk.Sites, Created: now, Expires: now.Add(nk.Life)})
	if err != nil {
		return "", store.APIKey{}, err
	}
	return token, k, nil
}

// wellFormedKey: the shape of a key this server makes, so that other
// strings cost no lookup.
func wellFormedKey(token string) bool {
	if len(token) != keyLen || !strings.HasPrefix(token, KeyPrefix) {
		return false
	}
	for _, c := range []byte(token[len(KeyPrefix):]) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// CheckKey finds the key of a request and its user. An unknown, revoked
// or expired key, and one whose user was removed, is ErrBadKey (wrapped
// with the reason, for the log; the reason never holds the key). A key's
// use is recorded, at most once a minute.
func (s *Service) CheckKey(ctx context.Context, token string) (store.APIKey, store.User, error) {
	if !wellFormedKey(token) {
		return store.APIKey{}, store.User{}, fmt.Errorf("%w: not a key's shape", ErrBadKey)
	}
	k, err := s.Store.APIKeyByHash(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, store.User{}, fmt.Errorf("%w: no such key", ErrBadKey)
	}
	if err != nil {
		return store.APIKey{}, store.User{}, err
	}
	now := s.now()
	switch {
	case !k.Revoked.IsZero():
		return store.APIKey{}, store.User{}, fmt.Errorf("%w: key %d was revoked", ErrBadKey, k.ID)
	case !now.Before(k.Expires):
		return store.APIKey{}, store.User{}, fmt.Errorf("%w: key %d expired", ErrBadKey, k.ID)
	}
	u, err := s.Store.UserByID(ctx, k.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, store.User{}, fmt.Errorf("%w: key %d: its user was removed", ErrBadKey, k.ID)
	}
	if err != nil {
		return store.APIKey{}, store.User{}, err
	}
	if now.Sub(k.LastUsed) >= keyTouchEvery {
		if err := s.Store.TouchAPIKey(ctx, k.ID, now, keyTouchEvery); err != nil {
			return store.APIKey{}, store.User{}, err
		}
		k.LastUsed = now
	}
	return k, u, nil
}

// RevokeKey revokes a key of the user at once (userID 0: any user's, for
// the operator); another user's key is store.ErrNotFound.
func (s *Service) RevokeKey(ctx context.Context, userID, id int64) error {
	return s.Store.RevokeAPIKey(ctx, userID, id, s.now())
}

// KeyState is how a key stands at now: "active", "expired" or "revoked".
func KeyState(k store.APIKey, now time.Time) string {
	switch {
	case !k.Revoked.IsZero():
		return "revoked"
	case !now.Before(k.Expires):
		return "expired"
	}
	return "active"
}
