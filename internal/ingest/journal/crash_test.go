package journal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	crashDirEnv      = "JOURNAL_CRASH_DIR"
	crashRoundEnv    = "JOURNAL_CRASH_ROUND"
	crashPreallocEnv = "JOURNAL_CRASH_PREALLOC"
	crashSegmentSize = 32 << 10 // small, so rotations happen under the kill
)

func crashRecord(round, id int64) []byte {
	b := fmt.Appendf(nil, "r%d-%d ", round, id)
	return append(b, bytes.Repeat([]byte{'x'}, 100-len(b))...) // ~ a collector event
}

// TestHelperProcess is not a test: TestCrashKill9 runs the test binary again
// with this test selected and the environment set. It appends numbered
// records from many goroutines and prints "ack N" as each Append returns
// nil, exactly as the HTTP handler answers 2xx, until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashKill9")
	}
	round, _ := strconv.ParseInt(os.Getenv(crashRoundEnv), 10, 64)
	j, err := Open(Options{Dir: dir, SegmentSize: crashSegmentSize, Prealloc: os.Getenv(crashPreallocEnv) == "1"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var next atomic.Int64
	var out sync.Mutex
	for range 16 {
		go func() {
			for {
				id := next.Add(1)
				if err := j.Append(context.Background(), crashRecord(round, id)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "ack %d\n", id) // one write(2): a kill cannot split it
				out.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Minute) // the parent kills us long before
	os.Exit(4)
}

// TestCrashKill9 SIGKILLs a process in the middle of concurrent appends and
// checks that every record whose Append had returned nil is in the journal
// exactly once. Three rounds on one directory, so recovery also runs on a
// journal that was itself recovered and then killed again.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	bothPrealloc(t, func(t *testing.T, prealloc bool) {
		dir := t.TempDir()
		acked := map[string]bool{}
		for round := int64(1); round <= 3; round++ {
			n := crashRound(t, dir, round, prealloc)
			for _, id := range n {
				acked[fmt.Sprintf("r%d-%d", round, id)] = true
			}

			j, err := Open(Options{Dir: dir, SegmentSize: crashSegmentSize, Prealloc: prealloc})
			if err != nil {
				t.Fatalf("round %d: Open after kill: %v", round, err)
			}
			all, _ := readAll(t, j, Pos{})
			st := j.Stats()
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			count := map[string]int{}
			for _, r := range all {
				id, _, _ := strings.Cut(string(r), " ")
				count[id]++
			}
			for id, c := range count {
				if c != 1 {
					t.Fatalf("round %d: record %s stored %d times", round, id, c)
				}
			}
			missing := 0
			for id := range acked {
				if count[id] != 1 {
					missing++
				}
			}
			if missing > 0 {
				t.Fatalf("round %d: %d acknowledged records missing after kill -9", round, missing)
			}
			t.Logf("round %d: %d acknowledged, %d stored in %d segments, %d torn bytes dropped",
				round, len(n), len(all), st.Segments, st.TornBytesDropped)
		}
	})
}

// crashRound runs one helper, kills it after it has acknowledged a few
// thousand records, and returns every id it acknowledged.
func crashRound(t *testing.T, dir string, round int64, prealloc bool) []int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	p := "0"
	if prealloc {
		p = "1"
	}
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.FormatInt(round, 10), crashPreallocEnv+"="+p)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	watchdog := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()

	var ids []int64
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() { // lines already in the pipe when the kill lands are still read
		s, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("helper printed %q", sc.Text())
		}
		ids = append(ids, id)
		if !killed && len(ids) >= 3000 {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !killed || !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v after %d acks (killed by us: %v); stderr:\n%s", err, len(ids), killed, stderr.String())
	}
	return ids
}
