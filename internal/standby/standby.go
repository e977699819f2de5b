// Package standby watches the PostgreSQL streaming-replication standby of
// the database (PRODUCT §9.4): whether it is up and replaying, and how far
// it is behind the primary, in WAL bytes and in seconds. /readyz, the
// metrics and the operator alerts read the last check; none of them asks
// the databases itself, so a slow standby never slows a probe.
package standby

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Timeout bounds one check: a standby that takes longer counts as down.
const Timeout = 5 * time.Second

// Status is the result of one check.
type Status struct {
	At time.Time // when the check ran; zero: not checked yet
	// Up: the standby answered and is in recovery (replaying the
	// primary's WAL). A standby that answers but is not in recovery was
	// promoted, or is not a standby at all: it replicates nothing.
	Up bool
	// Problem says why the standby is not up, in words that carry no
	// address, user name or password.
	Problem string
	// DownSince is when the standby was first found not up in the current
	// run of failed checks; zero while it is up.
	DownSince time.Time
	// LagBytes is the WAL the primary had written that the standby had
	// not replayed yet; 0 means caught up. -1: unknown (the primary did
	// not answer).
	LagBytes int64
	// LagSeconds: 0 when LagBytes is 0; otherwise the age of the last
	// transaction the standby replayed (its commit time on the primary,
	// against the standby's clock). The replay timestamp alone would grow
	// on an idle primary, where there is nothing to replay, so the byte
	// lag decides whether there is any lag at all. -1: unknown (nothing
	// replayed since the standby started, or LagBytes unknown).
	LagSeconds float64
}

// String is the standby's line of /readyz.
func (s Status) String() string {
	switch {
	case s.At.IsZero():
		return "standby: not checked yet"
	case !s.Up:
		return fmt.Sprintf("standby: DOWN since %s: %s", s.DownSince.UTC().Format(time.RFC3339), s.Problem)
	case s.LagBytes < 0:
		return "standby: replaying, lag unknown (the primary did not answer)"
	case s.LagSeconds < 0:
		return fmt.Sprintf("standby: replaying, %d bytes behind", s.LagBytes)
	}
	return fmt.Sprintf("standby: replaying, %d bytes and %.1f s behind", s.LagBytes, s.LagSeconds)
}

// Watcher checks the standby against the primary every Every.
type Watcher struct {
	Primary *sql.DB // the database the standby replicates
	Standby *sql.DB
	Every   time.Duration // default 10 s
	Log     *slog.Logger
	Now     func() time.Time

	mu   sync.Mutex
	last Status
}

// Open makes a watcher of the standby at standbyURL of the primary at
// primaryURL, each with one connection of its own (apart from the stores'
// pools, so a busy store does not delay the check). Nothing is dialled
// yet: a standby that is down at start is reported, not fatal.
func Open(primaryURL, standbyURL string, log *slog.Logger) (*Watcher, error) {
	p, err := openDB(primaryURL)
	if err != nil {
		return nil, fmt.Errorf("standby watcher: database: %w", err)
	}
	s, err := openDB(standbyURL)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("standby watcher: standby-url: %w", err)
	}
	return &Watcher{Primary: p, Standby: s, Log: log}, nil
}

func openDB(url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's parse errors quote the URL, password and all
		return nil, errors.New("not a valid PostgreSQL URL")
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > Timeout {
		cfg.ConnectTimeout = Timeout
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return db, nil
}

// Close closes the watcher's connections.
func (w *Watcher) Close() error {
	return errors.Join(w.Primary.Close(), w.Standby.Close())
}

func (w *Watcher) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Status is the last check's result (zero At before the first).
func (w *Watcher) Status() Status {
	if w == nil {
		return Status{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// Run checks at once and then every Every until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	every := w.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check asks both databases once and records the result. The primary is
// asked first, so WAL written between the two questions is not counted:
// a standby that keeps up reads as 0 bytes behind under load too.
func (w *Watcher) Check(ctx context.Context) Status {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	st := Status{At: w.now(), LagBytes: -1, LagSeconds: -1}

	var primaryLSN uint64
	var perr error
	var cur string
	if perr = w.Primary.QueryRowContext(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&cur); perr == nil {
		primaryLSN, perr = ParseLSN(cur)
	}

	var inRecovery bool
	var replay sql.NullString
	var age sql.NullFloat64
	err := w.Standby.QueryRowContext(ctx, `SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
		extract(epoch from now() - pg_last_xact_replay_timestamp())::float8`).Scan(&inRecovery, &replay, &age)
	switch {
	case err != nil:
		st.Problem = errClass(err)
	case !inRecovery:
		st.Problem = "not in recovery (promoted, or not a standby): it replicates nothing"
	case !replay.Valid:
		st.Problem = "in recovery but has replayed no WAL"
	default:
		st.Up = true
	}
	if st.Up && perr == nil {
		replayLSN, err := ParseLSN(replay.String)
		if err != nil {
			st.Up, st.Problem = false, "its replay position does not read: "+err.Error()
		} else {
			st.LagBytes = 0
			if primaryLSN > replayLSN {
				st.LagBytes = int64(primaryLSN - replayLSN)
			}
			switch {
			case st.LagBytes == 0:
				st.LagSeconds = 0
			case age.Valid:
				st.LagSeconds = max(0, age.Float64)
			}
		}
	}

	w.mu.Lock()
	prev := w.last
	if !st.Up {
		st.DownSince = prev.DownSince
		if st.DownSince.IsZero() {
			st.DownSince = st.At
		}
	}
	w.last = st
	w.mu.Unlock()

	log := w.Log
	if log == nil {
		log = slog.Default()
	}
	if !st.Up && (prev.Up || prev.At.IsZero() || prev.Problem != st.Problem) {
		log.Error("standby is not replicating", "problem", st.Problem)
	} else if st.Up && !prev.Up && !prev.At.IsZero() {
		log.Info("standby is replicating again", "lag_bytes", st.LagBytes)
	}
	if perr != nil && ctx.Err() == nil {
		log.Warn("standby watcher: the primary does not answer", "err", errClass(perr))
	}
	return st
}

// ParseLSN reads a WAL position as PostgreSQL prints it ("16/B374D848":
// the high and low 32 bits in hex) as a byte offset in the WAL.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("LSN %q: no slash", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("LSN %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("LSN %q: %w", s, err)
	}
	return h<<32 | l, nil
}

// errClass says what kind of failure err is without the driver's
// message, which may hold the host, the user and the password.
func errClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "connect"), errors.As(err, &ne):
		return "unreachable"
	}
	return "does not answer"
}
