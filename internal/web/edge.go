package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"fjord/internal/secmon"
)

// Route classes: each has its own limits per client address and its own
// request metrics (PRODUCT §9.2, §9.3).
const (
	ClassCollect = "collect" // the collection endpoint and the tracker script
	ClassSignin  = "signin"  // sign-in, second factor, reset, staff sign-in and set-up
	ClassAPI     = "api"     // the Stats API
	ClassFeeds   = "feeds"   // datafeed answers
	ClassPages   = "pages"   // everything else people look at
	ClassOps     = "ops"     // health and readiness: never limited
)

// routeClass is the class of a route by its pattern and permission.
func routeClass(pattern string, perm Permission) string {
	_, path, _ := strings.Cut(pattern, " ")
	if path == "" {
		path = pattern
	}
	switch {
	// /metrics is a page: refused, it must look like a path that does
	// not exist, headers and all
	case path == "/api/event" || path == "/js/fjord.js":
		return ClassCollect
	case perm == PermStatsAPI:
		return ClassAPI
	case strings.HasPrefix(path, "/feeds/"):
		return ClassFeeds
	case strings.HasPrefix(path, "/signin") || strings.HasPrefix(path, "/staff/signin") || strings.HasPrefix(path, "/staff/setup"):
		return ClassSignin
	case path == "/healthz" || path == "/readyz" || perm == PermCollector:
		// the collectors' batches are few and large, and a backlog after
		// an outage must not be slowed by a per-address limit; a request
		// without a valid token costs one hash
		return ClassOps
	}
	return ClassPages
}

// Limit is a token bucket: PerSecond tokens added each second, at most
// Burst kept. The zero Limit does not limit.
type Limit struct {
	PerSecond float64
	Burst     int
}

func (l Limit) on() bool { return l.PerSecond > 0 && l.Burst > 0 }

// Limits are the public port's defences against abuse (PRODUCT §9.2).
// The zero Limits limit nothing: a Server built by a test serves as
// before unless the test sets them; `fjord serve` sets them from its
// configuration (limit-*, block-*, conns-per-address, collect-in-flight),
// whose defaults sit far above what a person does: a browser sends one
// or two events a page view, and an office behind one address is many
// browsers.
type Limits struct {
	// requests per client address (an IPv4 address, an IPv6 /64), by
	// route class
	Collect, Signin, API, Feeds, Pages Limit
	// SiteEvents: events collected per site, whoever sends them, so
	// that one site's flood does not take the others' share
	SiteEvents Limit
	// An address with Strikes refused requests within StrikeWindow is
	// blocked for Block: every request answered 429 at once, and new
	// connections from it closed before TLS.
	Strikes      int
	StrikeWindow time.Duration
	Block        time.Duration
	// ConnsPerAddress bounds the open connections of one peer address
	// (trusted proxies excepted): slow clients hold connections.
	ConnsPerAddress int
	// CollectInFlight bounds collection requests served at once; beyond
	// it collection sheds with 503, so memory does not grow with load.
	CollectInFlight int
	// MaxAddresses bounds the addresses tracked per class (0: 100,000);
	// beyond it new addresses share one bucket, so a spread-out flood
	// cannot grow the tables without end.
	MaxAddresses int
}

func (l Limits) maxAddresses() int {
	if l.MaxAddresses > 0 {
		return l.MaxAddresses
	}
	return 100_000
}

func (l Limits) of(class string) Limit {
	switch class {
	case ClassCollect:
		return l.Collect
	case ClassSignin:
		return l.Signin
	case ClassAPI:
		return l.API
	case ClassFeeds:
		return l.Feeds
	case ClassPages:
		return l.Pages
	}
	return Limit{}
}

// limitKey is what one client is counted as: its IPv4 address, or its
// IPv6 /64 (one customer line gets a whole /64).
func limitKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// buckets are the token buckets of one limit, by key, bounded in number.
type buckets[K comparable] struct {
	mu        sync.Mutex
	m         map[K]*rate.Limiter
	shared    *rate.Limiter // for keys beyond max
	lastSweep time.Time
}

// allow takes n tokens of key's bucket; shared says the key had no
// bucket of its own (the table was full). Full buckets (idle keys) are
// swept once a minute, and when the table is full at most once a second:
// a sweep walks the whole table under the lock.
func (b *buckets[K]) allow(key K, n int, l Limit, max int, now time.Time) (ok, shared bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lim := b.m[key]
	if lim == nil {
		if b.m == nil {
			b.m = map[K]*rate.Limiter{}
		}
		if since := now.Sub(b.lastSweep); since > time.Minute || (len(b.m) >= max && since > time.Second) {
			b.sweep(l, now)
		}
		if len(b.m) >= max {
			if b.shared == nil {
				b.shared = rate.NewLimiter(rate.Limit(l.PerSecond), l.Burst)
			}
			return b.shared.AllowN(now, n), true
		}
		lim = rate.NewLimiter(rate.Limit(l.PerSecond), l.Burst)
		b.m[key] = lim
	}
	return lim.AllowN(now, n), false
}

func (b *buckets[K]) sweep(l Limit, now time.Time) {
	b.lastSweep = now
	for k, lim := range b.m {
		if lim.TokensAt(now) >= float64(l.Burst) {
			delete(b.m, k)
		}
	}
}

// strike counts one address's refusals within a window.
type strike struct {
	start time.Time
	n     int
}

// edge is the state of the limits: the buckets, the strikes, the blocked
// addresses and the open connections.
type edge struct {
	byClass sync.Map // class -> *buckets[netip.Addr]
	sites   buckets[int64]

	mu      sync.Mutex
	strikes map[netip.Addr]*strike
	blocked map[netip.Addr]time.Time
	conns   map[netip.Addr]int

	inFlight chan struct{}
	once     sync.Once
	// blocks: the security events of blocks, recorded by one goroutine
	// from a bounded queue (a flood from many addresses must not start a
	// goroutine per block)
	blocks     chan secmon.Event
	blocksOnce sync.Once
}

func (s *Server) classBuckets(class string) *buckets[netip.Addr] {
	if b, ok := s.edge.byClass.Load(class); ok {
		return b.(*buckets[netip.Addr])
	}
	b, _ := s.edge.byClass.LoadOrStore(class, &buckets[netip.Addr]{})
	return b.(*buckets[netip.Addr])
}

// blockedFor is how much longer key stays blocked (0: it is not).
func (s *Server) blockedFor(key netip.Addr, now time.Time) time.Duration {
	s.edge.mu.Lock()
	defer s.edge.mu.Unlock()
	until, ok := s.edge.blocked[key]
	if !ok {
		return 0
	}
	if !now.Before(until) {
		delete(s.edge.blocked, key)
		return 0
	}
	return until.Sub(now)
}

// strike counts a refusal of addr; at the limit's Strikes within its
// window the address is blocked, which is a security event. A trusted
// proxy is never blocked (every client behind it would be), and both
// tables are bounded: when full of live entries, an address is not
// counted (it is still limited).
func (s *Server) strike(addr, key netip.Addr, class string, now time.Time) {
	l := s.Limits
	if l.Strikes <= 0 || l.Block <= 0 || s.trusted(addr) {
		return
	}
	max := l.maxAddresses()
	s.edge.mu.Lock()
	if s.edge.strikes == nil {
		s.edge.strikes = map[netip.Addr]*strike{}
		s.edge.blocked = map[netip.Addr]time.Time{}
	}
	st := s.edge.strikes[key]
	if st == nil || now.Sub(st.start) > l.StrikeWindow {
		if st == nil && len(s.edge.strikes) >= max {
			for k, v := range s.edge.strikes {
				if now.Sub(v.start) > l.StrikeWindow {
					delete(s.edge.strikes, k)
				}
			}
			if len(s.edge.strikes) >= max {
				s.edge.mu.Unlock()
				return
			}
		}
		st = &strike{start: now}
		s.edge.strikes[key] = st
	}
	st.n++
	block := st.n >= l.Strikes
	if block {
		delete(s.edge.strikes, key)
		if len(s.edge.blocked) >= max {
			for k, until := range s.edge.blocked {
				if !now.Before(until) {
					delete(s.edge.blocked, k)
				}
			}
		}
		if len(s.edge.blocked) >= max {
			block = false
		} else {
			s.edge.blocked[key] = now.Add(l.Block)
		}
	}
	s.edge.mu.Unlock()
	if !block {
		return
	}
	network := "unknown network"
	if s.Security != nil {
		network = s.Security.Network(addr)
	}
	s.Log.Warn("address blocked", "network", network, "class", class, "refused", l.Strikes, "within", l.StrikeWindow.String(), "for", l.Block.String())
	s.recordBlock(secmon.Event{Kind: secmon.AddressBlocked, Actor: network,
		Detail: fmt.Sprintf("blocked for %s after %d refused requests within %s (last: %s)", l.Block, l.Strikes, l.StrikeWindow, class)})
}

// recordBlock queues a block's security event; a full queue drops it
// (the block stands, and the log has it).
func (s *Server) recordBlock(e secmon.Event) {
	if s.Security == nil {
		return
	}
	s.edge.blocksOnce.Do(func() {
		s.edge.blocks = make(chan secmon.Event, 1000)
		go func() {
			for e := range s.edge.blocks {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := s.Security.Record(ctx, e); err != nil {
					s.Log.Error("record blocked address", "err", err)
				}
				cancel()
			}
		}()
	})
	select {
	case s.edge.blocks <- e:
	default:
		s.Log.Warn("too many blocks at once: a block's security event was not recorded", "network", e.Actor)
	}
}

// retryAfter is the whole seconds, at least 1, of d.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// limit applies the blocks and the class's limit to a request; when it
// refuses, it has answered 429 with Retry-After.
func (s *Server) limit(w http.ResponseWriter, r *http.Request, class string, now time.Time) bool {
	l := s.Limits.of(class)
	if !l.on() && s.Limits.Strikes <= 0 {
		return true
	}
	addr := ClientIP(r, s.TrustedProxies)
	if !addr.IsValid() {
		return true
	}
	key := limitKey(addr)
	if d := s.blockedFor(key, now); d > 0 {
		w.Header().Set("Retry-After", retryAfter(d))
		// its next connection is closed at once, before TLS and HTTP
		w.Header().Set("Connection", "close")
		http.Error(w, "too many requests from this address: blocked for a while", http.StatusTooManyRequests)
		return false
	}
	if !l.on() {
		return true
	}
	ok, shared := s.classBuckets(class).allow(key, 1, l, s.Limits.maxAddresses(), now)
	if ok {
		return true
	}
	if !shared {
		// refusals of the shared bucket are no sign of this address's abuse
		s.strike(addr, key, class, now)
	}
	w.Header().Set("Retry-After", retryAfter(time.Duration(float64(time.Second)/l.PerSecond)))
	if class == ClassCollect {
		s.refuse(w, http.StatusTooManyRequests, "rate_limited", "too many requests from this address; retry later")
		return false
	}
	http.Error(w, "too many requests from this address; retry later", http.StatusTooManyRequests)
	return false
}

// siteAllows takes n events of a site's bucket.
func (s *Server) siteAllows(site int64, n int, now time.Time) bool {
	l := s.Limits.SiteEvents
	if !l.on() {
		return true
	}
	// one bucket per site: the sites are few and known
	ok, _ := s.edge.sites.allow(site, n, l, 1<<20, now)
	return ok
}

// enterCollect takes a collection slot; false: all are taken (shed).
func (s *Server) enterCollect() (leave func(), ok bool) {
	n := s.Limits.CollectInFlight
	if n <= 0 {
		return func() {}, true
	}
	slots := s.collectSlots()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, true
	default:
		return nil, false
	}
}

// collectSlots is the semaphore of collection requests in flight.
func (s *Server) collectSlots() chan struct{} {
	s.edge.once.Do(func() { s.edge.inFlight = make(chan struct{}, max(s.Limits.CollectInFlight, 1)) })
	return s.edge.inFlight
}

// dataCSP is the policy of answers that are not pages (JSON, CSV,
// scripts): nothing in them may load or run anything.
const dataCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// headers are the request's id and the security headers of every
// response: the pages' CSP for the classes that serve pages, the data
// policy for the others. Handlers set their own where they differ (the
// feeds' sandbox, the collection endpoint's CORS). No page of ours is
// embeddable yet, so frame-ancestors is 'none' everywhere.
func headers(h http.Header, id, class string) {
	csp := dataCSP
	if class == ClassPages || class == ClassSignin {
		csp = pageCSP
	}
	// Every request pays for these: the keys are written canonical (no
	// Set to canonicalize them) and the values share one allocation
	// instead of one each. Each value is a slice of its own capped at
	// one, so a handler's Add appends to a copy, never to its neighbour.
	v := []string{id, "nosniff", "same-origin", "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()", "same-origin", csp}
	h["X-Request-Id"] = v[0:1:1]
	h["X-Content-Type-Options"] = v[1:2:2]
	h["Referrer-Policy"] = v[2:3:3]
	h["Permissions-Policy"] = v[3:4:4]
	h["Cross-Origin-Opener-Policy"] = v[4:5:5]
	h["Content-Security-Policy"] = v[5:6:6]
}

type requestIDKey struct{}

// RequestID is the id of the request a context belongs to ("" outside
// one): it is in the X-Request-Id header and in every log line of the
// request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serveEdge is what every request of the public port passes: its id,
// the security headers, the blocks and limits of its class, and its log
// line. The log names the route's pattern, never the path: paths carry
// tokens (/feeds/{file}, /unsubscribe/{token}) and addresses are left out.
func (s *Server) serveEdge(w http.ResponseWriter, r *http.Request, class, pattern string, next http.Handler) {
	start := time.Now()
	id := newRequestID()
	headers(w.Header(), id, class)
	sw := &statusWriter{ResponseWriter: w}
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	if s.limit(sw, r, class, s.now()) {
		next.ServeHTTP(sw, r)
	}
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	d := time.Since(start)
	s.Metrics.ObserveRequest(class, sw.status, d)
	level := slog.LevelInfo
	if (class == ClassCollect || class == ClassOps || sw.status == http.StatusTooManyRequests) && sw.status < 500 {
		// thousands a second under load or a flood, and probes: only
		// errors by default
		level = slog.LevelDebug
	}
	if !s.Log.Enabled(r.Context(), level) {
		// the usual case under load: skip building the line's attributes
		return
	}
	s.Log.Log(r.Context(), level, "request", "method", logMethod(r.Method), "route", pattern, "class", class, "status", sw.status, "ms", float64(d.Microseconds())/1000)
}

// logMethod is a request's method for the log: a client may send any
// token of any length as its method.
func logMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return m
	}
	return "other"
}

// Listener wraps the public port's listener: connections from blocked
// addresses and beyond ConnsPerAddress are closed as they arrive, before
// TLS or HTTP cost anything. Trusted proxies are not counted: every
// client behind them shares their address.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &edgeListener{Listener: ln, s: s}
}

type edgeListener struct {
	net.Listener
	s *Server
}

func (l *edgeListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil || l.s.trusted(ap.Addr()) {
			return c, nil
		}
		key := limitKey(ap.Addr())
		if l.s.blockedFor(key, l.s.now()) > 0 || !l.s.openConn(key) {
			c.Close()
			continue
		}
		return &edgeConn{Conn: c, close: func() { l.s.closeConn(key) }}, nil
	}
}

func (s *Server) trusted(a netip.Addr) bool { return inRanges(a.Unmap(), s.TrustedProxies) }

func (s *Server) openConn(key netip.Addr) bool {
	n := s.Limits.ConnsPerAddress
	if n <= 0 {
		return true
	}
	s.edge.mu.Lock()
	defer s.edge.mu.Unlock()
	if s.edge.conns == nil {
		s.edge.conns = map[netip.Addr]int{}
	}
	if s.edge.conns[key] >= n {
		return false
	}
	s.edge.conns[key]++
	return true
}

func (s *Server) closeConn(key netip.Addr) {
	if s.Limits.ConnsPerAddress <= 0 {
		return
	}
	s.edge.mu.Lock()
	defer s.edge.mu.Unlock()
	if s.edge.conns[key]--; s.edge.conns[key] <= 0 {
		delete(s.edge.conns, key)
	}
}

type edgeConn struct {
	net.Conn
	once  sync.Once
	close func()
}

func (c *edgeConn) Close() error {
	c.once.Do(c.close)
	return c.Conn.Close()
}

// LogRequestIDs wraps a log handler so that every line logged with a
// request's context names the request's id.
func LogRequestIDs(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
