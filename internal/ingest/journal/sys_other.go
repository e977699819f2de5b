//go:build !linux

package journal

import "os"

// fdatasync falls back to a full fsync where fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }

// preallocate is a no-op off Linux: Prealloc is an optimisation only.
func preallocate(f *os.File, size int64) error { return nil }

// lockFile is a no-op off Linux; the collector is deployed on Linux.
func lockFile(f *os.File) error { return nil }
