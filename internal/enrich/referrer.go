package enrich

import "strings"

// Channel values: how a visit arrived. They follow the default channel
// groups of Plausible and GA4, folded into six: paid search and paid social
// are both Paid, and a visit whose source we cannot place is Referral.
const (
	ChannelDirect   = "Direct"
	ChannelSearch   = "Organic Search"
	ChannelSocial   = "Organic Social"
	ChannelEmail    = "Email"
	ChannelPaid     = "Paid"
	ChannelReferral = "Referral"
)

// Source says where a visit came from.
type Source struct {
	Name    string // "Google", "Hacker News", "example.com"; "" for direct visits
	Host    string // referrer host without "www."; "" when there is no usable referrer
	Channel string // one of the Channel constants
	Spam    bool   // Host is a known referrer-spam domain; callers drop the event
}

// maxHostLen is the longest DNS name. Longer "hosts" are not real and would
// only let a crafted referrer bloat the store.
const maxHostLen = 253

// Referrer classifies refURL, the referrer of a page on pageHost, together
// with the page's UTM parameters.
//
// A referrer from the page's own host (ignoring "www.") is navigation within
// the site, so it counts as no referrer. Tagged links win over the referrer
// for the name, as in Plausible: a newsletter link opened in Gmail is the
// newsletter. The channel comes from utm_medium first (paid, e-mail), then
// from what the tables know of the source, then from whether there was a
// referrer at all.
func Referrer(refURL, pageHost string, utm UTM) Source {
	var s Source
	var channel string // what the tables say about the source; "" if unknown
	if host := referrerHost(refURL); host != "" && host != normalizeHost(pageHost) {
		s.Host = host
		s.Name = host
		s.Spam = isSpam(host)
		if info, ok := lookupReferrer(refURL, host); ok {
			s.Name, channel = info.name, info.channel
		}
	}
	if src := cleanValue(utm.Source, maxUTMLen); src != "" {
		if info, ok := lookupSourceName(src); ok {
			s.Name, channel = info.name, info.channel
		} else {
			s.Name = src
		}
	}
	s.Channel = pickChannel(strings.ToLower(cleanValue(utm.Medium, maxUTMLen)), channel, s.Name != "")
	return s
}

func lookupReferrer(refURL, host string) (sourceInfo, bool) {
	if hasPrefixFold(strings.TrimSpace(refURL), "android-app:") {
		info, ok := androidApps[host]
		return info, ok
	}
	return lookupHost(host)
}

// pickChannel orders the rules so that what the site owner tagged beats what
// we infer: a paid medium is Paid even from Google, and an e-mail medium is
// Email even when the link was opened on a social site.
func pickChannel(medium, sourceChannel string, hasSource bool) string {
	switch {
	case isPaidMedium(medium):
		return ChannelPaid
	case isEmailMedium(medium) || sourceChannel == ChannelEmail:
		return ChannelEmail
	case sourceChannel == ChannelSearch || medium == "organic":
		return ChannelSearch
	case sourceChannel == ChannelSocial || isSocialMedium(medium):
		return ChannelSocial
	case hasSource:
		return ChannelReferral
	}
	return ChannelDirect
}

// isPaidMedium follows GA4's paid rule (medium matching
// ^(.*cp.*|ppc|retargeting|paid.*)$) plus the usual display and affiliate
// spellings.
func isPaidMedium(m string) bool {
	if m == "" {
		return false
	}
	if strings.HasPrefix(m, "paid") || strings.Contains(m, "cp") {
		return true
	}
	switch m {
	case "ppc", "retargeting", "remarketing", "display", "banner", "ads",
		"ad", "adwords", "sponsored", "sem", "affiliate", "affiliates",
		"interstitial", "expandable":
		return true
	}
	return false
}

func isEmailMedium(m string) bool {
	switch m {
	case "email", "e-mail", "e_mail", "e mail", "mail", "newsletter",
		"newsletters":
		return true
	}
	return false
}

func isSocialMedium(m string) bool {
	switch m {
	case "social", "social-network", "social-media", "social_media",
		"social network", "social media", "sm", "social_network":
		return true
	}
	return false
}

// referrerHost extracts the host from a referrer URL: lower case, without
// port, trailing dot or "www.". It returns "" for anything that is not an
// http(s) or android-app URL with a plausible host, because such referrers
// (about:blank, file:, extensions) say nothing about where a visitor came
// from. For android-app referrers the "host" is the app's package name.
//
// It parses by hand rather than with net/url because browsers send
// referrers that net/url rejects (a stray '%' in the path) and only the host
// matters here.
func referrerHost(ref string) string {
	ref = strings.TrimSpace(ref)
	scheme, rest, ok := strings.Cut(ref, "://")
	if !ok {
		return ""
	}
	switch strings.ToLower(scheme) {
	case "http", "https", "android-app":
	default:
		return ""
	}
	if i := strings.IndexAny(rest, "/?#\\"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	return normalizeHost(rest)
}

// normalizeHost lower-cases a host[:port], drops the port, a trailing dot
// and a leading "www.", and returns "" unless the result is a DNS name or IP
// literal made of ASCII letters, digits, '-', '_', '.' (and ':' inside
// brackets for IPv6).
func normalizeHost(h string) string {
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 2 {
			return ""
		}
		h = h[:end+1]
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = strings.TrimRight(h, ".")
	if h == "" || len(h) > maxHostLen {
		return ""
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_':
		case 'A' <= c && c <= 'Z':
		case c == '[' || c == ']' || c == ':':
			if h[0] != '[' {
				return ""
			}
		default:
			return ""
		}
	}
	h = asciiLower(h)
	h = strings.TrimPrefix(h, "www.")
	if h == "" || h[0] == '.' || strings.Contains(h, "..") {
		return ""
	}
	return h
}
