package journal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	// MaxRecordSize is the largest payload Append accepts. It bounds the
	// memory a reader needs for one record and lets recovery reject absurd
	// lengths in a torn header without reading them.
	MaxRecordSize = 64 << 10

	// headerSize is u32 little-endian payload length + u32 CRC-32C.
	headerSize = 8

	segmentExt    = ".wal"
	segmentDigits = 20 // fits any uint64, and names sort like numbers
	lockName      = "LOCK"
)

// castagnoli is read-only after initialisation. CRC-32C rather than IEEE
// because it has hardware support (SSE4.2, ARMv8) and better error detection
// for the short records a collector writes.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends rec's on-disk frame (header + payload) to dst.
func appendFrame(dst, rec []byte) []byte {
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(rec)))
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(rec, castagnoli))
	dst = append(dst, h[:]...)
	return append(dst, rec...)
}

func segmentName(num uint64) string {
	return fmt.Sprintf("%0*d%s", segmentDigits, num, segmentExt)
}

// parseSegmentName returns the number of a segment file name, or false for
// any other file (the lock file, an operator's notes) so they are left alone.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != segmentDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// CorruptError reports a record that fails its length or checksum check
// where the journal had promised it was durable: inside an older segment, or
// before End() in the newest. Such data is never skipped silently, because
// skipping would lose acknowledged events without anyone noticing.
type CorruptError struct {
	Dir     string
	Segment uint64
	Offset  int64 // where the bad record starts
	Reason  string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("journal: corrupt record in %s at offset %d: %s",
		filepath.Join(e.Dir, segmentName(e.Segment)), e.Offset, e.Reason)
}

// checkHeader validates a record header whose frame starts at off in a
// region that ends at limit. It returns the payload length, or a reason the
// header cannot start a valid record ("" if it can).
func checkHeader(h []byte, off, limit int64) (n uint32, reason string) {
	n = binary.LittleEndian.Uint32(h[0:4])
	switch {
	case n == 0:
		return 0, "zero length"
	case n > MaxRecordSize:
		return n, fmt.Sprintf("length %d exceeds maximum %d", n, MaxRecordSize)
	case off+headerSize+int64(n) > limit:
		return n, fmt.Sprintf("length %d runs past end %d", n, limit)
	}
	return n, ""
}

// scanValid reads the records of a segment from offset 0 and returns the
// offset just after the last valid one: the first header that is short, has
// a zero or oversized length, or whose payload fails its CRC ends the scan.
// It streams through a fixed buffer so start-up memory does not grow with the
// segment size.
func scanValid(f *os.File, size int64) (int64, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 1<<20)
	var h [headerSize]byte
	payload := make([]byte, MaxRecordSize)
	var off int64
	for size-off >= headerSize {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return 0, fmt.Errorf("journal: scan %s: %w", f.Name(), err)
		}
		n, reason := checkHeader(h[:], off, size)
		if reason != "" {
			break
		}
		p := payload[:n]
		if _, err := io.ReadFull(br, p); err != nil {
			return 0, fmt.Errorf("journal: scan %s: %w", f.Name(), err)
		}
		if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(h[4:8]) {
			break
		}
		off += headerSize + int64(n)
	}
	return off, nil
}

// lastNonZero returns the offset just after the last non-zero byte in
// [from, size), or from if the range is all zeros (preallocated space or a
// clean end).
func lastNonZero(f *os.File, from, size int64) (int64, error) {
	const chunk = 1 << 20
	buf := make([]byte, 2*chunk)
	buf, zeros := buf[:chunk], buf[chunk:]
	end := from
	for off := from; off < size; off += chunk {
		b := buf[:min(chunk, size-off)]
		if _, err := f.ReadAt(b, off); err != nil {
			return 0, fmt.Errorf("journal: read %s: %w", f.Name(), err)
		}
		// A preallocated segment is mostly zeros: compare whole chunks (a
		// vectorised memequal) and only look for the last non-zero byte in a
		// chunk that has one.
		if bytes.Equal(b, zeros[:len(b)]) {
			continue
		}
		end = off + int64(len(bytes.TrimRight(b, "\x00")))
	}
	return end, nil
}
