package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"fjord/internal/collect"
	"fjord/internal/config"
	"fjord/internal/enrich"
	"fjord/internal/ingest/forward"
	"fjord/internal/ingest/jetstream"
	"fjord/internal/ingest/journal"
	"fjord/internal/metrics"
	"fjord/internal/web"
)

// Collect runs `fjord collect`: an edge collector (PRODUCT §9.5). It
// serves the tracker and the collection endpoint like fjord serve, enriches
// and hashes events with the main service's sites and salts, keeps what it
// accepts in a durable spool (a journal in the data dir) before answering
// 2xx, and forwards the spool to the main service.
func Collect(args []string, stdout, stderr io.Writer) error {
	var mainURL, tokenFile *string
	cfg, _, err := parse("collect", args, stderr, func(fs *flag.FlagSet) {
		mainURL = fs.String("main", "", "the main service's address, e.g. https://analytics.example.com (plain http only on loopback)")
		tokenFile = fs.String("token-file", "", "file holding this collector's token (fjord collector add prints it; mode 0600)")
	})
	if err != nil {
		return err
	}
	if *mainURL == "" || *tokenFile == "" {
		return errors.New("usage: fjord collect --main URL --token-file FILE [--listen ADDR] [--data-dir DIR] [settings]")
	}
	base, err := forward.ParseBase(*mainURL)
	if err != nil {
		return err
	}
	token, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	client := &forward.Client{Base: base, Token: token}
	mirror := &forward.Mirror{Path: filepath.Join(cfg.DataDir, "edge-state.json")}
	if err := mirror.Load(); err != nil {
		return err
	}
	if err := refresh(ctx, client, mirror, cfg.Region, cfg.Listen); err != nil {
		if !mirror.Has() {
			// nothing to enrich with yet: collection answers 503 (the
			// tracker tries its next endpoint) until the main service answers
			log.Warn("the main service cannot be reached and no earlier copy of its sites is here; collecting once it answers", "err", err)
		} else {
			log.Warn("the main service cannot be reached; collecting with the sites and salts of the last contact", "err", err, "from", mirror.Updated())
		}
		var refused *regionError
		if errors.As(err, &refused) {
			return err
		}
	}
	if err := checkRegion(mirror.AllowedRegions(), cfg.Region, cfg.Listen); err != nil {
		return err
	}

	spool, err := journal.Open(journal.Options{Dir: filepath.Join(cfg.DataDir, "spool"), QueueLen: cfg.QueueSize, Prealloc: true, Reserve: cfg.DiskReserve})
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer spool.Close()
	if st := spool.Stats(); st.TornBytesDropped > 0 {
		log.Warn("spool: dropped a torn tail left by a crash (never acknowledged)", "bytes", st.TornBytesDropped)
	}
	var geo *enrich.Geo
	if cfg.GeoIPDatabase != "" {
		if geo, err = enrich.OpenGeo(cfg.GeoIPDatabase); err != nil {
			return err
		}
		defer geo.Close()
	}
	salts := &collect.SaltKeeper{Store: mirror}
	fw := &forward.Forwarder{J: spool, To: client, Log: log, PosFile: filepath.Join(cfg.DataDir, "spool.pos"),
		RejectFile: filepath.Join(cfg.DataDir, "rejected-events.log")}
	if cfg.NATSURL != "" {
		// at scale the spool goes to the JetStream stream the main
		// service's writers consume; --main still gives the sites and salts
		nc, err := connectNATS(cfg, "fjord collect", log)
		if err != nil {
			return err
		}
		defer nc.Close()
		p, err := jetstream.NewPublisher(nc, streamConfig(cfg), 30*time.Second)
		if err != nil {
			return err
		}
		fw.To = streamSender{p}
	}
	srv := &web.Server{
		Log: log, Journal: spool, Salts: salts, TrustedProxies: cfg.TrustedProxies,
		Collector: &collect.Collector{Sites: &collect.SiteCache{Store: mirror}, Salts: salts, UA: enrich.NewUAParser(10000), Geo: geo},
		Now:       time.Now, Version: Version, Limits: limits(cfg), Forwarding: fw,
		Metrics: metrics.New(), MetricsToken: cfg.MetricsToken, MetricsRanges: cfg.MetricsRanges, DataDir: cfg.DataDir,
	}
	srv.Metrics.Watch(metrics.Sources{Journal: spool, DataDir: cfg.DataDir, Forwarding: func() metrics.ForwardStatus {
		st := fw.Status()
		return metrics.ForwardStatus{Pending: st.Pending, Oldest: st.Oldest, LastOK: st.LastOK,
			Forwarded: fw.Forwarded.Load(), Failures: fw.Failures.Load(), Rejected: fw.Rejected.Load()}
	}})

	fctx, cancelForward := context.WithCancel(context.Background())
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		fw.Run(fctx)
	}()
	// the forwarder reads the spool: it must be done before the spool
	// closes (deferred above, so it runs after this)
	stopForward := func() {
		cancelForward()
		<-forwarded
	}
	defer stopForward()
	go keepMirror(ctx, client, mirror, salts, cfg.Region, cfg.Listen, log)

	pl, err := listenPublic(ctx, cfg, log, srv.Listener)
	if err != nil {
		return err
	}
	pub := pl.server(srv.EdgeHandler())
	errc := make(chan error, 2)
	go func() { errc <- pub.Serve(pl.ln) }()
	pl.serveRedirect(errc)
	stopMetrics, err := serveMetricsPort(cfg, srv, log)
	if err != nil {
		pub.Close()
		return err
	}
	defer stopMetrics()
	log.Info("fjord collecting", "listen", pl.ln.Addr().String(), "main", base.String(), "data_dir", cfg.DataDir, "version", Version)
	srv.SetReady(true)

	waitForStop(ctx, errc, srv, log)
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pub.Shutdown(sctx)
	pl.shutdown(sctx)
	// what is spooled stays spooled: the next start forwards it
	return nil
}

// readToken reads a collector's token from a file only its owner may read.
func readToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("token-file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token-file %s: mode %04o lets others read the token; chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token-file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if !strings.HasPrefix(tok, forward.TokenPrefix) {
		return "", fmt.Errorf("token-file %s: not a collector token (they start %q; fjord collector add makes one)", path, forward.TokenPrefix)
	}
	return tok, nil
}

// regionError: the main service's policy does not allow this collector's
// region; the collector must not run.
type regionError struct{ msg string }

func (e *regionError) Error() string { return e.msg }

// checkRegion holds the edge to the main service's allowed regions
// (PRODUCT §9.7): an edge's spool holds data too. No list (no contact with
// the main service yet): nothing to check against.
func checkRegion(allowed []string, region, listen string) error {
	if len(allowed) == 0 {
		return nil
	}
	if region == "" {
		if config.IsLoopbackAddr(listen) {
			return nil // local use, as for fjord serve
		}
		return &regionError{fmt.Sprintf("region is empty: declare the region this collector and its spool are in; the main service allows %s", strings.Join(allowed, ", "))}
	}
	if !config.RegionAllowed(allowed, region) {
		return &regionError{fmt.Sprintf("region = %q is outside the main service's allowed regions (%s): this collector's spool would place data there", region, strings.Join(allowed, ", "))}
	}
	return nil
}

// refresh takes a new snapshot from the main service.
func refresh(ctx context.Context, c *forward.Client, m *forward.Mirror, region, listen string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	snap, err := c.Snapshot(ctx)
	if err != nil {
		return err
	}
	if err := checkRegion(snap.AllowedRegions, region, listen); err != nil {
		return err
	}
	return m.Update(snap, time.Now())
}

// MirrorEvery is how often an edge collector asks the main service for its
// sites and salts (a new site counts at the edge within this time).
const MirrorEvery = 30 * time.Second

// keepMirror refreshes the mirror and destroys salts older than 48 hours.
func keepMirror(ctx context.Context, c *forward.Client, m *forward.Mirror, salts *collect.SaltKeeper, region, listen string, log *slog.Logger) {
	t := time.NewTicker(MirrorEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := refresh(ctx, c, m, region, listen)
		var refused *regionError
		switch {
		case errors.As(err, &refused):
			// the policy changed under a running edge: it goes on
			// forwarding what it holds, and says so loudly
			log.Error("this collector's region is no longer allowed by the main service", "err", err)
		case err != nil && !failing:
			log.Warn("the main service cannot be reached; collecting with the sites and salts of the last contact", "err", err)
		case err == nil && failing:
			log.Info("the main service answers again")
		}
		failing = err != nil
		if _, err := salts.Drop(ctx, time.Now()); err != nil {
			log.Error("destroy old salts", "err", err)
		}
	}
}

// CollectorAdd runs `fjord collector add NAME --file FILE`: a new token for
// an edge collector, printed once, and its line added to the collectors
// file (created 0600).
func CollectorAdd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("collector add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "the collectors file (the main service's collectors-file)")
	var names []string
	for {
		// flags may come before or after the name
		if err := fs.Parse(args); err != nil {
			return err
		}
		if args = fs.Args(); len(args) == 0 {
			break
		}
		names, args = append(names, args[0]), args[1:]
	}
	if len(names) != 1 || *file == "" {
		return errors.New("usage: fjord collector add NAME --file COLLECTORS_FILE")
	}
	name := names[0]
	data, err := os.ReadFile(*file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("collectors file: %w", err)
	}
	have, err := forward.ParseTokens(data)
	if err != nil {
		return fmt.Errorf("collectors file %s: %w", *file, err)
	}
	for _, n := range have {
		if n == name {
			return fmt.Errorf("a collector named %q is in %s already; remove its line first to give it a new token", name, *file)
		}
	}
	token, line, err := forward.NewToken(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("collectors file: %w", err)
	}
	if len(data) > 0 && !strings.HasSuffix(string(data), "\n") {
		line = "\n" + line
	}
	_, err = fmt.Fprintln(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("collectors file: %w", err)
	}
	fmt.Fprintf(stdout, "Collector %q added to %s (a running server admits it within seconds).\nIts token is shown only now; put it in the collector's --token-file (mode 0600):\n  %s\n", name, *file, token)
	return nil
}
