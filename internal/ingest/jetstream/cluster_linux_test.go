package jetstream

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// node is one nats-server process of the test cluster.
type node struct {
	name string
	url  string
	cmd  *exec.Cmd
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startCluster runs three nodes as child processes of this test binary.
func startCluster(t *testing.T) []*node {
	t.Helper()
	ports := freePorts(t, 6)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
	}
	dir := t.TempDir()
	nodes := make([]*node, 3)
	for i := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			nodeEnv+"="+name,
			"FJORD_NATS_DIR="+filepath.Join(dir, name),
			fmt.Sprintf("FJORD_NATS_PORT=%d", ports[i]),
			fmt.Sprintf("FJORD_NATS_CLUSTER_PORT=%d", ports[3+i]),
			"FJORD_NATS_ROUTES="+strings.Join(routes, ","),
		)
		cmd.Stderr = os.Stderr
		// No orphaned servers if the test binary dies.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		nd := &node{name: name, url: fmt.Sprintf("nats://127.0.0.1:%d", ports[i]), cmd: cmd}
		nodes[i] = nd
		t.Cleanup(func() {
			nd.cmd.Process.Kill()
			nd.cmd.Wait()
		})
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			ok := false
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "ready") && !ok {
					ok = true
					ready <- true
				}
			}
			if !ok {
				ready <- false
			}
		}()
		nodes[i] = nd
		defer func() {
			select {
			case ok := <-ready:
				if !ok {
					t.Fatalf("node %s exited before it was ready", name)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("node %s not ready after 10 s", name)
			}
		}()
	}
	return nodes
}

// Three nodes, a stream with three replicas, events published continuously
// while the stream's leader is killed with SIGKILL: every event whose
// Publish returned nil is consumed exactly once afterwards.
func TestClusterKillLeader(t *testing.T) {
	nodes := startCluster(t)
	var urls []string
	for _, nd := range nodes {
		urls = append(urls, nd.url)
	}
	_, js := connect(t, strings.Join(urls, ","))
	cfg := Config{Stream: "T", Subject: "t.events", Replicas: 3}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The stream needs a meta leader first, then its own.
	start := time.Now()
	var (
		st   jetstream.Stream
		info *jetstream.StreamInfo
		err  error
	)
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		st, err = EnsureStream(actx, js, cfg)
		if err == nil {
			info, err = st.Info(actx)
		}
		acancel()
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("stream without a leader after 15 s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	leader := info.Cluster.Leader
	t.Logf("stream with 3 replicas ready %v after the nodes, leader %s", time.Since(start).Round(time.Millisecond), leader)

	const batch = 1000
	const killAfter = 2 * time.Second
	const afterRecovery = 2 * time.Second
	p := newPublisher(t, js, cfg, 2*time.Second)
	var (
		next                 int // first number not yet acknowledged
		failures             int
		killed, firstOKAfter time.Time
		ackedAtKill          int
	)
	// Publish until the cluster took batches again for a while after the
	// kill; the election alone takes 4 to 9 s (the servers' Raft timeouts).
	t0 := time.Now()
	for firstOKAfter.IsZero() || time.Since(firstOKAfter) < afterRecovery {
		if time.Since(t0) > 25*time.Second {
			t.Fatalf("publishing did not recover within %v of the kill", time.Since(killed))
		}
		if killed.IsZero() && time.Since(t0) >= killAfter {
			for _, nd := range nodes {
				if nd.name == leader {
					if err := nd.cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
				}
			}
			killed = time.Now()
			ackedAtKill = next
		}
		_, err := p.Publish(ctx, events(next, batch))
		if err != nil {
			failures++ // retry the same batch, as the forwarder does
			if failures <= 3 {
				t.Logf("publish of %d..%d failed %v after the kill: %.200v", next, next+batch-1, time.Since(killed).Round(time.Millisecond), err)
			}
			continue
		}
		if !killed.IsZero() && firstOKAfter.IsZero() {
			firstOKAfter = time.Now()
		}
		next += batch
	}
	total := next
	t.Logf("published %d events in batches of %d: %.0f/s before the kill; killed leader %s; %d failed Publish calls (each retried) until the first success %v after the kill; %.0f/s after that",
		total, batch, float64(ackedAtKill)/killed.Sub(t0).Seconds(), leader,
		failures, firstOKAfter.Sub(killed).Round(time.Millisecond),
		float64(total-ackedAtKill)/time.Since(firstOKAfter).Seconds())

	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		info, err = st.Info(actx)
		acancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("stream info: %v", err)
		}
	}
	if info.State.Msgs != uint64(total) {
		t.Errorf("stream holds %d messages, want %d: every acknowledged event once", info.State.Msgs, total)
	}
	t.Logf("new stream leader %s", info.Cluster.Leader)

	col := newCollector(t)
	c := NewConsumer(js, cfg, ConsumerConfig{MaxWait: 200 * time.Millisecond, RetryWait: 100 * time.Millisecond})
	c0 := time.Now()
	stop := run(t, c, col.sink)
	waitFor(t, 15*time.Second, "every acknowledged event consumed", func() bool { return col.distinct() >= total })
	took := time.Since(c0)
	stop()
	if got := col.check(t, total); got != total {
		t.Errorf("consumed %d distinct events, want %d", got, total)
	}
	t.Logf("consumed %d events in %v (%.0f/s) from two of three nodes; stats %+v", total, took.Round(time.Millisecond), float64(total)/took.Seconds(), c.Stats())
}
