package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeMetrics: the real server serves /readyz, /metrics on the
// metrics port without a guard, on the public port only with the
// metrics token (404 without), and its job loop has run by the time it
// is ready (the first purge and rollups run at start).
func TestServeMetrics(t *testing.T) {
	token := strings.Repeat("e2e-token-", 4)
	metricsAddr := freePort(t)
	s := startServer(t, t.TempDir(), "--metrics-listen", metricsAddr, "--metrics-token", token)
	get := func(url, auth string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://"+s.Addr+"/readyz", ""); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, _ := get("http://"+s.Addr+"/metrics", ""); code != 404 {
		t.Fatalf("public /metrics without the token: %d, want 404", code)
	}
	if code, body := get("http://"+s.Addr+"/metrics", "Bearer "+token); code != 200 || !strings.Contains(body, "fjord_data_dir_free_bytes") {
		t.Fatalf("public /metrics with the token: %d\n%.500s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("http://"+metricsAddr+"/metrics", "")
		if code == 200 && strings.Contains(body, `fjord_job_runs_total{name="purge_accounts"}`) && strings.Contains(body, "fjord_journal_queue_capacity 8192") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics port: %d\n%.3000s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
