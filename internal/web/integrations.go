package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"fjord/internal/authz"
	"fjord/internal/report"
	"fjord/internal/store"
)

// Outbound integrations (PRODUCT §3.6). An Administrator sets up a
// webhook that receives a site's numbers of each day; it sends nothing
// until the account's main contact approves it, and stops at once when
// they withdraw the approval. Who approved what, and when, is recorded
// and shown.

var integrationsTmpl = pageTemplate(`{{with .Data}}
<section class="card"><h2>Outbound integrations</h2>
<p>An integration sends data out of Fjord, to a third party. It sends nothing until the account's main contact{{if .MainContact}} (you){{end}} approves it.</p>
<table class="admin"><thead><tr><th scope="col">Site</th><th scope="col">Sends to</th><th scope="col">Approval</th><th scope="col">Last sent</th><th scope="col"></th></tr></thead><tbody>
{{range .List}}<tr id="integration-{{.ID}}"><td>{{.Site}}</td><td><code>{{.URL}}</code></td>
<td class="approval">{{if .Approved}}approved by {{.ApprovedBy}} at {{.Approved}}{{else}}awaiting the main contact's approval{{end}}</td>
<td>{{if .LastSent}}{{.LastSent}} ({{.LastStatus}}){{else}}never{{end}}</td>
<td>{{if $.Data.MainContact}}<form class="inline" method="post" action="/admin/integrations/{{.ID}}/{{if .Approved}}withdraw{{else}}approve{{end}}"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">{{if .Approved}}withdraw approval{{else}}approve{{end}}</button></form>{{end}}
<form class="inline" method="post" action="/admin/integrations/{{.ID}}/delete"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit">delete</button></form>
{{if .History}}<ul class="history">{{range .History}}<li>{{.}}</li>{{end}}</ul>{{end}}</td></tr>
{{else}}<tr><td colspan="5">None.</td></tr>{{end}}</tbody></table>
<h3>Add a webhook</h3>
<p>Each day after midnight (in the site's time zone) Fjord POSTs the day's numbers as JSON to the address.</p>
<form class="stack" method="post" action="/admin/integrations"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<label for="int-site">Site</label><select id="int-site" name="site">{{range .Sites}}<option value="{{.ID}}">{{.Domain}}</option>{{end}}</select>
<label for="int-url">HTTPS address</label><input id="int-url" name="url" type="url" required placeholder="https://hooks.example.com/fjord">
<button type="submit">Add</button></form></section>{{end}}`)

type integrationRow struct {
	ID                                        int64
	Site, URL, ApprovedBy, Approved, LastSent string
	LastStatus                                string
	History                                   []string
}

type integrationsData struct {
	List        []integrationRow
	Sites       []store.Site
	MainContact bool
}

func (s *Server) integrationsPage(w http.ResponseWriter, r *http.Request) {
	s.renderIntegrations(w, r, 200, "", "")
}

func (s *Server) renderIntegrations(w http.ResponseWriter, r *http.Request, code int, msg, notice string) {
	v := viewerOf(r)
	d, err := s.integrationsData(r.Context(), v)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "integrations", "err", err)
		http.Error(w, "reading the integrations failed", 500)
		return
	}
	s.renderPage(w, r, code, integrationsTmpl, pageData{Title: "Integrations", Error: msg, Notice: notice, Data: d})
}

func (s *Server) integrationsData(ctx context.Context, v *viewer) (integrationsData, error) {
	d := integrationsData{MainContact: v.p.MainContact}
	var err error
	if d.Sites, err = s.Accounts.AccountSites(ctx, v.user.AccountID); err != nil {
		return d, err
	}
	list, err := s.Accounts.Integrations(ctx, v.user.AccountID)
	if err != nil {
		return d, err
	}
	who := func(id int64) string {
		if u, err := s.Accounts.UserByID(ctx, id); err == nil {
			return u.Email
		}
		return fmt.Sprintf("user %d (no longer here)", id)
	}
	for _, i := range list {
		row := integrationRow{ID: i.ID, URL: i.URL, LastSent: i.LastSentDay, LastStatus: i.LastStatus}
		if st, err := s.Accounts.SiteByID(ctx, i.SiteID); err == nil {
			row.Site = st.Domain
		}
		if i.ApprovedBy != 0 {
			row.ApprovedBy, row.Approved = who(i.ApprovedBy), i.Approved.Format("2006-01-02 15:04 UTC")
		}
		aps, err := s.Accounts.Approvals(ctx, i.ID)
		if err != nil {
			return d, err
		}
		for _, ap := range aps {
			row.History = append(row.History, fmt.Sprintf("%s by %s at %s: %s", ap.Action, who(ap.UserID), ap.At.Format("2006-01-02 15:04 UTC"), ap.What))
		}
		d.List = append(d.List, row)
	}
	return d, nil
}

// checkWebhookURL: an absolute https URL without credentials in it.
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(raw) > 2000 {
		return errors.New("the address must be an https:// URL (at most 2,000 characters, no user name or password in it)")
	}
	return nil
}

func (s *Server) addIntegration(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	site, err := strconv.ParseInt(formValue(r, "site"), 10, 64)
	if err != nil {
		s.renderIntegrations(w, r, http.StatusBadRequest, "Choose a site.", "")
		return
	}
	st, err := s.Accounts.SiteByID(r.Context(), site)
	if err != nil || authz.Decide(v.p, authz.ConfigureIntegration, authz.Resource{Kind: authz.Integration, Account: st.AccountID, Site: st.ID}) != authz.Allow {
		s.renderIntegrations(w, r, http.StatusNotFound, "No such site in this account.", "")
		return
	}
	addr := formValue(r, "url")
	if err := checkWebhookURL(addr); err != nil {
		s.renderIntegrations(w, r, http.StatusBadRequest, err.Error()+".", "")
		return
	}
	in, err := s.Accounts.AddIntegration(r.Context(), store.Integration{AccountID: v.user.AccountID, SiteID: st.ID, Kind: "webhook", URL: addr, CreatedBy: v.user.ID, Created: s.Now()})
	if err != nil {
		s.Log.ErrorContext(r.Context(), "add integration", "err", err)
		http.Error(w, "adding the integration failed", 500)
		return
	}
	s.record(r, v.user.AccountID, "integration.add", fmt.Sprintf("integration:%d", in.ID), in.What())
	s.renderIntegrations(w, r, 200, "", "Added. It sends nothing until the main contact approves it.")
}

// integrationAt is the integration of the path's {id} if authz allows the
// action on it; otherwise it has answered (404, or 403 for an
// Administrator who is not the main contact asking to approve).
func (s *Server) integrationAt(w http.ResponseWriter, r *http.Request, a authz.Action) (store.Integration, bool) {
	v := viewerOf(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var i store.Integration
	if err == nil {
		i, err = s.Accounts.Integration(r.Context(), id)
	}
	d := authz.NotFound
	if err == nil {
		d = authz.Decide(v.p, a, authz.Resource{Kind: authz.Integration, Account: i.AccountID, Site: i.SiteID})
	}
	switch d {
	case authz.Allow:
		return i, true
	case authz.Forbidden:
		s.renderIntegrations(w, r, http.StatusForbidden, "Only the account's main contact can approve an integration or withdraw the approval.", "")
	default:
		s.renderIntegrations(w, r, http.StatusNotFound, "No such integration in this account.", "")
	}
	return i, false
}

func (s *Server) approveIntegration(w http.ResponseWriter, r *http.Request) {
	s.changeApproval(w, r, true)
}

func (s *Server) withdrawIntegration(w http.ResponseWriter, r *http.Request) {
	s.changeApproval(w, r, false)
}

func (s *Server) changeApproval(w http.ResponseWriter, r *http.Request, approve bool) {
	i, ok := s.integrationAt(w, r, authz.ApproveIntegration)
	if !ok {
		return
	}
	v := viewerOf(r)
	var err error
	notice := "Approved: it sends from the next day on."
	if approve {
		err = s.Accounts.ApproveIntegration(r.Context(), i.ID, v.user.ID, s.Now())
	} else {
		err = s.Accounts.WithdrawIntegration(r.Context(), i.ID, v.user.ID, s.Now())
		notice = "Approval withdrawn: it sends nothing more."
	}
	if errors.Is(err, store.ErrConflict) {
		s.renderIntegrations(w, r, http.StatusConflict, err.Error()+".", "")
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "integration approval", "err", err)
		http.Error(w, "changing the approval failed", 500)
		return
	}
	action := "integration.approve"
	if !approve {
		action = "integration.withdraw"
	}
	s.record(r, i.AccountID, action, fmt.Sprintf("integration:%d", i.ID), i.What())
	s.renderIntegrations(w, r, 200, "", notice)
}

func (s *Server) deleteIntegration(w http.ResponseWriter, r *http.Request) {
	i, ok := s.integrationAt(w, r, authz.ConfigureIntegration)
	if !ok {
		return
	}
	if err := s.Accounts.DeleteIntegration(r.Context(), i.ID, viewerOf(r).user.ID, s.Now()); err != nil {
		s.Log.ErrorContext(r.Context(), "delete integration", "err", err)
		http.Error(w, "deleting the integration failed", 500)
		return
	}
	s.record(r, i.AccountID, "integration.delete", fmt.Sprintf("integration:%d", i.ID), i.What())
	s.renderIntegrations(w, r, 200, "", "Deleted.")
}

// webhookPayload is what a webhook receives for one day of a site.
type webhookPayload struct {
	Site          string  `json:"site"`
	Date          string  `json:"date"`
	Visitors      float64 `json:"visitors"`
	Visits        float64 `json:"visits"`
	Pageviews     float64 `json:"pageviews"`
	BounceRate    float64 `json:"bounce_rate"`
	VisitDuration float64 `json:"visit_duration"`
}

// SendWebhooks is the integrations' part of the hourly job: each approved
// webhook gets each finished day it has not had yet (only the last one
// after a pause: a day not sent while unapproved is not sent later). A
// failing integration does not hold up the others.
func (s *Server) SendWebhooks(ctx context.Context) error {
	list, err := s.Accounts.ApprovedIntegrations(ctx)
	if err != nil {
		return err
	}
	var firstErr error
	for _, i := range list {
		site, err := s.Accounts.SiteByID(ctx, i.SiteID)
		if err != nil {
			continue // the site went
		}
		loc, err := time.LoadLocation(site.TimeZone)
		if err != nil {
			continue
		}
		day := s.Now().In(loc).AddDate(0, 0, -1).Format(time.DateOnly)
		if i.LastSentDay >= day {
			continue
		}
		// the list may be minutes old by now (each send may wait): a
		// withdrawal or deletion since then is honoured
		if cur, err := s.Accounts.Integration(ctx, i.ID); err != nil || cur.ApprovedBy == 0 || cur.URL != i.URL {
			continue
		}
		status := s.sendWebhook(ctx, i, site, day)
		if err := s.Accounts.IntegrationSent(ctx, i.ID, day, status); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// webhookClient sends to public addresses only (never to this host, the
// private network or link-local metadata services, whatever the name
// resolves to when dialled) and follows no redirect.
func webhookClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		if !publicAddr(ap.Addr()) {
			return errors.New("webhook: the address is not a public one")
		}
		return nil
	}}
	return &http.Client{
		Timeout:       15 * time.Second,
		Transport:     &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 10 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// cgnat is the shared address space of carriers (RFC 6598), not public.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() && !cgnat.Contains(a)
}

// sendWebhook posts one day and returns how it went, for the page (never
// the URL, which may hold the receiver's secret).
func (s *Server) sendWebhook(ctx context.Context, i store.Integration, site store.Site, day string) string {
	req := &report.APIRequest{SiteID: site.Domain, Metrics: []string{report.MVisitors, report.MVisits, report.MPageviews, report.MBounceRate, report.MVisitDuration}}
	req.DateRange, _ = json.Marshal([]string{day, day})
	q, err := req.Build(site, nil, s.Now())
	if err != nil {
		return "not sent: " + err.Error()
	}
	res, err := s.Reports.Run(ctx, q)
	if err != nil || len(res.Rows) == 0 {
		s.Log.Error("webhook numbers", "integration", i.ID, "err", err)
		return "not sent: the numbers could not be computed"
	}
	m := res.Rows[0].Metrics
	body, _ := json.Marshal(webhookPayload{site.Domain, day, m[0], m[1], m[2], m[3], m[4]})
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, "POST", i.URL, bytes.NewReader(body))
	if err != nil {
		return "not sent: bad address"
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("User-Agent", "Fjord webhook")
	client := s.WebhookClient
	if client == nil {
		client = webhookClient()
	}
	resp, err := client.Do(hreq)
	if err != nil {
		s.Log.Warn("webhook", "integration", i.ID, "err", "request failed")
		return "failed: no answer"
	}
	resp.Body.Close()
	return resp.Status
}
