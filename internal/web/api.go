package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fjord/internal/auth"
	"fjord/internal/authz"
	"fjord/internal/report"
	"fjord/internal/store"
)

// apiQuery is POST /api/v2/query: Plausible's Stats API v2.
func (s *Server) apiQuery(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		s.writeError(w, http.StatusRequestEntityTooLarge, "body: larger than 64 KiB")
		return
	}
	req, err := report.DecodeAPIRequest(body)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var ok bool
	var site store.Site
	if req.SavedReport == nil {
		if site, ok = s.apiSite(w, r, req.SiteID); !ok {
			return
		}
	} else {
		// a saved report: the site read whole, or the report granted
		// alone (see auth's package comment)
		var whole bool
		if site, whole, ok = s.apiVisible(w, r, req.SiteID); !ok {
			return
		}
		sr, err := s.Accounts.SavedReport(r.Context(), site.ID, *req.SavedReport)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.Log.ErrorContext(r.Context(), "query: saved report", "err", err)
			s.writeError(w, 500, "looking up the saved report failed")
			return
		}
		if err != nil || s.may(r, authz.ReadReport, auth.ReportResource(site, sr)) != authz.Allow {
			if !whole {
				s.noSite(w, req.SiteID)
				return
			}
			s.writeError(w, http.StatusNotFound, "saved_report: no saved report "+strconv.FormatInt(*req.SavedReport, 10)+" on this site")
			return
		}
		def, err := report.DecodeDefinition([]byte(sr.Definition))
		if err != nil {
			s.Log.ErrorContext(r.Context(), "saved report definition", "id", sr.ID, "err", err)
			s.writeError(w, 500, "the saved report's definition is damaged")
			return
		}
		merged := req.Merge(def)
		merged.SavedReport = req.SavedReport
		req = merged
	}
	goals, err := s.Accounts.Goals(r.Context(), site.ID)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "query: goals", "err", err)
		s.writeError(w, 500, "looking up the goals failed")
		return
	}
	q, err := req.Build(site, goals, s.Now())
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Funnel) > 0 {
		steps, err := q.FunnelSteps(req.Funnel)
		if err != nil {
			s.writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
		defer cancel()
		if s.Loader != nil {
			if err := s.Loader.Flush(ctx); err != nil {
				s.writeError(w, http.StatusServiceUnavailable, err.Error())
				return
			}
		}
		counts, err := s.Reports.Funnel(ctx, q, steps)
		if err != nil {
			s.Log.ErrorContext(r.Context(), "funnel", "site", site.Domain, "err", err)
			s.writeError(w, 500, "the query failed")
			return
		}
		s.apiExport(w, r, q, "v2 funnel "+strings.Join(req.Funnel, " > "), savedID(req), len(steps),
			report.Response(q, req, &report.Result{Rows: report.FunnelRows(steps, counts)}))
		return
	}
	res, ok := s.run(w, r, q)
	if !ok {
		return
	}
	if req.Include.Comparisons != nil {
		pq := *q
		pq.Range = q.Range.Previous()
		pq.Limit, pq.Offset = 10000, 0
		prev, ok := s.run(w, r, &pq)
		if !ok {
			return
		}
		report.Compare(q, res, prev)
	}
	s.apiExport(w, r, q, "v2 query "+strings.Join(report.DimNames(q.Dimensions), " "), savedID(req), len(res.Rows), report.Response(q, req, res))
}

// savedID is the saved report a v2 request runs, 0 for none.
func savedID(req *report.APIRequest) int64 {
	if req.SavedReport == nil {
		return 0
	}
	return *req.SavedReport
}

// ---- access: what the request's API key may read (authz over the key's
// principal, see guardAPIKey and auth's package comment). A site that
// does not exist and one the key may not read get the same 404.

// apiCaller is the API key of a Stats API request, its user, and the
// key's principal.
type apiCaller struct {
	key  store.APIKey
	user store.User
	p    authz.Principal
}

type apiCallerKey struct{}

func callerOf(r *http.Request) *apiCaller {
	c, _ := r.Context().Value(apiCallerKey{}).(*apiCaller)
	return c
}

// may is authz's decision for the request's key; no key may nothing.
func (s *Server) may(r *http.Request, a authz.Action, res authz.Resource) authz.Decision {
	c := callerOf(r)
	if c == nil {
		return authz.NotFound
	}
	return authz.Decide(c.p, a, res)
}

func siteResource(st store.Site) authz.Resource {
	return authz.Resource{Kind: authz.Site, Account: st.AccountID, Site: st.ID}
}

// noSite is the answer for a site that does not exist or that the key may
// not read: the same, so that existence does not leak.
func (s *Server) noSite(w http.ResponseWriter, id string) {
	s.writeError(w, http.StatusNotFound, "site_id: no site "+domainQuote(id)+" that this key may read")
}

// readOnly answers a write asked with an API key.
func (s *Server) readOnly(w http.ResponseWriter) {
	s.writeError(w, http.StatusForbidden, "API keys are read-only: save and delete saved reports in the dashboard")
}

// apiSite finds the site a Stats API request names, if the key may read
// it whole; else it answers 404 (or 500, logged) and returns false.
func (s *Server) apiSite(w http.ResponseWriter, r *http.Request, id string) (store.Site, bool) {
	site, whole, ok := s.apiVisible(w, r, id)
	if ok && !whole {
		s.noSite(w, id)
		return site, false
	}
	return site, ok
}

// apiVisible finds the site a Stats API request names, if the key may
// read it whole (whole) or at least one saved report of it; else it
// answers 404 (or 500, logged) and returns false. Only after it may the
// answers about a site differ.
func (s *Server) apiVisible(w http.ResponseWriter, r *http.Request, id string) (site store.Site, whole, ok bool) {
	site, err := s.siteByAPIID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.noSite(w, id)
		return site, false, false
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "api: site", "err", err)
		s.writeError(w, 500, "looking up the site failed")
		return site, false, false
	}
	if s.may(r, authz.ReadSite, siteResource(site)) == authz.Allow {
		return site, true, true
	}
	c := callerOf(r)
	if c == nil {
		s.noSite(w, id)
		return site, false, false
	}
	some, err := auth.MayScope(r.Context(), s.Accounts, c.p, site)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "api: site's reports", "err", err)
		s.writeError(w, 500, "looking up the site failed")
		return site, false, false
	}
	if !some {
		s.noSite(w, id)
		return site, false, false
	}
	return site, false, true
}

// siteByAPIID accepts the site's domain (Plausible's site_id) or its
// numeric id.
func (s *Server) siteByAPIID(ctx context.Context, id string) (store.Site, error) {
	site, err := s.Accounts.SiteByDomain(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		if n, perr := strconv.ParseInt(id, 10, 64); perr == nil {
			return s.Accounts.SiteByID(ctx, n)
		}
	}
	return site, err
}

// v1 runs a legacy v1 request: site_id and the shared parsing.
func (s *Server) v1(w http.ResponseWriter, r *http.Request, dimension, defMetrics string) (*report.Query, *report.Result, bool) {
	p := r.URL.Query()
	site, ok := s.apiSite(w, r, p.Get("site_id"))
	if !ok {
		return nil, nil, false
	}
	goals, err := s.Accounts.Goals(r.Context(), site.ID)
	if err != nil {
		s.writeError(w, 500, "looking up the goals failed")
		return nil, nil, false
	}
	q, err := report.V1Query(site, goals, p, dimension, defMetrics, s.Now())
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return nil, nil, false
	}
	res, ok := s.run(w, r, q)
	return q, res, ok
}

func (s *Server) run(w http.ResponseWriter, r *http.Request, q *report.Query) (*report.Result, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	if s.Loader != nil {
		if err := s.Loader.Flush(ctx); err != nil {
			s.writeError(w, http.StatusServiceUnavailable, err.Error())
			return nil, false
		}
	}
	res, err := s.Reports.Run(ctx, q)
	if err != nil {
		s.Log.ErrorContext(r.Context(), "query", "site", q.Site.Domain, "err", err)
		s.writeError(w, 500, "the query failed")
		return nil, false
	}
	return res, true
}

func (s *Server) v1Aggregate(w http.ResponseWriter, r *http.Request) {
	q, res, ok := s.v1(w, r, "", "visitors")
	if !ok {
		return
	}
	var prev *report.Result
	if c := r.URL.Query().Get("compare"); c != "" {
		if c != "previous_period" {
			s.writeError(w, 400, "compare: only previous_period is supported")
			return
		}
		pq := *q
		pq.Range = q.Range.Previous()
		if prev, ok = s.run(w, r, &pq); !ok {
			return
		}
	}
	if len(res.Rows) == 0 || (prev != nil && len(prev.Rows) == 0) {
		s.writeError(w, 400, "page: an aggregate has one page")
		return
	}
	out := map[string]any{}
	for i, m := range q.Metrics {
		v := map[string]any{"value": res.Rows[0].Metrics[i]}
		if prev != nil {
			v["change"] = report.Change(m, res.Rows[0].Metrics[i], prev.Rows[0].Metrics[i])
		}
		out[m] = v
	}
	s.apiExport(w, r, q, "v1 aggregate", 0, 1, map[string]any{"results": out})
}

func (s *Server) v1Timeseries(w http.ResponseWriter, r *http.Request) {
	interval := r.URL.Query().Get("interval")
	switch interval {
	case "", "date", "day":
		interval = "time:day"
	case "month", "week", "hour":
		interval = "time:" + interval
	default:
		s.writeError(w, 400, "interval: want date, hour, week or month")
		return
	}
	q, res, ok := s.v1(w, r, interval, "visitors")
	if !ok {
		return
	}
	s.apiExport(w, r, q, "v1 timeseries "+interval, 0, len(res.Rows), map[string]any{"results": v1Rows(q, res)})
}

func (s *Server) v1Breakdown(w http.ResponseWriter, r *http.Request) {
	prop := r.URL.Query().Get("property")
	if prop == "" {
		s.writeError(w, 400, "property: required, e.g. visit:source")
		return
	}
	if d, ok := report.LookupDim(prop); ok && d.Time != "" {
		s.writeError(w, 400, "property: use the timeseries endpoint for time")
		return
	}
	q, res, ok := s.v1(w, r, prop, "visitors")
	if !ok {
		return
	}
	s.apiExport(w, r, q, "v1 breakdown "+prop, 0, len(res.Rows), map[string]any{"results": v1Rows(q, res)})
}

func v1Rows(q *report.Query, res *report.Result) []map[string]any {
	out := []map[string]any{}
	for _, row := range res.Rows {
		m := map[string]any{report.V1Key(q.Dimensions[0]): row.Dimensions[0]}
		for i, name := range q.Metrics {
			m[name] = row.Metrics[i]
		}
		out = append(out, m)
	}
	return out
}

// v1Realtime answers the number of visitors in the last five minutes.
// It is no export: one number of the moment, which live widgets poll
// every few seconds (counting it would make each of them look like a
// copy of the account's data).
func (s *Server) v1Realtime(w http.ResponseWriter, r *http.Request) {
	site, ok := s.apiSite(w, r, r.URL.Query().Get("site_id"))
	if !ok {
		return
	}
	q := report.Realtime(site, s.Now())
	res, ok := s.run(w, r, q)
	if !ok || len(res.Rows) == 0 {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "%d\n", int64(res.Rows[0].Metrics[0]))
}

// ---- saved reports

func (s *Server) apiListReports(w http.ResponseWriter, r *http.Request) {
	site, _, ok := s.apiVisible(w, r, r.URL.Query().Get("site_id"))
	if !ok {
		return
	}
	all, err := s.Accounts.SavedReports(r.Context(), site.ID)
	if err != nil {
		s.writeError(w, 500, "listing saved reports failed")
		return
	}
	// only what the key may read: on a site not granted whole, the
	// reports granted alone
	list := []store.SavedReport{}
	for _, sr := range all {
		if s.may(r, authz.ReadReport, auth.ReportResource(site, sr)) == authz.Allow {
			list = append(list, sr)
		}
	}
	s.writeJSON(w, 200, map[string]any{"reports": list})
}

func (s *Server) apiSaveReport(w http.ResponseWriter, r *http.Request) {
	var in struct {
		SiteID string          `json:"site_id"`
		Name   string          `json:"name"`
		Query  json.RawMessage `json:"query"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		s.writeError(w, 400, "body: "+err.Error())
		return
	}
	site, _, ok := s.apiVisible(w, r, in.SiteID)
	if !ok {
		return
	}
	// authz's answer: an API key reads only
	switch s.may(r, authz.SaveReport, siteResource(site)) {
	case authz.Forbidden:
		s.readOnly(w)
		return
	case authz.NotFound:
		s.noSite(w, in.SiteID)
		return
	}
	if in.Name == "" || len(in.Name) > 200 {
		s.writeError(w, 400, "name: required, at most 200 bytes")
		return
	}
	def, err := report.DecodeDefinition(in.Query)
	if err != nil {
		s.writeError(w, 400, err.Error())
		return
	}
	goals, err := s.Accounts.Goals(r.Context(), site.ID)
	if err != nil {
		s.writeError(w, 500, "looking up the goals failed")
		return
	}
	def.SiteID = in.SiteID
	if _, err := def.Build(site, goals, s.Now()); err != nil {
		s.writeError(w, 400, "query."+err.Error())
		return
	}
	def.SiteID = ""
	canon, _ := json.Marshal(def)
	owner := callerOf(r).user.ID
	sr, err := s.Accounts.SaveReport(r.Context(), store.SavedReport{SiteID: site.ID, OwnerID: &owner, Name: in.Name, Definition: string(canon)})
	if errors.Is(err, store.ErrExists) {
		s.writeError(w, 409, "name: a saved report of this name exists on this site")
		return
	}
	if err != nil {
		s.writeError(w, 500, "saving the report failed")
		return
	}
	s.writeJSON(w, 201, sr)
}

func (s *Server) apiDeleteReport(w http.ResponseWriter, r *http.Request) {
	siteID := r.URL.Query().Get("site_id")
	site, whole, ok := s.apiVisible(w, r, siteID)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, 400, "id: must be a number")
		return
	}
	sr, err := s.Accounts.SavedReport(r.Context(), site.ID, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeError(w, 500, "looking up the saved report failed")
		return
	}
	d := authz.NotFound
	if err == nil {
		d = s.may(r, authz.EditReport, auth.ReportResource(site, sr))
	}
	switch {
	case d == authz.Forbidden:
		s.readOnly(w)
		return
	case d == authz.NotFound && !whole:
		s.noSite(w, siteID)
		return
	case d == authz.NotFound:
		s.writeError(w, 404, "id: no saved report "+r.PathValue("id")+" on this site")
		return
	}
	if err := s.Accounts.DeleteSavedReport(r.Context(), site.ID, id); errors.Is(err, store.ErrNotFound) {
		s.writeError(w, 404, "id: no saved report "+r.PathValue("id")+" on this site")
		return
	} else if err != nil {
		s.writeError(w, 500, "deleting failed")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
