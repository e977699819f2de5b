package enrich

import (
	"strings"

	useragent "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// UA is what a User-Agent header tells.
type UA struct {
	Browser        string // "Chrome", "Firefox", "Safari", "Edge", "Samsung Internet", ...
	BrowserVersion string // major version, e.g. "124"
	OS             string // "Windows", "macOS", "iOS", "Android", "Linux", "ChromeOS", ...
	OSVersion      string // e.g. "10", "10.15", "17.4", "14"; "" when the UA does not say
	Device         string // "desktop", "mobile", "tablet", or "" when unknown
	Bot            bool
}

// Device values.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
)

// maxUALen bounds the part of a User-Agent that is parsed and cached. Real
// browsers send 100–300 bytes; anything past 512 is padding or an attack,
// and cutting it keeps each cache entry, and so the whole cache, bounded in
// bytes as well as in entries.
const maxUALen = 512

// UAParser parses User-Agent headers. It is safe for concurrent use.
//
// Parsing costs about a microsecond, and a site's visitors send few distinct
// User-Agents, so results are kept in a bounded cache.
type UAParser struct {
	trie  *useragent.Parser
	bots  *botMatcher
	cache *uaCache // nil when caching is off
}

// NewUAParser returns a parser that caches up to cacheSize results.
// cacheSize <= 0 turns the cache off.
func NewUAParser(cacheSize int) *UAParser {
	return &UAParser{
		trie:  useragent.NewParser(),
		bots:  newBotMatcher(botPatterns[:]),
		cache: newUACache(cacheSize),
	}
}

// Parse tells what ua says about the visitor's browser, OS and device, and
// whether it is a bot. An empty User-Agent is a bot: every browser sends one.
func (p *UAParser) Parse(ua string) UA {
	if len(ua) > maxUALen {
		ua = ua[:maxUALen]
	}
	if p.cache == nil {
		return p.parse(ua)
	}
	if r, ok := p.cache.get(ua); ok {
		return r
	}
	// Clone so the cache keeps neither the caller's buffer alive nor
	// substrings of it in the result.
	key := strings.Clone(ua)
	r := p.parse(key)
	p.cache.put(key, r)
	return r
}

func (p *UAParser) parse(ua string) UA {
	s := strings.TrimSpace(ua)
	if s == "" {
		return UA{Bot: true}
	}
	a := p.trie.Parse(s)
	r := UA{
		Browser:        browserName(a.Browser()),
		BrowserVersion: leadingMajor(a.BrowserVersion()),
		OS:             osName(a.OS()),
	}
	fixBrowser(s, &r)
	r.OSVersion = osVersion(s, r.OS)
	r.Device = device(s, r.OS, a.Device())
	r.Bot = p.isBot(s, r)
	return r
}

// isBot combines the pattern list with two structural rules. Every browser
// that can run the tracker sends a User-Agent starting with "Mozilla/" (or
// "Opera/" for old Opera), so anything else is a program. And a User-Agent
// that names neither a known browser nor an OS is either a tool or too
// unusual to report on. The parser's own bot verdict is not used, so that
// one list, ours, decides: it can be extended and is tested against real
// browsers here, while the parser's fixed tokens include words such as
// "Google" and "Java" that it matches through its own tokenizer.
func (p *UAParser) isBot(s string, r UA) bool {
	if !hasPrefixFold(s, "mozilla/") && !hasPrefixFold(s, "opera/") {
		return true
	}
	if r.Browser == "" && r.OS == "" {
		return true
	}
	return p.bots.match(s)
}

var browserNames = map[agents.Browser]string{
	agents.BrowserAndroid:   "Android Browser",
	agents.BrowserChrome:    "Chrome",
	agents.BrowserEdge:      "Edge",
	agents.BrowserFirefox:   "Firefox",
	agents.BrowserIE:        "Internet Explorer",
	agents.BrowserOpera:     "Opera",
	agents.BrowserOperaMini: "Opera Mini",
	agents.BrowserSafari:    "Safari",
	agents.BrowserVivaldi:   "Vivaldi",
	agents.BrowserSilk:      "Amazon Silk",
	agents.BrowserSamsung:   "Samsung Internet",
	agents.BrowserFalkon:    "Falkon",
	agents.BrowserNintendo:  "Nintendo Browser",
	agents.BrowserYandex:    "Yandex Browser",
	agents.BrowserHuawei:    "Huawei Browser",
}

// browserName maps the parser's names to the ones reports show, which follow
// what people call the browsers (Plausible's names), not the UA tokens.
func browserName(b agents.Browser) string {
	if b == "" {
		return ""
	}
	if n, ok := browserNames[b]; ok {
		return n
	}
	return string(b)
}

func osName(o agents.OS) string {
	switch o {
	case agents.OSMacOS:
		return "macOS"
	case "":
		return ""
	}
	return string(o)
}

// inAppBrowsers are browsers the parser does not know, checked in order
// against the raw UA. Their UAs otherwise read as Safari or Chrome, which
// would hide how much traffic comes through these apps.
var inAppBrowsers = [...]struct{ token, name string }{
	{"FBAV/", "Facebook"}, // before FBAN/, which is followed by a platform, not a version
	{"FBAN/", "Facebook"},
	{"FB_IAB/", "Facebook"},
	{"Instagram ", "Instagram"},
	{"DuckDuckGo/", "DuckDuckGo"},
	{"Ddg/", "DuckDuckGo"},
	{"UCBrowser/", "UC Browser"},
	{"Whale/", "Whale"},
}

func fixBrowser(s string, r *UA) {
	for _, b := range inAppBrowsers {
		if i := strings.Index(s, b.token); i >= 0 {
			r.Browser = b.name
			r.BrowserVersion = leadingMajor(s[i+len(b.token):])
			return
		}
	}
	// IE 11 dropped "MSIE"; the parser then reports the Trident engine
	// version (7.0), which would make IE 11 look like IE 7.
	if r.Browser == "Internet Explorer" {
		if i := strings.Index(s, "rv:"); i >= 0 {
			if v := leadingMajor(s[i+3:]); v != "" {
				r.BrowserVersion = v
			}
		}
	}
}

// device prefers what the OS implies over the parser's device when they
// disagree, because the parser reads Android tablets (which omit "Mobile")
// as phones and has no answer for many in-app browsers.
func device(s, os string, d agents.Device) string {
	switch os {
	case "Android":
		if strings.Contains(s, "Mobile") {
			return DeviceMobile
		}
		if d == agents.DeviceTV {
			return ""
		}
		return DeviceTablet
	case "iOS":
		if strings.Contains(s, "iPad") {
			return DeviceTablet
		}
		return DeviceMobile
	case "Windows", "macOS", "Linux", "ChromeOS", "FreeBSD", "OpenBSD":
		// Touch laptops send "Touch" and the parser then says tablet;
		// these OSes run on computers, so trust the OS.
		if d == agents.DeviceTV {
			return ""
		}
		return DeviceDesktop
	}
	switch d {
	case agents.DeviceDesktop:
		return DeviceDesktop
	case agents.DeviceMobile:
		return DeviceMobile
	case agents.DeviceTablet:
		return DeviceTablet
	}
	return ""
}

// osVersion reads the OS version the UA states. Browsers freeze some of
// these (macOS stays 10.15 and Windows 11 says NT 10.0), so the value is a
// best effort, reported at the granularity people use: Windows by name,
// iOS and macOS 10 as major.minor, Android as major (or major.minor before
// Android 10, when point releases such as 8.1 were distinct versions).
func osVersion(s, os string) string {
	switch os {
	case "Windows":
		v := versionAfter(s, "Windows NT ")
		switch v {
		case "10.0":
			return "10"
		case "6.3":
			return "8.1"
		case "6.2":
			return "8"
		case "6.1":
			return "7"
		case "6.0":
			return "Vista"
		case "5.1", "5.2":
			return "XP"
		}
		return ""
	case "iOS":
		v := versionAfter(s, "iPhone OS ")
		if v == "" {
			v = versionAfter(s, "CPU OS ")
		}
		return majorMinor(v)
	case "macOS":
		v := versionAfter(s, "Mac OS X ")
		if strings.HasPrefix(v, "10.") {
			return majorMinor(v)
		}
		return leadingMajor(v)
	case "Android":
		v := versionAfter(s, "Android ")
		major := leadingMajor(v)
		if len(major) == 1 {
			if mm := majorMinor(v); !strings.HasSuffix(mm, ".0") {
				return mm
			}
		}
		return major
	}
	return ""
}

// versionAfter returns the version that follows token in s with its parts
// joined by dots. Apple writes OS versions with underscores ("17_4"), except
// Firefox on macOS, which uses dots, so both separators are read.
func versionAfter(s, token string) string {
	i := strings.Index(s, token)
	if i < 0 {
		return ""
	}
	rest := s[i+len(token):]
	n := 0
	for n < len(rest) && n < 16 && (isDigit(rest[n]) || rest[n] == '.' || rest[n] == '_') {
		n++
	}
	v := strings.TrimRight(rest[:n], "._")
	if v == "" || !isDigit(v[0]) {
		return ""
	}
	return strings.ReplaceAll(v, "_", ".")
}

// leadingMajor returns the digits at the start of s (at most 8), which is
// the major part of a dotted version.
func leadingMajor(s string) string {
	n := 0
	for n < len(s) && n < 8 && isDigit(s[n]) {
		n++
	}
	return s[:n]
}

// majorMinor returns "major.minor" from a dotted version, adding ".0" when
// there is no minor part so that "17" and "17.0" group together.
func majorMinor(v string) string {
	major := leadingMajor(v)
	if major == "" {
		return ""
	}
	rest := v[len(major):]
	if len(rest) < 2 || rest[0] != '.' {
		return major + ".0"
	}
	minor := leadingMajor(rest[1:])
	if minor == "" {
		return major + ".0"
	}
	return major + "." + minor
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
