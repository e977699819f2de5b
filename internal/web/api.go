package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

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
	site, err := s.siteByAPIID(r.Context(), req.SiteID)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, http.StatusNotFound, "site_id: no site "+domainQuote(req.SiteID))
		return
	}
	if err != nil {
		s.Log.Error("query: site", "err", err)
		s.writeError(w, 500, "looking up the site failed")
		return
	}
	q, err := req.Build(site, s.Now())
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
	res, err := s.Reports.Run(ctx, q)
	if err != nil {
		s.Log.Error("query", "site", site.Domain, "err", err)
		s.writeError(w, 500, "the query failed")
		return
	}
	s.writeJSON(w, 200, report.Response(q, req, res))
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
