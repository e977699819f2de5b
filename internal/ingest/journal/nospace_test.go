package journal

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
)

// noSpaceErr is what a write or open refused for lack of space returns.
func noSpaceErr(op, path string) error {
	return &os.PathError{Op: op, Path: path, Err: syscall.ENOSPC}
}

// isNoSpaceErr checks that err says both things a caller may test.
func isNoSpaceErr(err error) bool {
	return errors.Is(err, ErrNoSpace) && errors.Is(err, syscall.ENOSPC)
}

// reopenCheck closes j, opens the journal again and checks that it reads
// back exactly want with nothing dropped as torn.
func reopenCheck(t *testing.T, j *Journal, opts Options, want [][]byte) *Journal {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatalf("Close after a full disk: %v (a full disk is not fatal)", err)
	}
	j = open(t, opts)
	if torn := j.Stats().TornBytesDropped; torn != 0 {
		t.Fatalf("TornBytesDropped = %d after reopen, want 0", torn)
	}
	got, _ := readAll(t, j, Pos{})
	equalRecs(t, got, want)
	return j
}

// A write that fails with ENOSPC, whole or half-way through, refuses its
// group only: what was acknowledged stays, the segment goes back to its
// durable data (no partial record left behind), and the journal goes on.
func TestNoSpaceWrite(t *testing.T) {
	const (
		none = iota
		whole
		half
	)
	bothPrealloc(t, func(t *testing.T, prealloc bool) {
		dir := t.TempDir()
		opts := Options{Dir: dir, Prealloc: prealloc}
		var mode atomic.Int32
		j := openHooked(t, opts, hooks{writeHook: func(f *os.File, b []byte, off int64) (int, error) {
			switch mode.Swap(none) {
			case whole:
				return 0, noSpaceErr("write", f.Name())
			case half:
				n, err := f.WriteAt(b[:len(b)/2], off)
				if err != nil {
					return n, err
				}
				return n, noSpaceErr("write", f.Name())
			}
			return f.WriteAt(b, off)
		}})
		ctx := context.Background()
		var want [][]byte
		for i := range 5 {
			want = append(want, payload(i, 50))
			mustAppend(t, j, want[i])
		}
		end := j.End()

		mode.Store(whole)
		if err := j.Append(ctx, payload(100, 50)); !isNoSpaceErr(err) {
			t.Fatalf("Append with a full disk = %v, want ErrNoSpace and ENOSPC", err)
		}
		if got := j.End(); got != end {
			t.Fatalf("End moved to %v past a refused write", got)
		}
		want = append(want, payload(5, 50))
		mustAppend(t, j, want[5]) // not stopped

		// Half of a batch of 6 reaches the file: 3 whole, valid records
		// that were never acknowledged. They must go, and not resurface
		// behind the shorter record appended next.
		end = j.End()
		mode.Store(half)
		batch := [][]byte{payload(101, 50), payload(102, 50), payload(103, 50), payload(104, 50), payload(105, 50), payload(106, 50)}
		if err := j.AppendBatch(ctx, batch); !isNoSpaceErr(err) {
			t.Fatalf("AppendBatch with a disk that fills half-way = %v", err)
		}
		if got := j.End(); got != end {
			t.Fatalf("End moved to %v past a partial write", got)
		}
		fi, err := os.Stat(filepath.Join(dir, segmentName(1)))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != end.Offset {
			t.Fatalf("segment is %d bytes after the partial write, want %d (its durable data)", fi.Size(), end.Offset)
		}
		want = append(want, payload(6, 10))
		mustAppend(t, j, want[6])
		got, _ := readAll(t, j, Pos{})
		equalRecs(t, got, want)
		st := j.Stats()
		if st.NoSpace != 2 || st.Records != 7 || st.Groups != 7 {
			t.Fatalf("NoSpace=%d Records=%d Groups=%d, want 2, 7, 7", st.NoSpace, st.Records, st.Groups)
		}
		j = reopenCheck(t, j, opts, want)
		want = append(want, payload(7, 50))
		mustAppend(t, j, want[7])
		reopenCheck(t, j, opts, want)
	})
}

// Other write errors and a failed sync stay fatal.
func TestNoSpaceOnlyForSpace(t *testing.T) {
	j := openHooked(t, Options{Dir: t.TempDir()}, hooks{writeHook: func(f *os.File, b []byte, off int64) (int, error) {
		return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.EIO}
	}})
	if err := j.Append(context.Background(), payload(0, 10)); !errors.Is(err, syscall.EIO) || errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append with EIO = %v", err)
	}
	if err := j.Append(context.Background(), payload(1, 10)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append after EIO = %v, want the sticky error", err)
	}

	// fdatasync failing with ENOSPC (NFS, thin provisioning) is a failed
	// sync like any other.
	j2 := openHooked(t, Options{Dir: t.TempDir()}, hooks{syncHook: func() error { return syscall.ENOSPC }})
	if err := j2.Append(context.Background(), payload(0, 10)); !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append with a sync failing with ENOSPC = %v, want a fatal error", err)
	}
	if err := j2.Append(context.Background(), payload(1, 10)); !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append after the failed sync = %v, want the sticky error", err)
	}
}

// pauser holds the writer before the commit after arm, so that a test can
// queue several requests into one group.
type pauser struct{ g atomic.Pointer[gate] }

func (p *pauser) arm() *gate {
	g := newGate()
	p.g.Store(g)
	return g
}

func (p *pauser) hook() {
	if g := p.g.Swap(nil); g != nil {
		g.hook()
	}
}

// A segment that cannot be created at rotation refuses the part of the
// group that did not fit; a group split across the rotation acknowledges
// the requests that became durable in full, and the records synced before
// the failure stay readable. The next group tries the rotation again.
func TestNoSpaceRotation(t *testing.T) {
	bothPrealloc(t, func(t *testing.T, prealloc bool) {
		const size = 40
		const frame = headerSize + size
		dir := t.TempDir()
		opts := Options{Dir: dir, SegmentSize: 10 * frame, Prealloc: prealloc}
		var full atomic.Bool
		var creates atomic.Int32
		var p pauser
		j := openHooked(t, opts, hooks{
			beforeCommit: p.hook,
			createHook: func(num uint64) error {
				creates.Add(1)
				if full.Load() {
					return noSpaceErr("open", filepath.Join(dir, segmentName(num)))
				}
				return nil
			},
		})
		ctx := context.Background()
		rec := func(i int) []byte { return payload(i, size) }
		var want [][]byte
		for i := range 7 {
			want = append(want, rec(i))
			mustAppend(t, j, want[i])
		}
		// One group: record 8 alone, then a batch of 9, 10, 11 of which
		// only 9 fits the segment (10 records).
		g := p.arm()
		errs := make(chan error, 1)
		go func() { errs <- j.Append(ctx, rec(7)) }()
		<-g.entered
		single, batch := make(chan error, 1), make(chan error, 1)
		go func() { single <- j.Append(ctx, rec(8)) }()
		waitFor(t, "record 8 to queue", func() bool { return j.Stats().QueueDepth == 1 })
		go func() { batch <- j.AppendBatch(ctx, [][]byte{rec(9), rec(10), rec(11)}) }()
		waitFor(t, "the batch to queue", func() bool { return j.Stats().QueueDepth == 4 })
		full.Store(true)
		close(g.release)
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if err := <-single; err != nil {
			t.Fatalf("record 8, durable before the rotation failed: %v", err)
		}
		if err := <-batch; !isNoSpaceErr(err) {
			t.Fatalf("the batch cut by the failed rotation = %v, want ErrNoSpace", err)
		}
		// Record 9 is durable although its waiter was told failure: the
		// client retries it, and its event id makes the copy harmless.
		want = append(want, rec(7), rec(8), rec(9))
		if end := j.End(); end != (Pos{1, 10 * frame}) {
			t.Fatalf("End = %v, want the full first segment", end)
		}
		got, _ := readAll(t, j, Pos{})
		equalRecs(t, got, want)

		// Still full: the next group tries again and is refused.
		before := creates.Load()
		if err := j.Append(ctx, rec(12)); !isNoSpaceErr(err) {
			t.Fatalf("Append while a segment cannot be created = %v", err)
		}
		if creates.Load() == before {
			t.Fatal("the next group did not try the rotation again")
		}
		if st := j.Stats(); st.NoSpace != 2 || st.Segments != 1 {
			t.Fatalf("NoSpace=%d Segments=%d, want 2, 1", st.NoSpace, st.Segments)
		}
		fi, err := os.Stat(filepath.Join(dir, segmentName(1)))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != 10*frame {
			t.Fatalf("the full segment is %d bytes, want %d", fi.Size(), 10*frame)
		}

		full.Store(false)
		// the client's retry: 9 is stored twice
		if err := j.AppendBatch(ctx, [][]byte{rec(9), rec(10), rec(11)}); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec(9), rec(10), rec(11))
		got, _ = readAll(t, j, Pos{})
		equalRecs(t, got, want)
		if st := j.Stats(); st.Segments != 2 {
			t.Fatalf("Segments = %d after space came back, want 2", st.Segments)
		}
		j = reopenCheck(t, j, opts, want)
		want = append(want, rec(13))
		mustAppend(t, j, want[len(want)-1])
		reopenCheck(t, j, opts, want)
	})
}

// statfsFree is the space statfs reports free to unprivileged users.
func statfsFree(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// Below Options.Reserve, groups are refused before anything is written;
// with the reserve lowered, appends go on.
func TestNoSpaceReserve(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	j := open(t, Options{Dir: dir, Reserve: 1})
	mustAppend(t, j, payload(0, 30)) // a reserve below the free space refuses nothing
	end := j.End()

	free := statfsFree(t, dir)
	j.SetReserve(free + 1<<40) // well above, whatever else uses the disk meanwhile
	for i := range 3 {
		if err := j.Append(ctx, payload(1+i, 30)); !errors.Is(err, ErrNoSpace) {
			t.Fatalf("Append below the reserve = %v, want ErrNoSpace", err)
		}
	}
	if got := j.End(); got != end {
		t.Fatalf("End moved to %v below the reserve", got)
	}
	if st := j.Stats(); st.NoSpace != 3 || st.Bytes != uint64(headerSize+30) {
		t.Fatalf("NoSpace=%d Bytes=%d, want 3 and one record's bytes", st.NoSpace, st.Bytes)
	}
	j.SetReserve(1)
	mustAppend(t, j, payload(4, 30))
	got, _ := readAll(t, j, Pos{})
	equalRecs(t, got, [][]byte{payload(0, 30), payload(4, 30)})

	// A second journal opened with a reserve above the free space refuses
	// from its first group.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2 := open(t, Options{Dir: dir, Reserve: statfsFree(t, dir) + 1<<40})
	if err := j2.Append(ctx, payload(5, 30)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append with Options.Reserve above the free space = %v", err)
	}
}

// TestNoSpaceTmpfs fills a real (tmpfs) file system: appends fail with
// ErrNoSpace and nothing else, every acknowledged record reads back after
// a reopen, and once space is freed appends succeed again without one.
func TestNoSpaceTmpfs(t *testing.T) {
	if os.Getenv("FJORD_TEST_TMPFS") == "" {
		t.Skip("set FJORD_TEST_TMPFS=1 to run this test: it mounts a small tmpfs and needs root")
	}
	bothPrealloc(t, func(t *testing.T, prealloc bool) {
		mnt := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
			t.Fatalf("mount tmpfs on %s: %v: %s", mnt, err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", mnt, err, out)
			}
		})
		// The filler is the space an operator frees later.
		filler := filepath.Join(mnt, "filler")
		if err := os.WriteFile(filler, make([]byte, 512<<10), 0o600); err != nil {
			t.Fatal(err)
		}
		opts := Options{Dir: filepath.Join(mnt, "journal"), SegmentSize: 256 << 10, Prealloc: prealloc}
		j := open(t, opts)
		ctx := context.Background()
		var want [][]byte
		refused := 0
		for i := 0; refused < 20; i++ {
			if i > 10000 {
				t.Fatal("4 MiB never filled up")
			}
			rec := payload(i, 900+i%300)
			var err error
			if i%7 == 0 {
				err = j.AppendBatch(ctx, [][]byte{rec, payload(i+1<<20, 500)})
			} else {
				err = j.Append(ctx, rec)
			}
			switch {
			case err == nil:
				if refused > 0 {
					// A smaller record may still fit; it is acknowledged
					// all the same.
					t.Logf("record %d fitted after %d refusals", i, refused)
				}
				want = append(want, rec)
				if i%7 == 0 {
					want = append(want, payload(i+1<<20, 500))
				}
			case isNoSpaceErr(err):
				refused++
			default:
				t.Fatalf("Append %d on a full disk: %v, want ErrNoSpace", i, err)
			}
		}
		st := j.Stats()
		t.Logf("%d records acknowledged, %d segments, NoSpace=%d", len(want), st.Segments, st.NoSpace)
		if st.NoSpace < 20 {
			t.Fatalf("NoSpace = %d, want at least 20", st.NoSpace)
		}
		got, _ := readAll(t, j, Pos{})
		equalRecs(t, got, want)
		j = reopenCheck(t, j, opts, want)

		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			rec := payload(20000+i, 1000)
			want = append(want, rec)
			if err := j.Append(ctx, rec); err != nil {
				t.Fatalf("Append %d after space was freed: %v", i, err)
			}
		}
		reopenCheck(t, j, opts, want)
	})
}

// TestRecycleAfterNoSpace: after a group was refused for lack of space, a
// consumer that releases everything gets the active segment's space back
// at the next group (a new segment; the old file deleted), so a drained
// spool whose disk filled collects again.
func TestRecycleAfterNoSpace(t *testing.T) {
	dir := t.TempDir()
	j := open(t, Options{Dir: dir})
	defer j.Close()
	ctx := context.Background()
	for i := range 5 {
		mustAppend(t, j, payload(i, 100))
	}
	j.SetReserve(math.MaxInt64)
	if err := j.Append(ctx, payload(5, 100)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("append below the reserve: %v", err)
	}
	j.SetReserve(0)
	first := segFiles(t, dir)
	if err := j.Release(j.End()); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, payload(6, 100))
	after := segFiles(t, dir)
	if len(after) != 1 || after[0] == first[0] {
		t.Fatalf("segments before %v, after %v: want the released one replaced", first, after)
	}
	got, _ := readAll(t, j, Pos{})
	equalRecs(t, got, [][]byte{payload(6, 100)})
}
