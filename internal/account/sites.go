// Package account manages what belongs to a customer account: sites,
// users and their first sign-in links.
package account

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"fjord/internal/store"
)

// NormalizeDomain checks a site domain and returns its canonical form:
// lower case, punycode for international names, no scheme, port or path.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSpace(strings.ToLower(d))
	if d == "" {
		return "", fmt.Errorf("site domain is empty")
	}
	if strings.ContainsAny(d, "/:@ ?#") {
		return "", fmt.Errorf("site domain %q: give the bare host name, without scheme, port or path", d)
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil || len(a) > 253 || !strings.Contains(a, ".") && a != "localhost" {
		return "", fmt.Errorf("site domain %q is not a valid host name", d)
	}
	return a, nil
}

// AddSite validates and stores a new site of an account (0: none yet; no
// one but the operator sees such a site).
func AddSite(ctx context.Context, s store.AccountStore, accountID int64, domain, tz string) (store.Site, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return store.Site{}, err
	}
	if tz == "" {
		tz = "UTC"
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
		return store.Site{}, fmt.Errorf("time zone %q is not an IANA zone name such as Europe/Helsinki", tz)
	}
	return s.AddSite(ctx, store.Site{Domain: d, TimeZone: tz, AccountID: accountID})
}

// AddGoal validates and stores a goal: a custom event name, or a page
// path pattern starting with / (* matches within a segment, ** across).
func AddGoal(ctx context.Context, s store.AccountStore, siteID int64, event, page string) (store.Goal, error) {
	g := store.Goal{SiteID: siteID}
	switch {
	case event != "" && page != "":
		return g, fmt.Errorf("a goal is an event or a page, not both")
	case event != "":
		if len(event) > 120 {
			return g, fmt.Errorf("goal event name is longer than 120 bytes")
		}
		g.Kind, g.Value = "event", strings.TrimSpace(event)
	case page != "":
		if !strings.HasPrefix(page, "/") || len(page) > 2000 {
			return g, fmt.Errorf("goal page %q must be a path starting with / (at most 2000 bytes)", page)
		}
		g.Kind, g.Value = "page", page
	default:
		return g, fmt.Errorf("give the goal's --event NAME or --page PATTERN")
	}
	return s.AddGoal(ctx, g)
}
