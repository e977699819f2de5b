package jetstream

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestDuplicatesDropped(t *testing.T) {
	s := startServer(t, t.TempDir(), 0)
	_, js := connect(t, s.ClientURL())
	testDedupAndConsume(t, js, Config{Stream: "T", Subject: "t.events"})
}

// testDedupAndConsume publishes a batch twice, checks the stream kept it
// once, consumes it and checks the sink saw each event once; it is shared by
// the embedded and the real server.
func testDedupAndConsume(t *testing.T, js jetstream.JetStream, cfg Config) {
	ctx := testCtx(t)
	st, err := EnsureStream(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	recs := events(0, n)
	p := newPublisher(t, js, cfg, 0)
	if dups, err := p.Publish(ctx, recs); err != nil || dups != 0 {
		t.Fatalf("first Publish: %d duplicates, %v; want 0, nil", dups, err)
	}
	if dups, err := p.Publish(ctx, recs); err != nil || dups != n {
		t.Fatalf("second Publish: %d duplicates, %v; want %d, nil", dups, err, n)
	}
	if got := streamMsgs(t, st); got != n {
		t.Fatalf("stream holds %d messages after publishing %d twice, want %d", got, n, n)
	}
	if got := p.Stats(); got != (PublisherStats{Published: n, Duplicates: n}) {
		t.Errorf("publisher stats %+v", got)
	}

	col := newCollector(t)
	c := NewConsumer(js, cfg, ConsumerConfig{Batch: 200, MaxWait: 200 * time.Millisecond})
	stop := run(t, c, col.sink)
	waitFor(t, 5*time.Second, "the sink to see every event", func() bool { return col.distinct() == n })
	// Acknowledged messages leave the work queue.
	waitFor(t, 5*time.Second, "an empty stream", func() bool { return streamMsgs(t, st) == 0 })
	stop()
	col.check(t, n)
	if got := c.Stats(); got.Consumed != n || got.Redelivered != 0 || got.SinkFailures != 0 || got.AckFailures != 0 {
		t.Errorf("consumer stats %+v, want %d consumed and no redelivery or failure", got, n)
	}

	// The duplicate window outlives the messages: a late retry of a batch
	// that was consumed already is still dropped.
	if dups, err := p.Publish(ctx, recs); err != nil || dups != n {
		t.Fatalf("Publish after consumption: %d duplicates, %v; want %d, nil", dups, err, n)
	}
	if got := streamMsgs(t, st); got != 0 {
		t.Fatalf("stream holds %d messages after a re-publish of consumed events, want 0", got)
	}

	// A record too short to hold an event id fails the batch, naming it,
	// before anything is sent.
	bad := append(events(n, 2), []byte{1, 2, 3})
	_, err = p.Publish(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "record 2 ") {
		t.Fatalf("Publish of a 3-byte record: %v, want an error naming record 2", err)
	}
	if got := streamMsgs(t, st); got != 0 {
		t.Fatalf("stream holds %d messages after a refused batch, want 0", got)
	}
}

// A batch committed by the sink whose ack never reached the server comes
// back to the next consumer run, flagged as redelivered.
func TestAckLostRedelivered(t *testing.T) {
	s := startServer(t, t.TempDir(), 0)
	_, js := connect(t, s.ClientURL())
	cfg := Config{Stream: "T", Subject: "t.events"}
	ctx := testCtx(t)
	if _, err := EnsureStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	const n = 100
	if _, err := newPublisher(t, js, cfg, 0).Publish(ctx, events(0, n)); err != nil {
		t.Fatal(err)
	}
	ccfg := ConsumerConfig{AckWait: time.Second, MaxWait: 200 * time.Millisecond, RetryWait: 50 * time.Millisecond}

	// First run: the sink commits, then the connection dies before Run can
	// acknowledge, as in a crash right after the journal's fsync.
	nc1, js1 := connect(t, s.ClientURL())
	first := newCollector(t)
	c1 := NewConsumer(js1, cfg, ccfg)
	stop1 := run(t, c1, func(ctx context.Context, recs [][]byte) error {
		err := first.sink(ctx, recs)
		nc1.Close()
		return err
	})
	waitFor(t, 5*time.Second, "the first sink call", func() bool { return c1.Stats().AckFailures > 0 })
	stop1()
	k := first.check(t, n)
	if k == 0 {
		t.Fatal("first run committed nothing")
	}

	second := newCollector(t)
	c2 := NewConsumer(js, cfg, ccfg)
	stop2 := run(t, c2, second.sink)
	waitFor(t, 5*time.Second, "every event in the second run", func() bool { return second.distinct() == n })
	stop2()
	second.check(t, n)
	if got := c2.Stats().Redelivered; got != uint64(k) {
		t.Errorf("second run saw %d redelivered messages, want the %d the first run committed without ack", got, k)
	}
}

// A failing sink acknowledges nothing; the batch comes back and goes
// through once the sink recovers.
func TestSinkFailureRedelivered(t *testing.T) {
	s := startServer(t, t.TempDir(), 0)
	_, js := connect(t, s.ClientURL())
	cfg := Config{Stream: "T", Subject: "t.events"}
	ctx := testCtx(t)
	st, err := EnsureStream(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	if _, err := newPublisher(t, js, cfg, 0).Publish(ctx, events(0, n)); err != nil {
		t.Fatal(err)
	}
	col := newCollector(t)
	col.fail = 2
	c := NewConsumer(js, cfg, ConsumerConfig{MaxWait: 200 * time.Millisecond, RetryWait: 50 * time.Millisecond})
	stop := run(t, c, col.sink)
	waitFor(t, 5*time.Second, "every event", func() bool { return col.distinct() == n })
	waitFor(t, 5*time.Second, "an empty stream", func() bool { return streamMsgs(t, st) == 0 })
	stop()
	col.check(t, n)
	got := c.Stats()
	// Delivered three times: the second and third count as redelivered.
	if got.SinkFailures != 2 || got.Consumed != n || got.Redelivered != 2*n {
		t.Errorf("stats %+v, want 2 sink failures, %d consumed, %d redelivered", got, n, 2*n)
	}
}

// Everything acknowledged before the server stops is consumed after it
// starts again on the same store, by clients that were connected throughout.
func TestServerRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, 0)
	port := serverPort(s)
	url := s.ClientURL()
	_, js := connect(t, url)
	cfg := Config{Stream: "T", Subject: "t.events"}
	ctx := testCtx(t)
	if _, err := EnsureStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, js, cfg, 2*time.Second)
	// publish retries a batch until it is acknowledged, as the forwarder will.
	publish := func(recs [][]byte) {
		t.Helper()
		for {
			_, err := p.Publish(ctx, recs)
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish never succeeded: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	restart := func() {
		stopServer(s)
		s = startServer(t, dir, port)
	}

	publish(events(0, 300)) // stored, nobody consuming yet
	restart()
	col := newCollector(t)
	c := NewConsumer(js, cfg, ConsumerConfig{MaxWait: 200 * time.Millisecond, RetryWait: 50 * time.Millisecond, MaxRetryWait: 200 * time.Millisecond, Logger: testLogger(t)})
	stop := run(t, c, col.sink)
	publish(events(300, 300))
	waitFor(t, 5*time.Second, "the events from before and after the restart", func() bool { return col.distinct() == 600 })

	restart() // now with the consumer running through it
	publish(events(600, 300))
	waitFor(t, 10*time.Second, "the events after the second restart", func() bool { return col.distinct() == 900 })
	stop()
	col.check(t, 900)
	if f := p.Stats().Failures; f > 0 {
		t.Logf("%d Publish calls failed around the restarts and were retried", f)
	}
}

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://fjord:s3cret@nats1:4222, tls://tok3n@nats2:4222", "nats://redacted@nats1:4222,tls://redacted@nats2:4222"},
		{"user:pw@host:4222", "nats://redacted@host:4222"},
		{"nats://u:p@ho st%zz", "(unparsable URL)"},
	} {
		got := RedactURLs(tc.in)
		if got != tc.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, secret := range []string{"s3cret", "tok3n", "pw", ":p@"} {
			if strings.Contains(got, secret) {
				t.Errorf("RedactURLs(%q) = %q keeps %q", tc.in, got, secret)
			}
		}
	}
	_, err := Connect("nats://u:s3cret@ho st%zz:4222", ConnectOptions{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Connect with a bad URL: %v; want an error without the password", err)
	}
	// a server that is not up yet is tried again, not an error
	nc, err := Connect("nats://u:s3cret@127.0.0.1:1", ConnectOptions{})
	if err != nil {
		t.Errorf("Connect to a closed port: %v; want a connection that keeps trying", err)
	} else {
		nc.Close()
	}
}
