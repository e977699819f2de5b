package enrich

import "strings"

// sourceInfo is what the tables know about a referring site: the name
// reports show and the channel its visits belong to (Search, Social, Email,
// or Referral for sites worth naming that are none of those).
type sourceInfo struct {
	name    string
	channel string
}

func search(name string) sourceInfo   { return sourceInfo{name, ChannelSearch} }
func social(name string) sourceInfo   { return sourceInfo{name, ChannelSocial} }
func email(name string) sourceInfo    { return sourceInfo{name, ChannelEmail} }
func referral(name string) sourceInfo { return sourceInfo{name, ChannelReferral} }

// knownHosts maps referrer hosts (lower case, without "www.") to sources.
// A referrer matches its own host or the nearest parent listed here, so
// "l.facebook.com" finds "facebook.com" while "mail.google.com" is listed
// to win over "google.*". Country variants of the big search engines are
// handled by countryBrands instead of listing every TLD.
var knownHosts = map[string]sourceInfo{
	// Search engines.
	"bing.com":            search("Bing"),
	"duckduckgo.com":      search("DuckDuckGo"),
	"html.duckduckgo.com": search("DuckDuckGo"),
	"ecosia.org":          search("Ecosia"),
	"ya.ru":               search("Yandex"),
	"baidu.com":           search("Baidu"),
	"search.yahoo.com":    search("Yahoo!"),
	"search.brave.com":    search("Brave Search"),
	"qwant.com":           search("Qwant"),
	"startpage.com":       search("Startpage"),
	"kagi.com":            search("Kagi"),
	"search.naver.com":    search("Naver"),
	"naver.com":           search("Naver"),
	"seznam.cz":           search("Seznam"),
	"search.seznam.cz":    search("Seznam"),
	"sogou.com":           search("Sogou"),
	"so.com":              search("360 Search"),
	"mojeek.com":          search("Mojeek"),
	"search.aol.com":      search("AOL"),
	"ask.com":             search("Ask"),
	"daum.net":            search("Daum"),
	"coccoc.com":          search("Coc Coc"),
	"you.com":             search("You.com"),
	"search.lilo.org":     search("Lilo"),
	"metager.org":         search("MetaGer"),
	"presearch.com":       search("Presearch"),
	"go.mail.ru":          search("Mail.ru"),
	"scholar.google.com":  search("Google Scholar"),
	"news.google.com":     search("Google News"),

	// Google properties that are not search.
	"mail.google.com":      email("Gmail"),
	"docs.google.com":      referral("Google Docs"),
	"drive.google.com":     referral("Google Drive"),
	"sites.google.com":     referral("Google Sites"),
	"groups.google.com":    referral("Google Groups"),
	"classroom.google.com": referral("Google Classroom"),
	"calendar.google.com":  referral("Google Calendar"),
	"play.google.com":      referral("Google Play"),
	"translate.google.com": referral("Google Translate"),

	// Social networks, forums and messengers.
	"facebook.com":         social("Facebook"),
	"fb.com":               social("Facebook"),
	"fb.me":                social("Facebook"),
	"messenger.com":        social("Messenger"),
	"twitter.com":          social("Twitter"),
	"x.com":                social("Twitter"),
	"t.co":                 social("Twitter"),
	"linkedin.com":         social("LinkedIn"),
	"lnkd.in":              social("LinkedIn"),
	"reddit.com":           social("Reddit"),
	"redd.it":              social("Reddit"),
	"instagram.com":        social("Instagram"),
	"youtube.com":          social("YouTube"),
	"youtu.be":             social("YouTube"),
	"tiktok.com":           social("TikTok"),
	"pinterest.com":        social("Pinterest"),
	"pin.it":               social("Pinterest"),
	"news.ycombinator.com": social("Hacker News"),
	"lobste.rs":            social("Lobsters"),
	"mastodon.social":      social("Mastodon"),
	"mastodon.online":      social("Mastodon"),
	"mstdn.social":         social("Mastodon"),
	"fosstodon.org":        social("Mastodon"),
	"hachyderm.io":         social("Mastodon"),
	"infosec.exchange":     social("Mastodon"),
	"mas.to":               social("Mastodon"),
	"bsky.app":             social("Bluesky"),
	"threads.net":          social("Threads"),
	"threads.com":          social("Threads"),
	"vk.com":               social("VKontakte"),
	"ok.ru":                social("Odnoklassniki"),
	"tumblr.com":           social("Tumblr"),
	"quora.com":            social("Quora"),
	"discord.com":          social("Discord"),
	"discordapp.com":       social("Discord"),
	"t.me":                 social("Telegram"),
	"telegram.org":         social("Telegram"),
	"whatsapp.com":         social("WhatsApp"),
	"slack.com":            social("Slack"),
	"medium.com":           social("Medium"),
	"producthunt.com":      social("Product Hunt"),
	"weibo.com":            social("Sina Weibo"),
	"snapchat.com":         social("Snapchat"),
	"xing.com":             social("XING"),
	"flipboard.com":        social("Flipboard"),
	"line.me":              social("LINE"),
	"teams.microsoft.com":  social("Microsoft Teams"),
	"tieba.baidu.com":      social("Baidu Tieba"),
	"substack.com":         social("Substack"),
	"twitch.tv":            social("Twitch"),
	"vimeo.com":            social("Vimeo"),

	// Webmail.
	"outlook.live.com":      email("Outlook.com"),
	"outlook.office.com":    email("Outlook.com"),
	"outlook.office365.com": email("Outlook.com"),
	"mail.yahoo.com":        email("Yahoo! Mail"),
	"mail.proton.me":        email("Proton Mail"),
	"mail.protonmail.com":   email("Proton Mail"),
	"mail.aol.com":          email("AOL Mail"),
	"mail.yandex.ru":        email("Yandex Mail"),
	"mail.yandex.com":       email("Yandex Mail"),
	"e.mail.ru":             email("Mail.ru"),
	"mail.zoho.com":         email("Zoho Mail"),
	"mail.zoho.eu":          email("Zoho Mail"),
	"app.fastmail.com":      email("Fastmail"),
	"gmx.net":               email("GMX"),
	"gmx.de":                email("GMX"),
	"gmx.com":               email("GMX"),
	"web.de":                email("WEB.DE"),
	"mail.tutanota.com":     email("Tuta"),
	"app.tuta.com":          email("Tuta"),
	"mail.hey.com":          email("HEY"),
	"app.hey.com":           email("HEY"),

	// Other sites worth naming.
	"github.com":            referral("GitHub"),
	"gitlab.com":            referral("GitLab"),
	"stackoverflow.com":     referral("Stack Overflow"),
	"wikipedia.org":         referral("Wikipedia"),
	"dev.to":                referral("DEV Community"),
	"chatgpt.com":           referral("ChatGPT"),
	"chat.openai.com":       referral("ChatGPT"),
	"perplexity.ai":         referral("Perplexity"),
	"claude.ai":             referral("Claude"),
	"gemini.google.com":     referral("Gemini"),
	"copilot.microsoft.com": referral("Copilot"),
}

// countryBrands are sites whose country domains (google.de, google.co.uk,
// yandex.com.tr) all mean the same source.
var countryBrands = map[string]sourceInfo{
	"google":    search("Google"),
	"yandex":    search("Yandex"),
	"yahoo":     search("Yahoo!"),
	"bing":      search("Bing"),
	"ecosia":    search("Ecosia"),
	"pinterest": social("Pinterest"),
	"amazon":    referral("Amazon"),
}

// androidApps maps the package names that Android apps send as
// "android-app://<package>" referrers.
var androidApps = map[string]sourceInfo{
	"com.google.android.gm":                   email("Gmail"),
	"com.google.android.googlequicksearchbox": search("Google"),
	"com.google.android.gms":                  search("Google"),
	"com.google.android.youtube":              social("YouTube"),
	"com.microsoft.office.outlook":            email("Outlook.com"),
	"com.yahoo.mobile.client.android.mail":    email("Yahoo! Mail"),
	"ch.protonmail.android":                   email("Proton Mail"),
	"com.slack":                               social("Slack"),
	"org.telegram.messenger":                  social("Telegram"),
	"com.linkedin.android":                    social("LinkedIn"),
	"com.reddit.frontpage":                    social("Reddit"),
	"com.twitter.android":                     social("Twitter"),
	"com.facebook.katana":                     social("Facebook"),
	"com.facebook.orca":                       social("Messenger"),
	"com.instagram.android":                   social("Instagram"),
	"com.whatsapp":                            social("WhatsApp"),
	"com.pinterest":                           social("Pinterest"),
	"com.zhiliaoapp.musically":                social("TikTok"),
	"com.discord":                             social("Discord"),
	"com.ycombinator.news":                    social("Hacker News"),
	"org.joinmastodon.android":                social("Mastodon"),
	"xyz.blueskyweb.app":                      social("Bluesky"),
}

// sourceAliases maps how people spell sources in utm_source (lower case)
// to the same names the referrer tables use, so that ?utm_source=fb and a
// facebook.com referrer count as one source.
var sourceAliases = map[string]sourceInfo{
	"google":       search("Google"),
	"bing":         search("Bing"),
	"duckduckgo":   search("DuckDuckGo"),
	"ddg":          search("DuckDuckGo"),
	"ecosia":       search("Ecosia"),
	"yandex":       search("Yandex"),
	"baidu":        search("Baidu"),
	"yahoo":        search("Yahoo!"),
	"brave":        search("Brave Search"),
	"qwant":        search("Qwant"),
	"startpage":    search("Startpage"),
	"kagi":         search("Kagi"),
	"naver":        search("Naver"),
	"seznam":       search("Seznam"),
	"facebook":     social("Facebook"),
	"fb":           social("Facebook"),
	"twitter":      social("Twitter"),
	"x":            social("Twitter"),
	"linkedin":     social("LinkedIn"),
	"reddit":       social("Reddit"),
	"instagram":    social("Instagram"),
	"ig":           social("Instagram"),
	"youtube":      social("YouTube"),
	"yt":           social("YouTube"),
	"tiktok":       social("TikTok"),
	"pinterest":    social("Pinterest"),
	"hackernews":   social("Hacker News"),
	"hacker news":  social("Hacker News"),
	"hn":           social("Hacker News"),
	"mastodon":     social("Mastodon"),
	"bluesky":      social("Bluesky"),
	"bsky":         social("Bluesky"),
	"threads":      social("Threads"),
	"telegram":     social("Telegram"),
	"whatsapp":     social("WhatsApp"),
	"slack":        social("Slack"),
	"discord":      social("Discord"),
	"medium":       social("Medium"),
	"producthunt":  social("Product Hunt"),
	"product hunt": social("Product Hunt"),
	"gmail":        email("Gmail"),
	"outlook":      email("Outlook.com"),
	"newsletter":   email("Newsletter"),
	"email":        email("Email"),
	"e-mail":       email("Email"),
	"github":       referral("GitHub"),
	"chatgpt":      referral("ChatGPT"),
	"chatgpt.com":  referral("ChatGPT"),
	"perplexity":   referral("Perplexity"),
}

// lookupHost finds host, or its nearest listed parent, in the tables.
// Hosts whose first label is a webmail label ("webmail.example.org",
// "mail.example.net") count as e-mail: schools and companies run their own.
func lookupHost(host string) (sourceInfo, bool) {
	for h := host; ; {
		if info, ok := knownHosts[h]; ok {
			return info, true
		}
		if info, ok := countryBrand(h); ok {
			return info, true
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			break
		}
		h = h[i+1:]
	}
	if first, rest, ok := strings.Cut(host, "."); ok && strings.Contains(rest, ".") {
		switch first {
		case "webmail", "mail", "email", "roundcube", "owa":
			return sourceInfo{host, ChannelEmail}, true
		}
	}
	return sourceInfo{}, false
}

// countryBrand matches "<brand>.<tld>", "<brand>.co.<cc>" and
// "<brand>.com.<cc>" for the brands in countryBrands, and nothing longer,
// so that "google.example.com" is not taken for Google.
func countryBrand(h string) (sourceInfo, bool) {
	brand, rest, ok := strings.Cut(h, ".")
	if !ok {
		return sourceInfo{}, false
	}
	info, ok := countryBrands[brand]
	if !ok {
		return sourceInfo{}, false
	}
	second, cc, two := strings.Cut(rest, ".")
	switch {
	case !two:
		// google.de, google.com
		if isCountryCode(rest) || rest == "com" || rest == "org" || rest == "net" {
			return info, true
		}
	case isCountryCode(cc):
		// google.co.uk, google.com.au, yahoo.co.jp
		switch second {
		case "co", "com", "ne", "or", "org", "net":
			return info, true
		}
	}
	return sourceInfo{}, false
}

func isCountryCode(s string) bool {
	return len(s) == 2 && 'a' <= s[0] && s[0] <= 'z' && 'a' <= s[1] && s[1] <= 'z'
}

// lookupSourceName resolves a utm_source value: a known spelling, or a
// host name that the referrer tables know ("google.com", "www.reddit.com").
func lookupSourceName(src string) (sourceInfo, bool) {
	l := strings.ToLower(src)
	if info, ok := sourceAliases[l]; ok {
		return info, true
	}
	if strings.Contains(l, ".") && !strings.ContainsAny(l, " /:@") {
		return lookupHost(strings.TrimPrefix(l, "www."))
	}
	return sourceInfo{}, false
}
