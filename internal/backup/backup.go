// Package backup makes consistent online snapshots of both stores,
// compressed (zstd) and encrypted (age), with a manifest of checksums and
// of every table's rows; verifies them by restoring into scratch
// databases (the drill); restores them; and prunes them by a retention
// policy (PRODUCT §9.6).
//
// A backup is a directory in a Target, named by its ID: one sealed file
// per snapshot (name.zst.age) and manifest.json, written last, so that a
// backup without a manifest is one that never finished. drill.json holds
// the result of the last drill.
package backup

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
)

// Engines of a Source.
const (
	SQLite   = "sqlite"
	DuckDB   = "duckdb"
	Postgres = "postgres"
)

// Source is one database to back up.
type Source struct {
	Name   string  // what it holds: "accounts", "events", or "database" for both in one PostgreSQL database
	Engine string  // SQLite, DuckDB or Postgres
	DB     *sql.DB // the open store
	URL    string  // Postgres: the connection URL, for pg_dump
}

// Manifest describes a backup.
type Manifest struct {
	Format  int       `json:"format"` // 1
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Region  string    `json:"region,omitempty"`
	Version string    `json:"version,omitempty"`
	Files   []File    `json:"files"`
	// Audit is the audit log's length at the snapshot; a drill verifies the
	// restored chain and finds as many entries.
	Audit int64 `json:"audit_entries"`
}

// File is one sealed snapshot of a Source.
type File struct {
	Name   string           `json:"name"` // e.g. accounts.sqlite.zst.age
	Source string           `json:"source"`
	Engine string           `json:"engine"`
	Size   int64            `json:"size"`   // bytes as stored
	SHA256 string           `json:"sha256"` // of the bytes as stored
	Tables map[string]Table `json:"tables"` // of the snapshot, by table name
}

// ErrNoManifest: the backup never finished (or its manifest is gone).
var ErrNoManifest = errors.New("no manifest: the backup is incomplete")

// Options of Create.
type Options struct {
	Target     Target
	Sources    []Source
	Recipients []age.Recipient
	Region     string
	Version    string
	WorkDir    string // where snapshots wait before sealing (the data dir: same disk, not /tmp)
	Now        func() time.Time
}

// auditTable holds the audit log's entries, in the account store.
const auditTable = "audit_log"

// NewID names a backup by its time, sortable.
func NewID(t time.Time) string { return "fjord-" + t.UTC().Format(idLayout) }

const idLayout = "20060102T150405Z"

// ParseID is the time a backup's name says it was begun.
func ParseID(id string) (time.Time, error) {
	t, err := time.Parse("fjord-"+idLayout, id)
	if err != nil {
		return t, fmt.Errorf("%q is not a backup's name (fjord-YYYYMMDDTHHMMSSZ)", id)
	}
	return t, nil
}

// Create makes a backup of every source and returns its manifest.
func Create(ctx context.Context, o Options) (Manifest, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if len(o.Recipients) == 0 {
		return Manifest{}, errors.New("backup: no recipient to encrypt to")
	}
	m := Manifest{Format: 1, ID: NewID(now()), Created: now().UTC(), Region: o.Region, Version: o.Version}
	work, err := os.MkdirTemp(o.WorkDir, "backup-")
	if err != nil {
		return m, fmt.Errorf("backup: work dir: %w", err)
	}
	defer os.RemoveAll(work)
	w, err := o.Target.Begin(m.ID)
	if err != nil {
		return m, err
	}
	done := false
	defer func() {
		if !done {
			w.Abort()
		}
	}()
	for _, src := range o.Sources {
		plain := filepath.Join(work, src.Name+"."+src.Engine)
		tables, err := snapshot(ctx, src, plain)
		if err != nil {
			return m, fmt.Errorf("backup: snapshot of %s: %w", src.Name, err)
		}
		f := File{Name: src.Name + "." + src.Engine + ".zst.age", Source: src.Name, Engine: src.Engine, Tables: tables}
		if f.Size, f.SHA256, err = sealFile(plain, w, f.Name, o.Recipients); err != nil {
			return m, fmt.Errorf("backup: seal %s: %w", src.Name, err)
		}
		os.Remove(plain)
		m.Files = append(m.Files, f)
		if src.Name != "events" {
			m.Audit = tables[auditTable].Rows
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := w.Put(manifestName, b); err != nil {
		return m, err
	}
	if err := w.Commit(); err != nil {
		return m, err
	}
	done = true
	return m, nil
}

const (
	manifestName = "manifest.json"
	drillName    = "drill.json"
)

// sealFile compresses and encrypts a file into the backup being written,
// returning the size and SHA-256 of what was stored.
func sealFile(path string, w Writer, name string, to []age.Recipient) (int64, string, error) {
	in, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	out, err := w.Create(name)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(out, h)}
	if err := seal(cw, in, to); err != nil {
		out.Close()
		return 0, "", err
	}
	if err := out.Close(); err != nil {
		return 0, "", err
	}
	return cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadManifest reads a backup's manifest.
func ReadManifest(t Target, id string) (Manifest, error) {
	var m Manifest
	b, err := t.Get(id, manifestName)
	if errors.Is(err, os.ErrNotExist) {
		return m, fmt.Errorf("backup %s: %w", id, ErrNoManifest)
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("backup %s: manifest: %w", id, err)
	}
	if m.Format != 1 || m.ID != id {
		return m, fmt.Errorf("backup %s: manifest of format %d and id %q: not one this version reads", id, m.Format, m.ID)
	}
	return m, nil
}

// Entry is a backup as List shows it.
type Entry struct {
	Manifest
	Incomplete bool   // no manifest: it never finished (or it was lost)
	Unreadable string // the manifest is there but does not read: kept, never pruned
	Drill      *Drill // the last drill, if any
}

// List lists the backups of a target, oldest first.
func List(t Target) ([]Entry, error) {
	ids, err := t.List()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, id := range ids {
		m, err := ReadManifest(t, id)
		e := Entry{Manifest: m}
		if err != nil {
			e.ID = id
			e.Created, _ = ParseID(id)
			if errors.Is(err, ErrNoManifest) {
				e.Incomplete = true
			} else {
				e.Unreadable = err.Error()
			}
		}
		if b, err := t.Get(id, drillName); err == nil {
			var d Drill
			if json.Unmarshal(b, &d) == nil {
				e.Drill = &d
			}
		}
		out = append(out, e)
	}
	return out, nil
}
