// Package ingest is the write path after decoding: events are encoded as
// journal records (record.go), appended durably by the journal, and applied
// to the event store in large batches by the loader (loader.go).
package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"fjord/internal/store"
)

// recordVersion is the first byte of every event record, so the format can
// change without misreading an older journal after an upgrade.
const recordVersion = 1

// maxString bounds each string field; the collector truncates long before.
const maxString = 8 << 10

// EncodeEvent appends the journal record of e to buf.
func EncodeEvent(buf []byte, e *store.Event) []byte {
	buf = append(buf, recordVersion)
	buf = append(buf, e.ID[:]...)
	buf = binary.AppendUvarint(buf, uint64(e.SiteID))
	buf = binary.AppendVarint(buf, e.Time.UnixMilli())
	buf = binary.LittleEndian.AppendUint64(buf, e.VisitorID)
	for _, s := range e.Strings() {
		buf = binary.AppendUvarint(buf, uint64(len(*s)))
		buf = append(buf, *s...)
	}
	var flags byte
	if e.Interactive {
		flags |= 1
	}
	buf = append(buf, flags)
	buf = binary.AppendVarint(buf, int64(e.ScrollDepth))
	buf = binary.AppendVarint(buf, int64(e.EngagedMS))
	return buf
}

var errShort = errors.New("record truncated")

// ErrUnknownVersion is a record of a version this build cannot read: one
// written by a newer build (an edge collector upgraded before the main
// service), to be read once this one is upgraded, not set aside.
var ErrUnknownVersion = errors.New("unknown record version")

// DecodeEvent reads a record written by EncodeEvent. It never panics on
// bad input: a corrupt record is an error naming what was wrong.
func DecodeEvent(rec []byte) (store.Event, error) {
	var e store.Event
	if len(rec) < 1+16 {
		return e, errShort
	}
	if rec[0] != recordVersion {
		return e, fmt.Errorf("%w %d", ErrUnknownVersion, rec[0])
	}
	copy(e.ID[:], rec[1:17])
	r := rec[17:]
	site, n := binary.Uvarint(r)
	if n <= 0 || site > 1<<62 {
		return e, errors.New("bad site id")
	}
	r = r[n:]
	ms, n := binary.Varint(r)
	if n <= 0 {
		return e, errors.New("bad time")
	}
	r = r[n:]
	if len(r) < 8 {
		return e, errShort
	}
	e.SiteID = int64(site)
	e.Time = time.UnixMilli(ms).UTC()
	e.VisitorID = binary.LittleEndian.Uint64(r)
	r = r[8:]
	for i, s := range e.Strings() {
		l, n := binary.Uvarint(r)
		if n <= 0 || l > maxString || uint64(len(r)-n) < l {
			return e, fmt.Errorf("bad string field %d", i)
		}
		b := r[n : n+int(l)]
		if !utf8.Valid(b) {
			return e, fmt.Errorf("string field %d is not UTF-8", i)
		}
		*s = string(b)
		r = r[n+int(l):]
	}
	if len(r) < 1 {
		return e, errShort
	}
	e.Interactive = r[0]&1 != 0
	r = r[1:]
	sd, n := binary.Varint(r)
	if n <= 0 || sd < -1 || sd > 100 {
		return e, errors.New("bad scroll depth")
	}
	r = r[n:]
	em, n := binary.Varint(r)
	if n <= 0 || em < 0 || em > 1<<31-1 {
		return e, errors.New("bad engaged time")
	}
	r = r[n:]
	if len(r) != 0 {
		return e, fmt.Errorf("%d trailing bytes", len(r))
	}
	e.ScrollDepth, e.EngagedMS = int16(sd), int32(em)
	return e, nil
}
