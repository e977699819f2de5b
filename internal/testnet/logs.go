package testnet

import (
	"net/netip"
	"regexp"
	"strings"
)

// logSecret finds what looks like a client's address in a log (the
// documentation ranges and 10/8, which tests send as visitors', users'
// and staff members' addresses, alone or as a prefix) or an API key or a collector token.
var logSecret = regexp.MustCompile(`\b(?:192\.0\.2|198\.51\.100|203\.0\.113|10\.\d{1,3}\.\d{1,3})\.\d{1,3}\b(?:/\d+)?|2001:db8:[0-9a-f:]+(?:/\d+)?|fj[kc]_[A-Za-z0-9_-]{6,}`)

// LogSecrets lists what a server's log must not hold and does: any of
// the given secrets (by their first characters only), a client's address
// or its /64 or /32, an API key. Configured ranges (a trusted proxy's
// 10.9.0.0/16, a staff VPN's /24) are no client's and pass: an IPv4
// prefix of /24 or wider, an IPv6 one of /48 or wider.
func LogSecrets(logs string, secrets ...string) []string {
	var found []string
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			found = append(found, "a secret the test used ("+s[:min(4, len(s))]+"…)")
		}
	}
	for _, m := range logSecret.FindAllString(logs, -1) {
		if p, err := netip.ParsePrefix(m); err == nil && (p.Addr().Is4() && p.Bits() <= 24 || p.Addr().Is6() && p.Bits() <= 48) {
			continue
		}
		found = append(found, m)
	}
	return found
}
