package enrich

import "strings"

// spamDomains are referrer-spam domains: sites that fake referrers so their
// name shows up in analytics reports. A referrer host matches when it is one
// of these or a subdomain of one. Taken from the Matomo referrer-spam-list
// (github.com/matomo-org/referrer-spam-list, public domain), limited to
// well-known, long-running campaigns; entries there that are ordinary sites
// (hosting providers, universities, uptime services) are left out on purpose,
// since dropping a real referral is worse than showing a spam one.
var spamDomains = map[string]struct{}{
	"100dollars-seo.com":                   {},
	"12masterov.com":                       {},
	"1-free-share-buttons.com":             {},
	"4webmasters.org":                      {},
	"7makemoneyonline.com":                 {},
	"abclauncher.com":                      {},
	"acunetix-referrer.com":                {},
	"adcash.com":                           {},
	"anticrawler.org":                      {},
	"best-seo-offer.com":                   {},
	"best-seo-solution.com":                {},
	"bestwebsitesawards.com":               {},
	"biglistofwebsites.com":                {},
	"blackhatworth.com":                    {},
	"buttons-for-website.com":              {},
	"buttons-for-your-website.com":         {},
	"cenokos.ru":                           {},
	"cenoval.ru":                           {},
	"copyrightclaims.org":                  {},
	"darodar.com":                          {},
	"dailyrank.net":                        {},
	"econom.co":                            {},
	"event-tracking.com":                   {},
	"fix-website-errors.com":               {},
	"floating-share-buttons.com":           {},
	"free-floating-buttons.com":            {},
	"free-share-buttons.com":               {},
	"free-social-buttons.com":              {},
	"free-traffic.xyz":                     {},
	"free-video-tool.com":                  {},
	"get-free-social-traffic.com":          {},
	"get-free-traffic-now.com":             {},
	"get-your-social-buttons.info":         {},
	"ghostvisitor.com":                     {},
	"googlemare.com":                       {},
	"googlsucks.com":                       {},
	"howtostopreferralspam.eu":             {},
	"hulfingtonpost.com":                   {},
	"humanorightswatch.org":                {},
	"hundejo.com":                          {},
	"ilovevitaly.co":                       {},
	"ilovevitaly.com":                      {},
	"ilovevitaly.info":                     {},
	"ilovevitaly.org":                      {},
	"ilovevitaly.ru":                       {},
	"ilovevitaly.xyz":                      {},
	"iloveitaly.ru":                        {},
	"kambasoft.com":                        {},
	"keywords-monitoring-your-success.com": {},
	"lumb.co":                              {},
	"makemoneyonline.com":                  {},
	"o-o-6-o-o.com":                        {},
	"o-o-6-o-o.ru":                         {},
	"o-o-8-o-o.com":                        {},
	"o-o-8-o-o.ru":                         {},
	"priceg.com":                           {},
	"rank-checker.online":                  {},
	"rankings-analytics.com":               {},
	"ranksonic.info":                       {},
	"ranksonic.org":                        {},
	"sanjosestartups.com":                  {},
	"savetubevideo.com":                    {},
	"savetubevideo.info":                   {},
	"semalt.com":                           {},
	"semaltmedia.com":                      {},
	"seo-platform.com":                     {},
	"share-buttons-for-free.com":           {},
	"sharebutton.net":                      {},
	"sharebutton.to":                       {},
	"simple-share-buttons.com":             {},
	"site-auditor.online":                  {},
	"social-buttons.com":                   {},
	"success-seo.com":                      {},
	"traffic2money.com":                    {},
	"trafficmonetize.org":                  {},
	"trafficmonetizer.org":                 {},
	"video--production.com":                {},
	"videos-for-your-business.com":         {},
	"webmonetizer.net":                     {},
}

// isSpam reports whether host (lower case, no "www.") or any parent domain
// of it is a known spam domain, so that "forum.semalt.com" matches too.
func isSpam(host string) bool {
	for h := host; h != ""; {
		if _, ok := spamDomains[h]; ok {
			return true
		}
		i := strings.IndexByte(h, '.')
		if i < 0 {
			return false
		}
		h = h[i+1:]
	}
	return false
}
