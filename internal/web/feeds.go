package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"fjord/internal/audit"
	"fjord/internal/auth"
	"fjord/internal/authz"
	"fjord/internal/feed"
	"fjord/internal/mail"
	"fjord/internal/report"
	"fjord/internal/secmon"
	"fjord/internal/store"
)

// Datafeeds (PRODUCT §4): GET /feeds/<token>.csv|.json answers a saved
// report to whoever holds the token, from the feed's address ranges and
// within its limits; /datafeeds is where they are published and managed.
// Every request of a feed is recorded in its use (time, address, status,
// rows, bytes); each answered one is also an audit entry.

// feedGone is the 410 text: it says why and who can undo it.
func feedGone(w http.ResponseWriter, why string) {
	http.Error(w, "This datafeed is disabled ("+why+"). An Administrator of the account can enable it again on its page in the dashboard.", http.StatusGone)
}

// maxFeedStreams is how many answers of one feed may be under way at
// once: a spreadsheet asks once, and each answer holds a database
// connection while it streams.
const maxFeedStreams = 2

// feedGate serialises the judging of feed requests, so that requests
// arriving together are counted one after the other (each one's use is
// recorded before the next is judged), and counts the answers under way
// per feed.
type feedGate struct {
	mu      sync.Mutex
	streams map[int64]int
}

// feedAnswer is GET /feeds/{file}.
func (s *Server) feedAnswer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Robots-Tag", "noindex")
	// the answer holds text visitors sent (page paths, campaigns): never
	// let a browser run it (nosniff comes with every answer)
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'")
	ctx := r.Context()
	token, format, err := feed.ParseFile(r.PathValue("file"))
	if err != nil || s.Feeds == nil {
		http.NotFound(w, r)
		return
	}
	// a wrong token and a rotated one take this same path: one lookup of
	// the hash, then the same 404 (see feed.HashToken)
	f, err := s.Feeds.FeedByHash(ctx, feed.HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "datafeed lookup", "err", err)
		http.Error(w, "looking up the datafeed failed", 500)
		return
	}
	now := s.now()
	client := ClientIP(r, s.TrustedProxies)
	use := feed.Use{FeedID: f.ID, Time: now, Client: client.String()}
	// a refusal before the limits are judged is recorded (and an address
	// refusal is a security event) at most once a minute per feed and
	// client network, so that whoever holds the token cannot make us
	// write a row per request
	refused := func(code int) bool {
		use.Status = code
		if !s.addrEvents.allow(fmt.Sprintf("feed:%d:%s", f.ID, s.network(r)), 1, time.Minute, now) {
			return false
		}
		if _, err := s.Feeds.StartFeedUse(context.WithoutCancel(ctx), use); err != nil {
			s.Log.ErrorContext(r.Context(), "datafeed use", "feed", f.ID, "err", err)
		}
		return true
	}
	if f.Disabled.IsZero() && f.Idle(now) {
		// the hourly job disables idle feeds; one asked for before it ran
		// is just as dead
		s.disableFeed(r, f, feed.WhyIdle)
		f.Disabled, f.DisabledWhy = now, feed.WhyIdle
	}
	if !f.Disabled.IsZero() {
		refused(http.StatusGone)
		feedGone(w, f.DisabledWhy)
		return
	}
	if !feed.Allowed(f.Ranges, client) {
		if refused(http.StatusForbidden) {
			s.feedEvent(r, secmon.IPRefused, f, "asked for from outside its address ranges")
		}
		http.Error(w, "This datafeed answers only requests from its address ranges.", http.StatusForbidden)
		return
	}
	v, err := s.judgeFeed(r, f, &use)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "datafeed limits", "feed", f.ID, "err", err)
		http.Error(w, "checking the datafeed's limits failed", 500)
		return
	}
	defer func() {
		if use.Status == 0 {
			use.Status = 500 // ended without an answer (a panic)
		}
		if err := s.Feeds.FinishFeedUse(context.WithoutCancel(ctx), use); err != nil {
			s.Log.ErrorContext(r.Context(), "datafeed use", "feed", f.ID, "err", err)
		}
	}()
	if v.Throttle {
		if v.Disable != "" {
			use.Status = http.StatusGone
			feedGone(w, v.Disable)
			return
		}
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "This datafeed is over its limits (requests an hour, addresses a day, or answers at once); ask again later.", http.StatusTooManyRequests)
		return
	}
	defer s.feedGate.done(f.ID)
	refuse := func(code int, msg string) {
		use.Status = code
		http.Error(w, msg, code)
	}
	period, err := feed.ParseQuery(r.URL.Query())
	if err != nil {
		refuse(http.StatusBadRequest, err.Error())
		return
	}
	rep, site, err := s.reportByID(ctx, f.ReportID)
	if err == nil {
		var may bool
		if may, err = s.ownerReads(ctx, f, site, rep); err == nil && !may {
			s.disableFeed(r, f, feed.WhyOwner)
			use.Status = http.StatusGone
			feedGone(w, feed.WhyOwner)
			return
		}
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "datafeed report", "feed", f.ID, "err", err)
		refuse(500, "looking up the datafeed's report failed")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	a, err := s.reportSource(ctx, rep, site, period.DateRange())
	var qe *report.QueryError
	switch {
	case errors.As(err, &qe):
		refuse(http.StatusBadRequest, err.Error())
		return
	case err != nil:
		s.Log.ErrorContext(r.Context(), "datafeed", "feed", f.ID, "err", err)
		refuse(500, "the datafeed's report could not be answered")
		return
	case feed.Days(a.q.Range) > f.Limits.MaxDays:
		refuse(http.StatusBadRequest, fmt.Sprintf("period: longer than this datafeed's limit of %d days", f.Limits.MaxDays))
		return
	}
	a = a.whole()
	s.flushBriefly(ctx)
	s.sendRows(ctx, w, r, fmt.Sprintf("feed:%d", f.ID), format, fmt.Sprintf(`inline; filename="%s-feed-%d.%s"`, site.Domain, f.ID, format), a.dims, a.metrics, a.rows,
		func(rows, bytes int64, err error) {
			use.Status, use.Rows, use.Bytes = 200, rows, bytes
			if err != nil {
				use.Status = 500 // cut short (the status line went out as 200, or not at all)
			}
			s.recordAs(r, fmt.Sprintf("feed:%d", f.ID), f.AccountID, "feed.read", fmt.Sprintf("report:%d", rep.ID),
				fmt.Sprintf("%s, %s to %s, %d rows, %d bytes", format, a.q.Range.FromDay, a.q.Range.ToDay, rows, bytes))
		})
}

// judgeFeed applies the feed's limits to a request and records it (as
// throttled, or as under way), one request at a time, so that requests
// arriving together cannot all pass; an answer under way must be ended
// with feedGate.done. The first refusal of an hour and the disabling are
// security events.
func (s *Server) judgeFeed(r *http.Request, f feed.Feed, use *feed.Use) (feed.Verdict, error) {
	ctx := r.Context()
	g := &s.feedGate
	g.mu.Lock()
	defer g.mu.Unlock()
	hourAgo, dayAgo := use.Time.Add(-time.Hour), use.Time.Add(-24*time.Hour)
	// an Administrator who enables a feed again starts it afresh
	hourAgo, dayAgo = latest(hourAgo, f.Since), latest(dayAgo, f.Since)
	t, err := s.Feeds.FeedTraffic(ctx, f.ID, use.Client, hourAgo, dayAgo)
	if err != nil {
		return feed.Verdict{}, err
	}
	v := f.Limits.Judge(t)
	busy := !v.Throttle && g.streams[f.ID] >= maxFeedStreams
	if v.Throttle || busy {
		use.Status = http.StatusTooManyRequests
	}
	if use.ID, err = s.Feeds.StartFeedUse(context.WithoutCancel(ctx), *use); err != nil {
		return feed.Verdict{}, err
	}
	if busy {
		return feed.Verdict{Throttle: true}, nil
	}
	if !v.Throttle {
		if g.streams == nil {
			g.streams = map[int64]int{}
		}
		g.streams[f.ID]++
		return v, nil
	}
	if v.Disable != "" && !s.disableFeed(r, f, v.Disable) {
		// disabled already, by a request judged just before with the
		// feed it had read (its event is raised)
		return v, nil
	}
	if v.Alert {
		what := fmt.Sprintf("over its limit of %d requests an hour", f.Limits.PerHour)
		if v.Disable == feed.WhyAddresses || (v.Disable == "" && t.Hour < f.Limits.PerHour) {
			what = fmt.Sprintf("asked for from more than its limit of %d addresses a day", f.Limits.Addresses)
		}
		if v.Disable != "" {
			what += ", so it is disabled"
		}
		s.feedEvent(r, secmon.FeedAbuse, f, what)
	}
	return v, nil
}

// done ends an answer of feed id under way.
func (g *feedGate) done(id int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.streams[id]--; g.streams[id] <= 0 {
		delete(g.streams, id)
	}
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// feedEvent is a security event about a feed, its actor the client's
// network.
func (s *Server) feedEvent(r *http.Request, kind string, f feed.Feed, what string) {
	if s.Security == nil {
		return
	}
	s.securityEvent(r, secmon.Event{Kind: kind, Account: f.AccountID, Actor: s.network(r), Detail: fmt.Sprintf("datafeed %d %s", f.ID, what)})
}

// ownerReads tells whether a feed's owner may still publish its report:
// a feed never gives more than its owner may read.
func (s *Server) ownerReads(ctx context.Context, f feed.Feed, site store.Site, rep store.SavedReport) (bool, error) {
	u, err := s.Accounts.UserByID(ctx, f.OwnerID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil || !u.Removed.IsZero() {
		return false, err
	}
	p, err := auth.PrincipalOf(ctx, s.Accounts, u)
	if err != nil {
		return false, err
	}
	if p.UsersPublishFeeds, err = s.Feeds.UsersPublishFeeds(ctx, f.AccountID); err != nil {
		return false, err
	}
	return authz.Decide(p, authz.PublishFeed, auth.ReportResource(site, rep)) == authz.Allow, nil
}

// disableFeed disables a feed that answers: an audit entry by the
// system, and a notice to its owner and the account's Administrators.
// False: it was disabled already (by a request or job at the same time).
func (s *Server) disableFeed(r *http.Request, f feed.Feed, why string) bool {
	ok, err := s.Feeds.DisableFeed(context.WithoutCancel(r.Context()), f.ID, why, s.now())
	if err != nil {
		s.Log.ErrorContext(r.Context(), "disable datafeed", "feed", f.ID, "err", err)
		return false
	}
	if ok {
		s.recordAs(r, "system", f.AccountID, "feed.disable", fmt.Sprintf("feed:%d", f.ID), why)
		s.feedNotice(context.WithoutCancel(r.Context()), f, why)
	}
	return ok
}

// feedNotice tells the feed's owner and the account's Administrators that
// it was disabled.
func (s *Server) feedNotice(ctx context.Context, f feed.Feed, why string) {
	if s.Mail == nil {
		return
	}
	users, err := s.Accounts.Users(ctx, f.AccountID)
	if err != nil {
		s.Log.Error("datafeed notice", "feed", f.ID, "err", err)
		return
	}
	for _, u := range users {
		if u.Email == "" || !u.Removed.IsZero() || (u.Role != store.RoleAdmin && u.ID != f.OwnerID) {
			continue
		}
		m := mail.Message{To: u.Email, Subject: fmt.Sprintf("Fjord: datafeed “%s” is disabled", f.Name), Text: fmt.Sprintf(`Hello,

The datafeed “%s” of your account is disabled: %s. Its URL now answers 410 Gone.

An Administrator of the account can enable it again, or delete it, on its page:
%s/datafeeds/%d

Fjord
`, f.Name, why, s.PublicURL, f.ID)}
		id := f.ID
		s.Mail.Go("datafeed notice", func(ctx context.Context, snd *mail.Sender) error {
			if err := snd.Send(ctx, m); err != nil {
				return fmt.Errorf("feed %d: %w", id, err)
			}
			return nil
		})
	}
}

// FeedJobs is the datafeeds' part of the hourly job: feeds unused for 30
// days are disabled, and requests older than 90 days forgotten.
func (s *Server) FeedJobs(ctx context.Context) error {
	if s.Feeds == nil {
		return nil
	}
	now := s.now()
	idle, err := s.Feeds.IdleFeeds(ctx, now.Add(-feed.IdleAfter))
	if err != nil {
		return err
	}
	for _, f := range idle {
		ok, err := s.Feeds.DisableFeed(ctx, f.ID, feed.WhyIdle, now)
		if err != nil {
			return err
		}
		if ok {
			s.writeEntryCtx(ctx, audit.Entry{Actor: "system", Account: f.AccountID, Action: "feed.disable", Target: fmt.Sprintf("feed:%d", f.ID), Detail: feed.WhyIdle})
			s.feedNotice(ctx, f, feed.WhyIdle)
		}
	}
	if _, err := s.Feeds.PurgeFeedUses(ctx, now.Add(-feed.UseRetention)); err != nil {
		return err
	}
	return nil
}

// ---- publishing and managing feeds (/datafeeds)

var feedsTmpl = withFeedFields(`{{with .Data}}
{{if .URL}}<section class="card newkey" aria-labelledby="url-h"><h2 id="url-h">The address of “{{.URLName}}”</h2>
<p>Copy it now: it is shown only this once, and Fjord keeps only a hash of it. Anyone who has it can read the report{{if .Ranged}} from the feed's address ranges{{end}}.</p>
<p><label for="feed-csv">CSV</label><br><input id="feed-csv" class="token" readonly value="{{.URL}}.csv" size="80" spellcheck="false" autocomplete="off"></p>
<p><label for="feed-json">JSON</label><br><input id="feed-json" class="token" readonly value="{{.URL}}.json" size="80" spellcheck="false" autocomplete="off"></p>
<p><small>Add <code>?period=30d</code> (or 7d, month, 12mo, …) or <code>?from=2026-01-01&amp;to=2026-01-31</code> for another period than the report's own.</small></p></section>{{end}}
<section class="card" aria-labelledby="list-h"><h2 id="list-h">Datafeeds</h2>
<p><small>A datafeed publishes a saved report at a secret address for spreadsheets and scripts. A feed unused for 30 days is disabled; only an Administrator can enable it again.</small></p>
<table><thead><tr><th scope="col">Name</th><th scope="col">Report</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Last used</th></tr></thead><tbody>
{{range .Feeds}}<tr><td><a href="/datafeeds/{{.ID}}">{{.Name}}</a></td><td>{{.Report}}</td><td>{{.State}}</td><td>{{.Created}}</td><td>{{.LastUsed}}</td></tr>
{{else}}<tr><td colspan="5">No datafeeds.</td></tr>{{end}}
</tbody></table></section>
<section class="card" aria-labelledby="new-h"><h2 id="new-h">New datafeed</h2>
{{if .Reports}}<form method="post" action="/datafeeds">
<input type="hidden" name="csrf" value="{{$.CSRF}}">
<p><label for="report">Saved report</label><br><select id="report" name="report">{{range .Reports}}<option value="{{.ID}}">{{.Label}}</option>{{end}}</select></p>
{{template "feedfields" .Form}}
<button type="submit">Publish</button></form>
{{else}}<p>{{if .Admin}}No saved report yet: save one from a dashboard first.{{else}}You may publish no report as a datafeed: an Administrator can let Users publish the reports they read.{{end}}</p>{{end}}
</section>
{{if .Admin}}<section class="card" aria-labelledby="set-h"><h2 id="set-h">Who may publish</h2>
<form method="post" action="/datafeeds/settings"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<p><label><input type="checkbox" name="users_publish" value="1"{{if .UsersPublish}} checked{{end}}> Users may publish datafeeds of the reports they may read (Administrators always may)</label></p>
<button type="submit">Save</button></form></section>{{end}}
{{end}}
`)

var feedTmpl = withFeedFields(`{{with .Data}}
<p><a href="/datafeeds">Datafeeds</a> · {{.Report}}</p>
{{if .URL}}<section class="card newkey" aria-labelledby="url-h"><h2 id="url-h">The new address</h2>
<p>Copy it now: it is shown only this once. The old address stopped working.</p>
<p><label for="feed-csv">CSV</label><br><input id="feed-csv" class="token" readonly value="{{.URL}}.csv" size="80" spellcheck="false" autocomplete="off"></p>
<p><label for="feed-json">JSON</label><br><input id="feed-json" class="token" readonly value="{{.URL}}.json" size="80" spellcheck="false" autocomplete="off"></p></section>{{end}}
<section class="card" aria-labelledby="state-h"><h2 id="state-h">{{.Name}}</h2>
<p>State: <strong>{{.State}}</strong>. Created {{.Created}}, last used {{.LastUsed}}.</p>
<div class="actions">{{if .Disabled}}{{if .Admin}}<form method="post" action="/datafeeds/{{.ID}}/enable"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">Enable again (you become its owner)</button></form>{{else}}<p>Only an Administrator can enable it again.</p>{{end}}
{{else}}<form method="post" action="/datafeeds/{{.ID}}/disable"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">Disable</button></form>{{end}}
<form method="post" action="/datafeeds/{{.ID}}/rotate"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">New address (the old one stops working)</button></form>
<form method="post" action="/datafeeds/{{.ID}}/delete"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">Delete</button></form></div></section>
<section class="card" aria-labelledby="set-h"><h2 id="set-h">Settings</h2>
<form method="post" action="/datafeeds/{{.ID}}/settings"><input type="hidden" name="csrf" value="{{$.CSRF}}">
{{template "feedfields" .Form}}<button type="submit">Save</button></form></section>
<section class="card" aria-labelledby="use-h"><h2 id="use-h">Use</h2>
<p><small>The newest {{len .Uses}} requests (kept 90 days).</small></p>
<table id="feed-uses"><thead><tr><th scope="col">Time</th><th scope="col">Address</th><th scope="col">Answer</th><th scope="col">Rows</th><th scope="col">Bytes</th></tr></thead><tbody>
{{range .Uses}}<tr><td>{{.Time}}</td><td>{{.Client}}</td><td>{{.Status}}</td><td>{{.Rows}}</td><td>{{.Bytes}}</td></tr>
{{else}}<tr><td colspan="5">Not used yet.</td></tr>{{end}}
</tbody></table></section>
{{end}}
`)

// withFeedFields is a page with the feed settings' fields (template
// "feedfields"), which the new-feed form and a feed's page share.
func withFeedFields(content string) *template.Template {
	return template.Must(pageTemplate(content).Parse(`{{define "feedfields"}}<p><label for="name">Name <small>(1 to 100 characters)</small></label><br><input id="name" name="name" required maxlength="100" value="{{.Name}}"></p>
<p><label for="ranges">Address ranges <small>(optional: CIDR ranges or addresses, IPv4 or IPv6; empty: any address)</small></label><br><textarea id="ranges" name="ranges" rows="2" cols="50">{{.Ranges}}</textarea></p>
<p><label for="max_days">Longest period, days</label> <input id="max_days" name="max_days" type="number" min="1" max="1098" value="{{.MaxDays}}">
<label for="per_hour">Requests an hour</label> <input id="per_hour" name="per_hour" type="number" min="1" max="3600" value="{{.PerHour}}">
<label for="addresses">Addresses a day</label> <input id="addresses" name="addresses" type="number" min="1" max="100" value="{{.Addresses}}"></p>
<p><small>Over a limit a request is refused (429); at twice the limit the feed is disabled. Either way the Administrators get a security alert.</small></p>{{end}}`))
}

// feedForm is the fields of a feed's settings, as the form shows them.
type feedForm struct {
	Name, Ranges                string
	MaxDays, PerHour, Addresses int
}

func formOf(f feed.Feed) feedForm {
	return feedForm{Name: f.Name, Ranges: store.FormatRanges(f.Ranges), MaxDays: f.Limits.MaxDays, PerHour: f.Limits.PerHour, Addresses: f.Limits.Addresses}
}

// decodeFeedForm reads a feed's settings from a form; the error names the
// field.
func decodeFeedForm(r *http.Request) (feedForm, []netip.Prefix, error) {
	ff := feedForm{Name: strings.TrimSpace(formValue(r, "name")), Ranges: formValue(r, "ranges")}
	for _, x := range []struct {
		field, label string
		to           *int
	}{{"max_days", "longest period", &ff.MaxDays}, {"per_hour", "requests per hour", &ff.PerHour}, {"addresses", "addresses per day", &ff.Addresses}} {
		n, err := strconv.Atoi(strings.TrimSpace(formValue(r, x.field)))
		if err != nil {
			return ff, nil, &feed.SettingsError{Msg: x.label + ": want a whole number"}
		}
		*x.to = n
	}
	ranges, err := store.ParseRanges(ff.Ranges)
	if err != nil {
		return ff, nil, &feed.SettingsError{Msg: "address ranges: " + err.Error()}
	}
	return ff, ranges, feed.Check(ff.Name, feed.Limits{MaxDays: ff.MaxDays, PerHour: ff.PerHour, Addresses: ff.Addresses})
}

type feedRow struct {
	ID                                     int64
	Name, Report, State, Created, LastUsed string
}

type feedsData struct {
	URL, URLName string
	Ranged       bool
	Feeds        []feedRow
	Reports      []link
	Form         feedForm
	Admin        bool
	UsersPublish bool
}

// feedState is a feed's state in words.
func feedState(f feed.Feed) string {
	if f.Disabled.IsZero() {
		return "answering"
	}
	return "disabled since " + fmtTime(f.Disabled) + ": " + f.DisabledWhy
}

// feedViewer is the viewer with what authz needs to know of the
// account's feed rule.
func (s *Server) feedViewer(ctx context.Context, r *http.Request) (*viewer, authz.Principal, error) {
	v := viewerOf(r)
	p := v.p
	var err error
	p.UsersPublishFeeds, err = s.Feeds.UsersPublishFeeds(ctx, v.user.AccountID)
	return v, p, err
}

// managedFeed is the feed of the path's {id} if the viewer may manage it:
// an Administrator of its account, or its owner while they may still
// publish its report; anyone else gets 404.
func (s *Server) managedFeed(w http.ResponseWriter, r *http.Request) (feed.Feed, store.SavedReport, store.Site, bool) {
	ctx := r.Context()
	v, p, err := s.feedViewer(ctx, r)
	id, perr := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var f feed.Feed
	if err == nil && perr == nil {
		f, err = s.Feeds.Feed(ctx, id)
	}
	var rep store.SavedReport
	var site store.Site
	if err == nil && perr == nil {
		rep, site, err = s.reportByID(ctx, f.ReportID)
	}
	switch {
	case perr != nil, errors.Is(err, store.ErrNotFound):
		http.NotFound(w, r)
		return f, rep, site, false
	case err != nil:
		s.Log.ErrorContext(r.Context(), "datafeed", "err", err)
		http.Error(w, "looking up the datafeed failed", 500)
		return f, rep, site, false
	}
	mine := v.user.Role == store.RoleAdmin || f.OwnerID == v.user.ID
	if f.AccountID != v.user.AccountID || !mine || authz.Decide(p, authz.PublishFeed, auth.ReportResource(site, rep)) != authz.Allow {
		http.NotFound(w, r)
		return f, rep, site, false
	}
	return f, rep, site, true
}

// renderFeeds answers /datafeeds: the viewer's feeds (an Administrator's:
// the account's), the form to publish one, and for Administrators the
// account's rule.
func (s *Server) renderFeeds(w http.ResponseWriter, r *http.Request, code int, msg string, d feedsData) {
	ctx := r.Context()
	v, p, err := s.feedViewer(ctx, r)
	var feeds []feed.Feed
	var sites []store.Site
	if err == nil {
		feeds, err = s.Feeds.Feeds(ctx, v.user.AccountID)
	}
	if err == nil {
		sites, err = s.Accounts.AccountSites(ctx, v.user.AccountID)
	}
	names := map[int64]string{}
	for _, site := range sites {
		if err != nil {
			break
		}
		var reps []store.SavedReport
		if reps, err = s.Accounts.SavedReports(ctx, site.ID); err != nil {
			break
		}
		for _, rep := range reps {
			names[rep.ID] = site.Domain + ": " + rep.Name
			if authz.Decide(p, authz.PublishFeed, auth.ReportResource(site, rep)) == authz.Allow {
				d.Reports = append(d.Reports, link{Label: names[rep.ID], URL: strconv.FormatInt(rep.ID, 10)})
			}
		}
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "datafeeds page", "err", err)
		http.Error(w, "listing the datafeeds failed", 500)
		return
	}
	d.Admin, d.UsersPublish = v.user.Role == store.RoleAdmin, p.UsersPublishFeeds
	for _, f := range feeds {
		if d.Admin || f.OwnerID == v.user.ID {
			d.Feeds = append(d.Feeds, feedRow{ID: f.ID, Name: f.Name, Report: names[f.ReportID], State: feedState(f), Created: fmtTime(f.Created), LastUsed: fmtTime(f.LastUsed)})
		}
	}
	if d.Form == (feedForm{}) {
		d.Form = formOf(feed.Feed{Limits: feed.DefaultLimits})
	}
	s.renderPage(w, r, code, feedsTmpl, pageData{Title: "Datafeeds", Error: msg, Data: d})
}

func (s *Server) feedsPage(w http.ResponseWriter, r *http.Request) {
	s.renderFeeds(w, r, 200, "", feedsData{})
}

// feedCreate is POST /datafeeds: a new feed, its address shown once.
func (s *Server) feedCreate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v, p, err := s.feedViewer(ctx, r)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "datafeed", "err", err)
		http.Error(w, "publishing failed", 500)
		return
	}
	ff, ranges, ferr := decodeFeedForm(r)
	if ferr != nil {
		s.renderFeeds(w, r, http.StatusBadRequest, "The datafeed was not made: "+ferr.Error()+".", feedsData{Form: ff})
		return
	}
	id, perr := strconv.ParseInt(formValue(r, "report"), 10, 64)
	rep, site, err := s.reportByID(ctx, id)
	if perr != nil || errors.Is(err, store.ErrNotFound) || (err == nil && authz.Decide(p, authz.PublishFeed, auth.ReportResource(site, rep)) != authz.Allow) {
		s.renderFeeds(w, r, http.StatusBadRequest, "The datafeed was not made: report: not one you may publish.", feedsData{Form: ff})
		return
	}
	token, hash := feed.NewToken()
	var f feed.Feed
	if err == nil {
		f, err = s.Feeds.CreateFeed(ctx, feed.Feed{AccountID: v.user.AccountID, ReportID: rep.ID, OwnerID: v.user.ID, Name: ff.Name, TokenHash: hash,
			Ranges: ranges, Limits: feed.Limits{MaxDays: ff.MaxDays, PerHour: ff.PerHour, Addresses: ff.Addresses}, Created: s.now()})
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "datafeed", "err", err)
		http.Error(w, "publishing failed", 500)
		return
	}
	s.record(r, v.user.AccountID, "feed.create", fmt.Sprintf("feed:%d", f.ID), fmt.Sprintf("report:%d, %s", rep.ID, feedLimits(f)))
	s.renderFeeds(w, r, http.StatusCreated, "", feedsData{URL: s.PublicURL + "/feeds/" + token, URLName: f.Name, Ranged: len(ranges) > 0})
}

// feedLimits is a feed's settings for the audit log.
func feedLimits(f feed.Feed) string {
	ranges := "any address"
	if len(f.Ranges) > 0 {
		ranges = store.FormatRanges(f.Ranges)
	}
	return fmt.Sprintf("ranges %s, at most %d days, %d requests an hour, %d addresses a day", ranges, f.Limits.MaxDays, f.Limits.PerHour, f.Limits.Addresses)
}

type feedData struct {
	ID                                          int64
	Name, Report, State, Created, LastUsed, URL string
	Disabled, Admin                             bool
	Form                                        feedForm
	Uses                                        []useRow
}

type useRow struct {
	Time, Client string
	Status       int
	Rows, Bytes  int64
}

func (s *Server) renderFeed(w http.ResponseWriter, r *http.Request, code int, msg, notice string, d feedData) {
	f, rep, site, ok := s.managedFeed(w, r)
	if !ok {
		return
	}
	if f2, err := s.Feeds.Feed(r.Context(), f.ID); err == nil {
		f = f2 // as changed by the action that renders the page
	}
	uses, err := s.Feeds.FeedUses(r.Context(), f.ID, 200)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "datafeed page", "err", err)
		http.Error(w, "reading the datafeed's use failed", 500)
		return
	}
	d.ID, d.Name, d.Report, d.State = f.ID, f.Name, site.Domain+": "+rep.Name, feedState(f)
	d.Created, d.LastUsed, d.Disabled = fmtTime(f.Created), fmtTime(f.LastUsed), !f.Disabled.IsZero()
	d.Admin = viewerOf(r).user.Role == store.RoleAdmin
	if d.Form == (feedForm{}) {
		d.Form = formOf(f)
	}
	for _, u := range uses {
		d.Uses = append(d.Uses, useRow{Time: fmtTime(u.Time), Client: u.Client, Status: u.Status, Rows: u.Rows, Bytes: u.Bytes})
	}
	s.renderPage(w, r, code, feedTmpl, pageData{Title: "Datafeed " + f.Name, Error: msg, Notice: notice, Data: d})
}

func (s *Server) feedPage(w http.ResponseWriter, r *http.Request) {
	s.renderFeed(w, r, 200, "", "", feedData{})
}

// feedAction runs one change of a managed feed and shows its page.
func (s *Server) feedAction(w http.ResponseWriter, r *http.Request, do func(f feed.Feed) (notice string, d feedData, err error)) {
	f, _, _, ok := s.managedFeed(w, r)
	if !ok {
		return
	}
	notice, d, err := do(f)
	var bad *feed.SettingsError
	switch {
	case errors.As(err, &bad):
		s.renderFeed(w, r, http.StatusBadRequest, "Not saved: "+bad.Msg+".", "", d)
	case errors.Is(err, errOnlyAdmins):
		s.renderFeed(w, r, http.StatusForbidden, err.Error(), "", d)
	case err != nil:
		s.Log.ErrorContext(r.Context(), "datafeed", "feed", f.ID, "err", err)
		http.Error(w, "the change failed", 500)
	default:
		s.renderFeed(w, r, 200, "", notice, d)
	}
}

var errOnlyAdmins = errors.New("Only an Administrator can enable a disabled datafeed.")

func (s *Server) feedSettings(w http.ResponseWriter, r *http.Request) {
	s.feedAction(w, r, func(f feed.Feed) (string, feedData, error) {
		ff, ranges, err := decodeFeedForm(r)
		if err != nil {
			return "", feedData{Form: ff}, err
		}
		f.Name, f.Ranges, f.Limits = ff.Name, ranges, feed.Limits{MaxDays: ff.MaxDays, PerHour: ff.PerHour, Addresses: ff.Addresses}
		if err := s.Feeds.SetFeedSettings(r.Context(), f.ID, f.Name, f.Ranges, f.Limits); err != nil {
			return "", feedData{}, err
		}
		s.record(r, f.AccountID, "feed.settings", fmt.Sprintf("feed:%d", f.ID), feedLimits(f))
		return "Settings saved.", feedData{}, nil
	})
}

func (s *Server) feedRotate(w http.ResponseWriter, r *http.Request) {
	s.feedAction(w, r, func(f feed.Feed) (string, feedData, error) {
		token, hash := feed.NewToken()
		if err := s.Feeds.SetFeedToken(r.Context(), f.ID, hash); err != nil {
			return "", feedData{}, err
		}
		s.record(r, f.AccountID, "feed.rotate", fmt.Sprintf("feed:%d", f.ID), "a new token; the old one is dead")
		return "", feedData{URL: s.PublicURL + "/feeds/" + token}, nil
	})
}

func (s *Server) feedDisable(w http.ResponseWriter, r *http.Request) {
	s.feedAction(w, r, func(f feed.Feed) (string, feedData, error) {
		ok, err := s.Feeds.DisableFeed(r.Context(), f.ID, feed.WhyManual, s.now())
		if err == nil && ok {
			s.record(r, f.AccountID, "feed.disable", fmt.Sprintf("feed:%d", f.ID), feed.WhyManual)
		}
		return "Disabled.", feedData{}, err
	})
}

// feedEnable: only an Administrator, who becomes the feed's owner (the
// feed then answers within their rights).
func (s *Server) feedEnable(w http.ResponseWriter, r *http.Request) {
	s.feedAction(w, r, func(f feed.Feed) (string, feedData, error) {
		v := viewerOf(r)
		if v.user.Role != store.RoleAdmin {
			return "", feedData{}, errOnlyAdmins
		}
		if f.Disabled.IsZero() {
			return "It answers already.", feedData{}, nil
		}
		if err := s.Feeds.EnableFeed(r.Context(), f.ID, v.user.ID, s.now()); err != nil {
			return "", feedData{}, err
		}
		s.record(r, f.AccountID, "feed.enable", fmt.Sprintf("feed:%d", f.ID), fmt.Sprintf("was disabled: %s; owner now user:%d", f.DisabledWhy, v.user.ID))
		return "Enabled: it answers again.", feedData{}, nil
	})
}

func (s *Server) feedDelete(w http.ResponseWriter, r *http.Request) {
	f, _, _, ok := s.managedFeed(w, r)
	if !ok {
		return
	}
	if err := s.Feeds.DeleteFeed(r.Context(), f.ID); err != nil {
		s.Log.ErrorContext(r.Context(), "datafeed", "feed", f.ID, "err", err)
		http.Error(w, "deleting the datafeed failed", 500)
		return
	}
	s.record(r, f.AccountID, "feed.delete", fmt.Sprintf("feed:%d", f.ID), f.Name)
	http.Redirect(w, r, "/datafeeds", http.StatusSeeOther)
}

// feedAccountSettings is POST /datafeeds/settings: whether Users may
// publish (Administrators only).
func (s *Server) feedAccountSettings(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if v.user.Role != store.RoleAdmin || authz.Decide(v.p, authz.ManageAccount, authz.Resource{Kind: authz.Account, Account: v.user.AccountID}) != authz.Allow {
		http.NotFound(w, r)
		return
	}
	allow := formValue(r, "users_publish") == "1"
	if err := s.Feeds.SetUsersPublishFeeds(r.Context(), v.user.AccountID, allow); err != nil {
		s.Log.ErrorContext(r.Context(), "datafeed settings", "err", err)
		http.Error(w, "the change failed", 500)
		return
	}
	s.record(r, v.user.AccountID, "feed.account_settings", fmt.Sprintf("account:%d", v.user.AccountID), fmt.Sprintf("users may publish datafeeds: %v", allow))
	http.Redirect(w, r, "/datafeeds", http.StatusSeeOther)
}
