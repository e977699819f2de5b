// Package account manages what belongs to a customer account. For now:
// sites.
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

// AddSite validates and stores a new site.
func AddSite(ctx context.Context, s store.AccountStore, domain, tz string) (store.Site, error) {
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
	return s.AddSite(ctx, store.Site{Domain: d, TimeZone: tz})
}
