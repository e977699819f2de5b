package enrich

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestReferrer(t *testing.T) {
	const page = "example.com"
	tests := []struct {
		name string
		ref  string
		page string
		utm  UTM
		want Source
	}{
		{"empty", "", page, UTM{}, Source{Channel: ChannelDirect}},
		{"self", "https://example.com/blog/", page, UTM{}, Source{Channel: ChannelDirect}},
		{"self www", "https://www.example.com/", page, UTM{}, Source{Channel: ChannelDirect}},
		{"self page www and port", "https://example.com/", "www.Example.com:8443", UTM{}, Source{Channel: ChannelDirect}},
		{"about blank", "about:blank", page, UTM{}, Source{Channel: ChannelDirect}},
		{"not a url", "not a url", page, UTM{}, Source{Channel: ChannelDirect}},

		{"google", "https://www.google.com/", page, UTM{}, Source{"Google", "google.com", ChannelSearch, false}},
		{"google.de", "https://www.google.de/", page, UTM{}, Source{"Google", "google.de", ChannelSearch, false}},
		{"google.co.uk", "https://www.google.co.uk/search?q=x", page, UTM{}, Source{"Google", "google.co.uk", ChannelSearch, false}},
		{"google.com.au", "https://google.com.au/", page, UTM{}, Source{"Google", "google.com.au", ChannelSearch, false}},
		{"google lookalike", "https://google.example.net/", page, UTM{}, Source{"google.example.net", "google.example.net", ChannelReferral, false}},
		{"bing", "https://www.bing.com/search?q=fjord", page, UTM{}, Source{"Bing", "bing.com", ChannelSearch, false}},
		{"duckduckgo", "https://duckduckgo.com/", page, UTM{}, Source{"DuckDuckGo", "duckduckgo.com", ChannelSearch, false}},
		{"ecosia", "https://www.ecosia.org/", page, UTM{}, Source{"Ecosia", "ecosia.org", ChannelSearch, false}},
		{"yandex.ru", "https://yandex.ru/search/?text=x", page, UTM{}, Source{"Yandex", "yandex.ru", ChannelSearch, false}},
		{"yandex.com.tr", "https://yandex.com.tr/", page, UTM{}, Source{"Yandex", "yandex.com.tr", ChannelSearch, false}},
		{"baidu", "https://www.baidu.com/link?url=x", page, UTM{}, Source{"Baidu", "baidu.com", ChannelSearch, false}},

		{"facebook mobile", "https://m.facebook.com/", page, UTM{}, Source{"Facebook", "m.facebook.com", ChannelSocial, false}},
		{"facebook link shim", "https://l.facebook.com/l.php?u=x", page, UTM{}, Source{"Facebook", "l.facebook.com", ChannelSocial, false}},
		{"t.co", "https://t.co/abc", page, UTM{}, Source{"Twitter", "t.co", ChannelSocial, false}},
		{"x.com", "https://x.com/someone", page, UTM{}, Source{"Twitter", "x.com", ChannelSocial, false}},
		{"linkedin", "https://www.linkedin.com/feed/", page, UTM{}, Source{"LinkedIn", "linkedin.com", ChannelSocial, false}},
		{"old reddit", "https://old.reddit.com/r/golang/", page, UTM{}, Source{"Reddit", "old.reddit.com", ChannelSocial, false}},
		{"youtube", "https://www.youtube.com/", page, UTM{}, Source{"YouTube", "youtube.com", ChannelSocial, false}},
		{"hacker news", "https://news.ycombinator.com/item?id=1", page, UTM{}, Source{"Hacker News", "news.ycombinator.com", ChannelSocial, false}},
		{"pinterest.de", "https://www.pinterest.de/", page, UTM{}, Source{"Pinterest", "pinterest.de", ChannelSocial, false}},
		{"mastodon", "https://mastodon.social/@someone", page, UTM{}, Source{"Mastodon", "mastodon.social", ChannelSocial, false}},

		{"gmail", "https://mail.google.com/", page, UTM{}, Source{"Gmail", "mail.google.com", ChannelEmail, false}},
		{"outlook", "https://outlook.live.com/mail/0/", page, UTM{}, Source{"Outlook.com", "outlook.live.com", ChannelEmail, false}},
		{"yahoo mail", "https://mail.yahoo.com/", page, UTM{}, Source{"Yahoo! Mail", "mail.yahoo.com", ChannelEmail, false}},
		{"own webmail", "https://webmail.uni-example.fi/", page, UTM{}, Source{"webmail.uni-example.fi", "webmail.uni-example.fi", ChannelEmail, false}},
		{"gmail android app", "android-app://com.google.android.gm/", page, UTM{}, Source{"Gmail", "com.google.android.gm", ChannelEmail, false}},
		{"google android app", "android-app://com.google.android.googlequicksearchbox", page, UTM{}, Source{"Google", "com.google.android.googlequicksearchbox", ChannelSearch, false}},

		{"github", "https://github.com/owner/repo", page, UTM{}, Source{"GitHub", "github.com", ChannelReferral, false}},
		{"wikipedia", "https://en.wikipedia.org/wiki/Fjord", page, UTM{}, Source{"Wikipedia", "en.wikipedia.org", ChannelReferral, false}},
		{"unknown blog", "https://blog.someone.dev:443/post?x=1#y", page, UTM{}, Source{"blog.someone.dev", "blog.someone.dev", ChannelReferral, false}},
		{"upper case and trailing dot", "HTTPS://WWW.Some-Blog.COM./x", page, UTM{}, Source{"some-blog.com", "some-blog.com", ChannelReferral, false}},
		{"userinfo", "https://user:pw@evil.example/", page, UTM{}, Source{"evil.example", "evil.example", ChannelReferral, false}},
		{"bad escape in path", "https://blog.example.org/100%-sure", page, UTM{}, Source{"blog.example.org", "blog.example.org", ChannelReferral, false}},

		{"spam", "http://semalt.com/", page, UTM{}, Source{"semalt.com", "semalt.com", ChannelReferral, true}},
		{"spam subdomain", "http://forum.buttons-for-website.com/x", page, UTM{}, Source{"forum.buttons-for-website.com", "forum.buttons-for-website.com", ChannelReferral, true}},
		{"spam www", "https://www.darodar.com/", page, UTM{}, Source{"darodar.com", "darodar.com", ChannelReferral, true}},
		{"spam lookalike suffix is not spam", "https://notsemalt.com/", page, UTM{}, Source{"notsemalt.com", "notsemalt.com", ChannelReferral, false}},

		// UTM.
		{"utm google no referrer", "", page, UTM{Source: "google"}, Source{Name: "Google", Channel: ChannelSearch}},
		{"utm facebook upper", "", page, UTM{Source: "Facebook"}, Source{Name: "Facebook", Channel: ChannelSocial}},
		{"utm fb", "", page, UTM{Source: "fb"}, Source{Name: "Facebook", Channel: ChannelSocial}},
		{"utm host", "", page, UTM{Source: "news.ycombinator.com"}, Source{Name: "Hacker News", Channel: ChannelSocial}},
		{"utm newsletter", "", page, UTM{Source: "newsletter"}, Source{Name: "Newsletter", Channel: ChannelEmail}},
		{"utm unknown", "", page, UTM{Source: "Spring Promo"}, Source{Name: "Spring Promo", Channel: ChannelReferral}},
		{"utm medium email", "", page, UTM{Source: "weekly-digest", Medium: "email"}, Source{Name: "weekly-digest", Channel: ChannelEmail}},
		{"utm medium only email", "", page, UTM{Medium: "Newsletter"}, Source{Channel: ChannelEmail}},
		{"utm cpc google", "https://www.google.com/", page, UTM{Source: "google", Medium: "cpc"}, Source{"Google", "google.com", ChannelPaid, false}},
		{"utm paid social", "https://l.facebook.com/", page, UTM{Source: "facebook", Medium: "paid_social"}, Source{"Facebook", "l.facebook.com", ChannelPaid, false}},
		{"utm display", "", page, UTM{Source: "adnet", Medium: "display"}, Source{Name: "adnet", Channel: ChannelPaid}},
		{"utm social medium", "", page, UTM{Source: "forum", Medium: "social"}, Source{Name: "forum", Channel: ChannelSocial}},
		{"utm organic", "", page, UTM{Source: "somesearch", Medium: "organic"}, Source{Name: "somesearch", Channel: ChannelSearch}},
		{"utm beats referrer name", "https://mail.google.com/", page, UTM{Source: "newsletter"}, Source{"Newsletter", "mail.google.com", ChannelEmail, false}},
		{"unknown utm keeps referrer channel", "https://www.google.com/", page, UTM{Source: "spring_promo"}, Source{"spring_promo", "google.com", ChannelSearch, false}},
		{"utm on self referral", "https://example.com/", page, UTM{Source: "twitter"}, Source{Name: "Twitter", Channel: ChannelSocial}},
		{"utm medium without source is not a source", "", page, UTM{Medium: "whatever"}, Source{Channel: ChannelDirect}},
		{"utm campaign only", "", page, UTM{Campaign: "spring"}, Source{Channel: ChannelDirect}},
		{"utm source spaces", "", page, UTM{Source: "   "}, Source{Channel: ChannelDirect}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Referrer(tt.ref, tt.page, tt.utm)
			if got != tt.want {
				t.Errorf("Referrer(%q, %q, %+v)\n got %+v\nwant %+v", tt.ref, tt.page, tt.utm, got, tt.want)
			}
		})
	}
}

func TestSourceTables(t *testing.T) {
	// The tables must be large enough to be useful and consistent enough
	// that every entry classifies the way it says.
	if n := len(knownHosts); n < 60 {
		t.Errorf("knownHosts has %d entries, want at least 60", n)
	}
	if n := len(spamDomains); n < 40 {
		t.Errorf("spamDomains has %d entries, want at least 40", n)
	}
	valid := map[string]bool{ChannelSearch: true, ChannelSocial: true, ChannelEmail: true, ChannelReferral: true}
	for host, info := range knownHosts {
		if host != normalizeHost(host) {
			t.Errorf("knownHosts key %q is not normalised (%q)", host, normalizeHost(host))
		}
		if !valid[info.channel] || info.name == "" {
			t.Errorf("knownHosts[%q] = %+v", host, info)
		}
		got := Referrer("https://"+host+"/path", "example.org", UTM{})
		if got.Name != info.name || got.Channel != info.channel || got.Spam {
			t.Errorf("Referrer(https://%s/) = %+v, want name %q channel %q", host, got, info.name, info.channel)
		}
	}
	for d := range spamDomains {
		if d != normalizeHost(d) {
			t.Errorf("spam domain %q is not normalised", d)
		}
		if _, ok := lookupHost(d); ok {
			t.Errorf("spam domain %q is also a known source", d)
		}
		if !Referrer("https://"+d+"/", "example.org", UTM{}).Spam {
			t.Errorf("spam domain %q not flagged", d)
		}
	}
	for alias, info := range sourceAliases {
		if alias != strings.ToLower(alias) {
			t.Errorf("alias %q not lower case", alias)
		}
		if got := Referrer("", "example.org", UTM{Source: strings.ToUpper(alias)}); got.Name != info.name || got.Channel != info.channel {
			t.Errorf("utm_source %q gave %+v, want %+v", strings.ToUpper(alias), got, info)
		}
	}
}

func TestUTMFromQuery(t *testing.T) {
	tests := []struct {
		q    string
		want UTM
	}{
		{"", UTM{}},
		{"utm_source=google&utm_medium=cpc&utm_campaign=spring+sale&utm_content=banner%201&utm_term=fjord",
			UTM{"google", "cpc", "spring sale", "banner 1", "fjord"}},
		{"?utm_source=newsletter", UTM{Source: "newsletter"}},
		{"utm_source=x#frag&utm_medium=y", UTM{Source: "x"}},
		{"ref=producthunt", UTM{Source: "producthunt"}},
		{"source=hn&ref=other", UTM{Source: "hn"}},
		{"ref=other&utm_source=twitter", UTM{Source: "twitter"}},
		{"UTM_SOURCE=Mixed&Utm_Medium=Email", UTM{Source: "Mixed", Medium: "Email"}},
		{"utm_source=&utm_source=second", UTM{Source: "second"}},
		{"utm_source=first&utm_source=second", UTM{Source: "first"}},
		{"utm_source=%20%20padded%20%20", UTM{Source: "padded"}},
		{"utm_campaign=50%off", UTM{Campaign: "50%off"}},
		{"utm_source=a%00b%0Ac", UTM{Source: "abc"}},
		{"utm_source=%ff%fe", UTM{}},
		{"utm_source=caf%C3%A9", UTM{Source: "café"}},
		{"utm%5Fsource=encoded-key", UTM{Source: "encoded-key"}},
		{"a=1;utm_source=semi&b", UTM{}},
		{"x=1&&utm_medium=social&", UTM{Medium: "social"}},
	}
	for _, tt := range tests {
		if got := UTMFromQuery(tt.q); got != tt.want {
			t.Errorf("UTMFromQuery(%q)\n got %+v\nwant %+v", tt.q, got, tt.want)
		}
	}
}

func TestUTMTruncation(t *testing.T) {
	long := strings.Repeat("a", 199) + "é" + strings.Repeat("b", 50) // é straddles byte 200
	got := UTMFromQuery("utm_campaign=" + long).Campaign
	if got != strings.Repeat("a", 199) {
		t.Errorf("truncated campaign = %q (%d bytes), want 199 a's", got, len(got))
	}
	got = UTMFromQuery("utm_campaign=" + strings.Repeat("é", 150)).Campaign
	if len(got) != 200 || !utf8.ValidString(got) {
		t.Errorf("truncated campaign %d bytes, valid UTF-8 %v; want 200 bytes, valid", len(got), utf8.ValidString(got))
	}
}
