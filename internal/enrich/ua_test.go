package enrich

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestParseUA(t *testing.T) {
	p := NewUAParser(100)
	tests := []struct {
		name string
		ua   string
		want UA
	}{
		{
			"Chrome Windows",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
			UA{Browser: "Chrome", BrowserVersion: "124", OS: "Windows", OSVersion: "10", Device: "desktop"},
		},
		{
			"Chrome Windows 7",
			"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
			UA{Browser: "Chrome", BrowserVersion: "109", OS: "Windows", OSVersion: "7", Device: "desktop"},
		},
		{
			"Firefox Windows",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
			UA{Browser: "Firefox", BrowserVersion: "125", OS: "Windows", OSVersion: "10", Device: "desktop"},
		},
		{
			"Firefox Linux",
			"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
			UA{Browser: "Firefox", BrowserVersion: "125", OS: "Linux", Device: "desktop"},
		},
		{
			"Firefox macOS 14",
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
			UA{Browser: "Firefox", BrowserVersion: "125", OS: "macOS", OSVersion: "14", Device: "desktop"},
		},
		{
			"Firefox macOS 10.15",
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
			UA{Browser: "Firefox", BrowserVersion: "125", OS: "macOS", OSVersion: "10.15", Device: "desktop"},
		},
		{
			"Safari macOS",
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
			UA{Browser: "Safari", BrowserVersion: "17", OS: "macOS", OSVersion: "10.15", Device: "desktop"},
		},
		{
			"Edge Windows",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
			UA{Browser: "Edge", BrowserVersion: "124", OS: "Windows", OSVersion: "10", Device: "desktop"},
		},
		{
			"Opera Windows",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
			UA{Browser: "Opera", BrowserVersion: "109", OS: "Windows", OSVersion: "10", Device: "desktop"},
		},
		{
			"Chrome ChromeOS",
			"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
			UA{Browser: "Chrome", BrowserVersion: "124", OS: "ChromeOS", Device: "desktop"},
		},
		{
			"IE 11",
			"Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko",
			UA{Browser: "Internet Explorer", BrowserVersion: "11", OS: "Windows", OSVersion: "8.1", Device: "desktop"},
		},
		{
			"Safari iPhone",
			"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
			UA{Browser: "Safari", BrowserVersion: "17", OS: "iOS", OSVersion: "17.4", Device: "mobile"},
		},
		{
			"Chrome iPhone",
			"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
			UA{Browser: "Chrome", BrowserVersion: "124", OS: "iOS", OSVersion: "17.0", Device: "mobile"},
		},
		{
			"Safari iPad",
			"Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
			UA{Browser: "Safari", BrowserVersion: "16", OS: "iOS", OSVersion: "16.6", Device: "tablet"},
		},
		{
			"Chrome Android phone",
			"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
			UA{Browser: "Chrome", BrowserVersion: "124", OS: "Android", OSVersion: "14", Device: "mobile"},
		},
		{
			"Chrome Android 8.1",
			"Mozilla/5.0 (Linux; Android 8.1.0; Nexus 5X) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
			UA{Browser: "Chrome", BrowserVersion: "119", OS: "Android", OSVersion: "8.1", Device: "mobile"},
		},
		{
			"Chrome Android tablet",
			"Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
			UA{Browser: "Chrome", BrowserVersion: "124", OS: "Android", OSVersion: "13", Device: "tablet"},
		},
		{
			"Firefox Android",
			"Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
			UA{Browser: "Firefox", BrowserVersion: "125", OS: "Android", OSVersion: "14", Device: "mobile"},
		},
		{
			"Samsung Internet",
			"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
			UA{Browser: "Samsung Internet", BrowserVersion: "24", OS: "Android", OSVersion: "14", Device: "mobile"},
		},
		{
			"Edge Android",
			"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36 EdgA/124.0.2478.64",
			UA{Browser: "Edge", BrowserVersion: "124", OS: "Android", OSVersion: "14", Device: "mobile"},
		},
		{
			"Facebook in-app iOS",
			"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/21E219 [FBAN/FBIOS;FBAV/458.0.0.34.108;FBBV/590563829;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
			UA{Browser: "Facebook", BrowserVersion: "458", OS: "iOS", OSVersion: "17.4", Device: "mobile"},
		},
		{
			"Instagram in-app iOS",
			"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 326.0.3.30.91 (iPhone14,5; iOS 17_4; en_US; en; scale=3.00; 1170x2532; 591744116)",
			UA{Browser: "Instagram", BrowserVersion: "326", OS: "iOS", OSVersion: "17.4", Device: "mobile"},
		},
		{
			"Pinterest in-app Android",
			"Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.118 Mobile Safari/537.36 [Pinterest/Android]",
			UA{Browser: "Chrome", BrowserVersion: "123", OS: "Android", OSVersion: "13", Device: "mobile"},
		},
		{
			"Cubot phone is not a bot",
			"Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
			UA{Browser: "Chrome", BrowserVersion: "124", OS: "Android", OSVersion: "9", Device: "mobile"},
		},

		// Bots keep whatever else the header says, so that reports on bot
		// traffic can still tell them apart.
		{"empty", "", UA{Bot: true}},
		{"blank", "   ", UA{Bot: true}},
		{
			"Googlebot",
			"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			UA{Bot: true},
		},
		{
			"Googlebot smartphone",
			"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			UA{Browser: "Chrome", BrowserVersion: "124", OS: "Android", OSVersion: "6", Device: "mobile", Bot: true},
		},
		{"curl", "curl/8.5.0", UA{Bot: true}},
		{
			"HeadlessChrome",
			"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 Safari/537.36",
			UA{Browser: "Chrome", BrowserVersion: "124", OS: "Linux", Device: "desktop", Bot: true},
		},
		{
			"bingbot",
			"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
			UA{Browser: "Chrome", BrowserVersion: "116", Bot: true},
		},
		{
			"GPTBot",
			"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
			UA{Browser: "Safari", Bot: true},
		},
		{
			"AhrefsBot",
			"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
			UA{Bot: true},
		},
		{"facebookexternalhit", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", UA{Bot: true}},
		{"python-requests", "python-requests/2.31.0", UA{Bot: true}},
		{"Go-http-client", "Go-http-client/1.1", UA{Bot: true}},
		{"Mozilla alone", "Mozilla/5.0", UA{Bot: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Parse(tt.ua)
			if got != tt.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.ua, got, tt.want)
			}
		})
	}
}

// TestBotPatternsCaseInsensitive checks that matching ignores case in both
// the pattern list and the header, since bots vary their capitalisation.
func TestBotPatternsCaseInsensitive(t *testing.T) {
	p := NewUAParser(0)
	base := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	if p.Parse(base).Bot {
		t.Fatalf("plain Chrome parsed as bot")
	}
	for _, suffix := range []string{" AHREFSBOT", " ahrefsbot", " SemrushBot", " GPTBOT", " ClaudeBot", " PetalBot", " Bytespider"} {
		if !p.Parse(base + suffix).Bot {
			t.Errorf("Parse(...%q).Bot = false, want true", suffix)
		}
	}
}

func TestBotPatternsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, pat := range botPatterns {
		if len(pat) < 3 {
			t.Errorf("pattern %q shorter than 3 bytes; the matcher indexes 3-byte prefixes", pat)
		}
		if pat != strings.ToLower(pat) {
			t.Errorf("pattern %q not lower case", pat)
		}
		if seen[pat] {
			t.Errorf("pattern %q listed twice", pat)
		}
		seen[pat] = true
	}
	// Each pattern must be found by the matcher on its own and inside a
	// larger string, or the trigram filter is broken.
	m := newBotMatcher(botPatterns[:])
	for _, pat := range botPatterns {
		if !m.match(pat) || !m.match("Mozilla/5.0 (x) "+strings.ToUpper(pat)+" tail") {
			t.Errorf("matcher misses %q", pat)
		}
	}
}

// TestRealBrowsersNotBots guards the generic bot patterns against real
// browsers' headers: every one must parse as human.
func TestRealBrowsersNotBots(t *testing.T) {
	p := NewUAParser(0)
	for _, ua := range humanUAs {
		if got := p.Parse(ua); got.Bot {
			t.Errorf("Parse(%q).Bot = true", ua)
		}
	}
}

var humanUAs = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Vivaldi/6.7",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/311.0.622521700 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 DuckDuckGo/7 Safari/605.1.15",
	"Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.119 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/453.0.0.33.111;]",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 326.0.3.30.91 (iPhone14,5; iOS 17_4; en_US; en; scale=3.00; 1170x2532; 591744116)",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/12.85.0.40 (like Safari/8617.2.4.10.8, panda)",
	"Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.118 Mobile Safari/537.36 [Pinterest/Android]",
	"Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko",
	"Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
	"Mozilla/5.0 (Linux; Android 12; moto g(50)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
	"Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54",
}

func TestUACacheBounded(t *testing.T) {
	for _, size := range []int{1, 2, 3, 10, 100, 1000, 5000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			p := NewUAParser(size)
			for i := range 3*size + 50 {
				ua := fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/%d.0 Safari/537.36", i)
				p.Parse(ua)
				if n := p.cache.len(); n > size {
					t.Fatalf("after %d distinct UAs cache holds %d entries, bound %d", i+1, n, size)
				}
			}
			// A cache that stays empty would also be bounded.
			if n := p.cache.len(); n == 0 || size >= 10 && n < size/4 {
				t.Errorf("cache holds %d entries after filling, size %d", n, size)
			}
		})
	}
}

func TestUACacheHitsAndPromotion(t *testing.T) {
	p := NewUAParser(64) // one shard, generations of 32
	hot := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	want := p.Parse(hot)
	for i := range 1000 {
		p.Parse(fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64) Firefox/%d.0", i))
		// The hot entry is read often, so it must survive every rotation.
		if _, ok := p.cache.get(hot); !ok {
			t.Fatalf("frequently used entry evicted after %d other UAs", i+1)
		}
	}
	if got := p.Parse(hot); got != want {
		t.Errorf("cached result %+v, want %+v", got, want)
	}
}

func TestUAParserNoCache(t *testing.T) {
	p := NewUAParser(0)
	if p.cache != nil {
		t.Fatal("cacheSize 0 should disable the cache")
	}
	if got := p.Parse("curl/8.0"); !got.Bot {
		t.Errorf("uncached Parse(curl) = %+v, want bot", got)
	}
}

func TestUAParserConcurrent(t *testing.T) {
	p := NewUAParser(50)
	want := make([]UA, len(humanUAs))
	for i, ua := range humanUAs {
		want[i] = NewUAParser(0).Parse(ua)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				j := (i + g) % len(humanUAs)
				if got := p.Parse(humanUAs[j]); got != want[j] {
					t.Errorf("concurrent Parse(%q) = %+v, want %+v", humanUAs[j], got, want[j])
					return
				}
				p.Parse(fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64) Firefox/%d.%d", g, i))
			}
		})
	}
	wg.Wait()
	if n := p.cache.len(); n > 50 {
		t.Errorf("cache holds %d entries, bound 50", n)
	}
}

func TestParseLongUA(t *testing.T) {
	p := NewUAParser(10)
	long := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 " + strings.Repeat("x", 100000)
	got := p.Parse(long)
	if got.Browser != "Chrome" {
		t.Errorf("Parse(long UA).Browser = %q, want Chrome", got.Browser)
	}
	p.cache.mustKeysAtMost(t, maxUALen)
}

func (c *uaCache) mustKeysAtMost(t *testing.T, n int) {
	t.Helper()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, m := range []map[string]UA{s.cur, s.prev} {
			for k := range m {
				if len(k) > n {
					t.Errorf("cache key of %d bytes, want at most %d", len(k), n)
				}
			}
		}
		s.mu.Unlock()
	}
}

func BenchmarkUAParse(b *testing.B) {
	uas := humanUAs
	b.Run("cached", func(b *testing.B) {
		p := NewUAParser(1000)
		for _, ua := range uas {
			p.Parse(ua)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p.Parse(uas[i%len(uas)])
			i++
		}
	})
	b.Run("uncached", func(b *testing.B) {
		p := NewUAParser(0)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p.Parse(uas[i%len(uas)])
			i++
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		p := NewUAParser(1000)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				p.Parse(uas[i%len(uas)])
				i++
			}
		})
	})
	b.Run("miss", func(b *testing.B) {
		// Every header new: the cost a flood of random User-Agents imposes,
		// including cache insertion and eviction.
		p := NewUAParser(1000)
		keys := make([]string, 4096)
		for i := range keys {
			keys[i] = fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p.Parse(keys[i%len(keys)])
			i++
		}
	})
}
