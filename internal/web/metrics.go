package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"fjord/internal/ingest/forward"
	"fjord/internal/metrics"
	"fjord/internal/store"
)

// metrics serves the server's registry (the same one on the public port,
// the control socket and the metrics-listen port).
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s.Metrics.Handler().ServeHTTP(w, r)
}

// MetricsPortHandler serves only /metrics, without a guard: it is for the
// metrics-listen port, which config allows only on a loopback address, so
// that whoever reaches it is on this host.
func (s *Server) MetricsPortHandler() *Mux {
	m := newMux(s.guard)
	m.Handle("GET /metrics", PermOperator, s.metrics)
	return m
}

// guardMetrics lets through a scraper that sends the metrics token as
// "Authorization: Bearer TOKEN" or comes from a metrics range; anyone
// else gets a plain 404, as if there were no /metrics, so that the page
// is not a target to guess tokens at. The metrics name accounts and
// sites by id and domain: not for the public.
func (s *Server) guardMetrics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.metricsAllowed(r) {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) metricsAllowed(r *http.Request) bool {
	if s.MetricsToken != "" {
		if tok, _, ok := bearerToken(r.Header); ok {
			// compared as hashes: equal lengths, so the time taken says
			// nothing about the token's length either
			got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(s.MetricsToken))
			if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
				return true
			}
		}
	}
	return len(s.MetricsRanges) > 0 && inRanges(ClientIP(r, s.TrustedProxies), s.MetricsRanges)
}

// ReadyTimeout bounds /readyz's questions to the stores: a store that
// takes longer is as good as unreachable for the requests behind it.
const ReadyTimeout = 3 * time.Second

// DefaultMinFreeDisk is the free space below which /readyz answers 503:
// the smaller of 512 MiB and 1% of the file system. 512 MiB holds several
// journal segments (64 MiB each) and a DuckDB checkpoint on a small
// server; on a large disk 1% would be far more than needed, and on a
// small one 512 MiB could be most of it.
func DefaultMinFreeDisk(size uint64) uint64 {
	return min(512<<20, size/100)
}

// readyz: started, both stores answer and are at this binary's schema,
// and the data dir's disk is not nearly full. Each refusal is 503 with a
// short reason naming the part, never a connection string or an address.
//
// With a standby configured, a second line reports it (its last check).
// A standby that is down or behind does not make this server unready:
// readiness tells a load balancer whether to send requests here, and the
// primary serves them as well without its standby; taking the server out
// of rotation would turn a lost copy into an outage. The line, the
// metrics and the alerts are for the operator.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var standbyLine string
	if s.Standby != nil {
		standbyLine = s.Standby.Status().String() + "\n"
	}
	if s.Forwarding != nil {
		standbyLine = forwardLine(s.Forwarding.Status(), s.Now()) + "\n"
	}
	if reason := s.readiness(r.Context()); reason != "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n%s", reason, standbyLine)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, "ok\n%s", standbyLine)
}

// readiness is notReady's answer, kept for ReadyCache: /readyz is
// public and unlimited (probes), and each answer asks both stores.
// Concurrent requests wait for one answer.
func (s *Server) readiness(ctx context.Context) string {
	if s.ReadyCache <= 0 {
		return s.notReady(ctx)
	}
	s.readyMemo.mu.Lock()
	defer s.readyMemo.mu.Unlock()
	if now := time.Now(); now.Sub(s.readyMemo.at) >= s.ReadyCache {
		s.readyMemo.reason, s.readyMemo.at = s.notReady(ctx), now
	}
	return s.readyMemo.reason
}

func (s *Server) notReady(ctx context.Context) string {
	if !s.ready.Load() {
		return "starting"
	}
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	for _, st := range []struct {
		name string
		h    store.Health
	}{{"account store", s.Accounts}, {"event store", s.Events}} {
		if st.h == nil {
			continue
		}
		if err := st.h.Ping(ctx); err != nil {
			s.Log.Warn("readyz: a store does not answer", "store", st.name, "err", err)
			return st.name + ": " + errClass(err)
		}
		if err := st.h.CheckSchema(ctx); err != nil {
			s.Log.Warn("readyz: schema", "store", st.name, "err", err)
			if errors.Is(err, store.ErrSchema) {
				// names migration files only
				return st.name + ": " + err.Error()
			}
			return st.name + ": " + errClass(err)
		}
	}
	if s.DataDir != "" {
		free, size, err := metrics.DiskSpace(s.DataDir)
		if err != nil {
			s.Log.Warn("readyz: disk space", "err", err)
			return "data dir: disk space unknown"
		}
		floor := DefaultMinFreeDisk
		if s.MinFreeDisk != nil {
			floor = s.MinFreeDisk
		}
		if need := floor(size); free < need {
			return fmt.Sprintf("disk nearly full: %d MiB free in the data dir, below %d MiB", free>>20, need>>20)
		}
	}
	return ""
}

// forwardLine is an edge collector's backlog, for /readyz.
func forwardLine(st forward.Status, now time.Time) string {
	line := fmt.Sprintf("spool: %d bytes waiting", st.Pending)
	if !st.Oldest.IsZero() {
		line += fmt.Sprintf(", oldest %s", now.Sub(st.Oldest).Round(time.Second))
	}
	if !st.LastOK.IsZero() {
		line += fmt.Sprintf(", last delivered %s ago", now.Sub(st.LastOK).Round(time.Second))
	}
	if st.LastError != "" {
		// the reason is in the edge's log; this page is public
		line += "; forwarding fails (see the log)"
	}
	return line
}

// errClass says what kind of failure err is, in words that carry no
// address, user name or password (a driver's message may hold all three).
func errClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.As(err, &ne), strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "connect"):
		return "unreachable"
	}
	return "does not answer"
}

// readyMemo is the last answer of notReady and when it was found.
type readyMemo struct {
	mu     sync.Mutex
	at     time.Time
	reason string
}
