package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"fjord/internal/collect"
	"fjord/internal/config"
	"fjord/internal/enrich"
	"fjord/internal/ingest"
	"fjord/internal/ingest/journal"
	"fjord/internal/report"
)

// engine is the write path with its stores: what `fjord serve` runs, and
// what a CLI command runs when no server owns the data dir (so that it
// first applies whatever the journal holds, e.g. after a kill -9).
type engine struct {
	log        *slog.Logger
	lock       *os.File
	st         *Stores
	j          *journal.Journal
	loader     *ingest.Loader
	stopLoader context.CancelFunc
	loaderDone chan error
	salts      *collect.SaltKeeper
	collector  *collect.Collector
	geo        *enrich.Geo
	reports    report.Engine
}

func startEngine(ctx context.Context, cfg *config.Config, log *slog.Logger) (*engine, error) {
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	e := &engine{log: log, lock: lock}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	if e.st, err = OpenStores(ctx, cfg); err != nil {
		return nil, err
	}
	var isEngine bool
	if e.reports, isEngine = e.st.Events.(report.Engine); !isEngine {
		return nil, fmt.Errorf("event store %T answers no reports", e.st.Events)
	}
	if ru, ok := e.st.Events.(report.Rollups); ok {
		accounts := e.st.Accounts
		ru.KeepRollupsLive(func(id int64) (string, bool) {
			// asked once per site, with the store's write lock held
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := accounts.SiteByID(ctx, id)
			if err != nil {
				return "", false
			}
			return s.TimeZone, true
		})
	}
	if cfg.GeoIPDatabase != "" {
		if e.geo, err = enrich.OpenGeo(cfg.GeoIPDatabase); err != nil {
			return nil, err
		}
	}
	e.j, err = journal.Open(journal.Options{Dir: cfg.JournalDir(), QueueLen: cfg.QueueSize, Prealloc: true, Reserve: cfg.DiskReserve})
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if st := e.j.Stats(); st.TornBytesDropped > 0 {
		log.Warn("journal: dropped a torn tail left by a crash (never acknowledged)", "bytes", st.TornBytesDropped)
	}
	e.loader = &ingest.Loader{J: e.j, Store: e.st.Events, Log: log, RejectFile: filepath.Join(cfg.DataDir, "rejected-events.log")}
	if config.IsPostgres(cfg.EventsURL()) {
		// A PostgreSQL event store can fail over to a standby that lacks
		// the last batches; an embedded one lives and dies with the
		// journal beside it, so keeping segments would only cost disk.
		e.loader.KeepApplied = cfg.JournalKeep
	}
	lctx, cancel := context.WithCancel(context.Background())
	e.stopLoader = cancel
	e.loaderDone = make(chan error, 1)
	go func() { e.loaderDone <- e.loader.Run(lctx) }()
	e.salts = &collect.SaltKeeper{Store: e.st.Events}
	sites := &collect.SiteCache{Store: e.st.Accounts}
	if err := sites.Reload(ctx); err != nil {
		return nil, err
	}
	e.collector = &collect.Collector{Sites: sites, Salts: e.salts, UA: enrich.NewUAParser(10000), Geo: e.geo}
	ok = true
	return e, nil
}

// close drains in order, after the caller stopped taking requests: the
// loader applies everything durable, then the journal and stores close.
func (e *engine) close() {
	if e.stopLoader != nil {
		e.stopLoader()
		if err := <-e.loaderDone; err != nil {
			e.log.Error("loader stopped with an error; the journal keeps the rest for the next start", "err", err)
		}
	}
	if e.j != nil {
		e.j.Close()
	}
	if e.st != nil {
		e.st.Close()
	}
	e.geo.Close()
	if e.lock != nil {
		e.lock.Close()
	}
}
