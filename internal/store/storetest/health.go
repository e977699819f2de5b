package storetest

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"fjord/internal/store"
)

// Health checks a freshly opened store's readiness answers: it pings, its
// schema is current, and CheckSchema notices both a database behind the
// binary (a migration record missing) and one ahead of it (a record the
// binary does not know). db and schema are the store's own.
func Health(t *testing.T, h store.Health, db *sql.DB, schema store.Schema) {
	ctx := context.Background()
	if err := h.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := h.CheckSchema(ctx); err != nil {
		t.Fatalf("schema of a freshly opened store: %v", err)
	}
	// ahead: a record this binary has no file for
	if _, err := db.ExecContext(ctx, `INSERT INTO `+schema.Table+` (name, applied_at) VALUES ('9999_from_the_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	err := h.CheckSchema(ctx)
	if !errors.Is(err, store.ErrSchema) || !strings.Contains(err.Error(), "9999_from_the_future.sql") {
		t.Fatalf("a database migrated by a newer binary: %v", err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM `+schema.Table+` WHERE name = '9999_from_the_future.sql'`); err != nil {
		t.Fatal(err)
	}
	// behind: the newest record removed, as if its migration never ran
	var newest string
	if err := db.QueryRowContext(ctx, `SELECT MAX(name) FROM `+schema.Table).Scan(&newest); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM `+schema.Table+` WHERE name = '`+newest+`'`); err != nil {
		t.Fatal(err)
	}
	err = h.CheckSchema(ctx)
	if !errors.Is(err, store.ErrSchema) || !strings.Contains(err.Error(), newest) || !strings.Contains(err.Error(), "not applied") {
		t.Fatalf("a database behind the binary (%s removed): %v", newest, err)
	}
}
