package backup

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"

	"filippo.io/age"

	"fjord/internal/audit"
	"fjord/internal/store/postgres"
	"fjord/internal/store/sqlite"
)

// Drill is the result of restoring a backup into scratch databases and
// comparing them with its manifest.
type Drill struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	OK      bool      `json:"ok"`
	Reason  string    `json:"reason,omitempty"` // why it failed
	Seconds float64   `json:"seconds"`
}

// Check is what a drill needs.
type Check struct {
	Key      Key
	Scratch  string // a directory for the restored files (removed after)
	AuditKey ed25519.PublicKey
	// Postgres is a database on the server scratch databases are made on,
	// and its URL, for backups of PostgreSQL (nil: they cannot be drilled).
	Postgres    *sql.DB
	PostgresURL string
	Now         func() time.Time
}

// Verify drills a backup: every file's checksum, its decryption, the
// engine's own integrity check, every table's rows and digest against
// the manifest, and the audit chain. The result is written next to the
// backup (drill.json) and returned; a failed drill has a Reason.
func Verify(ctx context.Context, t Target, id string, c Check) Drill {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	start := now()
	d := Drill{ID: id, At: start.UTC()}
	if err := drill(ctx, t, id, c); err != nil {
		d.Reason = err.Error()
	} else {
		d.OK = true
	}
	d.Seconds = now().Sub(start).Seconds()
	if b, err := json.Marshal(d); err == nil {
		if err := t.Put(id, drillName, b); err != nil && d.OK {
			d.OK, d.Reason = false, "recording the drill: "+err.Error()
		}
	}
	return d
}

func drill(ctx context.Context, t Target, id string, c Check) error {
	m, err := ReadManifest(t, id)
	if err != nil {
		return err
	}
	if err := checkSums(t, m); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(c.Scratch, "drill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, f := range m.Files {
		plain := filepath.Join(dir, f.Source+"."+f.Engine)
		if err := unsealTo(t, id, f, c.Key, plain); err != nil {
			return err
		}
		if err := checkRestored(ctx, f, plain, m.Audit, c); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		os.Remove(plain)
	}
	return nil
}

// checkSums reads every file of a backup and compares size and SHA-256
// with the manifest: a corrupted or cut file is named before anything
// is decrypted.
func checkSums(t Target, m Manifest) error {
	if len(m.Files) == 0 {
		return errors.New("the manifest lists no files")
	}
	for _, f := range m.Files {
		r, err := t.Open(m.ID, f.Name)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		if n != f.Size {
			return fmt.Errorf("%s: %d bytes, the manifest says %d: truncated or grown", f.Name, n, f.Size)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
			return fmt.Errorf("%s: checksum %s, the manifest says %s: the file is corrupted", f.Name, got[:16], f.SHA256[:min(16, len(f.SHA256))])
		}
	}
	return nil
}

// unsealTo decrypts and decompresses a file of a backup to path.
func unsealTo(t Target, id string, f File, k Key, path string) error {
	r, err := t.Open(id, f.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	defer r.Close()
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	var ids []age.Identity
	if k.Identity != nil {
		ids = append(ids, k.Identity)
	}
	if err := unseal(out, r, ids); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// checkRestored runs the engine's integrity check on a restored file (or
// restores a dump into a scratch database), compares its tables with
// the manifest's and verifies the audit chain in it.
func checkRestored(ctx context.Context, f File, plain string, auditEntries int64, c Check) error {
	var got map[string]Table
	var chain audit.Store
	switch f.Engine {
	case SQLite:
		db, err := openFile(SQLite, plain)
		if err != nil {
			return err
		}
		var res string
		err = db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res)
		if err == nil && res != "ok" {
			err = fmt.Errorf("integrity check: %s", res)
		}
		if err == nil {
			got, err = tables(ctx, db, SQLite)
		}
		db.Close()
		if err != nil {
			return err
		}
		if f.Source != "events" {
			st, err := sqlite.Open(ctx, plain)
			if err != nil {
				return err
			}
			defer st.Close()
			chain = st
		}
	case DuckDB:
		var err error
		if got, err = fileTables(ctx, DuckDB, plain); err != nil {
			return fmt.Errorf("DuckDB does not open it: %w", err)
		}
	case Postgres:
		if c.Postgres == nil {
			return errors.New("a PostgreSQL dump, and no PostgreSQL server to restore it on")
		}
		scratchURL, drop, err := scratchDatabase(ctx, c.Postgres, c.PostgresURL)
		if err != nil {
			return err
		}
		defer drop()
		if err := pgTool(ctx, "pg_restore", scratchURL, "--no-owner", "--no-privileges", "--exit-on-error", plain); err != nil {
			return err
		}
		db, err := sql.Open("pgx", scratchURL)
		if err != nil {
			return err
		}
		defer db.Close()
		if got, err = tables(ctx, db, Postgres); err != nil {
			return err
		}
		if f.Source != "events" {
			st, err := postgres.OpenAccounts(ctx, scratchURL)
			if err != nil {
				return err
			}
			defer st.Close()
			chain = st
		}
	default:
		return fmt.Errorf("unknown engine %q", f.Engine)
	}
	if err := sameTables(f.Tables, got); err != nil {
		return err
	}
	if chain != nil {
		rep, err := audit.Verify(ctx, chain, c.AuditKey)
		if err != nil {
			return fmt.Errorf("audit chain: %w", err)
		}
		if rep.Entries != auditEntries {
			return fmt.Errorf("audit chain: %d entries, the manifest says %d", rep.Entries, auditEntries)
		}
	}
	return nil
}

// sameTables names the first table whose rows differ.
func sameTables(want, got map[string]Table) error {
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g, ok := got[n]
		switch {
		case !ok:
			return fmt.Errorf("table %s is missing", n)
		case g.Rows != want[n].Rows:
			return fmt.Errorf("table %s: %d rows, the manifest says %d", n, g.Rows, want[n].Rows)
		case g.Digest != want[n].Digest:
			return fmt.Errorf("table %s: its %d rows differ from the snapshot's (digest)", n, g.Rows)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			return fmt.Errorf("table %s is not in the manifest", n)
		}
	}
	return nil
}

// scratchDatabase makes an empty database on the server of dbURL and
// returns its URL and a func that drops it.
func scratchDatabase(ctx context.Context, db *sql.DB, dbURL string) (string, func(), error) {
	name := randomName("fjord_drill_")
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+ident(name)); err != nil {
		return "", nil, fmt.Errorf("create scratch database: %w", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", nil, errors.New("the database URL does not parse")
	}
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+ident(name)+` WITH (FORCE)`)
	}
	return u.String(), drop, nil
}

// RestoreTo is where Restore puts a backup.
type RestoreTo struct {
	DataDir string // embedded stores: accounts.db and events.duckdb go here
	// Databases: the PostgreSQL database each dump goes into, by its
	// source's name ("accounts", "events", or "database" for both).
	Databases map[string]string
	// Force: replace existing stores (never a running server's: the
	// caller holds the data dir's lock).
	Force bool
}

// Restore checks a backup's files and restores them: every place is
// checked before anything is written, and the embedded files replace the
// old ones only once all are decrypted.
func Restore(ctx context.Context, t Target, id string, k Key, to RestoreTo) (Manifest, error) {
	m, err := ReadManifest(t, id)
	if err != nil {
		return m, err
	}
	if err := checkSums(t, m); err != nil {
		return m, err
	}
	files := map[string]string{} // embedded file name -> destination
	for _, f := range m.Files {
		switch f.Engine {
		case SQLite, DuckDB:
			if to.DataDir == "" {
				return m, fmt.Errorf("%s: restoring an embedded store needs a data dir", f.Name)
			}
			name := "accounts.db"
			if f.Engine == DuckDB {
				name = "events.duckdb"
			}
			dest := filepath.Join(to.DataDir, name)
			if _, err := os.Stat(dest); err == nil && !to.Force {
				return m, fmt.Errorf("%s exists: restoring would replace it; give --force to replace it", dest)
			}
			files[f.Name] = dest
		case Postgres:
			u := to.Databases[f.Source]
			if u == "" {
				return m, fmt.Errorf("%s: restoring a PostgreSQL dump of %s needs its database URL", f.Name, f.Source)
			}
			if n, err := pgTables(ctx, u); err != nil {
				return m, err
			} else if n > 0 && !to.Force {
				return m, fmt.Errorf("the %s database holds %d tables: restoring would replace them; give --force to replace them", f.Source, n)
			}
		default:
			return m, fmt.Errorf("%s: unknown engine %q", f.Name, f.Engine)
		}
	}
	if to.DataDir != "" {
		if err := os.MkdirAll(to.DataDir, 0o700); err != nil {
			return m, err
		}
	}
	var tmps []string
	defer func() {
		for _, p := range tmps {
			os.Remove(p)
		}
	}()
	for _, f := range m.Files {
		if dest, ok := files[f.Name]; ok {
			tmp := dest + ".restoring"
			os.Remove(tmp)
			tmps = append(tmps, tmp)
			if err := unsealTo(t, id, f, k, tmp); err != nil {
				return m, err
			}
			continue
		}
		if err := restorePostgres(ctx, t, id, f, k, to.Databases[f.Source], to.DataDir); err != nil {
			return m, err
		}
	}
	for _, f := range m.Files {
		dest, ok := files[f.Name]
		if !ok {
			continue
		}
		for _, side := range []string{"-wal", "-shm", ".wal"} {
			os.Remove(dest + side)
		}
		if err := os.Rename(dest+".restoring", dest); err != nil {
			return m, err
		}
	}
	if to.DataDir != "" {
		return m, syncDir(to.DataDir)
	}
	return m, nil
}

// pgTables counts the tables in the schema a database URL names.
func pgTables(ctx context.Context, dbURL string) (int, error) {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return 0, errors.New("the database URL does not parse")
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = current_schema() AND c.relkind IN ('r', 'p')`).Scan(&n); err != nil {
		return 0, fmt.Errorf("the database to restore into does not answer: %w", err)
	}
	return n, nil
}

// restorePostgres restores a dump with pg_restore, in one transaction,
// replacing what is there (Restore has checked it may).
func restorePostgres(ctx context.Context, t Target, id string, f File, k Key, dbURL, work string) error {
	tmp, err := os.CreateTemp(work, "restore-*.pgdump")
	if err != nil {
		return err
	}
	tmp.Close()
	os.Remove(tmp.Name())
	defer os.Remove(tmp.Name())
	if err := unsealTo(t, id, f, k, tmp.Name()); err != nil {
		return err
	}
	return pgTool(ctx, "pg_restore", dbURL, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--clean", "--if-exists", tmp.Name())
}
