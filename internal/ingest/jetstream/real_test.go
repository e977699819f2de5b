package jetstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"
)

// The dedup and consume test against the NATS server that .ci/run starts,
// on a stream of its own that it deletes afterwards.
func TestRealServer(t *testing.T) {
	url := os.Getenv("FJORD_TEST_NATS")
	if url == "" {
		t.Skip("set FJORD_TEST_NATS=nats://127.0.0.1:4222 to run this test against a real NATS server")
	}
	_, js := connect(t, url)
	b := make([]byte, 6)
	rand.Read(b)
	id := hex.EncodeToString(b)
	cfg := Config{Stream: "FJORD_TEST_" + id, Subject: "fjord.test." + id}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, cfg.Stream); err != nil {
			t.Errorf("delete stream %s: %v", cfg.Stream, err)
		}
	})
	testDedupAndConsume(t, js, cfg)
}
