package web

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"fjord/internal/metrics"
)

// BenchmarkEdge measures what the edge adds to a request: a trivial
// collection route behind the edge with serve's default limits and a
// log at warn (as `fjord bench ingest` runs the server), from many
// addresses behind a trusted proxy.
func BenchmarkEdge(b *testing.B) {
	s := &Server{
		Log:            slog.New(LogRequestIDs(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		Metrics:        metrics.New(),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Limits: Limits{Collect: Limit{50, 500}, Signin: Limit{0.5, 20}, API: Limit{10, 100}, Feeds: Limit{2, 30}, Pages: Limit{20, 200},
			Strikes: 100, StrikeWindow: time.Minute, Block: 10 * time.Minute, CollectInFlight: 1000},
	}
	m := newMux(func(_ Permission, h http.Handler) http.Handler { return h })
	m.edge = s.serveEdge
	m.Handle("POST /api/event", PermPublic, func(w http.ResponseWriter, r *http.Request) {
		s.Metrics.EventsAccepted(1, "site.test", 1)
		w.WriteHeader(http.StatusAccepted)
	})
	m.Handle("GET /signin/link/{token}", PermPage, func(w http.ResponseWriter, r *http.Request) {})
	addrs := make([]string, 10000)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("10.1.%d.%d", i/100, i%100)
	}
	u, _ := url.Parse("/api/event")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		w := httptest.NewRecorder()
		for pb.Next() {
			i++
			req := &http.Request{Method: "POST", URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "127.0.0.1:1234",
				Header: http.Header{"X-Forwarded-For": {addrs[i%len(addrs)]}}}
			clear(w.Header())
			m.ServeHTTP(w, req)
		}
	})
}
