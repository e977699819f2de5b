package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// child is a server under test, run as its own process so that its CPU
// and memory are its own.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

// childEnv is this process's environment without FJORD_* settings, so the
// server under test runs with its defaults plus the flags given.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FJORD_") {
			env = append(env, kv)
		}
	}
	return env
}

func startChild(name, binary string, args []string, logPath string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = childEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, binary, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to timeout for a clean exit, then kills.
// It returns how long the shutdown took and an error unless the process
// exited cleanly by itself.
func (c *child) stop(timeout time.Duration) (time.Duration, error) {
	if c.exited() {
		return 0, fmt.Errorf("%s had already exited: %v", c.name, c.waitErr)
	}
	t0 := time.Now()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		if c.waitErr != nil {
			return time.Since(t0), fmt.Errorf("%s exited with %v", c.name, c.waitErr)
		}
		return time.Since(t0), nil
	case <-time.After(timeout):
		c.cmd.Process.Kill()
		<-c.done
		return time.Since(t0), fmt.Errorf("%s did not stop within %s of SIGTERM; killed", c.name, timeout)
	}
}

// kill ends the process at once (clean-up after a failure).
func (c *child) kill() {
	if !c.exited() {
		c.cmd.Process.Kill()
		<-c.done
	}
}

// logTail is the end of the child's output, for error messages.
func (c *child) logTail() string {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return strings.TrimSpace(string(data))
}

// waitReady polls GET http://addr/healthz until it answers 2xx.
func (c *child) waitReady(ctx context.Context, addr string, timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		if c.exited() {
			return fmt.Errorf("%s exited before it was ready (%v); its output:\n%s", c.name, c.waitErr, c.logTail())
		}
		resp, err := hc.Get("http://" + addr + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready on %s after %s; its output:\n%s", c.name, addr, timeout, c.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddr finds a free loopback port. Another process could take it
// before the child listens; the child then fails to start and says so.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// controlClient talks HTTP to a server's control socket.
type controlClient struct{ hc *http.Client }

func newControlClient(socket string) *controlClient {
	return &controlClient{hc: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
}

func (c *controlClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://fjord"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control socket GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("control socket GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(data)))
	}
	return data, nil
}

func (c *controlClient) getJSON(ctx context.Context, path string, out any) error {
	data, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

// metrics reads the control socket's Prometheus text into name -> value
// (labelled series keep their labels in the name, and their sum is under
// the bare name: fjord_events_accepted_total counts per account and site).
func (c *controlClient) metrics(ctx context.Context) (map[string]float64, error) {
	data, err := c.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err == nil {
			out[line[:i]] = v
			if name, _, labelled := strings.Cut(line[:i], "{"); labelled {
				out[name] += v
			}
		}
	}
	return out, nil
}

// fsType is the file system type of the mount holding path.
func fsType(path string) string {
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return ""
	}
	best, typ := "", ""
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, typ = mp, f[2]
		}
	}
	return typ
}
