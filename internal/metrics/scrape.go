package metrics

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fjord/internal/ingest/journal"
)

// scrapeCollector reads, at each scrape, what other parts keep as plain
// counters (the journal, the loader), what only the system knows (disk
// space), and what the store knows (open alerts). Its descriptions are
// registered by New whether or not a source is set, so the set of names
// does not depend on how a server was put together.
type scrapeCollector struct {
	m *Metrics
}

type scrapeDesc struct {
	name string
	desc *prometheus.Desc
}

func newDesc(name, help string) scrapeDesc {
	return scrapeDesc{name, prometheus.NewDesc(name, help, nil, nil)}
}

var _ prometheus.Collector = (*scrapeCollector)(nil)

// the descriptions are immutable values, built once per call to keep the
// package free of shared state
func (c *scrapeCollector) descs() []scrapeDesc {
	return []scrapeDesc{
		newDesc("fjord_journal_queue_depth", "Records waiting for the journal's writer now."),
		newDesc("fjord_journal_queue_capacity", "Records that may wait for the journal's writer before collection answers 503 (queue-size)."),
		newDesc("fjord_journal_groups_total", "Group commits of the journal."),
		newDesc("fjord_journal_records_total", "Records made durable by the journal."),
		newDesc("fjord_journal_commit_duration_seconds", "Time of one group commit of the journal (write and fdatasync), which every waiting collection request waits for."),
		newDesc("fjord_loader_applied_total", "Events applied from the journal to the event store."),
		newDesc("fjord_loader_batches_total", "Batches applied to the event store."),
		newDesc("fjord_loader_failures_total", "Failed attempts to apply a batch (retried)."),
		newDesc("fjord_loader_corrupt_records_total", "Journal records that could not be decoded."),
		newDesc("fjord_loader_rejected_records_total", "Records the event store refused for good, set aside in the reject file."),
		newDesc("fjord_loader_duplicates_dropped_total", "Events the event store left out because an event of the same site and id was stored (a re-sent batch, or one event received by two collectors)."),
		newDesc("fjord_loader_lag_bytes", "Journal bytes not yet applied to the event store."),
		newDesc("fjord_data_dir_free_bytes", "Bytes free for the server in the data dir's file system."),
		newDesc("fjord_data_dir_size_bytes", "Size of the data dir's file system in bytes."),
		newDesc("fjord_security_alerts_open", "Open security alerts (not the operations alerts), from the account store."),
		newDesc("fjord_backup_last_success_timestamp_seconds", "Unix time of the newest backup whose restore drill passed (0: none yet)."),
		newDesc("fjord_backup_last_run_ok", "1 when the last backup and its drill succeeded, 0 when either failed."),
		newDesc("fjord_backup_last_size_bytes", "Bytes stored of the newest good backup."),
		newDesc("fjord_spool_pending_bytes", "Bytes of an edge collector's spool not yet confirmed durable by the main service."),
		newDesc("fjord_spool_oldest_age_seconds", "Age of the oldest event waiting in an edge collector's spool (0: none waits)."),
		newDesc("fjord_forward_events_total", "Events an edge collector forwarded and the main service confirmed."),
		newDesc("fjord_forward_failures_total", "Failed attempts of an edge collector to forward a batch (each is retried)."),
		newDesc("fjord_forward_rejected_records_total", "Records the main service refused for good, set aside in the edge collector's reject file."),
		newDesc("fjord_forward_last_success_timestamp_seconds", "Unix time of the last batch the main service confirmed (0: none yet)."),
		newDesc("fjord_standby_up", "1 when the PostgreSQL standby (standby-url) answered its last check and is replaying the primary's WAL, else 0."),
		newDesc("fjord_standby_lag_bytes", "WAL bytes written on the primary that the standby had not replayed at its last check (0: caught up)."),
		newDesc("fjord_standby_lag_seconds", "Age of the last transaction the standby replayed, when it is behind at all (0 when caught up, whatever the age)."),
	}
}

func (c *scrapeCollector) names() []string {
	var out []string
	for _, d := range c.descs() {
		out = append(out, d.name)
	}
	return out
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d.desc
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.src.Load()
	if src == nil {
		return
	}
	d := map[string]*prometheus.Desc{}
	for _, sd := range c.descs() {
		d[sd.name] = sd.desc
	}
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(d[name], prometheus.GaugeValue, v)
	}
	counter := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(d[name], prometheus.CounterValue, v)
	}
	if j := src.Journal; j != nil {
		st := j.Stats()
		gauge("fjord_journal_queue_depth", float64(st.QueueDepth))
		gauge("fjord_journal_queue_capacity", float64(j.QueueLen()))
		counter("fjord_journal_groups_total", float64(st.Groups))
		counter("fjord_journal_records_total", float64(st.Records))
		buckets := map[float64]uint64{}
		var cum uint64
		for i := 0; i < journal.CommitBuckets-1; i++ {
			cum += st.Commits[i]
			buckets[journal.CommitBound(i).Seconds()] = cum
		}
		count := cum + st.Commits[journal.CommitBuckets-1]
		ch <- prometheus.MustNewConstHistogram(d["fjord_journal_commit_duration_seconds"], count, float64(st.CommitNanos)/1e9, buckets)
	}
	if l := src.Loader; l != nil {
		counter("fjord_loader_applied_total", float64(l.Applied.Load()))
		counter("fjord_loader_batches_total", float64(l.Batches.Load()))
		counter("fjord_loader_failures_total", float64(l.Failures.Load()))
		counter("fjord_loader_corrupt_records_total", float64(l.Corrupt.Load()))
		counter("fjord_loader_rejected_records_total", float64(l.Rejected.Load()))
		if l.Store != nil {
			counter("fjord_loader_duplicates_dropped_total", float64(l.Store.Duplicates()))
		}
		gauge("fjord_loader_lag_bytes", float64(l.Lag()))
	}
	if src.DataDir != "" {
		if free, size, err := DiskSpace(src.DataDir); err == nil {
			gauge("fjord_data_dir_free_bytes", float64(free))
			gauge("fjord_data_dir_size_bytes", float64(size))
		}
	}
	if src.OpenAlerts != nil {
		ctx, cancel := context.WithTimeout(context.Background(), AlertsTimeout)
		n, err := src.OpenAlerts(ctx)
		cancel()
		// on an error the gauge is left out rather than shown as 0, which
		// would read as "no alerts"
		if err == nil {
			gauge("fjord_security_alerts_open", float64(n))
		}
	}
	if src.Backups != nil {
		b := src.Backups()
		var good float64
		if !b.LastGood.IsZero() {
			good = float64(b.LastGood.Unix())
		}
		gauge("fjord_backup_last_success_timestamp_seconds", good)
		ok := 1.0
		if !b.LastRunOK {
			ok = 0
		}
		gauge("fjord_backup_last_run_ok", ok)
		gauge("fjord_backup_last_size_bytes", float64(b.Size))
	}
	if src.Forwarding != nil {
		f := src.Forwarding()
		gauge("fjord_spool_pending_bytes", float64(f.Pending))
		age := 0.0
		if !f.Oldest.IsZero() {
			age = max(time.Since(f.Oldest).Seconds(), 0)
		}
		gauge("fjord_spool_oldest_age_seconds", age)
		counter("fjord_forward_events_total", float64(f.Forwarded))
		counter("fjord_forward_failures_total", float64(f.Failures))
		counter("fjord_forward_rejected_records_total", float64(f.Rejected))
		last := 0.0
		if !f.LastOK.IsZero() {
			last = float64(f.LastOK.Unix())
		}
		gauge("fjord_forward_last_success_timestamp_seconds", last)
	}
	if src.Standby != nil {
		if st := src.Standby.Status(); !st.At.IsZero() {
			up := 0.0
			if st.Up {
				up = 1
			}
			gauge("fjord_standby_up", up)
			// unknown lags are left out rather than shown as 0, which
			// would read as "caught up"
			if st.Up && st.LagBytes >= 0 {
				gauge("fjord_standby_lag_bytes", float64(st.LagBytes))
			}
			if st.Up && st.LagSeconds >= 0 {
				gauge("fjord_standby_lag_seconds", st.LagSeconds)
			}
		}
	}
}

// DiskSpace is the free space (what an unprivileged process may use) and
// the size of the file system holding dir, in bytes.
func DiskSpace(dir string) (free, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("disk space of the data dir: %w", err)
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}
