package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
)

// span is where Read reads next: one segment from pos up to its durable
// limit.
type span struct {
	pos    Pos
	limit  int64 // bytes of durable records in the segment; -1: unknown, use the file size
	sealed bool  // the writer has moved past this segment: at limit, continue with the next
}

// locate resolves pos against the retained segments and the durable end.
// more is false when nothing durable lies at or after pos.
func (j *Journal) locate(pos Pos) (sp span, more bool, err error) {
	j.stateMu.Lock()
	defer j.stateMu.Unlock()
	first := j.segs[0].num
	end := j.end
	if pos.Segment < first {
		// The zero Pos, or a position in a segment Release has deleted:
		// Release only deletes segments whose records were all consumed, so
		// reading continues at the oldest retained one.
		if end.Segment < first {
			return span{}, false, nil // the new segment has no durable records yet
		}
		pos = Pos{Segment: first}
	}
	if end.less(pos) {
		return span{}, false, fmt.Errorf("journal: read from %v: beyond the end %v", pos, end)
	}
	if pos == end {
		return span{}, false, nil
	}
	sp.pos = pos
	if pos.Segment == end.Segment {
		sp.limit = end.Offset
		return sp, true, nil
	}
	sp.sealed = true
	sp.limit = j.segs[pos.Segment-first].end
	return sp, true, nil
}

// setSegmentEnd records the end of a segment sealed before Open, found by
// reading it, so later Reads and Release need not find it again.
func (j *Journal) setSegmentEnd(num uint64, end int64) {
	j.stateMu.Lock()
	defer j.stateMu.Unlock()
	if len(j.segs) > 0 && num >= j.segs[0].num && num-j.segs[0].num < uint64(len(j.segs)) {
		j.segs[num-j.segs[0].num].end = end
	}
}

func (j *Journal) isReleased(num uint64) bool {
	j.stateMu.Lock()
	defer j.stateMu.Unlock()
	return num < j.segs[0].num
}

// Read returns up to max durable records after from, and the position after
// the last one returned. It reads across segment boundaries and never past
// End(). maxBytes bounds the total payload, except that the first record is
// always returned whatever its size, so a large record cannot stall a
// reader. With nothing new it returns no records and next == from.
//
// The returned slices are freshly allocated: the caller may keep them.
//
// A record that fails its checks inside durable data is returned as a
// *CorruptError; the records before it are returned too, with next just
// before the bad one.
func (j *Journal) Read(from Pos, max int, maxBytes int) (recs [][]byte, next Pos, err error) {
	if max <= 0 || maxBytes <= 0 {
		return nil, from, fmt.Errorf("journal: Read needs positive max and maxBytes, got %d and %d", max, maxBytes)
	}
	next = from
	total := 0
	pos := from
	for len(recs) < max {
		sp, more, err := j.locate(pos)
		if err != nil || !more {
			return recs, next, err
		}
		pos = sp.pos
		var done bool
		had := len(recs)
		recs, pos, done, err = j.readSpan(sp, recs, &total, max, maxBytes)
		if len(recs) > had {
			next = pos
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && j.isReleased(pos.Segment) {
				continue // released under us; locate moves on to the oldest segment
			}
			return recs, next, err
		}
		if !done || !sp.sealed {
			break // limits reached, or at the durable end of the active segment
		}
		pos = Pos{Segment: pos.Segment + 1}
	}
	return recs, next, nil
}

// readSpan appends records from one segment. done reports that it reached
// the end of the span's data (rather than max or maxBytes).
func (j *Journal) readSpan(sp span, recs [][]byte, total *int, max, maxBytes int) (_ [][]byte, pos Pos, done bool, err error) {
	pos = sp.pos
	f, err := os.Open(j.segmentPath(pos.Segment))
	if err != nil {
		return recs, pos, false, fmt.Errorf("journal: read: %w", err)
	}
	defer f.Close()
	limit, unknown := sp.limit, sp.limit < 0
	if unknown {
		// Sealed before this Open: the file ends at its last record, or in
		// zero padding if a crash lost the truncation of the preallocated tail.
		fi, err := f.Stat()
		if err != nil {
			return recs, pos, false, fmt.Errorf("journal: read: %w", err)
		}
		limit = fi.Size()
	}
	corrupt := func(off int64, reason string) error {
		return &CorruptError{Dir: j.opts.Dir, Segment: pos.Segment, Offset: off, Reason: reason}
	}
	if pos.Offset > limit {
		return recs, pos, false, fmt.Errorf("journal: read from %v: segment %s has only %d bytes",
			pos, segmentName(pos.Segment), limit)
	}
	// The end of a segment sealed before Open: the rest must be zero padding,
	// anything else is a damaged record in the middle of the journal.
	zeroEnd := func(off int64) error {
		nz, err := lastNonZero(f, off, limit)
		if err != nil {
			return err
		}
		if nz > off {
			return corrupt(off, "zero length record followed by non-zero data")
		}
		j.setSegmentEnd(pos.Segment, off)
		return nil
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f, pos.Offset, limit-pos.Offset), int(min(limit-pos.Offset, 256<<10)))
	var h [headerSize]byte
	for len(recs) < max {
		if pos.Offset == limit {
			if unknown {
				j.setSegmentEnd(pos.Segment, limit)
			}
			return recs, pos, true, nil
		}
		if limit-pos.Offset < headerSize {
			if unknown {
				if err := zeroEnd(pos.Offset); err != nil {
					return recs, pos, false, err
				}
				return recs, pos, true, nil
			}
			return recs, pos, false, corrupt(pos.Offset, "truncated header")
		}
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return recs, pos, false, readErr(corrupt, pos.Offset, err)
		}
		n, reason := checkHeader(h[:], pos.Offset, limit)
		if reason != "" {
			if unknown && n == 0 {
				if err := zeroEnd(pos.Offset); err != nil {
					return recs, pos, false, err
				}
				return recs, pos, true, nil
			}
			return recs, pos, false, corrupt(pos.Offset, reason)
		}
		if len(recs) > 0 && *total+int(n) > maxBytes {
			return recs, pos, false, nil
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			return recs, pos, false, readErr(corrupt, pos.Offset, err)
		}
		if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(h[4:8]) {
			return recs, pos, false, corrupt(pos.Offset, "checksum mismatch")
		}
		recs = append(recs, p)
		*total += int(n)
		pos.Offset += headerSize + int64(n)
	}
	return recs, pos, false, nil
}

// readErr turns a short read (a file shorter than the journal knows it to
// be) into corruption and passes other I/O errors through.
func readErr(corrupt func(int64, string) error, off int64, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt(off, "file ends inside the record")
	}
	return fmt.Errorf("journal: read: %w", err)
}

// Release tells the journal that the consumer has durably applied every
// record before upTo, and deletes the segment files that hold only such
// records. The active segment is never deleted. Deletion goes oldest first
// and the directory is fsync'd afterwards, so a crash never leaves a gap.
func (j *Journal) Release(upTo Pos) error {
	j.releaseMu.Lock()
	defer j.releaseMu.Unlock()

	j.stateMu.Lock()
	if j.end.less(upTo) {
		end := j.end
		j.stateMu.Unlock()
		return fmt.Errorf("journal: release up to %v: beyond the end %v", upTo, end)
	}
	if j.released.less(upTo) {
		j.released = upTo
	}
	k := 0
	for ; k < len(j.segs)-1; k++ {
		s := j.segs[k]
		if s.num < upTo.Segment {
			continue
		}
		if s.num == upTo.Segment {
			end := s.end
			if end < 0 {
				// Sealed before Open and not read to its end yet: its size is an
				// upper bound (it may include zero padding).
				if fi, err := os.Stat(j.segmentPath(s.num)); err == nil {
					end = fi.Size()
				}
			}
			if end >= 0 && upTo.Offset >= end {
				continue
			}
		}
		break
	}
	victims := make([]uint64, k)
	for i := range k {
		victims[i] = j.segs[i].num
	}
	j.segs = j.segs[k:]
	j.stateMu.Unlock()

	if len(victims) == 0 {
		return nil
	}
	for _, num := range victims {
		if err := os.Remove(j.segmentPath(num)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("journal: release: %w", err)
		}
	}
	// A deletion that is lost in a crash is harmless (the records are read
	// again and applied idempotently), but fsync so that the disk space
	// accounting and the next Open agree with what Release reported.
	return syncDir(j.opts.Dir)
}
