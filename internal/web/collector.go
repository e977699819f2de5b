package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"fjord/internal/collect/tracker"
	"fjord/internal/ingest"
	"fjord/internal/ingest/forward"
	"fjord/internal/ingest/journal"
	"fjord/internal/store"
	"fjord/internal/usage"
)

// The main service's side of the edge collectors (PRODUCT §9.5): an edge
// fetches the sites and salts (GET /api/collector/snapshot) and forwards
// its spool in batches (POST /api/collector/events), with its token from
// the collectors file.

// collectorName is the context key of the collector a request came from.
type collectorKey struct{}

func (s *Server) guardCollector(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if s.Collectors == nil {
			http.NotFound(w, r)
			return
		}
		tok, _, ok := bearerToken(r.Header)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fjord-collector"`)
			s.writeError(w, http.StatusUnauthorized, "a collector's token is needed, sent as \"Authorization: Bearer TOKEN\" (fjord collector add makes one)")
			return
		}
		name, err := s.Collectors.Check(tok)
		if err != nil && !errors.Is(err, forward.ErrBadToken) {
			// The collectors file is unreadable: the operator must know
			// (once a minute: anyone may send a token), and the edge must
			// not be told its token is wrong.
			if s.collectorsLog.due(time.Minute) {
				s.Log.Error("collectors file unreadable: edge collectors are refused", "err", err)
			}
			w.Header().Set("Retry-After", "30")
			s.writeError(w, http.StatusServiceUnavailable, "the list of collectors cannot be read on the main service; retry later")
			return
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fjord-collector", error="invalid_token"`)
			s.writeError(w, http.StatusUnauthorized, forward.ErrBadToken.Error())
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), collectorKey{}, name)))
	})
}

// logGate lets a log line through at most once per interval.
type logGate struct {
	mu   sync.Mutex
	last time.Time
}

func (g *logGate) due(every time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := time.Now(); now.Sub(g.last) >= every {
		g.last = now
		return true
	}
	return false
}

// SaltsAhead is how long before a site's midnight the snapshot carries the
// next day's salt too.
const SaltsAhead = 6 * time.Hour

func (s *Server) collectorSnapshot(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sites, err := s.Accounts.Sites(ctx)
	if err != nil {
		s.Log.ErrorContext(ctx, "collector snapshot: sites", "err", err)
		s.writeError(w, http.StatusServiceUnavailable, "the sites could not be read; retry later")
		return
	}
	now := s.Now()
	snap := forward.Snapshot{Sites: sites, AllowedRegions: s.Residency.Allowed, Time: now}
	for _, site := range sites {
		for _, at := range []time.Time{now, now.Add(SaltsAhead)} {
			day, err := s.Salts.Day(site, at)
			if err != nil {
				continue // a zone this machine does not know; the edge makes its own salt
			}
			if len(snap.Salts) > 0 && snap.Salts[len(snap.Salts)-1].Site == site.ID && snap.Salts[len(snap.Salts)-1].Day == day {
				continue
			}
			salt, err := s.Salts.Salt(ctx, site, at)
			if err != nil {
				s.Log.ErrorContext(ctx, "collector snapshot: salt", "site", site.ID, "err", err)
				s.writeError(w, http.StatusServiceUnavailable, "the salts could not be read; retry later")
				return
			}
			snap.Salts = append(snap.Salts, forward.Salt{Site: site.ID, Day: day, Salt: salt})
		}
	}
	s.writeJSON(w, http.StatusOK, snap)
}

// collectorEvents takes a batch of an edge's spool into the journal and
// answers 200 only when all of it is durable. The events were enriched and
// hashed by the edge; the sites' limits were applied there too, and a
// backlog coming back after an outage must not be refused for its rate.
func (s *Server) collectorEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, forward.MaxBatchBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a batch may hold %d bytes", forward.MaxBatchBytes))
			return
		}
		s.writeError(w, http.StatusBadRequest, "could not read the body")
		return
	}
	recs, err := forward.DecodeBatch(body)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, "batch: "+err.Error())
		return
	}
	accepted, unknown, err := s.takeRecords(ctx, recs, ctx.Value(collectorKey{}).(string), false)
	var bad *badRecord
	switch {
	case errors.As(err, &bad) && errors.Is(bad.err, ingest.ErrUnknownVersion):
		// a newer edge: it keeps the batch and retries until this
		// service is upgraded
		s.writeError(w, http.StatusBadRequest, err.Error()+" (written by a newer Fjord: upgrade the main service)")
	case errors.As(err, &bad):
		// 422, not 400: the batch was read, one record can never be;
		// the edge sets that record aside and sends the rest (a 400 it
		// retries).
		s.writeError(w, http.StatusUnprocessableEntity, err.Error())
		return
	case err != nil:
		w.Header().Set("Retry-After", "5")
		s.writeError(w, http.StatusServiceUnavailable, "the batch could not be stored; retry later")
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]int{"accepted": accepted, "unknown_site": unknown})
}

// badRecord is a record that is not an event record.
type badRecord struct {
	i   int
	err error
}

func (e *badRecord) Error() string { return fmt.Sprintf("record %d: %v", e.i, e.err) }

// TakeStream is the sink of the NATS JetStream consumer: the records the
// edge collectors published, made durable in the journal before the
// consumer acknowledges them. A record that is not an event is logged and
// left out: refusing the batch would have it delivered again for ever.
func (s *Server) TakeStream(ctx context.Context, recs [][]byte) error {
	_, _, err := s.takeRecords(ctx, recs, "jetstream", true)
	return err
}

// takeRecords appends the event records of a collector (a batch of an
// edge's spool, or messages of the stream) to the journal and returns once
// they are durable. The events were enriched and hashed by the edge; the
// sites' limits were applied there too, and a backlog coming back after
// an outage must not be refused for its rate. Events of a site that no
// longer exists are left out (unknown): refusing them would stall the
// edge for good.
func (s *Server) takeRecords(ctx context.Context, recs [][]byte, from string, dropBad bool) (accepted, unknown int, err error) {
	sites, err := s.Accounts.Sites(ctx)
	if err != nil {
		s.Log.ErrorContext(ctx, "collector events: sites", "err", err)
		return 0, 0, err
	}
	byID := make(map[int64]store.Site, len(sites))
	for _, site := range sites {
		byID[site.ID] = site
	}
	perSite := map[int64]int{}
	kept := make([][]byte, 0, len(recs))
	for i, rec := range recs {
		e, err := ingest.DecodeEvent(rec)
		if err != nil {
			if !dropBad {
				return 0, 0, &badRecord{i, err}
			}
			s.Log.ErrorContext(ctx, "collector events: not an event record, left out", "from", from, "err", err)
			continue
		}
		if _, ok := byID[e.SiteID]; !ok {
			unknown++
			continue
		}
		perSite[e.SiteID]++
		kept = append(kept, rec)
	}
	if len(kept) > 0 {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err = s.Journal.AppendBatch(actx, kept)
		cancel()
		if err != nil {
			if !errors.Is(err, journal.ErrFull) && !errors.Is(err, journal.ErrNoSpace) {
				s.Log.ErrorContext(ctx, "collector events: journal", "err", err)
			}
			return 0, 0, err
		}
	}
	for id, n := range perSite {
		site := byID[id]
		s.Metrics.EventsAccepted(site.AccountID, site.Domain, n)
		s.countUse(site.AccountID, site.ID, usage.Events, n)
	}
	s.Metrics.CollectorBatch(from, len(kept))
	return len(kept), unknown, nil
}

// EdgeHandler is the public port of an edge collector (fjord collect):
// the tracker, the collection endpoint, health and metrics; nothing that
// needs the stores.
func (s *Server) EdgeHandler() *Mux { return s.collectionMux() }

// collectionMux is what the main service's public port and an edge
// collector's have in common.
func (s *Server) collectionMux() *Mux {
	m := newMux(s.guard)
	m.edge = s.serveEdge
	m.Handle("GET /healthz", PermPublic, s.healthz)
	m.Handle("GET /readyz", PermPublic, s.readyz)
	m.Handle("GET /metrics", PermMetrics, s.metrics)
	// other methods: 404 as for a path that does not exist (a 405 would
	// tell that /metrics is there)
	m.Handle("/metrics", PermPublic, http.NotFound)
	m.Handle("GET /js/fjord.js", PermPublic, tracker.Handler().ServeHTTP)
	m.Handle("POST /api/event", PermPublic, s.collectPost)
	m.Handle("OPTIONS /api/event", PermPublic, s.collectPreflight)
	m.Handle("GET /api/event", PermPublic, s.collectPixel)
	return m
}
