package enrich

import (
	"strings"
	"testing"
	"unicode/utf8"
)

var validDevices = map[string]bool{"": true, DeviceDesktop: true, DeviceMobile: true, DeviceTablet: true}

var validChannels = map[string]bool{
	ChannelDirect: true, ChannelSearch: true, ChannelSocial: true,
	ChannelEmail: true, ChannelPaid: true, ChannelReferral: true,
}

func FuzzParseUA(f *testing.F) {
	for _, ua := range humanUAs {
		f.Add(ua)
	}
	for _, ua := range []string{
		"", " ", "curl/8.5.0", "Mozilla/5.0",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 99999999999_99999 like Mac OS X)",
		"Mozilla/5.0 (Windows NT \xff\xfe) Chrome/\x00",
		"Mozilla/5.0 (Linux; Android ) Chrome/ Mobile",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X _) Version/ Safari/",
		"Mozilla/5.0 FBAV/",
		"Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:) like Gecko",
	} {
		f.Add(ua)
	}
	cached := NewUAParser(16)
	uncached := NewUAParser(0)
	f.Fuzz(func(t *testing.T, ua string) {
		got := uncached.Parse(ua)
		for name, v := range map[string]string{
			"Browser": got.Browser, "BrowserVersion": got.BrowserVersion,
			"OS": got.OS, "OSVersion": got.OSVersion,
		} {
			if !utf8.ValidString(v) || len(v) > 32 {
				t.Errorf("Parse(%q).%s = %q: invalid UTF-8 or over 32 bytes", ua, name, v)
			}
		}
		if strings.Trim(got.BrowserVersion, "0123456789") != "" {
			t.Errorf("Parse(%q).BrowserVersion = %q, want digits", ua, got.BrowserVersion)
		}
		if !validDevices[got.Device] {
			t.Errorf("Parse(%q).Device = %q", ua, got.Device)
		}
		if strings.TrimSpace(ua) == "" && !got.Bot {
			t.Errorf("Parse(%q).Bot = false for an empty UA", ua)
		}
		// The cache must not change answers, only their cost.
		if c := cached.Parse(ua); c != got {
			t.Errorf("cached Parse(%q) = %+v, uncached %+v", ua, c, got)
		}
		if n := cached.cache.len(); n > 16 {
			t.Errorf("cache holds %d entries, bound 16", n)
		}
	})
}

func FuzzReferrer(f *testing.F) {
	seeds := []struct{ ref, page, src, medium string }{
		{"", "example.com", "", ""},
		{"https://www.google.com/search?q=x", "example.com", "", ""},
		{"https://www.google.co.uk/", "example.com", "", ""},
		{"https://example.com/", "www.example.com", "", ""},
		{"http://semalt.com/", "example.com", "", ""},
		{"android-app://com.google.android.gm/", "example.com", "", ""},
		{"https://[2001:db8::1]:8080/", "example.com", "", ""},
		{"https://user@host:99999/", "example.com", "", ""},
		{"https://\xff\xfe/", "example.com", "", ""},
		{"", "example.com", "google", "cpc"},
		{"https://l.facebook.com/", "example.com", "newsletter", "email"},
		{"https://" + strings.Repeat("a.", 200) + "com/", "example.com", "", ""},
		{"HTTPS://WWW..COM", "", "x.", "paid"},
		{"https://www./", "www.", "\x00", "\x7f"},
	}
	for _, s := range seeds {
		f.Add(s.ref, s.page, s.src, s.medium)
	}
	f.Fuzz(func(t *testing.T, ref, page, src, medium string) {
		s := Referrer(ref, page, UTM{Source: src, Medium: medium})
		if !validChannels[s.Channel] {
			t.Errorf("Channel %q not one of the six", s.Channel)
		}
		if !utf8.ValidString(s.Name) || !utf8.ValidString(s.Host) {
			t.Errorf("invalid UTF-8 in %+v", s)
		}
		if len(s.Host) > maxHostLen || len(s.Name) > maxHostLen {
			t.Errorf("Name or Host too long: %d, %d bytes", len(s.Name), len(s.Host))
		}
		if s.Spam && s.Host == "" {
			t.Errorf("Spam without Host: %+v", s)
		}
		if s.Channel == ChannelDirect && (s.Name != "" || s.Host != "") {
			t.Errorf("Direct with a source: %+v", s)
		}
		if s.Host != "" && (s.Name == "" || s.Channel == ChannelDirect) {
			t.Errorf("referrer host without name or channel: %+v", s)
		}
		if s.Host != "" && (strings.HasPrefix(s.Host, "www.") || s.Host != strings.ToLower(s.Host)) {
			t.Errorf("Host not normalised: %q", s.Host)
		}
		if s.Host != "" && s.Host == normalizeHost(page) {
			t.Errorf("self-referral kept: host %q page %q", s.Host, page)
		}
		// The page's own host must never be a source, whatever the case or
		// www. prefix of the referrer.
		if h := normalizeHost(page); h != "" {
			if self := Referrer("https://WWW."+strings.ToUpper(h)+"/x", page, UTM{}); self.Host != "" {
				t.Errorf("Referrer of own host %q = %+v", h, self)
			}
		}
	})
}

func FuzzUTMFromQuery(f *testing.F) {
	for _, q := range []string{
		"", "?", "utm_source=google&utm_medium=cpc&utm_campaign=spring+sale",
		"ref=hn", "source=x&ref=y", "utm_source=%ff%fe%00", "utm_source=%zz",
		"utm_campaign=" + strings.Repeat("é", 300), "&&&=&=", "utm_term=a;b",
		"UTM_Source=X#utm_medium=y",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		u := UTMFromQuery(q)
		for name, v := range map[string]string{
			"Source": u.Source, "Medium": u.Medium, "Campaign": u.Campaign,
			"Content": u.Content, "Term": u.Term,
		} {
			if !utf8.ValidString(v) {
				t.Errorf("UTMFromQuery(%q).%s = %q: invalid UTF-8", q, name, v)
			}
			if len(v) > maxUTMLen {
				t.Errorf("UTMFromQuery(%q).%s is %d bytes", q, name, len(v))
			}
			if v != strings.TrimSpace(v) {
				t.Errorf("UTMFromQuery(%q).%s = %q: not trimmed", q, name, v)
			}
			if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Errorf("UTMFromQuery(%q).%s = %q: control characters", q, name, v)
			}
		}
		// Whatever the query, classifying its UTM must be safe too.
		if s := Referrer("", "example.com", u); !validChannels[s.Channel] {
			t.Errorf("Referrer with UTM %+v: channel %q", u, s.Channel)
		}
	})
}
