package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"fjord/internal/audit"
	"fjord/internal/auth"
	"fjord/internal/config"
	"fjord/internal/demo"
	"fjord/internal/export"
	"fjord/internal/feed"
	"fjord/internal/ingest/forward"
	"fjord/internal/mail"
	"fjord/internal/mail/inbound"
	"fjord/internal/mail/schedule"
	"fjord/internal/metrics"
	"fjord/internal/opsalert"
	"fjord/internal/report"
	"fjord/internal/secmon"
	"fjord/internal/staff"
	"fjord/internal/standby"
	"fjord/internal/store"
	accountusage "fjord/internal/usage"
	"fjord/internal/web"
)

// Serve runs `fjord serve`.
func Serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	build := config.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := build()
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	eng, err := startEngine(ctx, cfg, log)
	if errors.Is(err, errLocked) {
		return fmt.Errorf("%w: %s", err, cfg.DataDir)
	}
	if err != nil {
		return err
	}
	defer eng.close()

	srv := &web.Server{
		Log: log, Accounts: eng.st.Accounts, Events: eng.st.Events, Collector: eng.collector,
		Journal: eng.j, Loader: eng.loader, Salts: eng.salts, TrustedProxies: cfg.TrustedProxies,
		Reports: eng.reports, Now: time.Now, Version: Version,
		Auth: &auth.Service{Store: eng.st.Accounts}, Limits: limits(cfg), ReadyCache: time.Second,
	}
	srv.Metrics = metrics.New()
	srv.Reports = srv.Metrics.Engine(eng.reports)
	srv.MetricsToken, srv.MetricsRanges, srv.DataDir = cfg.MetricsToken, cfg.MetricsRanges, cfg.DataDir
	res := cfg.Residency()
	srv.Residency = web.Residency{Node: res.Node, Database: res.Database, Standby: res.Standby, Backups: res.Backups, Allowed: res.Allowed}
	if st, ok := eng.st.Accounts.(audit.Store); ok {
		srv.Audit = &audit.Log{Store: st}
		if cfg.AuditKey != "" {
			if srv.Audit.Key, err = audit.LoadKey(cfg.AuditKey); err != nil {
				return err
			}
		} else {
			log.Warn("audit-key is not set: the audit log gets no signed checkpoints, so a cut tail would go unseen")
		}
	}
	if st, ok := eng.st.Accounts.(feed.Store); ok {
		srv.Feeds = st
	}
	if st, ok := eng.st.Accounts.(schedule.Store); ok {
		srv.Schedules, srv.BounceAddress = st, cfg.BounceAddress
	}
	if st, ok := eng.st.Accounts.(staff.Store); ok {
		srv.Staff = &staff.Service{Store: st, Now: time.Now,
			Rules: staff.Rules{Training: cfg.StaffTraining, MaxGrant: cfg.StaffGrant, MaxConsultantGrant: cfg.StaffConsultantGrant}}
		srv.StaffSignin = &auth.StaffSignin{Store: st}
		srv.StaffRanges = cfg.StaffRanges
	}
	if st, ok := eng.st.Accounts.(export.Store); ok {
		srv.Exports = &export.Recorder{Store: st, Now: time.Now}
	}
	if st, ok := eng.st.Accounts.(accountusage.Store); ok {
		srv.Usage = st
	}
	if cfg.MailOn() {
		snd, err := mail.New(cfg.Mail())
		if err != nil {
			return fmt.Errorf("mail: %w", err)
		}
		srv.Mail = mail.NewOutbox(snd, log, 256)
		srv.Auth.Locked = srv.NotifyLocked
		log.Info("mail on", "smtp", snd.Addr(), "tls", cfg.Mail().TLS)
	} else {
		log.Warn("mail is off (no smtp-host): sign-in lock-out notices and password reset links cannot be sent")
	}

	if srv.Security, err = newMonitor(cfg, eng, srv.Mail, srv.Audit, log); err != nil {
		return err
	}
	if srv.Standby, err = watchStandby(cfg, log); err != nil {
		return err
	}
	if srv.Standby != nil {
		defer srv.Standby.Close()
		go srv.Standby.Run(ctx)
	}
	if cfg.CollectorsFile != "" {
		srv.Collectors = &forward.Tokens{Path: cfg.CollectorsFile}
		if _, err := srv.Collectors.Check(""); !errors.Is(err, forward.ErrBadToken) {
			return err // unreadable or malformed: say so now, not at the first edge's call
		}
	}
	src := metrics.Sources{Journal: eng.j, Loader: eng.loader, DataDir: cfg.DataDir, OpenAlerts: srv.Security.OpenAlerts, Standby: srv.Standby}
	if cfg.BackupDir != "" {
		if srv.Backups, err = newBackupService(cfg, eng.st); err != nil {
			return fmt.Errorf("backups: %w", err)
		}
		srv.Backups.Before = eng.loader.Flush
		if err := srv.Backups.Load(); err != nil {
			return fmt.Errorf("backups: %w", err)
		}
		src.Backups = func() metrics.BackupStatus {
			st := srv.Backups.Status()
			return metrics.BackupStatus{LastGood: st.LastGood, LastRunOK: st.LastFailure == "", Size: st.LastSize}
		}
	} else {
		log.Warn("backups are off (no backup-dir)")
	}
	srv.Metrics.Watch(src)
	srv.SecurityTxt = web.SecurityTxt{Contact: cfg.SecurityContact, Policy: cfg.SecurityPolicy, Languages: cfg.SecurityLanguages}
	// checked once the monitor runs, so that a break found at start alerts
	if err := srv.CheckAudit(ctx); err != nil {
		log.Error("audit log check at start", "err", err)
	}

	var signins []demo.SignIn
	var demoFeed string
	var demoKey string
	if cfg.Demo {
		start := time.Now()
		res, err := demo.Ensure(ctx, demo.Deps{Accounts: eng.st.Accounts, Collector: eng.collector, Journal: eng.j, Usage: srv.Usage}, time.Now())
		if err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		if res.Events > 0 {
			log.Info("demo data written", "sites", len(res.Sites), "events", res.Events, "seconds", time.Since(start).Seconds())
		}
		if err := eng.loader.Flush(ctx); err != nil {
			return err
		}
		if signins, err = demo.Passwords(ctx, eng.st.Accounts); errors.Is(err, store.ErrNotFound) {
			// a demo data dir from before accounts: its sites have none
			log.Warn("this demo data has no demo account (it predates sign-in); remove the data dir to make it again")
		} else if err != nil {
			return err
		} else if demoKey, err = demo.Key(ctx, eng.st.Accounts, srv.Auth); err != nil {
			return err
		} else if srv.Feeds != nil {
			if demoFeed, err = demo.Feed(ctx, eng.st.Accounts, srv.Feeds, time.Now()); err != nil {
				return err
			}
		}
	}

	pl, err := listenPublic(ctx, cfg, log, srv.Listener)
	if err != nil {
		return err
	}
	ln := pl.ln
	srv.PublicURL = publicURL(cfg, ln.Addr().String())
	if srv.Security != nil {
		srv.Security.PublicURL = srv.PublicURL
	}
	ctl, err := listenControl(cfg.SocketPath())
	if err != nil {
		pl.close()
		return err
	}
	defer os.Remove(cfg.SocketPath())

	pub := pl.server(srv.Handler())
	ctlSrv := &http.Server{Handler: srv.ControlHandler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 3)
	go func() { errc <- pub.Serve(ln) }()
	pl.serveRedirect(errc)
	go func() { errc <- ctlSrv.Serve(ctl) }()
	go runJobs(ctx, srv, eng)
	if cfg.NATSURL != "" {
		nc, err := connectNATS(cfg, "fjord serve", log)
		if err != nil {
			return err
		}
		defer nc.Close()
		go consumeStream(ctx, cfg, nc, srv.TakeStream, log)
	}
	if srv.Backups != nil && cfg.BackupEvery > 0 {
		go backupJob(ctx, srv, cfg.BackupEvery)
	}
	go mailReports(ctx, srv)
	go opsAlerts(srv, cfg.DataDir).Run(ctx, time.Minute)
	stopMetrics, err := serveMetricsPort(cfg, srv, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	stopBounces, err := serveBounces(ctx, cfg, srv, log)
	if err != nil {
		return err
	}
	defer stopBounces()

	log.Info("fjord serving", "listen", ln.Addr().String(), "data_dir", cfg.DataDir, "version", Version)
	if cfg.Demo {
		fmt.Fprintf(stdout, "\nFjord is running with demo data.\n  Sign in:   %s/signin\n", srv.PublicURL)
		for _, si := range signins {
			fmt.Fprintf(stdout, "    %-14s %s  password %s\n", si.Role+":", si.Email, si.Password)
		}
		if demoKey != "" {
			fmt.Fprintf(stdout, "  API key:   %s  (the Administrator's, for the Stats API)\n", demoKey)
		}
		if demoFeed != "" {
			fmt.Fprintf(stdout, "  Datafeed:  %s/feeds/%s.csv  (or .json; the blog's top pages, ?period=7d for another period)\n", srv.PublicURL, demoFeed)
		}
		fmt.Fprintf(stdout, "  (new passwords, key and datafeed address at every start)\n  Numbers:   fjord stats --data-dir %s --site demo-shop.example --period 30d\n  Tracker:   %s://%s/js/fjord.js\nStop with Ctrl-C.\n\n",
			cfg.DataDir, pl.scheme, ln.Addr().String())
	}
	// Ready only after the banner: whoever waits on /healthz (a script, the
	// e2e tests) can then rely on the address having been printed.
	srv.SetReady(true)

	waitForStop(ctx, errc, srv, log)
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pub.Shutdown(sctx)
	pl.shutdown(sctx)
	ctlSrv.Shutdown(sctx)
	if srv.Mail != nil {
		srv.Mail.Close(sctx) // what is queued goes out, within the 15 s
	}
	if err := srv.FlushCounts(sctx); err != nil {
		log.Error("flush counters", "err", err)
	}
	return nil
}

// limits are the public port's limits as configured.
func limits(cfg *config.Config) web.Limits {
	rate := func(r config.Rate) web.Limit { return web.Limit{PerSecond: r.PerSecond, Burst: r.Burst} }
	return web.Limits{
		Collect: rate(cfg.LimitCollect), Signin: rate(cfg.LimitSignin), API: rate(cfg.LimitAPI),
		Feeds: rate(cfg.LimitFeeds), Pages: rate(cfg.LimitPages), SiteEvents: rate(cfg.LimitSiteEvents),
		Strikes: cfg.BlockAfter, StrikeWindow: time.Minute, Block: cfg.BlockFor,
		ConnsPerAddress: cfg.ConnsPerAddress, CollectInFlight: cfg.CollectInFlight,
	}
}

// listenControl opens the control socket, readable and writable only by
// this user: whoever can open it can manage the server.
func listenControl(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another server answers on %s", path)
	}
	os.Remove(path) // stale, from a killed server
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// runJobs is the periodic work of a server: counters to the store every
// ten seconds, salts destroyed when 48 hours old and leavers' data purged
// at the end of their retention period (both checked hourly), daily
// rollups of the days that are over (checked every ten minutes).
func runJobs(ctx context.Context, srv *web.Server, eng *engine) {
	counts := time.NewTicker(10 * time.Second)
	salts := time.NewTicker(time.Hour)
	rollups := time.NewTicker(10 * time.Minute)
	defer counts.Stop()
	defer salts.Stop()
	defer rollups.Stop()
	// job records a run of a job in the metrics (which the operator
	// alerts read) and logs its failure
	job := func(name string, err error) {
		if srv.Metrics.JobDone(name, time.Now(), err) != nil && ctx.Err() == nil {
			srv.Log.Error("job failed", "job", name, "err", err)
		}
	}
	refresh := func() error {
		ru, ok := eng.reports.(report.Rollups)
		if !ok {
			return nil
		}
		sites, err := eng.st.Accounts.Sites(ctx)
		if err != nil {
			return fmt.Errorf("rollups: list sites: %w", err)
		}
		var failed error
		for _, site := range sites {
			start := time.Now()
			n, err := ru.RefreshRollups(ctx, site, time.Now())
			if err != nil {
				srv.Log.Error("rollups", "site", site.Domain, "err", err)
				failed = fmt.Errorf("rollups of %d site(s) failed, the last: %w", len(sites), err)
				continue
			}
			if n > 0 {
				srv.Log.Info("rollups built", "site", site.Domain, "days and weeks", n, "seconds", time.Since(start).Seconds())
			}
		}
		return failed
	}
	dropSalts := func() {
		n, err := eng.salts.Drop(ctx, time.Now())
		if job("drop_salts", err); err == nil && n > 0 {
			srv.Log.Info("destroyed salts older than 48 hours", "count", n)
		}
	}
	purge := func() {
		job("purge_accounts", srv.PurgeAccounts(ctx))
		job("staff_jobs", srv.StaffJobs(ctx))
		job("feed_jobs", srv.FeedJobs(ctx))
		job("webhooks", srv.SendWebhooks(ctx))
		job("audit_check", srv.CheckAudit(ctx))
		if srv.Security != nil {
			n, err := srv.Security.Store.PurgeSecurityEvents(ctx, time.Now().Add(-secmon.EventRetention))
			if job("purge_security_events", err); err == nil && n > 0 {
				srv.Log.Info("deleted old security events", "count", n)
			}
		}
		if srv.Exports != nil {
			n, err := srv.Exports.Store.PurgeExports(ctx, time.Now().Add(-export.Retention))
			if job("purge_exports", err); err == nil && n > 0 {
				srv.Log.Info("deleted old export records", "count", n)
			}
		}
	}
	dropSalts()
	purge()
	job("rollups", refresh())
	for {
		select {
		case <-ctx.Done():
			return
		case <-counts.C:
			job("flush_counters", srv.FlushCounts(ctx))
		case <-salts.C:
			dropSalts()
			purge()
		case <-rollups.C:
			job("rollups", refresh())
		}
	}
}

// tuneGC: the collector's live heap is small (a few MB, plus about 1 KB
// per open visit for the live rollups) while it allocates ~10 KB per
// event, so Go's default (collect when the heap doubles) runs the GC about
// ten times a second under load: 18% of the CPU in a profile. A higher
// percentage with a soft memory limit trades a bounded amount of memory
// for throughput; the limit is where the GC turns eager again, and 48 MiB
// keeps the server near its memory target with 10,000 open visits
// (BENCHMARKS.md). GOGC and GOMEMLIMIT, when set, win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(48 << 20)
	}
}

// linkHost is the host:port of links to a server listening on addr: a
// wildcard address (":8080", "[::]:8080") is no place to send anyone, so
// it becomes localhost.
func linkHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		return net.JoinHostPort("localhost", port)
	}
	return addr
}

// newMonitor builds the security monitor on the account store (nil when
// the store keeps no security events): alerts go to alert-email through
// the server's mail and to alert-webhook; client networks are keyed by
// secmon.key in the data dir.
func newMonitor(cfg *config.Config, eng *engine, out *mail.Outbox, al *audit.Log, log *slog.Logger) (*secmon.Monitor, error) {
	st, ok := eng.st.Accounts.(secmon.Store)
	if !ok {
		log.Warn("this account store keeps no security events: no security monitoring")
		return nil, nil
	}
	key, err := secmon.KeyFile(filepath.Join(cfg.DataDir, "secmon.key"))
	if err != nil {
		return nil, err
	}
	m := &secmon.Monitor{Store: st, Accounts: eng.st.Accounts, Mail: out, Audit: al, Log: log, Key: key,
		AlertEmail: cfg.AlertEmail, Webhook: cfg.AlertWebhook, PublicURL: cfg.PublicURL}
	if cfg.AlertEmail != "" && out == nil {
		log.Warn("alert-email is set but mail is off (no smtp-host): alerts are not mailed")
	}
	if cfg.AlertEmail == "" && cfg.AlertWebhook == "" {
		log.Warn("neither alert-email nor alert-webhook is set: security alerts reach the operator only through the log and fjord alerts list")
	}
	return m, nil
}

// mailReports runs the e-mail reports' job every minute (they go out at
// their hour, to the minute), apart from the other jobs: a slow SMTP
// server must not hold up the counters, the salts' destruction or the
// purges.
func mailReports(ctx context.Context, srv *web.Server) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := srv.Metrics.JobDone("mail_reports", time.Now(), srv.MailReports(ctx)); err != nil && ctx.Err() == nil {
				srv.Log.Error("e-mail reports", "err", err)
			}
		}
	}
}

// serveBounces starts what reads the bounces of e-mail reports: the
// built-in SMTP receiver (bounce-listen) and a poll of the IMAP mailbox
// every minute (imap-addr). Both feed the server's one bounce handler.
func serveBounces(ctx context.Context, cfg *config.Config, srv *web.Server, log *slog.Logger) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, f := range stops {
			f()
		}
	}
	if cfg.BounceListen != "" {
		rcv, err := inbound.ListenSMTP(inbound.SMTPConfig{Addr: cfg.BounceListen, Domain: bounceDomain(cfg.BounceAddress),
			Accept: srv.AcceptBounce, Log: log}, srv.HandleBounce)
		if err != nil {
			return stop, fmt.Errorf("bounce-listen: %w", err)
		}
		stops = append(stops, func() { rcv.Close() })
		log.Info("bounce receiver listening", "addr", rcv.Addr())
	}
	if cfg.IMAPAddr != "" {
		ic := cfg.IMAP()
		ic.Accept = srv.AcceptBounce
		if err := ic.Validate(); err != nil {
			return stop, err
		}
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		stops = append(stops, func() { cancel(); <-done })
		go func() {
			defer close(done)
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			for {
				if n, err := inbound.PollIMAP(pctx, ic, srv.HandleBounce, log); err != nil && pctx.Err() == nil {
					log.Error("bounce mailbox", "err", err)
				} else if n > 0 {
					log.Info("bounce mailbox read", "messages", n)
				}
				select {
				case <-pctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	return stop, nil
}

// bounceDomain is the domain of the bounce address, the receiver's name.
func bounceDomain(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// opsAlerts is the built-in operator alerting on the server's metrics
// (internal/opsalert), raised through the security monitor's alerts.
func opsAlerts(srv *web.Server, dataDir string) *opsalert.Evaluator {
	e := &opsalert.Evaluator{Metrics: srv.Metrics, Monitor: srv.Security, Log: srv.Log, Now: time.Now,
		Disk: func() (uint64, uint64, error) { return metrics.DiskSpace(dataDir) }}
	if srv.Standby != nil {
		e.Standby = srv.Standby.Status
	}
	return e
}

// watchStandby makes the watcher of standby-url (nil when it is not set).
// The standby replicates the database: database when that is PostgreSQL,
// else events-database.
func watchStandby(cfg *config.Config, log *slog.Logger) (*standby.Watcher, error) {
	if cfg.StandbyURL == "" {
		return nil, nil
	}
	primary := cfg.AccountsURL()
	if !config.IsPostgres(primary) {
		primary = cfg.EventsURL()
	}
	if !config.IsPostgres(primary) {
		return nil, errors.New("standby-url is set, but neither database nor events-database is PostgreSQL: there is nothing for it to be the standby of")
	}
	return standby.Open(primary, cfg.StandbyURL, log)
}

// serveMetricsPort serves /metrics alone on metrics-listen (a loopback
// address, as config checks), when set.
func serveMetricsPort(cfg *config.Config, srv *web.Server, log *slog.Logger) (stop func(), err error) {
	if cfg.MetricsListen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics-listen %s: %w", cfg.MetricsListen, err)
	}
	hs := newHTTPServer(srv.MetricsPortHandler())
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics port stopped", "err", err)
		}
	}()
	log.Info("metrics port listening", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
	}, nil
}
