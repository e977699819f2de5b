// Package metrics is Fjord's Prometheus instrumentation (PRODUCT §9.3):
// request rates, errors and latency, the write path's queue and commits,
// store query time, periodic jobs, disk space, open security alerts and
// usage per account. Each server has its own registry (never the global
// default one), so tests build as many servers as they like and see only
// their own numbers.
//
// A nil *Metrics is valid: every method is then a no-op, so code and
// tests that build a server without metrics need no checks.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fjord/internal/ingest"
	"fjord/internal/ingest/journal"
	"fjord/internal/standby"
)

// Metrics holds one server's registry and its metrics.
type Metrics struct {
	reg   *prometheus.Registry
	names []string

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	accepted     *prometheus.CounterVec
	refused      *prometheus.CounterVec
	dropped      prometheus.Counter
	queries      *prometheus.HistogramVec
	jobRuns      *prometheus.CounterVec
	jobFailures  *prometheus.CounterVec
	jobSuccess   *prometheus.GaugeVec
	jobStreak    *prometheus.GaugeVec
	apiRequests  *prometheus.CounterVec
	exports      *prometheus.CounterVec
	collectors   *prometheus.CounterVec

	// children already resolved, so that a request does not pay for
	// WithLabelValues (hashing the labels, a lock, formatting the code)
	// each time: requests by requestKey, events by acceptedKey
	requestSeries  sync.Map
	acceptedSeries sync.Map

	src    atomic.Pointer[Sources]
	scrape *scrapeCollector

	// streaks counts each job's failures in a row (the gauge shows it;
	// this is its source, changed under mu with the gauge).
	mu      sync.Mutex
	streaks map[string]int
}

// Sources are what the metrics read when scraped: nil or empty parts are
// left out of the exposition.
type Sources struct {
	Journal *journal.Journal
	Loader  *ingest.Loader
	// DataDir is the directory whose file system's free space is
	// reported (the journal and the embedded databases live there).
	DataDir string
	// OpenAlerts counts the open security alerts; it is asked at each
	// scrape with a timeout of AlertsTimeout.
	OpenAlerts func(ctx context.Context) (int, error)
	// Standby is the watcher of the PostgreSQL standby (nil: none
	// configured); its last check is reported, nothing is asked at a
	// scrape.
	Standby *standby.Watcher
	// Backups is how backups have gone (nil: backups are off).
	Backups func() BackupStatus
	// Forwarding is an edge collector's spool and forwarder (nil: not an
	// edge).
	Forwarding func() ForwardStatus
}

// ForwardStatus is what the metrics show of an edge collector's spool.
type ForwardStatus struct {
	Pending   int64     // spool bytes not yet confirmed by the main service
	Oldest    time.Time // event time of the oldest record waiting; zero: none
	Forwarded uint64    // records confirmed since start
	Failures  uint64    // failed attempts since start
	Rejected  uint64    // records the main service refused for good, set aside
	LastOK    time.Time // the last confirmed batch; zero: none yet
}

// BackupStatus is what the metrics show of backups.
type BackupStatus struct {
	LastGood  time.Time // the newest backup whose drill passed; zero: none
	LastRunOK bool      // the last backup and its drill succeeded
	Size      int64     // bytes of the newest good backup
}

// AlertsTimeout bounds the question of open alerts at a scrape: a slow
// store must not hold the scrape past Prometheus' own timeout.
const AlertsTimeout = 2 * time.Second

// RequestClasses are the route classes of ObserveRequest, by which
// requests are counted: a bounded set, so labels stay few.
var RequestClasses = []string{"collect", "signin", "api", "feeds", "pages", "ops"}

// requestBuckets: from 1 ms (a collection request) to 10 s (a slow
// report), roughly ×2.5 each.
var requestBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// New makes a registry with every Fjord metric and the Go runtime's and
// process's collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), streaks: map[string]int{}}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.httpRequests = counterVec(m, "fjord_http_requests_total", "HTTP requests answered, by route class and status code.", "class", "code")
	m.httpDuration = histogramVec(m, "fjord_http_request_duration_seconds", "Time to answer an HTTP request, by route class.", requestBuckets, "class")
	m.accepted = counterVec(m, "fjord_events_accepted_total", "Events acknowledged to the client (durable in the journal), by account id and site domain.", "account", "site")
	m.refused = counterVec(m, "fjord_events_refused_total", "Collection requests refused, by reason (queue_full: shed under overload; disk_full: the journal's disk is full).", "reason")
	m.collectors = counterVec(m, "fjord_collector_events_total", "Events received from edge collectors, durable in the journal, by collector name (the collectors file).", "collector")
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "fjord_events_dropped_total", Help: "Collection requests accepted but kept out of the numbers (bots, spam referrers, opted out)."})
	m.register("fjord_events_dropped_total", m.dropped)
	m.queries = histogramVec(m, "fjord_store_query_duration_seconds", "Time of report queries against the event store, by kind (run, funnel, stream).", requestBuckets, "kind")
	// the jobs' label is "name", not "job": Prometheus gives every
	// scraped series the target's own job label, and a metric's "job"
	// would be renamed exported_job under it
	m.jobRuns = counterVec(m, "fjord_job_runs_total", "Runs of periodic jobs, by job name.", "name")
	m.jobFailures = counterVec(m, "fjord_job_failures_total", "Failed runs of periodic jobs, by job name.", "name")
	m.jobSuccess = gaugeVec(m, "fjord_job_last_success_timestamp_seconds", "Unix time of each job's last successful run, by job name.", "name")
	m.jobStreak = gaugeVec(m, "fjord_job_consecutive_failures", "Failed runs of each job since its last success, by job name.", "name")
	m.apiRequests = counterVec(m, "fjord_api_requests_total", "Stats API requests with a valid key, by the key's account id.", "account")
	m.exports = counterVec(m, "fjord_exports_total", "Exports (CSV downloads of reports), by account id.", "account")
	m.scrape = &scrapeCollector{m: m}
	m.register("", m.scrape)
	m.names = append(m.names, m.scrape.names()...)
	return m
}

func (m *Metrics) register(name string, c prometheus.Collector) {
	m.reg.MustRegister(c)
	if name != "" {
		m.names = append(m.names, name)
	}
}

func counterVec(m *Metrics, name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.register(name, v)
	return v
}

func gaugeVec(m *Metrics, name, help string, labels ...string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	m.register(name, v)
	return v
}

func histogramVec(m *Metrics, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	m.register(name, v)
	return v
}

// Watch sets what the scrape-time metrics read (the journal, the loader,
// the data dir, the open alerts). Called once the server's parts exist;
// calling it again replaces them.
func (m *Metrics) Watch(s Sources) {
	if m == nil {
		return
	}
	m.src.Store(&s)
}

// Names are the names of Fjord's own metrics (fjord_*), as registered;
// a histogram's series add _bucket, _sum and _count.
func (m *Metrics) Names() []string {
	if m == nil {
		return nil
	}
	return append([]string(nil), m.names...)
}

// Registry is the server's registry, for tests and for a second handler.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the registry in Prometheus' exposition formats. A nil
// Metrics answers 404: there is nothing to show.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	// errors go to the scraper (the page says which collector failed),
	// never a half-written page presented as whole
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError, Timeout: 10 * time.Second})
}

type requestKey struct {
	class string
	code  int
}

// requestSeries are the series of one class and code.
type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// ObserveRequest counts one answered HTTP request of a route class
// (collect, signin, api, feeds, pages, ops) with its status code and
// how long it took.
func (m *Metrics) ObserveRequest(class string, code int, d time.Duration) {
	if m == nil {
		return
	}
	k := requestKey{class, code}
	v, ok := m.requestSeries.Load(k)
	if !ok {
		v, _ = m.requestSeries.LoadOrStore(k, requestSeries{
			count:    m.httpRequests.WithLabelValues(class, strconv.Itoa(code)),
			duration: m.httpDuration.WithLabelValues(class),
		})
	}
	rs := v.(requestSeries)
	rs.count.Inc()
	rs.duration.Observe(d.Seconds())
}

type acceptedKey struct {
	account int64
	site    string
}

// EventsAccepted counts n events acknowledged for a site (its domain) of
// an account (0: a site in no account).
func (m *Metrics) EventsAccepted(account int64, site string, n int) {
	if m == nil || n <= 0 {
		return
	}
	k := acceptedKey{account, site}
	c, ok := m.acceptedSeries.Load(k)
	if !ok {
		c, _ = m.acceptedSeries.LoadOrStore(k, m.accepted.WithLabelValues(strconv.FormatInt(account, 10), site))
	}
	c.(prometheus.Counter).Add(float64(n))
}

// CollectorBatch counts n events received from an edge collector.
func (m *Metrics) CollectorBatch(name string, n int) {
	if m == nil {
		return
	}
	m.collectors.WithLabelValues(name).Add(float64(n))
}

// EventRefused counts a refused collection request by its reason.
func (m *Metrics) EventRefused(reason string) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(reason).Inc()
}

// EventDropped counts a collection request kept out of the numbers.
func (m *Metrics) EventDropped() {
	if m == nil {
		return
	}
	m.dropped.Inc()
}

// APIRequest counts a Stats API request of an account's key.
func (m *Metrics) APIRequest(account int64) {
	if m == nil {
		return
	}
	m.apiRequests.WithLabelValues(strconv.FormatInt(account, 10)).Inc()
}

// Export counts an export of an account.
func (m *Metrics) Export(account int64) {
	if m == nil {
		return
	}
	m.exports.WithLabelValues(strconv.FormatInt(account, 10)).Inc()
}

// ObserveQuery records how long a report query of a kind took.
func (m *Metrics) ObserveQuery(kind string, d time.Duration) {
	if m == nil {
		return
	}
	m.queries.WithLabelValues(kind).Observe(d.Seconds())
}

// JobDone records one run of a periodic job that ended at `at`: a run,
// and a failure (err non-nil) or a success with its time. It returns err,
// so that a caller can wrap its job's call in it.
func (m *Metrics) JobDone(job string, at time.Time, err error) error {
	if m == nil {
		return err
	}
	m.jobRuns.WithLabelValues(job).Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.jobFailures.WithLabelValues(job).Inc()
		m.streaks[job]++
	} else {
		m.jobSuccess.WithLabelValues(job).Set(float64(at.UnixNano()) / 1e9)
		m.streaks[job] = 0
	}
	m.jobStreak.WithLabelValues(job).Set(float64(m.streaks[job]))
	return err
}

// JobStreaks are the jobs' failures in a row since their last success
// (jobs that never ran are absent).
func (m *Metrics) JobStreaks() map[string]int {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.streaks))
	for k, v := range m.streaks {
		out[k] = v
	}
	return out
}
