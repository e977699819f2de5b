package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"fjord/internal/collect"
	"fjord/internal/ingest"
	"fjord/internal/ingest/journal"
	"fjord/internal/store"
	"fjord/internal/usage"
)

// The 1x1 transparent GIF of the pixel endpoint.
var pixelGIF = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

func cors(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "X-Plausible-Dropped")
}

func (s *Server) collectPreflight(w http.ResponseWriter, r *http.Request) {
	cors(w)
	w.Header().Set("Access-Control-Allow-Methods", "POST, GET")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
	w.Header().Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) collectPost(w http.ResponseWriter, r *http.Request) {
	cors(w)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, collect.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.refuse(w, http.StatusRequestEntityTooLarge, collect.ReasonTooLarge, "body is larger than 8192 bytes")
			return
		}
		s.refuse(w, http.StatusBadRequest, "bad_body", "could not read the body")
		return
	}
	// a slot only once the body is in: slow senders must not hold them
	leave, ok := s.shed(w)
	if !ok {
		return
	}
	defer leave()
	now := s.Now()
	hit, err := collect.DecodeJSON(body, now)
	s.collect(w, r, hit, err, now, false)
}

func (s *Server) collectPixel(w http.ResponseWriter, r *http.Request) {
	cors(w)
	leave, ok := s.shed(w)
	if !ok {
		return
	}
	defer leave()
	now := s.Now()
	hit, err := collect.DecodeQuery(r.URL.Query(), now)
	s.collect(w, r, hit, err, now, true)
}

// shed answers 503 when the collection requests served at once are at
// their bound: under overload the server refuses early instead of
// holding more bodies in memory.
func (s *Server) shed(w http.ResponseWriter) (leave func(), ok bool) {
	leave, ok = s.enterCollect()
	if !ok {
		w.Header().Set("Retry-After", "1")
		s.refuse(w, http.StatusServiceUnavailable, collect.ReasonQueueFull, "overloaded; retry later")
	}
	return leave, ok
}

func (s *Server) refuse(w http.ResponseWriter, code int, reason, msg string) {
	s.Metrics.EventRefused(reason)
	s.writeError(w, code, msg)
}

func (s *Server) collect(w http.ResponseWriter, r *http.Request, hit collect.Hit, err error, now time.Time, pixel bool) {
	if err != nil {
		var de *collect.DecodeError
		if errors.As(err, &de) {
			code := http.StatusBadRequest
			if de.Reason == collect.ReasonTooLarge {
				code = http.StatusRequestEntityTooLarge
			}
			s.refuse(w, code, de.Reason, de.Error())
			return
		}
		s.refuse(w, http.StatusBadRequest, "bad_request", "bad request")
		return
	}
	cl := collect.Client{IP: ClientIP(r, s.TrustedProxies), UserAgent: r.UserAgent(),
		OptOut: r.Header.Get("DNT") == "1" || r.Header.Get("Sec-GPC") == "1"}
	events, drops, err := s.Collector.Process(r.Context(), hit, cl, now)
	if err != nil {
		var de *collect.DecodeError
		if errors.As(err, &de) {
			s.refuse(w, http.StatusBadRequest, de.Reason, de.Error())
			return
		}
		s.Log.ErrorContext(r.Context(), "collect", "err", err)
		s.refuse(w, http.StatusServiceUnavailable, "internal", "the event could not be processed; try again")
		return
	}
	for _, d := range drops {
		if s.Events == nil {
			break // an edge collector: counted in its metrics only
		}
		if day, err := s.Salts.Day(d.Site, now); err == nil {
			s.perDay.add(d.Site.ID, day, d.Reason)
		}
	}
	// one hit may name several sites (domain "a.example,b.example"):
	// only the events of a site over its limit are left out
	kept := events[:0]
	for _, ev := range events {
		if s.siteAllows(ev.SiteID, 1, now) {
			kept = append(kept, ev)
		}
	}
	if len(kept) < len(events) && len(kept) == 0 {
		w.Header().Set("Retry-After", "1")
		s.refuse(w, http.StatusTooManyRequests, "site_rate_limited", "this site sends more events than its limit; retry later")
		return
	}
	if len(kept) < len(events) {
		s.Metrics.EventRefused("site_rate_limited")
	}
	events = kept
	if len(events) == 0 {
		s.Metrics.EventDropped()
		w.Header().Set("X-Plausible-Dropped", "1")
		s.accepted(w, pixel)
		return
	}
	recs := make([][]byte, len(events))
	for i := range events {
		recs[i] = ingest.EncodeEvent(nil, &events[i])
		// The loader must be able to read back what we acknowledge: check
		// here, where the client can still be told.
		if _, err := ingest.DecodeEvent(recs[i]); err != nil {
			s.refuse(w, http.StatusBadRequest, "unstorable", "the event cannot be stored: "+err.Error())
			return
		}
	}
	// The client's disconnect must not abandon a record half-way: the
	// journal decides, and the answer follows what it decided.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if len(recs) == 1 {
		err = s.Journal.Append(ctx, recs[0])
	} else {
		err = s.Journal.AppendBatch(ctx, recs)
	}
	switch {
	case err == nil:
	case errors.Is(err, journal.ErrFull):
		w.Header().Set("Retry-After", "1")
		s.refuse(w, http.StatusServiceUnavailable, collect.ReasonQueueFull, "overloaded; retry later")
		return
	case errors.Is(err, journal.ErrNoSpace):
		// Not fatal: the journal takes events again once space is back.
		// Counted by reason here and in the journal's Stats; logged once a
		// minute at most, since every request meets it while it lasts.
		s.logDiskFull(r.Context(), err)
		w.Header().Set("Retry-After", "30")
		s.refuse(w, http.StatusServiceUnavailable, "disk_full", "the collector's disk is full; retry later")
		return
	default:
		s.Log.ErrorContext(r.Context(), "collect: journal", "err", err)
		w.Header().Set("Retry-After", "5")
		s.refuse(w, http.StatusServiceUnavailable, "journal", "the event could not be stored; retry later")
		return
	}
	s.countAccepted(r.Context(), hit, events)
	s.accepted(w, pixel)
}

// logDiskFull logs that the journal refused events for lack of disk
// space, unless that was logged less than a minute ago.
func (s *Server) logDiskFull(ctx context.Context, err error) {
	now := time.Now().UnixNano()
	last := s.diskFullLogged.Load()
	if now-last < int64(time.Minute) || !s.diskFullLogged.CompareAndSwap(last, now) {
		return
	}
	s.Log.WarnContext(ctx, "collect: the journal's disk is full; refusing events with 503 (logged once a minute at most)", "err", err)
}

// countAccepted counts acknowledged events by account and site, in the
// metrics and the usage. A hit may name several sites (one event each);
// their settings are in the collector's cache already, so this costs a
// map look-up per site.
func (s *Server) countAccepted(ctx context.Context, hit collect.Hit, events []store.Event) {
	if s.Metrics == nil && s.Usage == nil {
		return
	}
	// by the events' own sites: a hit may name a site twice
	n := map[int64]int{}
	for i := range events {
		n[events[i].SiteID]++
	}
	for _, d := range hit.Domains {
		site, err := s.Collector.Sites.Lookup(ctx, d)
		if err != nil || n[site.ID] == 0 {
			continue
		}
		s.Metrics.EventsAccepted(site.AccountID, site.Domain, n[site.ID])
		s.countUse(site.AccountID, site.ID, usage.Events, n[site.ID])
		delete(n, site.ID)
	}
}

func (s *Server) accepted(w http.ResponseWriter, pixel bool) {
	if pixel {
		w.Header().Set("Content-Type", "image/gif")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(pixelGIF)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, "ok")
}
