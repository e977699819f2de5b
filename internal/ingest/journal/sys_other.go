//go:build !linux

package journal

import (
	"errors"
	"os"
	"syscall"
)

// fdatasync falls back to a full fsync where fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }

// preallocate is a no-op off Linux: Prealloc is an optimisation only.
func preallocate(f *os.File, size int64) error { return nil }

// lockFile is a no-op off Linux; the collector is deployed on Linux.
func lockFile(f *os.File) error { return nil }

// isNoSpace reports whether err is a lack of space.
func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// freeSpace is unknown off Linux: Options.Reserve is not checked there.
func freeSpace(d *os.File) int64 { return -1 }
