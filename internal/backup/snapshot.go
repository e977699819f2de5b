package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" driver, for snapshot files
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for scratch databases
	_ "modernc.org/sqlite"             // the "sqlite" driver, for snapshot files
)

// Table is what the manifest keeps of a table: its rows, and a digest of
// their contents that does not depend on their order (the sum of each
// row's SHA-256), so a drill finds any row changed, lost or added.
type Table struct {
	Rows   int64  `json:"rows"`
	Digest string `json:"digest"`
}

// snapshot writes a consistent copy of a source to path (a database file,
// or pg_dump's archive) and returns its tables as copied.
func snapshot(ctx context.Context, src Source, path string) (map[string]Table, error) {
	switch src.Engine {
	case SQLite:
		// VACUUM INTO reads in one transaction: a consistent copy while
		// the server keeps writing (WAL lets it).
		if _, err := src.DB.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
			return nil, err
		}
		return fileTables(ctx, SQLite, path)
	case DuckDB:
		if err := duckCopy(ctx, src.DB, path); err != nil {
			return nil, err
		}
		return fileTables(ctx, DuckDB, path)
	case Postgres:
		return pgDump(ctx, src, path)
	}
	return nil, fmt.Errorf("unknown engine %q", src.Engine)
}

// duckCopy copies the live DuckDB database into a new file: COPY FROM
// DATABASE runs in one transaction, so the loader keeps appending
// beside it and the copy holds what was committed when it began.
func duckCopy(ctx context.Context, db *sql.DB, path string) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	var cur string
	if err := c.QueryRowContext(ctx, `SELECT current_database()`).Scan(&cur); err != nil {
		return err
	}
	// a copy broken off before (a cancelled context) may have left it
	// attached; the detach runs whatever becomes of ctx
	if _, err := c.ExecContext(ctx, `DETACH DATABASE IF EXISTS fjord_snapshot`); err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, `ATTACH `+sqlString(path)+` AS fjord_snapshot`); err != nil {
		return err
	}
	_, err = c.ExecContext(ctx, `COPY FROM DATABASE `+ident(cur)+` TO fjord_snapshot`)
	if _, derr := c.ExecContext(context.WithoutCancel(ctx), `DETACH fjord_snapshot`); err == nil {
		err = derr
	}
	return err
}

// fileTables opens a snapshot file and reads its tables.
func fileTables(ctx context.Context, engine, path string) (map[string]Table, error) {
	db, err := openFile(engine, path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return tables(ctx, db, engine)
}

func openFile(engine, path string) (*sql.DB, error) {
	switch engine {
	case SQLite:
		return sql.Open("sqlite", "file:"+url.PathEscape(path)+"?mode=ro")
	case DuckDB:
		return sql.Open("duckdb", path+"?access_mode=read_only&threads=1")
	}
	return nil, fmt.Errorf("no file of engine %q", engine)
}

// pgDump dumps the database with pg_dump (custom format, uncompressed:
// seal compresses), from a snapshot exported by a transaction that reads
// the tables' digests, so both see the same data.
func pgDump(ctx context.Context, src Source, path string) (map[string]Table, error) {
	tx, err := src.DB.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var snap string
	if err := tx.QueryRowContext(ctx, `SELECT pg_export_snapshot()`).Scan(&snap); err != nil {
		return nil, err
	}
	ts, err := tables(ctx, tx, Postgres)
	if err != nil {
		return nil, err
	}
	args := []string{"--format=custom", "--compress=0", "--no-owner", "--no-privileges", "--snapshot=" + snap, "--file=" + path}
	if s := schemaOf(src.URL); s != "" {
		args = append(args, "--schema="+s)
	}
	if err := pgTool(ctx, "pg_dump", src.URL, args...); err != nil {
		return nil, err
	}
	return ts, tx.Commit()
}

// pgTool runs pg_dump or pg_restore against a database URL, with the
// URL's password in PGPASSWORD rather than on the command line (where
// every user of the machine can read it), and errors that never repeat
// the URL.
func pgTool(ctx context.Context, tool, dbURL string, args ...string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return errors.New("the database URL does not parse")
	}
	env := os.Environ()
	// pgx takes search_path in the URL, libpq only as a server option
	if q := u.Query(); q.Has("search_path") {
		q.Set("options", "-csearch_path="+q.Get("search_path"))
		q.Del("search_path")
		u.RawQuery = q.Encode()
	}
	if q := u.Query(); q.Has("password") {
		env = append(env, "PGPASSWORD="+q.Get("password"))
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	if pw, ok := u.User.Password(); ok {
		env = append(env, "PGPASSWORD="+pw)
		u.User = url.User(u.User.Username())
	}
	bin, err := exec.LookPath(tool)
	if err != nil {
		return fmt.Errorf("%s is not installed (Debian: postgresql-client)", tool)
	}
	cmd := exec.CommandContext(ctx, bin, append(args, "--dbname="+u.String())...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000]
		}
		return fmt.Errorf("%s: %v: %s", tool, err, msg)
	}
	return nil
}

// schemaOf is the schema a URL's search_path puts the stores in ("":
// the default, and the dump holds the whole database).
func schemaOf(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return ""
	}
	s, _, _ := strings.Cut(u.Query().Get("search_path"), ",")
	return strings.TrimSpace(s)
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// tables reads every table of a database: rows and digest.
func tables(ctx context.Context, db querier, engine string) (map[string]Table, error) {
	var list string
	switch engine {
	case SQLite:
		list = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	case DuckDB:
		list = `SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() AND table_schema = 'main' AND table_type = 'BASE TABLE'`
	case Postgres:
		// ordinary tables and partitions, not partitioned parents (their
		// rows are the partitions')
		list = `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`
	default:
		return nil, fmt.Errorf("unknown engine %q", engine)
	}
	rows, err := db.QueryContext(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := map[string]Table{}
	for _, n := range names {
		t, err := digest(ctx, db, n)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}

// digest reads a table whole and sums its rows' hashes.
func digest(ctx context.Context, db querier, table string) (Table, error) {
	rows, err := db.QueryContext(ctx, `SELECT * FROM `+ident(table))
	if err != nil {
		return Table{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return Table{}, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var t Table
	var a, b uint64
	var buf []byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return t, err
		}
		buf = buf[:0]
		for _, v := range vals {
			buf = appendValue(buf, v)
			buf = append(buf, 0x1f)
		}
		h := sha256.Sum256(buf)
		a += binary.LittleEndian.Uint64(h[0:8])
		b += binary.LittleEndian.Uint64(h[8:16])
		t.Rows++
	}
	if err := rows.Err(); err != nil {
		return t, err
	}
	t.Digest = fmt.Sprintf("%016x%016x", a, b)
	return t, nil
}

// appendValue writes a value the same way whichever way the driver
// handed it over (a copy and its restore are read by the same engine).
func appendValue(buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, 0)
	case []byte:
		return hex.AppendEncode(append(buf, 'x'), x)
	case time.Time:
		return x.UTC().AppendFormat(append(buf, 't'), time.RFC3339Nano)
	case string:
		return append(append(buf, 's'), x...)
	}
	return fmt.Appendf(buf, "%T:%v", v, v)
}

// ident quotes an SQL identifier; sqlString an SQL string literal.
func ident(s string) string     { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func sqlString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// randomName is a name unlikely to be taken, for scratch databases.
func randomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
