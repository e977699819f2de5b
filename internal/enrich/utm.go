package enrich

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// UTM holds the campaign parameters of a landing page URL.
type UTM struct {
	Source, Medium, Campaign, Content, Term string
}

// maxUTMLen bounds each UTM value. Campaign tags are short; the bound keeps
// a crafted URL from filling the event store.
const maxUTMLen = 200

// UTMFromQuery reads utm_* parameters from a URL query string (with or
// without the leading "?"). Like Plausible, it takes "source" and then "ref"
// as the source when utm_source is absent, since many sites link with
// ?ref=... . Keys match case-insensitively and the first non-empty value
// wins. Values are unescaped, stripped of control characters and invalid
// UTF-8, trimmed and cut to 200 bytes on a character boundary.
func UTMFromQuery(rawQuery string) UTM {
	rawQuery = strings.TrimPrefix(rawQuery, "?")
	if i := strings.IndexByte(rawQuery, '#'); i >= 0 {
		rawQuery = rawQuery[:i]
	}
	var u UTM
	var source, ref string
	// Walking the pairs by hand, rather than url.ParseQuery, unescapes only
	// the values we keep and does not give up on the whole string at one
	// bad escape or ';'.
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(pair, "=")
		var dst *string
		switch key := unescapeKey(k); {
		case strings.EqualFold(key, "utm_source"):
			dst = &u.Source
		case strings.EqualFold(key, "utm_medium"):
			dst = &u.Medium
		case strings.EqualFold(key, "utm_campaign"):
			dst = &u.Campaign
		case strings.EqualFold(key, "utm_content"):
			dst = &u.Content
		case strings.EqualFold(key, "utm_term"):
			dst = &u.Term
		case strings.EqualFold(key, "source"):
			dst = &source
		case strings.EqualFold(key, "ref"):
			dst = &ref
		default:
			continue
		}
		if *dst != "" {
			continue
		}
		*dst = cleanValue(unescapeValue(v), maxUTMLen)
	}
	if u.Source == "" {
		u.Source = source
	}
	if u.Source == "" {
		u.Source = ref
	}
	return u
}

// unescapeKey decodes a query key only when it could be one we want; keys
// are short ASCII, so anything long is skipped without work.
func unescapeKey(k string) string {
	if len(k) > 40 {
		return ""
	}
	if strings.ContainsAny(k, "%+") {
		if s, err := url.QueryUnescape(k); err == nil {
			return s
		}
	}
	return k
}

// unescapeValue decodes what it can: a value with a stray '%' is kept as
// written rather than dropped, because "50%off" is still a campaign name.
func unescapeValue(v string) string {
	if !strings.ContainsAny(v, "%+") {
		return v
	}
	if s, err := url.QueryUnescape(v); err == nil {
		return s
	}
	return strings.ReplaceAll(v, "+", " ")
}

// cleanValue makes s safe to store and show: valid UTF-8, no control
// characters, trimmed, at most limit bytes without splitting a character.
func cleanValue(s string, limit int) string {
	// Cap the work before mapping: only the first few characters survive.
	if len(s) > 4*limit {
		s = s[:4*limit]
	}
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	s = truncateUTF8(s, limit)
	return strings.TrimSpace(s)
}

// truncateUTF8 cuts valid UTF-8 s to at most limit bytes at a rune boundary.
func truncateUTF8(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
