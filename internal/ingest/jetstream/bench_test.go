package jetstream

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Figures on an embedded single server (file storage, in this process):
// go test -run '^$' -bench . -benchtime 100000x ./internal/ingest/jetstream/

func BenchmarkPublish(b *testing.B) {
	s := startServer(b, b.TempDir(), 0)
	_, js := connect(b, s.ClientURL())
	cfg := Config{Stream: "B", Subject: "b.events"}
	ctx := context.Background()
	if _, err := EnsureStream(ctx, js, cfg); err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	recs := events(0, b.N)
	p := newPublisher(b, js, cfg, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		if _, err := p.Publish(ctx, recs[i:min(i+batch, b.N)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkConsume(b *testing.B) {
	s := startServer(b, b.TempDir(), 0)
	_, js := connect(b, s.ClientURL())
	cfg := Config{Stream: "B", Subject: "b.events"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := EnsureStream(ctx, js, cfg); err != nil {
		b.Fatal(err)
	}
	recs := events(0, b.N)
	p := newPublisher(b, js, cfg, time.Minute)
	for i := 0; i < b.N; i += 1000 {
		if _, err := p.Publish(ctx, recs[i:min(i+1000, b.N)]); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	done := make(chan struct{})
	c := NewConsumer(js, cfg, ConsumerConfig{MaxWait: 100 * time.Millisecond})
	b.ResetTimer()
	go func() {
		c.Run(ctx, func(ctx context.Context, recs [][]byte) error {
			if n.Add(int64(len(recs))) == int64(b.N) {
				close(done)
			}
			return nil
		})
	}()
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
