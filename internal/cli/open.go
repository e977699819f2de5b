// Package cli implements the fjord sub-commands, one file each.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"fjord/internal/config"
	"fjord/internal/store"
	"fjord/internal/store/duckdb"
	"fjord/internal/store/postgres"
	"fjord/internal/store/sqlite"
	"fjord/internal/web"
)

// Stores are the two opened stores.
type Stores struct {
	Accounts store.AccountStore
	Events   store.EventStore
}

// Close closes both stores.
func (s *Stores) Close() {
	if s.Events != nil {
		s.Events.Close()
	}
	if s.Accounts != nil {
		s.Accounts.Close()
	}
}

// OpenStores opens (and migrates) the stores the config names.
func OpenStores(ctx context.Context, cfg *config.Config) (*Stores, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	var st Stores
	var err error
	if u := cfg.AccountsURL(); config.IsPostgres(u) {
		st.Accounts, err = postgres.OpenAccounts(ctx, u)
	} else {
		st.Accounts, err = sqlite.Open(ctx, u)
	}
	if err != nil {
		return nil, err
	}
	if u := cfg.EventsURL(); config.IsPostgres(u) {
		st.Events, err = postgres.OpenEvents(ctx, u)
	} else {
		st.Events, err = duckdb.Open(ctx, u, duckdb.Options{MemoryLimit: cfg.DuckDBMemoryLimit, Threads: cfg.DuckDBThreads})
	}
	if err != nil {
		st.Accounts.Close()
		return nil, err
	}
	return &st, nil
}

// errLocked means a server owns the data dir.
var errLocked = errors.New("data dir is in use by a running fjord serve")

// lockDataDir takes the data dir's lock file: one process at a time owns
// the journal and the embedded event store. The lock goes with the
// process, also on kill -9.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	return f, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(web.LogRequestIDs(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})))
}
