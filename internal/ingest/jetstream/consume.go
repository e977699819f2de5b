package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerConfig sets the durable pull consumer and Run's pace. The zero
// value is usable: every field has a default.
type ConsumerConfig struct {
	Durable       string        // consumer name, shared by every main instance; default "fjord-writer"
	Batch         int           // most messages handed to the sink at once; default 1000
	MaxWait       time.Duration // longest wait for a batch to fill; default 500 ms
	AckWait       time.Duration // redelivery after this without an ack; default 30 s
	MaxAckPending int           // delivered but unacknowledged messages at most; default 4×Batch
	RetryWait     time.Duration // first back-off after a failure, doubling to MaxRetryWait; default 500 ms
	MaxRetryWait  time.Duration // default 15 s
	Logger        *slog.Logger  // default: discard
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	if c.Durable == "" {
		c.Durable = "fjord-writer"
	}
	if c.Batch <= 0 {
		c.Batch = 1000
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending < c.Batch {
		c.MaxAckPending = 4 * c.Batch
	}
	if c.RetryWait <= 0 {
		c.RetryWait = 500 * time.Millisecond
	}
	if c.MaxRetryWait < c.RetryWait {
		c.MaxRetryWait = max(15*time.Second, c.RetryWait)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Consumer moves messages from the stream into a sink, batch by batch.
type Consumer struct {
	js     jetstream.JetStream
	stream string
	cfg    ConsumerConfig

	consumed     atomic.Uint64 // messages whose sink call succeeded
	batches      atomic.Uint64 // successful sink calls
	sinkFailures atomic.Uint64 // failed sink calls
	redelivered  atomic.Uint64 // messages fetched with NumDelivered > 1
	ackFailures  atomic.Uint64 // batches whose acknowledgement was not confirmed
}

// ConsumerStats are the Consumer's counters since it was made.
type ConsumerStats struct {
	Consumed, Batches, SinkFailures, Redelivered, AckFailures uint64
}

// NewConsumer returns a Consumer of the stream of stream.
func NewConsumer(js jetstream.JetStream, stream Config, cfg ConsumerConfig) *Consumer {
	return &Consumer{js: js, stream: stream.withDefaults().Stream, cfg: cfg.withDefaults()}
}

// Stats returns the counters.
func (c *Consumer) Stats() ConsumerStats {
	return ConsumerStats{
		Consumed:     c.consumed.Load(),
		Batches:      c.batches.Load(),
		SinkFailures: c.sinkFailures.Load(),
		Redelivered:  c.redelivered.Load(),
		AckFailures:  c.ackFailures.Load(),
	}
}

// Run fetches batches and hands each to sink, acknowledging a batch only
// after sink returned nil: sink must have made the records durable by then
// (main appends them to its journal). A failed sink call, a lost server or
// a lost acknowledgement only delays: the messages come back (with
// NumDelivered > 1) and the event store counts an event id once. Run goes on
// through every failure, backing off, and returns ctx's error when ctx ends.
func (c *Consumer) Run(ctx context.Context, sink func(ctx context.Context, recs [][]byte) error) error {
	var cons jetstream.Consumer
	wait := c.cfg.RetryWait
	for ctx.Err() == nil {
		var err error
		if cons == nil {
			cons, err = c.ensure(ctx)
		}
		if err == nil {
			err = c.batch(ctx, cons, sink, wait)
			if err != nil && !errors.Is(err, errSink) {
				// The consumer may be gone (a stream re-created, a server
				// that lost its state): make sure of it again next time.
				cons = nil
			}
		}
		if err == nil {
			wait = c.cfg.RetryWait
			continue
		}
		if ctx.Err() != nil {
			break
		}
		c.cfg.Logger.Warn("jetstream consumer: retrying", "stream", c.stream, "consumer", c.cfg.Durable, "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait = min(2*wait, c.cfg.MaxRetryWait)
	}
	return ctx.Err()
}

// ensure creates the durable consumer or updates it to the config.
//
// AckExplicit, not AckAll: with AckAll, acknowledging the last message of a
// batch also acknowledges every earlier message still pending, such as a
// batch whose sink failed and that waits for redelivery; those would be
// deleted from the work queue without ever reaching the journal.
func (c *Consumer) ensure(ctx context.Context) (jetstream.Consumer, error) {
	// A request that reached a server in the middle of a restart may go
	// unanswered: asking again soon beats the client's 5 s default.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.stream, jetstream.ConsumerConfig{
		Durable:       c.cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxAckPending: c.cfg.MaxAckPending,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", c.cfg.Durable, c.stream, err)
	}
	return cons, nil
}

var errSink = errors.New("sink failed")

// batch fetches one batch and hands it to sink; nakDelay is how long a
// failed batch waits before the stream redelivers it.
func (c *Consumer) batch(ctx context.Context, cons jetstream.Consumer, sink func(context.Context, [][]byte) error, nakDelay time.Duration) error {
	fctx, cancel := context.WithTimeout(ctx, c.cfg.MaxWait)
	defer cancel()
	b, err := cons.Fetch(c.cfg.Batch, jetstream.FetchContext(fctx))
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	ferr := b.Error()
	if errors.Is(ferr, context.DeadlineExceeded) || errors.Is(ferr, jetstream.ErrNoMessages) {
		ferr = nil // an idle stream, not a failure
	}
	if len(msgs) == 0 {
		if ferr != nil {
			return fmt.Errorf("fetch: %w", ferr)
		}
		return nil
	}
	if ctx.Err() != nil {
		// Shutting down: hand the batch back now rather than after AckWait.
		for _, m := range msgs {
			_ = m.Nak()
		}
		return ctx.Err()
	}

	recs := make([][]byte, len(msgs))
	for i, m := range msgs {
		recs[i] = m.Data()
		if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
			c.redelivered.Add(1)
		}
	}
	if err := sink(ctx, recs); err != nil {
		c.sinkFailures.Add(1)
		for _, m := range msgs {
			_ = m.NakWithDelay(nakDelay) // if lost, AckWait redelivers
		}
		return fmt.Errorf("%w: %d records: %w", errSink, len(recs), err)
	}
	c.consumed.Add(uint64(len(msgs)))
	c.batches.Add(1)

	// The records are durable now: acknowledge even if ctx ended meanwhile,
	// so they are not delivered again. Acks on one connection reach the
	// server in order, so a confirmed ack of the last message means the
	// earlier ones arrived too. A lost ack costs a redelivery, not an event,
	// so the wait for the confirmation is short: a healthy server answers in
	// a millisecond, and one that went away during the ack would otherwise
	// hold up the batches after it.
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer acancel()
	var aerr error
	for _, m := range msgs[:len(msgs)-1] {
		if err := m.Ack(); err != nil && aerr == nil {
			aerr = err
		}
	}
	if err := msgs[len(msgs)-1].DoubleAck(actx); err != nil && aerr == nil {
		aerr = err
	}
	if aerr != nil {
		c.ackFailures.Add(1)
		c.cfg.Logger.Warn("jetstream consumer: acknowledgement not confirmed; the batch will be delivered again",
			"stream", c.stream, "consumer", c.cfg.Durable, "records", len(msgs), "err", aerr)
	}
	if ferr != nil {
		return fmt.Errorf("fetch: %w", ferr)
	}
	return nil
}
