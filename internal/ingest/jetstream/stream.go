// Package jetstream carries journal records from edge collectors to the main
// service through a NATS JetStream stream (PRODUCT §9.5): a Publisher that
// returns only when the stream has stored every record, and a Consumer that
// acknowledges a batch only after its sink (the main journal) made it
// durable. Between the two, an event may arrive twice but is never lost: the
// stream drops re-publishes inside its duplicate window and the event store
// counts an event id once beyond it.
package jetstream

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Config names the stream and sets its limits. The zero value is usable:
// every field has a default.
type Config struct {
	Stream     string        // stream name; default "FJORD_EVENTS"
	Subject    string        // subject the edges publish on; default "fjord.events"
	Replicas   int           // copies in a cluster; default 1
	Duplicates time.Duration // de-duplication window of Nats-Msg-Id; default 10 minutes
	MaxBytes   int64         // stream size bound; 0: none
}

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = "FJORD_EVENTS"
	}
	if c.Subject == "" {
		c.Subject = "fjord.events"
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Duplicates <= 0 {
		c.Duplicates = 10 * time.Minute
	}
	return c
}

// EnsureStream creates the stream or updates it to cfg.
//
// Retention is WorkQueue, not Limits: a message stays until the consumer
// acknowledged it (after the main journal committed it) and is deleted then,
// so the stream holds the backlog, never the history, and no age or count
// limit can drop an event nobody has read yet. With MaxBytes set, Discard is
// New for the same reason: a full stream refuses the publish (the edge keeps
// its spool and retries) instead of discarding the oldest unread events.
// File storage, because the stream stands in for the edge's durable spool.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	cfg = cfg.withDefaults()
	maxBytes := cfg.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       cfg.Stream,
		Subjects:   []string{cfg.Subject},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Discard:    jetstream.DiscardNew,
		MaxBytes:   maxBytes,
		Replicas:   cfg.Replicas,
		Duplicates: cfg.Duplicates,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: ensure stream %s on %s: %w", cfg.Stream, cfg.Subject, err)
	}
	return s, nil
}
