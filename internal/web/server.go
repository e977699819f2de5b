package web

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fjord/internal/account"
	"fjord/internal/audit"
	"fjord/internal/auth"
	"fjord/internal/backup"
	"fjord/internal/collect"
	"fjord/internal/export"
	"fjord/internal/feed"
	"fjord/internal/ingest"
	"fjord/internal/ingest/forward"
	"fjord/internal/ingest/journal"
	"fjord/internal/mail"
	"fjord/internal/mail/schedule"
	"fjord/internal/metrics"
	"fjord/internal/report"
	"fjord/internal/secmon"
	"fjord/internal/staff"
	"fjord/internal/standby"
	"fjord/internal/store"
	"fjord/internal/usage"
)

// Server holds what the handlers need; tests build one with exactly the
// parts they use.
type Server struct {
	Log            *slog.Logger
	Accounts       store.AccountStore
	Events         store.EventStore
	Collector      *collect.Collector
	Journal        *journal.Journal
	Loader         *ingest.Loader
	Salts          *collect.SaltKeeper
	TrustedProxies []netip.Prefix
	Reports        report.Engine
	Auth           *auth.Service
	Mail           *mail.Outbox     // nil: no mail (no notices, no reset by mail)
	PublicURL      string           // the start of the links handed out
	Audit          *audit.Log       // nil: no audit log
	WebhookClient  *http.Client     // sends integrations' webhooks; nil: public addresses only (tests set their own)
	Security       *secmon.Monitor  // security events, alerts, incidents; nil: none
	Exports        *export.Recorder // the export record and its thresholds; nil: exports are not recorded
	Usage          usage.Store      // each account's use per day; nil: not kept
	Backups        *backup.Service  // nil: backups are off
	SecurityTxt    SecurityTxt      // /.well-known/security.txt; no contact: 404
	// The staff console and staff acting in accounts (nil Staff: none; the
	// console answers only from StaffRanges).
	// Feeds keeps the datafeeds (nil: none; /feeds/ answers 404).
	Feeds feed.Store
	// Schedules keeps the e-mail reports (nil: none); BounceAddress is the
	// base of their VERP envelope senders ("": the From address, and
	// bounces are not read).
	Schedules     schedule.Store
	BounceAddress string
	Staff         *staff.Service
	StaffSignin   *auth.StaffSignin
	StaffRanges   []netip.Prefix
	Now           func() time.Time
	Version       string
	// Limits defend the public port against abuse (zero: no limits).
	Limits Limits
	// ReadyCache is how long an answer of /readyz is kept (zero: none).
	ReadyCache time.Duration

	// Metrics is the server's Prometheus registry (nil: none; /metrics
	// answers 404). On the public port /metrics answers a bearer
	// MetricsToken or a client in MetricsRanges, and 404 to anyone else.
	Metrics       *metrics.Metrics
	MetricsToken  string
	MetricsRanges []netip.Prefix
	// DataDir is where the journal and embedded databases live; /readyz
	// is 503 when its file system has less free than MinFreeDisk of its
	// size (nil: DefaultMinFreeDisk). "": disk space is not checked.
	DataDir     string
	MinFreeDisk func(size uint64) uint64
	// Residency is where the data lives (PRODUCT §9.7), shown to the
	// account's Administrators.
	Residency Residency
	// Standby watches the PostgreSQL standby (nil: none); /readyz adds
	// its last check as a second line.
	Standby *standby.Watcher
	// Collectors admits the edge collectors that forward to this service
	// (nil: /api/collector/ answers 404).
	Collectors *forward.Tokens
	// Forwarding is an edge collector's forwarder (fjord collect; nil on
	// the main service); /readyz adds its backlog as a second line.
	Forwarding *forward.Forwarder

	// diskFullLogged is when (Unix ns) collection last logged that the
	// journal's disk is full: once a minute at most, not per request
	diskFullLogged atomic.Int64

	ready  atomic.Bool
	perDay dayCounts
	usage  usage.Tally // what is used since the last FlushCounts
	resets resetLimits
	// auditSeen: how far the audit log was verified (it must not shrink)
	auditSeen auditMark
	// staffVolume counts staff requests per grant and hour
	staffVolume grantVolume
	// addrEvents bounds the security events of addresses over their
	// sign-in limit, and the refusals recorded of a feed's clients
	addrEvents windowLimit
	feedGate   feedGate
	mailKeys   mailKeyCache
	edge       edge
	readyMemo  readyMemo
	// collectorsLog: the collectors file's failure, logged once a minute
	collectorsLog logGate
}

// SetReady marks the server ready for /readyz and /healthz.
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// Handler is the public port's handler.
func (s *Server) Handler() *Mux {
	m := s.collectionMux()
	m.Handle("GET "+forward.SnapshotPath, PermCollector, s.collectorSnapshot)
	m.Handle("POST "+forward.EventsPath, PermCollector, s.collectorEvents)
	m.Handle("GET /signin", PermPage, s.signinForm)
	m.Handle("POST /signin", PermPage, s.signinPost)
	m.Handle("GET /signin/link/{token}", PermPage, s.linkForm)
	m.Handle("POST /signin/link", PermPage, s.linkPost)
	m.Handle("GET /signin/2fa", PermSecondFactor, s.codeForm)
	m.Handle("POST /signin/2fa", PermSecondFactor, s.codePost)
	m.Handle("GET /signin/reset", PermPage, s.resetForm)
	m.Handle("POST /signin/reset", PermPage, s.resetPost)
	m.Handle("POST /signout", PermSignedIn, s.signout)
	m.Handle("GET /admin", PermAdmin, s.adminPage)
	m.Handle("POST /admin/users", PermAdmin, s.adminAddUser)
	m.Handle("POST /admin/users/{id}/remove", PermAdmin, s.adminRemoveUser)
	m.Handle("POST /admin/users/{id}/restore", PermAdmin, s.adminRestoreUser)
	m.Handle("POST /admin/users/{id}/reset-2fa", PermAdmin, s.adminResetTOTP)
	m.Handle("POST /admin/users/{id}/grant", PermAdmin, s.adminGrant)
	m.Handle("POST /admin/users/{id}/ungrant", PermAdmin, s.adminUngrant)
	m.Handle("POST /admin/sites", PermAdmin, s.adminAddSite)
	m.Handle("POST /admin/sites/{id}/settings", PermAdmin, s.adminSiteSettings)
	m.Handle("POST /admin/account", PermAdmin, s.adminSettings)
	m.Handle("GET /admin/staff-access", PermAdmin, s.staffAccessPage)
	m.Handle("GET /admin/staff-access.csv", PermAdmin, s.staffAccessCSV)
	m.Handle("GET /admin/exports", PermAdmin, s.exportsPage)
	m.Handle("GET /admin/usage", PermAdmin, s.usagePage)
	m.Handle("POST /admin/exports", PermAdmin, s.exportsSettings)
	m.Handle("GET /admin/integrations", PermAdmin, s.integrationsPage)
	m.Handle("POST /admin/integrations", PermAdmin, s.addIntegration)
	m.Handle("POST /admin/integrations/{id}/approve", PermAdmin, s.approveIntegration)
	m.Handle("POST /admin/integrations/{id}/withdraw", PermAdmin, s.withdrawIntegration)
	m.Handle("POST /admin/integrations/{id}/delete", PermAdmin, s.deleteIntegration)
	m.Handle("GET /account/2fa", PermSignedIn, s.securityPage)
	m.Handle("POST /account/2fa/enrol", PermSignedIn, s.enrolPost)
	m.Handle("POST /account/2fa/recovery", PermSignedIn, s.recoveryPost)
	m.Handle("POST /account/2fa/disable", PermSignedIn, s.disablePost)
	m.Handle("GET /{$}", PermAccount, s.overview)
	m.Handle("GET /dashboard/{domain}", PermReadSite, s.dashboard)
	m.Handle("GET /dashboard/{domain}/export", PermReadSite, s.export)
	m.Handle("GET /dashboard/{domain}/realtime", PermReadSite, s.dashRealtime)
	m.Handle("GET /dashboard/go", PermAccount, s.dashboardGo)
	m.Handle("GET /reports/{id}", PermAccount, s.savedReportPage)
	m.Handle("POST /dashboard/{domain}/reports", PermReadSite, s.saveView)
	m.Handle("GET /feeds/{file}", PermPublic, s.feedAnswer)
	m.Handle("GET /datafeeds", PermSignedIn, s.feedsPage)
	m.Handle("POST /datafeeds", PermSignedIn, s.feedCreate)
	m.Handle("POST /datafeeds/settings", PermSignedIn, s.feedAccountSettings)
	m.Handle("GET /datafeeds/{id}", PermSignedIn, s.feedPage)
	m.Handle("POST /datafeeds/{id}/settings", PermSignedIn, s.feedSettings)
	m.Handle("POST /datafeeds/{id}/rotate", PermSignedIn, s.feedRotate)
	m.Handle("POST /datafeeds/{id}/disable", PermSignedIn, s.feedDisable)
	m.Handle("POST /datafeeds/{id}/enable", PermSignedIn, s.feedEnable)
	m.Handle("POST /datafeeds/{id}/delete", PermSignedIn, s.feedDelete)
	m.Handle("GET /schedules", PermSignedIn, s.schedulesPage)
	m.Handle("POST /schedules", PermSignedIn, s.scheduleCreate)
	m.Handle("POST /schedules/settings", PermSignedIn, s.scheduleSettings)
	m.Handle("GET /schedules/{id}", PermSignedIn, s.schedulePage)
	m.Handle("POST /schedules/{id}/timing", PermSignedIn, s.scheduleTiming)
	m.Handle("POST /schedules/{id}/recipients", PermSignedIn, s.scheduleAddRecipient)
	m.Handle("POST /schedules/{id}/recipients/{rid}/remove", PermSignedIn, s.scheduleRemoveRecipient)
	m.Handle("POST /schedules/{id}/delete", PermSignedIn, s.scheduleDelete)
	m.Handle("GET /unsubscribe/{token}", PermPage, s.unsubscribeForm)
	m.Handle("POST /unsubscribe/{token}", PermPublic, s.unsubscribe)
	m.Handle("POST /admin/bouncing/mail-again", PermAdmin, s.adminMailAgain)
	m.Handle("GET /keys", PermSignedIn, s.keysPage)
	m.Handle("POST /keys", PermSignedIn, s.keysCreate)
	m.Handle("POST /keys/{id}/revoke", PermSignedIn, s.keysRevoke)
	m.Handle("GET /staff/signin", PermStaffPage, s.staffSigninForm)
	m.Handle("POST /staff/signin", PermStaffPage, s.staffSigninPost)
	m.Handle("GET /staff/setup/{token}", PermStaffPage, s.staffSetupForm)
	m.Handle("POST /staff/setup", PermStaffPage, s.staffSetupPost)
	m.Handle("GET /staff/{$}", PermStaff, s.staffHome)
	m.Handle("POST /staff/signout", PermStaff, s.staffSignout)
	m.Handle("POST /staff/grants", PermStaff, s.staffRequest)
	m.Handle("POST /staff/grants/{id}/approve", PermStaff, s.staffApprove)
	m.Handle("POST /staff/grants/{id}/revoke", PermStaff, s.staffRevoke)
	m.Handle("POST /staff/grants/{id}/act", PermStaff, s.staffAct)
	m.Handle("POST /staff/act/stop", PermStaff, s.staffActStop)
	m.Handle("GET /staff/tooling", PermStaff, s.staffTooling)
	m.Handle("GET /staff/incidents", PermStaff, s.staffIncidents)
	m.Handle("POST /staff/incidents", PermStaff, s.staffOpenIncident)
	m.Handle("POST /staff/incidents/{id}/update", PermStaff, s.staffIncidentUpdate)
	m.Handle("/staff/", PermStaffPage, http.NotFound)
	m.Handle("/staff", PermStaffPage, http.NotFound)
	m.Handle("POST /admin/alerts/{id}/resolve", PermAdmin, s.adminResolveAlert)
	m.Handle("GET /incidents", PermAdmin, s.incidentsPage)
	m.Handle("GET /.well-known/security.txt", PermPublic, s.securityTxt)
	m.Handle("GET /static/{file}", PermPublic, s.static)
	m.Handle("GET /api/openapi.json", PermPublic, s.openapi)
	m.Handle("POST /api/v2/query", PermStatsAPI, s.apiQuery)
	m.Handle("GET /api/v2/reports", PermStatsAPI, s.apiListReports)
	m.Handle("POST /api/v2/reports", PermStatsAPI, s.apiSaveReport)
	m.Handle("DELETE /api/v2/reports/{id}", PermStatsAPI, s.apiDeleteReport)
	m.Handle("GET /api/v1/stats/aggregate", PermStatsAPI, s.v1Aggregate)
	m.Handle("GET /api/v1/stats/timeseries", PermStatsAPI, s.v1Timeseries)
	m.Handle("GET /api/v1/stats/breakdown", PermStatsAPI, s.v1Breakdown)
	m.Handle("GET /api/v1/stats/realtime/visitors", PermStatsAPI, s.v1Realtime)
	return m
}

// ControlHandler serves the control socket for the CLI.
func (s *Server) ControlHandler() *Mux {
	m := newMux(s.guard)
	m.Handle("GET /sites", PermOperator, s.ctlSites)
	m.Handle("POST /sites", PermOperator, s.ctlAddSite)
	m.Handle("GET /stats", PermOperator, s.apiStats)
	m.Handle("GET /audit/verify", PermOperator, s.ctlAuditVerify)
	m.Handle("GET /sites/{domain}/goals", PermOperator, s.ctlGoals)
	m.Handle("POST /sites/{domain}/goals", PermOperator, s.ctlAddGoal)
	m.Handle("DELETE /sites/{domain}/goals/{id}", PermOperator, s.ctlDeleteGoal)
	m.Handle("GET /metrics", PermOperator, s.metrics)
	m.Handle("GET /accounts", PermOperator, s.ctlAccounts)
	m.Handle("POST /accounts", PermOperator, s.ctlCreateAccount)
	m.Handle("GET /users", PermOperator, s.ctlUsers)
	m.Handle("POST /users", PermOperator, s.ctlAddUser)
	m.Handle("POST /grants", PermOperator, s.ctlGrant)
	m.Handle("POST /users/{verb}", PermOperator, s.ctlLeave)
	m.Handle("GET /apikeys", PermOperator, s.ctlAPIKeys)
	m.Handle("POST /apikeys", PermOperator, s.ctlCreateAPIKey)
	m.Handle("POST /apikeys/{id}/revoke", PermOperator, s.ctlRevokeAPIKey)
	m.Handle("GET /staff", PermOperator, s.ctlStaffList)
	m.Handle("POST /staff", PermOperator, s.ctlStaff)
	m.Handle("GET /alerts", PermOperator, s.ctlAlerts)
	m.Handle("POST /backups", PermOperator, s.ctlBackup)
	m.Handle("POST /backups/{id}/verify", PermOperator, s.ctlVerifyBackup)
	m.Handle("POST /alerts/{id}/resolve", PermOperator, s.ctlResolveAlert)
	m.Handle("GET /incidents", PermOperator, s.ctlIncidents)
	m.Handle("POST /incidents", PermOperator, s.ctlOpenIncident)
	m.Handle("POST /incidents/{id}/{verb}", PermOperator, s.ctlIncidentEntry)
	return m
}

func (s *Server) guard(p Permission, h http.Handler) http.Handler {
	switch p {
	case PermPublic, PermOperator:
		return h
	case PermPage:
		return h
	case PermSecondFactor:
		return s.guardPending(h)
	case PermSignedIn:
		return s.guardSignedIn(false, false, h)
	case PermAccount:
		return s.guardSignedIn(false, true, h)
	case PermAdmin:
		return s.guardAdmin(h)
	case PermReadSite:
		return s.guardSignedIn(true, true, h)
	case PermStaffPage:
		return s.guardStaffRange(h)
	case PermStaff:
		return s.guardStaff(h)
	case PermStatsAPI:
		return s.guardAPIKey(h)
	case PermMetrics:
		return s.guardMetrics(h)
	case PermCollector:
		return s.guardCollector(h)
	}
	panic("unknown permission " + string(p))
}

// healthz: the process is alive and has started (what a restart decision
// needs); whether it can serve is /readyz.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ok\n")
}

// ClientIP is the visitor's address: the peer, unless the peer is a
// trusted proxy, in which case the right-most X-Forwarded-For entry that is
// not itself a trusted proxy. Nothing is trusted by default.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	isTrusted := func(a netip.Addr) bool { return inRanges(a, trusted) }
	if !isTrusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr // a garbled header: fall back to the peer
		}
		a = a.Unmap()
		if !isTrusted(a) {
			return a
		}
		addr = a
	}
	return addr
}

// inRanges tells whether a is in one of ranges.
func inRanges(a netip.Addr, ranges []netip.Prefix) bool {
	for _, p := range ranges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) writeError(w http.ResponseWriter, code int, msg string) {
	s.writeJSON(w, code, map[string]string{"error": msg})
}

// ---- control socket and stats

func (s *Server) ctlSites(w http.ResponseWriter, r *http.Request) {
	sites, err := s.Accounts.Sites(r.Context())
	if err != nil {
		s.Log.ErrorContext(r.Context(), "list sites", "err", err)
		s.writeError(w, 500, "listing sites failed")
		return
	}
	s.writeJSON(w, 200, sites)
}

func (s *Server) ctlAddSite(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Domain, TimeZone string
		Account          int64
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil {
		s.writeError(w, 400, "want {\"Domain\":..., \"TimeZone\":..., \"Account\":...}")
		return
	}
	site, err := account.AddSite(r.Context(), s.Accounts, in.Account, in.Domain, in.TimeZone)
	if errors.Is(err, store.ErrExists) {
		s.writeError(w, 409, err.Error())
		return
	}
	if err != nil {
		s.writeError(w, 400, err.Error())
		return
	}
	s.Collector.Sites.Put(site)
	s.writeJSON(w, 201, site)
}

func (s *Server) ctlSite(w http.ResponseWriter, r *http.Request) (store.Site, bool) {
	site, err := s.Accounts.SiteByDomain(r.Context(), r.PathValue("domain"))
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, 404, "no site "+domainQuote(r.PathValue("domain")))
		return site, false
	}
	if err != nil {
		s.writeError(w, 500, err.Error())
		return site, false
	}
	return site, true
}

func (s *Server) ctlGoals(w http.ResponseWriter, r *http.Request) {
	site, ok := s.ctlSite(w, r)
	if !ok {
		return
	}
	goals, err := s.Accounts.Goals(r.Context(), site.ID)
	if err != nil {
		s.writeError(w, 500, err.Error())
		return
	}
	if goals == nil {
		goals = []store.Goal{}
	}
	s.writeJSON(w, 200, goals)
}

func (s *Server) ctlAddGoal(w http.ResponseWriter, r *http.Request) {
	site, ok := s.ctlSite(w, r)
	if !ok {
		return
	}
	var in struct{ Event, Page string }
	if err := json.NewDecoder(io.LimitReader(r.Body, 8192)).Decode(&in); err != nil {
		s.writeError(w, 400, "want {\"Event\":...} or {\"Page\":...}")
		return
	}
	g, err := account.AddGoal(r.Context(), s.Accounts, site.ID, in.Event, in.Page)
	switch {
	case errors.Is(err, store.ErrExists):
		s.writeError(w, 409, err.Error())
	case err != nil:
		s.writeError(w, 400, err.Error())
	default:
		s.writeJSON(w, 201, g)
	}
}

func (s *Server) ctlDeleteGoal(w http.ResponseWriter, r *http.Request) {
	site, ok := s.ctlSite(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, 400, "goal id must be a number")
		return
	}
	if err := s.Accounts.DeleteGoal(r.Context(), site.ID, id); errors.Is(err, store.ErrNotFound) {
		s.writeError(w, 404, err.Error())
		return
	} else if err != nil {
		s.writeError(w, 500, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiStats(w http.ResponseWriter, r *http.Request) {
	domain, period := r.URL.Query().Get("site"), r.URL.Query().Get("period")
	if period == "" {
		period = "30d"
	}
	site, err := s.Accounts.SiteByDomain(r.Context(), domain)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, 404, "no site "+domainQuote(domain))
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "stats: site", "err", err)
		s.writeError(w, 500, "looking up the site failed")
		return
	}
	// Read your writes: every acknowledged event is counted.
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if s.Loader != nil {
		if err := s.Loader.Flush(ctx); err != nil {
			s.writeError(w, 503, err.Error())
			return
		}
	}
	if err := s.FlushCounts(ctx); err != nil {
		s.Log.ErrorContext(r.Context(), "stats: flush counters", "err", err)
	}
	h, err := report.HeadlineOf(ctx, s.Events, site, period, s.Now())
	if err != nil {
		if strings.Contains(err.Error(), "unknown period") {
			s.writeError(w, 400, err.Error())
			return
		}
		s.Log.ErrorContext(r.Context(), "stats", "err", err)
		s.writeError(w, 500, "computing the numbers failed")
		return
	}
	s.writeJSON(w, 200, h)
}

func domainQuote(d string) string {
	if len(d) > 100 {
		d = d[:100]
	}
	b, _ := json.Marshal(d)
	return string(b)
}

var overviewTmpl = template.Must(template.New("o").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fjord</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><div class="wrap"><header class="top"><h1><span class="brand">Fjord</span></h1>
{{if .Acting}}<nav class="account" aria-label="Account"><a href="/admin">Administration</a> <a href="/staff/">Staff console</a></nav>
<form class="signout" method="post" action="/staff/act/stop"><input type="hidden" name="csrf" value="{{.CSRF}}"><span class="who">{{.User}}</span> <button type="submit">Stop acting</button></form></header>
<p class="notice" role="status" id="acting">{{.Acting}}</p>
{{else}}<nav class="account" aria-label="Account"><a href="/keys">API keys</a> <a href="/account/2fa">Security</a>{{if .Admin}} <a href="/admin">Administration</a> <a href="/incidents">Incidents</a>{{end}}</nav>
<form class="signout" method="post" action="/signout"><input type="hidden" name="csrf" value="{{.CSRF}}"><span class="who">{{.User}}</span> <button type="submit">Sign out</button></form></header>{{end}}
{{if .Alerts}}<p class="error" role="alert" id="alert-banner">{{len .Alerts}} open security alert{{if gt (len .Alerts) 1}}s{{end}} in your account ({{range $i, $a := .Alerts}}{{if $i}}, {{end}}{{$a.Name}}{{end}}): see <a href="/admin#alerts">Administration</a>.</p>{{end}}
<p><small>Last 30 days, each site in its own time zone.</small></p>
<table><tr><th>Site</th><th>Visitors</th><th>Visits</th><th>Pageviews</th><th>Bounce rate</th><th>Visit duration</th><th>Bots</th></tr>
{{range .Rows}}<tr><td><a href="/dashboard/{{.Site}}">{{.Site}}</a></td><td>{{.Visitors}}</td><td>{{.Visits}}</td><td>{{.Pageviews}}</td><td>{{.BounceRate}}%</td><td>{{.VisitDuration}} s</td><td>{{.Bots}}</td></tr>
{{else}}<tr><td colspan="7">No sites to show: an Administrator adds sites and grants them.</td></tr>{{end}}
</table>
{{if .Reports}}<h2>Saved reports</h2><ul id="reports">{{range .Reports}}<li><a href="{{.URL}}">{{.Label}}</a></li>{{end}}</ul>{{end}}
</div></body></html>`))

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	sites, err := s.readableSites(r.Context(), v)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "overview", "err", err)
		http.Error(w, "listing sites failed", 500)
		return
	}
	reps, err := s.readableReports(r.Context(), v)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "overview", "err", err)
		http.Error(w, "listing reports failed", 500)
		return
	}
	alerts, err := s.openAlerts(r.Context(), v)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "overview: alerts", "err", err)
		http.Error(w, "listing alerts failed", 500)
		return
	}
	var rows []report.Headline
	for _, site := range sites {
		h, err := report.HeadlineOf(r.Context(), s.Events, site, "30d", s.Now())
		if err != nil {
			s.Log.ErrorContext(r.Context(), "overview", "site", site.Domain, "err", err)
			http.Error(w, "computing the numbers failed", 500)
			return
		}
		rows = append(rows, h)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	overviewTmpl.Execute(w, struct {
		Rows       []report.Headline
		Reports    []link
		User, CSRF string
		Admin      bool
		Alerts     []alertRow
		Acting     string
	}{rows, reps, v.user.Email, v.session.CSRF, v.user.Role == store.RoleAdmin, alerts, actingNotice(v)})
}

// pageCSP allows only this origin's stylesheet and script: no inline code.
const pageCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// dashboardGo is the site picker's target when JavaScript is off.
func (s *Server) dashboardGo(w http.ResponseWriter, r *http.Request) {
	// cleaned first: "/dashboard/../\\evil.example" must not become a
	// redirect off this site
	to := r.URL.Query().Get("to")
	clean := path.Clean("/" + to)
	if localPath(to) != to || !strings.HasPrefix(clean, "/dashboard/") || localPath(clean) != clean {
		http.Error(w, "to: not a dashboard", 400)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	var ctype string
	switch {
	case strings.HasSuffix(name, ".css"):
		ctype = "text/css; charset=utf-8"
	case strings.HasSuffix(name, ".js"):
		ctype = "application/javascript; charset=utf-8"
	default:
		http.NotFound(w, r)
		return
	}
	b, err := staticFiles.ReadFile("static/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(b)
}

// ---- counters

// dayCounts buffers per-site, per-day counters (bots) between flushes to
// the event store.
type dayCounts struct {
	mu sync.Mutex
	m  map[store.Count]int64 // key with N=0
}

func (d *dayCounts) add(site int64, day, name string) {
	d.mu.Lock()
	if d.m == nil {
		d.m = map[store.Count]int64{}
	}
	d.m[store.Count{SiteID: site, Day: day, Name: name}]++
	d.mu.Unlock()
}

// countUse counts n of a kind of use by an account (of a site, or 0).
func (s *Server) countUse(account, site int64, kind string, n int) {
	if s.Usage != nil {
		s.usage.Add(account, site, kind, s.Now(), int64(n))
	}
}

// FlushCounts writes the buffered per-day counters to the event store and
// the usage to the account store.
func (s *Server) FlushCounts(ctx context.Context) error {
	var used error
	if s.Usage != nil {
		used = s.usage.Flush(ctx, s.Usage)
	}
	return errors.Join(used, s.flushDayCounts(ctx))
}

func (s *Server) flushDayCounts(ctx context.Context) error {
	s.perDay.mu.Lock()
	m := s.perDay.m
	s.perDay.m = nil
	s.perDay.mu.Unlock()
	var cs []store.Count
	for k, n := range m {
		k.N = n
		cs = append(cs, k)
	}
	if err := s.Events.AddCounts(ctx, cs); err != nil {
		// keep them for the next flush
		s.perDay.mu.Lock()
		if s.perDay.m == nil {
			s.perDay.m = map[store.Count]int64{}
		}
		for k, n := range m {
			s.perDay.m[k] += n
		}
		s.perDay.mu.Unlock()
		return err
	}
	return nil
}
