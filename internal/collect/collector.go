package collect

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"fjord/internal/enrich"
	"fjord/internal/store"
)

// Salts gives the secret salt of a site's local day.
type Salts interface {
	Salt(ctx context.Context, site store.Site, at time.Time) ([]byte, error)
}

// Collector enriches hits into events. It is safe for concurrent use.
type Collector struct {
	Sites *SiteCache
	Salts Salts
	UA    *enrich.UAParser
	Geo   *enrich.Geo // nil: no geo database configured
}

// Client is what the request tells about the visitor; it is used for
// enrichment and hashing only and never stored.
type Client struct {
	IP        netip.Addr
	UserAgent string
	// OptOut: the browser sent Do Not Track or Global Privacy Control
	OptOut bool
}

// Dropped says why an accepted request yields no event; the client still
// gets 202 (with x-plausible-dropped: 1), as Plausible answers.
type Dropped struct {
	Site   store.Site
	Reason string // store.CountBot, "spam"
}

// Process turns a hit into one event per named site. Unknown sites are a
// *DecodeError (the client gets 4xx).
func (c *Collector) Process(ctx context.Context, h Hit, cl Client, now time.Time) ([]store.Event, []Dropped, error) {
	at := h.Time
	if at.IsZero() {
		at = now
	}
	at = at.UTC().Truncate(time.Millisecond)
	var sites []store.Site
	for _, d := range h.Domains {
		s, err := c.Sites.Lookup(ctx, d)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("look up site: %w", err)
		}
		sites = append(sites, s)
	}
	if len(sites) == 0 {
		return nil, nil, bad(ReasonUnknown, "domain", "no site is registered for %q", strings.Join(h.Domains, ","))
	}
	// the sites' own settings: a browser's opt-out, the owner's ranges
	var drops []Dropped
	kept := sites[:0]
	for _, s := range sites {
		switch {
		case s.RespectDNT && cl.OptOut:
			drops = append(drops, Dropped{s, store.CountOptOut})
		case ignored(s.Ignored, cl.IP):
			drops = append(drops, Dropped{s, store.CountIgnored})
		default:
			kept = append(kept, s)
		}
	}
	if sites = kept; len(sites) == 0 {
		return nil, drops, nil
	}
	ua := c.UA.Parse(cl.UserAgent)
	if ua.Bot {
		for _, s := range sites {
			drops = append(drops, Dropped{s, store.CountBot})
		}
		return nil, drops, nil
	}
	pageHost := strings.TrimPrefix(strings.ToLower(h.URL.Hostname()), "www.")
	utm := enrich.UTMFromQuery(h.URL.RawQuery)
	src := enrich.Referrer(h.Referrer, pageHost, utm)
	if src.Spam {
		for _, s := range sites {
			drops = append(drops, Dropped{s, "spam"})
		}
		return nil, drops, nil
	}
	loc := c.Geo.Lookup(cl.IP)
	path := h.URL.EscapedPath()
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	if path == "" {
		path = "/"
	}
	if h.HashMode && h.URL.Fragment != "" {
		path += "#" + h.URL.Fragment
	}
	id := h.ID
	if !h.HasID {
		rand.Read(id[:])
	}
	base := store.Event{
		ID: id, Time: at, Name: h.Name,
		Hostname: pageHost, Path: truncate(path, MaxURLLen), Referrer: referrerURL(h.Referrer, src),
		Source: src.Name, Channel: src.Channel,
		UTMSource: utm.Source, UTMMedium: utm.Medium, UTMCampaign: utm.Campaign, UTMContent: utm.Content, UTMTerm: utm.Term,
		Country: loc.Country, Region: loc.Region, City: loc.City,
		Browser: ua.Browser, BrowserVersion: ua.BrowserVersion, OS: ua.OS, OSVersion: ua.OSVersion, Device: ua.Device,
		Props: PropsJSON(h.Props), Interactive: h.Interactive || h.Name == "pageview",
		ScrollDepth: h.ScrollDepth, EngagedMS: h.EngagedMS,
	}
	clean(&base)
	events := make([]store.Event, 0, len(sites))
	for i, s := range sites {
		salt, err := c.Salts.Salt(ctx, s, at)
		if err != nil {
			return nil, nil, err
		}
		e := base
		e.SiteID = s.ID
		e.VisitorID = VisitorID(salt, s.ID, cl.IP, cl.UserAgent)
		if i > 0 {
			// each site's copy is its own event
			e.ID[15] ^= byte(i)
			e.ID[14] ^= byte(s.ID)
		}
		events = append(events, e)
	}
	return events, drops, nil
}

func ignored(ranges []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range ranges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clean makes every string storable by both engines: valid UTF-8 (a
// percent-decoded path need not be), no NUL (PostgreSQL text refuses it),
// and bounded.
func clean(e *store.Event) {
	for _, p := range e.Strings() {
		v := strings.ToValidUTF8(*p, "\uFFFD")
		if strings.IndexByte(v, 0) >= 0 {
			v = strings.ReplaceAll(v, "\x00", "")
		}
		*p = truncate(v, MaxStored)
	}
}

// MaxStored bounds any stored string; the journal record allows 8 KiB.
const MaxStored = 4096

// referrerURL is the stored referrer: scheme, host and path only (queries
// may carry personal data), and nothing for direct or internal traffic.
func referrerURL(raw string, src enrich.Source) string {
	if src.Host == "" || raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return truncate(u.String(), MaxURLLen)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// VisitorID is the keyed hash of (daily salt, site, IP, user agent). The
// salt is secret and destroyed after 48 hours, so the id cannot be turned
// back into an address, nor followed from one day to the next.
func VisitorID(salt []byte, site int64, ip netip.Addr, ua string) uint64 {
	// HMAC-SHA256 (RFC 2104) spelled out over one stack buffer: crypto/hmac
	// allocates two hash states per call, and this runs for every event.
	// TestVisitorIDIsHMAC holds it to crypto/hmac.
	const block = sha256.BlockSize
	var key [block]byte
	if len(salt) > block {
		sum := sha256.Sum256(salt)
		copy(key[:], sum[:])
	} else {
		copy(key[:], salt)
	}
	var buf [block + 8 + 16 + 512]byte
	msg := buf[:0]
	for _, k := range key {
		msg = append(msg, k^0x36)
	}
	msg = binary.BigEndian.AppendUint64(msg, uint64(site))
	a := ip.As16()
	msg = append(msg, a[:]...)
	msg = append(msg, ua...) // past 512 bytes, append moves to the heap
	inner := sha256.Sum256(msg)
	var outer [block + sha256.Size]byte
	for i, k := range key {
		outer[i] = k ^ 0x5c
	}
	copy(outer[block:], inner[:])
	sum := sha256.Sum256(outer[:])
	return binary.BigEndian.Uint64(sum[:8])
}

// SiteSource lists every site: the account store on the main service, the
// copy of the main service's list on an edge collector.
type SiteSource interface {
	Sites(ctx context.Context) ([]store.Site, error)
}

// SiteCache answers domain -> site from memory; on a miss it reloads the
// list at most once per second, so a site added by another process (the
// CLI, another server on the same PostgreSQL) counts within a second, and a
// flood of unknown domains costs one query per second.
type SiteCache struct {
	Store SiteSource

	mu       sync.RWMutex
	byDomain map[string]store.Site
	loaded   time.Time
	// reloading serialises reloads (and the misses waiting on one)
	reloading sync.Mutex
}

// Lookup finds the site for a domain, with or without "www.".
func (c *SiteCache) Lookup(ctx context.Context, domain string) (store.Site, error) {
	if s, ok := c.get(domain); ok {
		c.refreshIfStale()
		return s, nil
	}
	// One reload per second however many misses arrive; a miss that comes
	// while a reload runs waits for it and looks again (it used to answer
	// "no such site" at once, losing a new site's first events).
	c.reloading.Lock()
	c.mu.RLock()
	fresh := time.Since(c.loaded) < time.Second
	c.mu.RUnlock()
	var err error
	if !fresh {
		if err = c.Reload(ctx); err != nil {
			// a failing store is asked again in a second, not per miss
			c.mu.Lock()
			c.loaded = time.Now()
			c.mu.Unlock()
		}
	}
	c.reloading.Unlock()
	if err != nil {
		return store.Site{}, err
	}
	if s, ok := c.get(domain); ok {
		return s, nil
	}
	return store.Site{}, fmt.Errorf("site %q: %w", domain, store.ErrNotFound)
}

// SettingsMaxAge is how long a site's settings changed elsewhere (another
// server, the CLI) may take to apply: a hit on an older list reloads it in
// the background.
const SettingsMaxAge = time.Minute

func (c *SiteCache) refreshIfStale() {
	c.mu.RLock()
	stale := time.Since(c.loaded) > SettingsMaxAge
	c.mu.RUnlock()
	if !stale || !c.reloading.TryLock() {
		return
	}
	go func() {
		defer c.reloading.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c.Reload(ctx) != nil {
			c.mu.Lock()
			c.loaded = time.Now() // asked again a minute later, not per hit
			c.mu.Unlock()
		}
	}()
}

func (c *SiteCache) get(domain string) (store.Site, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if s, ok := c.byDomain[domain]; ok {
		return s, true
	}
	if d, ok := strings.CutPrefix(domain, "www."); ok {
		s, ok := c.byDomain[d]
		return s, ok
	}
	s, ok := c.byDomain["www."+domain]
	return s, ok
}

// Reload reads every site from the store.
func (c *SiteCache) Reload(ctx context.Context) error {
	sites, err := c.Store.Sites(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]store.Site, len(sites))
	for _, s := range sites {
		m[s.Domain] = s
	}
	c.mu.Lock()
	c.byDomain, c.loaded = m, time.Now()
	c.mu.Unlock()
	return nil
}

// Put adds a site the caller just created.
func (c *SiteCache) Put(s store.Site) {
	c.mu.Lock()
	if c.byDomain == nil {
		c.byDomain = map[string]store.Site{}
	}
	c.byDomain[s.Domain] = s
	c.mu.Unlock()
}
