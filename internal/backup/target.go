package backup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Target is where backups are kept: a directory now; object storage
// fits the same interface (a backup is a prefix, Commit writes the
// manifest last).
type Target interface {
	// Begin starts writing a backup; nothing of it is listed before Commit.
	Begin(id string) (Writer, error)
	// List returns the IDs of committed backups, oldest first.
	List() ([]string, error)
	// Open reads a file of a backup; Get reads a small one whole.
	Open(id, name string) (io.ReadCloser, error)
	Get(id, name string) ([]byte, error)
	// Put writes a small file into a committed backup (a drill's result),
	// replacing it whole.
	Put(id, name string, b []byte) error
	// Delete removes a backup.
	Delete(id string) error
	// Where names the target for people (never holds a secret).
	Where() string
}

// Writer writes one backup.
type Writer interface {
	Create(name string) (io.WriteCloser, error)
	Put(name string, b []byte) error
	Commit() error
	Abort()
}

// Dir is a Target in a local or mounted directory: each backup in a
// subdirectory named by its ID, written under a hidden name and renamed
// when complete, every file and directory synced.
type Dir string

func (d Dir) Where() string { return string(d) }

func (d Dir) path(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return "", fmt.Errorf("backup id %q: not a backup's name", id)
	}
	return filepath.Join(string(d), id), nil
}

func (d Dir) Begin(id string) (Writer, error) {
	final, err := d.path(id)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("backup target: %w", err)
	}
	if _, err := os.Stat(final); err == nil {
		return nil, fmt.Errorf("backup target: %s exists already", final)
	}
	tmp := filepath.Join(string(d), "."+id+".partial")
	os.RemoveAll(tmp) // an earlier attempt that broke off
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("backup target: %w", err)
	}
	return &dirWriter{dir: tmp, final: final}, nil
}

type dirWriter struct{ dir, final string }

func (w *dirWriter) Create(name string) (io.WriteCloser, error) {
	f, err := os.OpenFile(filepath.Join(w.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("backup target: %w", err)
	}
	return syncCloser{f}, nil
}

// syncCloser syncs a file before closing it: a backup is only a backup
// once it is on the disk.
type syncCloser struct{ *os.File }

func (s syncCloser) Close() error {
	if err := s.File.Sync(); err != nil {
		s.File.Close()
		return fmt.Errorf("backup target: %w", err)
	}
	return s.File.Close()
}

func (w *dirWriter) Put(name string, b []byte) error {
	f, err := w.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("backup target: %w", err)
	}
	return f.Close()
}

func (w *dirWriter) Commit() error {
	if err := syncDir(w.dir); err != nil {
		return err
	}
	if err := os.Rename(w.dir, w.final); err != nil {
		return fmt.Errorf("backup target: %w", err)
	}
	return syncDir(filepath.Dir(w.final))
}

func (w *dirWriter) Abort() { os.RemoveAll(w.dir) }

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("backup target: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup target: sync %s: %w", dir, err)
	}
	return nil
}

func (d Dir) List() ([]string, error) {
	es, err := os.ReadDir(string(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup target: %w", err)
	}
	var ids []string
	for _, e := range es {
		// only backups' names: anything else in the directory (a mount's
		// lost+found, the operator's own files) is not ours to list or prune
		if _, err := ParseID(e.Name()); e.IsDir() && err == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

func (d Dir) Open(id, name string) (io.ReadCloser, error) {
	p, err := d.path(id)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("backup file %q: not a file's name", name)
	}
	return os.Open(filepath.Join(p, name))
}

func (d Dir) Get(id, name string) ([]byte, error) {
	f, err := d.Open(id, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 16<<20))
}

func (d Dir) Put(id, name string, b []byte) error {
	p, err := d.path(id)
	if err != nil {
		return err
	}
	tmp := filepath.Join(p, "."+name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("backup target: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("backup target: %w", err)
	}
	if err := (syncCloser{f}).Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(p, name)); err != nil {
		return fmt.Errorf("backup target: %w", err)
	}
	return syncDir(p)
}

func (d Dir) Delete(id string) error {
	p, err := d.path(id)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("backup target: %w", err)
	}
	return nil
}
