package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"fjord/internal/collect"
)

// Totals are the counters that the built-in operator alerts compare over
// time, read from the same metrics /metrics shows.
type Totals struct {
	Requests     uint64 // HTTP requests answered
	ServerErrors uint64 // of them, with a 5xx status
	Shed         uint64 // collection requests refused with reason queue_full
}

// Totals reads the counters now.
func (m *Metrics) Totals() Totals {
	var t Totals
	if m == nil {
		return t
	}
	each(m.httpRequests, func(labels map[string]string, v float64) {
		t.Requests += uint64(v)
		if strings.HasPrefix(labels["code"], "5") {
			t.ServerErrors += uint64(v)
		}
	})
	each(m.refused, func(labels map[string]string, v float64) {
		if labels["reason"] == collect.ReasonQueueFull {
			t.Shed += uint64(v)
		}
	})
	return t
}

// each calls fn with the labels and value of every counter of a vector.
func each(c prometheus.Collector, fn func(map[string]string, float64)) {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	for met := range ch {
		var d dto.Metric
		if met.Write(&d) != nil || d.Counter == nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range d.Label {
			labels[l.GetName()] = l.GetValue()
		}
		fn(labels, d.Counter.GetValue())
	}
}
