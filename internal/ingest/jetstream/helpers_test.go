package jetstream

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"fjord/internal/ingest"
	"fjord/internal/store"
)

func TestMain(m *testing.M) {
	// The cluster test re-executes this binary as its nats-server nodes.
	if os.Getenv(nodeEnv) != "" {
		runNode()
		return
	}
	os.Exit(m.Run())
}

// startServer runs an embedded JetStream server on dir; port 0 picks one.
func startServer(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "test",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded nats-server not ready after 10 s")
	}
	t.Cleanup(func() { stopServer(s) })
	return s
}

func stopServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

func serverPort(s *server.Server) int { return s.Addr().(*net.TCPAddr).Port }

// connect opens a client that reconnects quickly, closed at the end.
func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := Connect(url, ConnectOptions{Name: t.Name(), ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// events returns n journal records numbered from, from..from+n-1; the number
// is in the last 8 bytes of the event id.
func events(from, n int) [][]byte {
	recs := make([][]byte, n)
	for i := range recs {
		e := store.Event{
			SiteID: 1, Time: time.UnixMilli(1_700_000_000_000 + int64(from+i)).UTC(),
			Name: "pageview", Hostname: "example.com", Path: "/", Interactive: true,
		}
		copy(e.ID[:8], "fjordjs!")
		binary.BigEndian.PutUint64(e.ID[8:], uint64(from+i))
		recs[i] = ingest.EncodeEvent(nil, &e)
	}
	return recs
}

// collector is a sink that records which event numbers it committed.
type collector struct {
	t    *testing.T
	mu   sync.Mutex
	seen map[uint64]int
	fail int // fail this many calls first
}

func newCollector(t *testing.T) *collector { return &collector{t: t, seen: map[uint64]int{}} }

func (c *collector) sink(ctx context.Context, recs [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail > 0 {
		c.fail--
		return errors.New("journal full (test)")
	}
	for _, rec := range recs {
		e, err := ingest.DecodeEvent(rec)
		if err != nil {
			c.t.Errorf("sink got a bad record: %v", err)
			continue
		}
		c.seen[binary.BigEndian.Uint64(e.ID[8:])]++
	}
	return nil
}

// check reports the number of distinct events seen and fails the test for
// any seen more than once or outside 0..n-1.
func (c *collector) check(t *testing.T, n int) int {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, k := range c.seen {
		if k != 1 {
			t.Errorf("event %d committed %d times", id, k)
		}
		if id >= uint64(n) {
			t.Errorf("event %d was never published", id)
		}
	}
	return len(c.seen)
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// run starts c.Run in the background; the returned stop ends it and checks
// that it returned because of its context.
func run(t *testing.T, c *Consumer, sink func(context.Context, [][]byte) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run returned %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("Run did not return within 5 s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func streamMsgs(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

func newPublisher(t testing.TB, js jetstream.JetStream, cfg Config, timeout time.Duration) *Publisher {
	t.Helper()
	p, err := NewPublisher(js.Conn(), cfg, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
