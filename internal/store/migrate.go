package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// Migrate applies the *.sql files of dir in name order, each once, and
// records them in the table named table (one per store, so both stores can
// share one PostgreSQL database). Files are never edited after they
// land; a change is a new file. Each file runs in its own transaction where
// the engine allows DDL in transactions (all three here do).
//
// placeholder formats the n-th (1-based) bind parameter of the engine.
func Migrate(ctx context.Context, db *sql.DB, table string, files fs.FS, dir string, placeholder func(int) string) (applied []string, err error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		name VARCHAR PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migrate: create %s: %w", table, err)
	}
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	done := map[string]bool{}
	rows, err := db.QueryContext(ctx, `SELECT name FROM `+table)
	if err != nil {
		return nil, fmt.Errorf("migrate: list applied: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("migrate: list applied: %w", err)
		}
		done[n] = true
	}
	rows.Close()
	for _, name := range names {
		if done[name] {
			continue
		}
		body, err := fs.ReadFile(files, path.Join(dir, name))
		if err != nil {
			return applied, fmt.Errorf("migrate: read %s: %w", name, err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return applied, fmt.Errorf("migrate %s: begin: %w", name, err)
		}
		for _, stmt := range splitSQL(string(body)) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return applied, fmt.Errorf("migrate %s: %w", name, err)
			}
		}
		q := fmt.Sprintf(`INSERT INTO %s (name, applied_at) VALUES (%s, %s)`, table, placeholder(1), placeholder(2))
		if _, err := tx.ExecContext(ctx, q, name, time.Now().Unix()); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migrate %s: record: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return applied, fmt.Errorf("migrate %s: commit: %w", name, err)
		}
		applied = append(applied, name)
	}
	return applied, nil
}

// splitSQL splits a migration file on semicolons at line ends. Migrations
// are plain DDL written by us, so no semicolons inside literals at a line end.
func splitSQL(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--") || t == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

// DollarPlaceholder is PostgreSQL's and DuckDB's $n.
func DollarPlaceholder(n int) string { return fmt.Sprintf("$%d", n) }

// QuestionPlaceholder is SQLite's ?.
func QuestionPlaceholder(int) string { return "?" }

// Millis converts a time to the stored form: UTC unix milliseconds.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis is the inverse of Millis.
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Schema names a store's migrations: the files embedded in the binary and
// the table that records which were applied. A store keeps it so that a
// readiness check can ask whether the database is at this binary's
// schema (CheckSchema) long after Open applied the migrations.
type Schema struct {
	Table string
	Files fs.FS
	Dir   string
}

// ErrSchema: the database's schema is not the one this binary's
// migrations make.
var ErrSchema = errors.New("schema is not current")

// CheckSchema compares the migrations recorded in the database with the
// binary's: nil when every file is applied and nothing else is recorded.
// A missing file means the schema is behind (a migration failed or was
// never run); an unknown record means a newer binary migrated the
// database, and this one may misread it. The error names the files, never
// the database's address.
func CheckSchema(ctx context.Context, db *sql.DB, s Schema) error {
	entries, err := fs.ReadDir(s.Files, s.Dir)
	if err != nil {
		return fmt.Errorf("read the binary's migrations: %w", err)
	}
	want := map[string]bool{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			want[e.Name()] = true
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT name FROM `+s.Table)
	if err != nil {
		return fmt.Errorf("list applied migrations: %w", err)
	}
	defer rows.Close()
	var unknown []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return fmt.Errorf("list applied migrations: %w", err)
		}
		if !want[n] {
			unknown = append(unknown, n)
		}
		delete(want, n)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list applied migrations: %w", err)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%w: the database has migrations this binary does not know (%s): a newer fjord migrated it", ErrSchema, strings.Join(unknown, ", "))
	}
	if len(want) > 0 {
		var missing []string
		for n := range want {
			missing = append(missing, n)
		}
		sort.Strings(missing)
		return fmt.Errorf("%w: %d migration(s) not applied (%s)", ErrSchema, len(missing), strings.Join(missing, ", "))
	}
	return nil
}
