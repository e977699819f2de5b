package jetstream

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// idEnd is where a record's event id ends: byte 0 is the record version,
// bytes 1..17 the id (see ingest.EncodeEvent).
const idEnd = 17

// Publisher publishes journal records to the stream.
type Publisher struct {
	js      jetstream.JetStream
	cfg     Config
	timeout time.Duration

	published  atomic.Uint64 // acknowledged as newly stored
	duplicates atomic.Uint64 // acknowledged as already stored
	failures   atomic.Uint64 // Publish calls that returned an error
}

// PublisherStats are the Publisher's counters since it was made.
type PublisherStats struct {
	Published, Duplicates, Failures uint64
}

// NewPublisher returns a Publisher for the stream of cfg on nc. timeout
// bounds each Publish call on top of its context (0: 30 s), so a caller with
// a background context cannot wait forever for an acknowledgement.
//
// The Publisher has a JetStream context of its own because it sets the
// client's async publish timeout to the same bound: a message whose
// acknowledgement never comes (sent to a server that died) is dropped from
// the client's pending set then, rather than occupying it for ever.
func NewPublisher(nc *nats.Conn, cfg Config, timeout time.Duration) (*Publisher, error) {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: new publisher: %w", err)
	}
	return &Publisher{js: js, cfg: cfg.withDefaults(), timeout: timeout}, nil
}

// Stats returns the counters.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{
		Published:  p.published.Load(),
		Duplicates: p.duplicates.Load(),
		Failures:   p.failures.Load(),
	}
}

// Publish sends each record as one message whose Nats-Msg-Id is the hex of
// its event id, all at once, then waits for every acknowledgement. It
// returns nil only when the stream acknowledged every record; dups counts
// those it acknowledged as already stored (a retried batch). On an error
// some records may have been stored: the caller keeps its spool and retries
// the whole batch, and the stream's duplicate window (or, beyond it, the
// event store's id) makes the retry harmless.
func (p *Publisher) Publish(ctx context.Context, recs [][]byte) (dups int, err error) {
	dups, err = p.publish(ctx, recs)
	if err != nil {
		p.failures.Add(1)
		return dups, err
	}
	p.published.Add(uint64(len(recs) - dups))
	p.duplicates.Add(uint64(dups))
	return dups, nil
}

func (p *Publisher) publish(ctx context.Context, recs [][]byte) (int, error) {
	// Check every record before sending any, so a bad one fails the batch
	// without half of it in the stream.
	for i, rec := range recs {
		if len(rec) < idEnd {
			return 0, fmt.Errorf("jetstream: publish: record %d is %d bytes, shorter than a record header (%d)", i, len(rec), idEnd)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	futures := make([]jetstream.PubAckFuture, 0, len(recs))
	for i, rec := range recs {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("jetstream: publish record %d of %d: %w", i, len(recs), err)
		}
		m := &nats.Msg{Subject: p.cfg.Subject, Data: rec, Header: nats.Header{}}
		// WithExpectStream: a subject bound to some other stream (or none)
		// is an error, not a silent acknowledgement by the wrong stream.
		// The stall wait lets a batch larger than the client's window of
		// pending acknowledgements wait for room rather than fail.
		f, err := p.js.PublishMsgAsync(m,
			jetstream.WithMsgID(hex.EncodeToString(rec[1:idEnd])),
			jetstream.WithExpectStream(p.cfg.Stream),
			jetstream.WithStallWait(max(time.Until(deadline), time.Millisecond)))
		if err != nil {
			return 0, fmt.Errorf("jetstream: publish record %d of %d: %w", i, len(recs), err)
		}
		futures = append(futures, f)
	}

	dups := 0
	var errs []error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups++
			}
		case err := <-f.Err():
			// Keep waiting for the others: they are on the wire already,
			// and one error says little about the rest.
			if len(errs) < 3 {
				errs = append(errs, fmt.Errorf("record %d: %w", i, err))
			} else if len(errs) == 3 {
				errs = append(errs, errors.New("more records failed"))
			}
		case <-ctx.Done():
			return dups, fmt.Errorf("jetstream: publish: waiting for acknowledgement %d of %d: %w", i, len(recs), ctx.Err())
		}
	}
	if errs != nil {
		return dups, fmt.Errorf("jetstream: publish %d records: %w", len(recs), errors.Join(errs...))
	}
	return dups, nil
}
