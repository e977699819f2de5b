package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"fjord/internal/config"
	"fjord/internal/ingest/jetstream"
)

// streamConfig is the events' JetStream stream as configured.
func streamConfig(cfg *config.Config) jetstream.Config {
	return jetstream.Config{Stream: cfg.NATSStream, Subject: cfg.NATSSubject(), Replicas: cfg.NATSReplicas}
}

// connectNATS connects to nats-url (reconnecting for ever once connected).
func connectNATS(cfg *config.Config, name string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := jetstream.Connect(cfg.NATSURL, jetstream.ConnectOptions{Name: name, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("nats-url: %w", err)
	}
	return nc, nil
}

// consumeStream makes sure the stream exists (retrying while NATS does not
// answer) and runs the durable consumer into sink until ctx ends.
func consumeStream(ctx context.Context, cfg *config.Config, nc *nats.Conn, sink func(context.Context, [][]byte) error, log *slog.Logger) {
	js, err := natsjs.New(nc)
	if err != nil {
		log.Error("jetstream", "err", err)
		return
	}
	scfg := streamConfig(cfg)
	for failing := false; ; failing = true {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := jetstream.EnsureStream(ectx, js, scfg)
		cancel()
		if err == nil {
			break
		}
		if !failing {
			log.Warn("jetstream: the events' stream cannot be made yet; retrying", "stream", scfg.Stream, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
	log.Info("consuming the events' stream", "stream", scfg.Stream, "subject", scfg.Subject, "replicas", scfg.Replicas)
	jetstream.NewConsumer(js, scfg, jetstream.ConsumerConfig{Logger: log}).Run(ctx, sink)
}

// streamSender publishes an edge's spool to the stream.
type streamSender struct{ p *jetstream.Publisher }

func (s streamSender) Send(ctx context.Context, recs [][]byte) error {
	_, err := s.p.Publish(ctx, recs)
	return err
}
