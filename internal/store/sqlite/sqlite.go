// Package sqlite is the embedded account store.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"fjord/internal/store"
	"fjord/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating if needed) the SQLite account store at path and
// applies pending migrations. WAL lets a CLI process read and write while
// the server runs; synchronous=FULL because the audit log will live here.
func Open(ctx context.Context, path string) (*sqlstore.Accounts, error) {
	dsn := "file:" + url.PathEscape(path) + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open account store %s: %w", path, err)
	}
	// One writer at a time is SQLite's model; a single connection avoids
	// SQLITE_BUSY between our own goroutines.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open account store %s: %w", path, err)
	}
	if _, err := store.Migrate(ctx, db, "schema_migrations", migrations, "migrations", store.QuestionPlaceholder); err != nil {
		db.Close()
		return nil, fmt.Errorf("account store %s: %w", path, err)
	}
	return &sqlstore.Accounts{DB: db, D: Dialect, Schema: store.Schema{Table: "schema_migrations", Files: migrations, Dir: "migrations"}}, nil
}

// Dialect is SQLite's.
var Dialect = sqlstore.Dialect{Name: "sqlite", IsUnique: isUnique}

func isUnique(err error) bool {
	var e *sqlite3.Error
	if errors.As(err, &e) {
		return e.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
