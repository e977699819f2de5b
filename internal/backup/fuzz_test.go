package backup_test

import (
	"os"
	"path/filepath"
	"testing"

	"fjord/internal/backup"
)

// FuzzManifest: whatever a backup directory's manifest holds, reading
// it and listing the backup answer without panicking, and a manifest
// that reads names its own backup.
// fuzz-count: 2000x
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"format":1,"id":"fjord-20261201T020000Z","created":"2026-12-01T02:00:00Z","files":[{"name":"a","source":"accounts","engine":"sqlite","size":1,"sha256":"00","tables":{"t":{"rows":1,"digest":"x"}}}],"audit_entries":3}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`{`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		id := "fjord-20261201T020000Z"
		os.Mkdir(filepath.Join(dir, id), 0o700)
		os.WriteFile(filepath.Join(dir, id, "manifest.json"), b, 0o600)
		m, err := backup.ReadManifest(backup.Dir(dir), id)
		if err == nil && (m.ID != id || m.Format != 1) {
			t.Fatalf("a manifest of %q, format %d, read as %s's", m.ID, m.Format, id)
		}
		list, err := backup.List(backup.Dir(dir))
		if err != nil || len(list) != 1 {
			t.Fatalf("list: %+v %v", list, err)
		}
	})
}
