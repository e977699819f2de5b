package web

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"fjord/internal/ingest/journal"
)

// BenchmarkCollect measures one pageview through the collection handler
// (decode, enrich, visitor id, journal append and its group commit), in
// parallel as a server sees them; allocs/op is what the GC pays per event.
func BenchmarkCollect(b *testing.B) {
	e := newEnv(b, journal.Options{})
	h := e.srv.Handler()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			body := fmt.Sprintf(`{"n":"pageview","u":"https://site.test/docs/page-%d?x=1","d":"site.test","r":"https://www.google.com/"}`, i%50)
			req := httptest.NewRequest("POST", "/api/event", strings.NewReader(body))
			req.Header.Set("User-Agent", ffUA)
			req.Header.Set("Content-Type", "text/plain")
			req.RemoteAddr = fmt.Sprintf("10.1.%d.%d:1234", i%200, i%250)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 202 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
