package web

import (
	"fmt"
	"net/http"
	"sort"
)

// metrics writes the collection counters in Prometheus' text format.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# TYPE fjord_events_accepted_total counter\nfjord_events_accepted_total %d\n", s.Counters.Accepted.Load())
	fmt.Fprintf(w, "# TYPE fjord_events_dropped_total counter\nfjord_events_dropped_total %d\n", s.Counters.Dropped.Load())
	ref := s.Counters.Refused()
	reasons := make([]string, 0, len(ref))
	for k := range ref {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "# TYPE fjord_events_refused_total counter\n")
	for _, k := range reasons {
		fmt.Fprintf(w, "fjord_events_refused_total{reason=%q} %d\n", k, ref[k])
	}
	if s.Journal != nil {
		st := s.Journal.Stats()
		fmt.Fprintf(w, "# TYPE fjord_journal_queue_depth gauge\nfjord_journal_queue_depth %d\n", st.QueueDepth)
		fmt.Fprintf(w, "# TYPE fjord_journal_groups_total counter\nfjord_journal_groups_total %d\n", st.Groups)
		fmt.Fprintf(w, "# TYPE fjord_journal_records_total counter\nfjord_journal_records_total %d\n", st.Records)
	}
	if s.Loader != nil {
		fmt.Fprintf(w, "# TYPE fjord_loader_applied_total counter\nfjord_loader_applied_total %d\n", s.Loader.Applied.Load())
		fmt.Fprintf(w, "# TYPE fjord_loader_batches_total counter\nfjord_loader_batches_total %d\n", s.Loader.Batches.Load())
		fmt.Fprintf(w, "# TYPE fjord_loader_failures_total counter\nfjord_loader_failures_total %d\n", s.Loader.Failures.Load())
		fmt.Fprintf(w, "# TYPE fjord_loader_corrupt_records_total counter\nfjord_loader_corrupt_records_total %d\n", s.Loader.Corrupt.Load())
		fmt.Fprintf(w, "# TYPE fjord_loader_rejected_records_total counter\nfjord_loader_rejected_records_total %d\n", s.Loader.Rejected.Load())
		fmt.Fprintf(w, "# TYPE fjord_loader_lag_bytes gauge\nfjord_loader_lag_bytes %d\n", s.Loader.Lag())
	}
}
