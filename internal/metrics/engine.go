package metrics

import (
	"context"
	"time"

	"fjord/internal/report"
	"fjord/internal/store"
)

// Engine wraps a report engine so that each query's time is observed in
// fjord_store_query_duration_seconds{kind}: every report of the
// dashboard, the Stats API, exports, datafeeds and mail goes through it.
// A nil Metrics returns e itself.
func (m *Metrics) Engine(e report.Engine) report.Engine {
	if m == nil || e == nil {
		return e
	}
	return timedEngine{e, m}
}

type timedEngine struct {
	e report.Engine
	m *Metrics
}

func (t timedEngine) Run(ctx context.Context, q *report.Query) (*report.Result, error) {
	start := time.Now()
	defer func() { t.m.ObserveQuery("run", time.Since(start)) }()
	return t.e.Run(ctx, q)
}

func (t timedEngine) Funnel(ctx context.Context, q *report.Query, steps []store.Goal) ([]int64, error) {
	start := time.Now()
	defer func() { t.m.ObserveQuery("funnel", time.Since(start)) }()
	return t.e.Funnel(ctx, q, steps)
}

// Stream's time includes the consumer's (writing the rows out): for an
// export that is what the store is held for.
func (t timedEngine) Stream(ctx context.Context, q *report.Query, emit func(report.Row) error) error {
	start := time.Now()
	defer func() { t.m.ObserveQuery("stream", time.Since(start)) }()
	return t.e.Stream(ctx, q, emit)
}
