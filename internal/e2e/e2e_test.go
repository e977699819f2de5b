// Package e2e tests the fjord binary as a user runs it: built once, started
// as a process on a loopback port, talked to over HTTP and the CLI.
package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"fjord/internal/testnet"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// fjordBin builds the binary once per test run.
func fjordBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fjord-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "fjord")
		out, err := exec.Command("go", "build", "-o", binPath, "fjord/cmd/fjord").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// server is a running `fjord serve`.
type server struct {
	t       testing.TB
	Addr    string
	DataDir string
	cmd     *exec.Cmd
	stdout  *syncBuffer // what it prints for people (the demo's banner)
	stderr  *syncBuffer // its log, across restarts
	args    []string
	// command is the sub-command ("": serve); samePort keeps the address
	// across restarts (clients and proxies that know it).
	command  string
	samePort bool
}

// syncBuffer is the server's output: exec copies into it from its own
// goroutine while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs fjord serve on a fresh port with extra args; the data
// dir is kept across restarts of the same server value.
func startServer(t testing.TB, dataDir string, extra ...string) *server {
	t.Helper()
	s := &server{t: t, DataDir: dataDir, args: extra}
	s.start()
	t.Cleanup(func() {
		s.Kill()
		s.checkLog()
	})
	return s
}

// checkLog fails the test when the server logged a secret it was given
// (the value of a password or token flag) or printed (the demo's
// passwords), a client's address or an API key: the log-secrets test
// over every server the e2e tests run.
func (s *server) checkLog() {
	logs := s.stderr.String()
	for _, m := range regexp.MustCompile(`password (\S+)`).FindAllStringSubmatch(s.stdout.String(), -1) {
		if strings.Contains(logs, m[1]) {
			s.t.Error("the server's log holds a password it printed")
		}
	}
	for i, a := range s.args {
		if strings.HasSuffix(a, "-password") || strings.HasSuffix(a, "-token") {
			if i+1 < len(s.args) && strings.Contains(logs, s.args[i+1]) {
				s.t.Errorf("the server's log holds the value of %s", a)
			}
		}
	}
	for _, f := range testnet.LogSecrets(logs) {
		s.t.Errorf("the server's log holds %s", f)
	}
}

func (s *server) start() {
	s.t.Helper()
	if s.Addr == "" || !s.samePort {
		s.Addr = freePort(s.t)
	}
	command := s.command
	if command == "" {
		command = "serve"
	}
	args := append([]string{command, "--listen", s.Addr, "--data-dir", s.DataDir}, s.args...)
	s.cmd = exec.Command(fjordBin(s.t), args...)
	if s.stderr == nil {
		s.stdout, s.stderr = &syncBuffer{}, &syncBuffer{}
	}
	s.cmd.Stderr = s.stderr
	s.cmd.Stdout = s.stdout
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + s.Addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if s.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.t.Fatalf("fjord %s did not become healthy:\n%s%s", command, s.stdout.String(), s.stderr.String())
}

// Kill ends the server with SIGKILL (no chance to flush anything).
func (s *server) Kill() {
	if s.cmd != nil && s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// Stop ends the server with SIGTERM and waits.
func (s *server) Stop() {
	if s.cmd != nil && s.cmd.ProcessState == nil {
		s.cmd.Process.Signal(os.Interrupt)
		s.cmd.Wait()
	}
}

// Restart starts the server again on the same data dir.
func (s *server) Restart() { s.start() }

// fjord runs a CLI command and returns its stdout; it fails the test on a
// non-zero exit.
func fjord(t testing.TB, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(fjordBin(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("fjord %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}
