// Package forward carries events from an edge collector (`fjord collect`)
// to the main service. The edge keeps what it accepts in its journal (the
// spool); a Forwarder sends the spool in batches to a Sender (the main
// service's authenticated ingest endpoint, or a NATS JetStream stream) and
// frees a segment only after the receiver confirmed every record in it
// durable. A batch that fails is sent again, so the receiver may see an
// event twice: the event store counts an id once.
//
// The edge also needs what the main service knows to enrich and hash
// events as it would: the sites and their settings, and each site's salt
// of the day. A Mirror keeps the edge's copy of them (see mirror.go).
package forward

import (
	"encoding/binary"
	"errors"
	"fmt"

	"fjord/internal/ingest/journal"
)

// Limits of one batch, which the receiver enforces.
const (
	MaxBatchRecords = 10000
	MaxBatchBytes   = 8 << 20
)

// batchVersion is the first byte of a batch body.
const batchVersion = 1

// EncodeBatch is the body of a forwarded batch: a version byte, then each
// record as u32 little-endian length and the record (an ingest event
// record). TLS protects it in transit; each record is checked again by the
// receiver.
func EncodeBatch(recs [][]byte) []byte {
	n := 1
	for _, r := range recs {
		n += 4 + len(r)
	}
	buf := make([]byte, 0, n)
	buf = append(buf, batchVersion)
	for _, r := range recs {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(r)))
		buf = append(buf, r...)
	}
	return buf
}

// DecodeBatch reads a body written by EncodeBatch. The records alias body.
// An error names what is wrong and where.
func DecodeBatch(body []byte) ([][]byte, error) {
	if len(body) == 0 {
		return nil, errors.New("empty batch")
	}
	if len(body) > MaxBatchBytes {
		return nil, fmt.Errorf("batch of %d bytes is larger than %d", len(body), MaxBatchBytes)
	}
	if body[0] != batchVersion {
		return nil, fmt.Errorf("unknown batch version %d", body[0])
	}
	var recs [][]byte
	for off := 1; off < len(body); {
		if len(recs) == MaxBatchRecords {
			return nil, fmt.Errorf("more than %d records", MaxBatchRecords)
		}
		if len(body)-off < 4 {
			return nil, fmt.Errorf("record %d at byte %d: truncated length", len(recs), off)
		}
		n := int(binary.LittleEndian.Uint32(body[off:]))
		off += 4
		switch {
		case n == 0:
			return nil, fmt.Errorf("record %d at byte %d: empty", len(recs), off-4)
		case n > journal.MaxRecordSize:
			return nil, fmt.Errorf("record %d at byte %d: %d bytes, maximum %d", len(recs), off-4, n, journal.MaxRecordSize)
		case n > len(body)-off:
			return nil, fmt.Errorf("record %d at byte %d: %d bytes announced, %d left", len(recs), off-4, n, len(body)-off)
		}
		recs = append(recs, body[off:off+n:off+n])
		off += n
	}
	if len(recs) == 0 {
		return nil, errors.New("batch holds no records")
	}
	return recs, nil
}
