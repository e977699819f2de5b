package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// payload returns a distinct, deterministic record of the given size whose
// bytes are all non-zero (so "last non-zero byte" arithmetic in the tests is
// exact).
func payload(i, size int) []byte {
	b := []byte(fmt.Sprintf("rec-%06d-", i))
	for len(b) < size {
		b = append(b, byte('a'+i%26))
	}
	return b[:size]
}

func open(t testing.TB, opts Options) *Journal {
	t.Helper()
	return openHooked(t, opts, hooks{})
}

func openHooked(t testing.TB, opts Options, h hooks) *Journal {
	t.Helper()
	j, err := openJournal(opts, h)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func mustAppend(t testing.TB, j *Journal, rec []byte) {
	t.Helper()
	if err := j.Append(context.Background(), rec); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// readAll reads everything after from in small steps (so steps end inside
// segments and at their boundaries) and checks the "nothing new" contract.
func readAll(t testing.TB, j *Journal, from Pos) ([][]byte, Pos) {
	t.Helper()
	var all [][]byte
	for {
		recs, next, err := j.Read(from, 7, 1000)
		if err != nil {
			t.Fatalf("Read(%v): %v", from, err)
		}
		if len(recs) == 0 {
			if next != from {
				t.Fatalf("Read(%v) returned nothing but next=%v", from, next)
			}
			return all, from
		}
		all = append(all, recs...)
		from = next
	}
}

// positions returns the position after each record, read one at a time.
func positions(t testing.TB, j *Journal) []Pos {
	t.Helper()
	var ps []Pos
	for from := (Pos{}); ; {
		recs, next, err := j.Read(from, 1, 1)
		if err != nil {
			t.Fatalf("Read(%v): %v", from, err)
		}
		if len(recs) == 0 {
			return ps
		}
		ps = append(ps, next)
		from = next
	}
}

func equalRecs(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d = %.40q, want %.40q", i, got[i], want[i])
		}
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitFor polls a condition that the code under test will make true; it is
// a synchronisation point, not a timing assertion.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// gate pauses the writer inside its first commit, after it has taken the
// queue, until opened: a deterministic way to make records pile up.
type gate struct {
	entered, release chan struct{}
	once             sync.Once
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) hook() {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
}

func bothPrealloc(t *testing.T, f func(t *testing.T, prealloc bool)) {
	for _, p := range []bool{false, true} {
		t.Run(fmt.Sprintf("prealloc=%v", p), func(t *testing.T) { f(t, p) })
	}
}

func TestRoundTripRotation(t *testing.T) {
	bothPrealloc(t, func(t *testing.T, prealloc bool) {
		dir := t.TempDir()
		const segSize = 512
		opts := Options{Dir: dir, SegmentSize: segSize, Prealloc: prealloc}
		j := open(t, opts)
		rng := rand.New(rand.NewPCG(1, 2))
		var want [][]byte
		for i := 0; len(want) < 300; i++ {
			switch {
			case i == 50:
				want = append(want, payload(len(want), 2000)) // larger than a segment
				mustAppend(t, j, want[len(want)-1])
			case i == 90:
				want = append(want, payload(len(want), MaxRecordSize))
				mustAppend(t, j, want[len(want)-1])
			case i%10 == 3: // a batch that cannot fit the rest of a segment
				var batch [][]byte
				for k := 0; k < 9; k++ {
					batch = append(batch, payload(len(want)+k, 20+rng.IntN(100)))
				}
				if err := j.AppendBatch(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
				want = append(want, batch...)
			default:
				want = append(want, payload(len(want), 12+rng.IntN(200)))
				mustAppend(t, j, want[len(want)-1])
			}
		}
		st := j.Stats()
		if st.Segments < 20 {
			t.Fatalf("Segments = %d, want many rotations", st.Segments)
		}
		got, next := readAll(t, j, Pos{})
		equalRecs(t, got, want)
		if next != j.End() {
			t.Fatalf("read ended at %v, End() = %v", next, j.End())
		}

		ps := positions(t, j)
		if len(ps) != len(want) {
			t.Fatalf("%d positions for %d records", len(ps), len(want))
		}
		for k := 0; k < 60; k++ {
			i := rng.IntN(len(ps))
			got, _ := readAll(t, j, ps[i])
			equalRecs(t, got, want[i+1:])
		}

		// A sealed segment holds at most SegmentSize bytes unless it holds a
		// single record, and a preallocated tail was given back.
		for _, p := range segFiles(t, dir)[:st.Segments-1] {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() > segSize {
				data, _ := os.ReadFile(p)
				if n := headerSize + int(binary.LittleEndian.Uint32(data)); n != len(data) {
					t.Errorf("%s: %d bytes with more than one record", p, fi.Size())
				}
			}
		}

		// Everything survives a clean reopen, and appends continue after it.
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		j = open(t, opts)
		if st := j.Stats(); st.TornBytesDropped != 0 {
			t.Fatalf("TornBytesDropped = %d after clean close", st.TornBytesDropped)
		}
		got, _ = readAll(t, j, Pos{})
		equalRecs(t, got, want)
		want = append(want, payload(len(want), 100))
		mustAppend(t, j, want[len(want)-1])
		got, _ = readAll(t, j, ps[len(ps)-1])
		equalRecs(t, got, want[len(ps):])
	})
}

func TestReadLimits(t *testing.T) {
	j := open(t, Options{Dir: t.TempDir()})
	recs, next, err := j.Read(Pos{}, 10, 1<<20)
	if err != nil || len(recs) != 0 || next != (Pos{}) {
		t.Fatalf("empty journal: Read = %d recs, %v, %v", len(recs), next, err)
	}
	for i := range 5 {
		mustAppend(t, j, payload(i, 100))
	}
	// maxBytes smaller than a record still returns one, so large records
	// cannot stall a reader; otherwise maxBytes bounds the payload total.
	if recs, _, _ := j.Read(Pos{}, 10, 1); len(recs) != 1 {
		t.Fatalf("maxBytes=1: %d records, want 1", len(recs))
	}
	if recs, _, _ := j.Read(Pos{}, 10, 250); len(recs) != 2 {
		t.Fatalf("maxBytes=250: %d records, want 2", len(recs))
	}
	if recs, _, _ := j.Read(Pos{}, 3, 1<<20); len(recs) != 3 {
		t.Fatalf("max=3: %d records, want 3", len(recs))
	}
	// Returned slices are the caller's: changing one changes nothing else.
	a, _, _ := j.Read(Pos{}, 5, 1<<20)
	for _, r := range a {
		clear(r)
	}
	b, _, _ := j.Read(Pos{}, 5, 1<<20)
	for i, r := range b {
		if !bytes.Equal(r, payload(i, 100)) {
			t.Fatalf("record %d changed after the caller modified an earlier result", i)
		}
	}
	end := j.End()
	if recs, next, err := j.Read(end, 10, 1<<20); err != nil || len(recs) != 0 || next != end {
		t.Fatalf("Read(End) = %d recs, %v, %v", len(recs), next, err)
	}
	if _, _, err := j.Read(Pos{Segment: end.Segment, Offset: end.Offset + 1}, 10, 1<<20); err == nil {
		t.Fatal("Read beyond End succeeded")
	}
}

// Read must not return records that are written but not yet fdatasync'd:
// the loader would apply them, and a power loss could then drop them from
// the journal while the store has them (or the spool would forward them).
func TestReadNeverPastEnd(t *testing.T) {
	var calls atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	dir := t.TempDir()
	j := openHooked(t, Options{Dir: dir}, hooks{syncHook: func() error {
		if calls.Add(1) == 2 {
			close(entered)
			<-release
		}
		return nil
	}})
	mustAppend(t, j, payload(0, 50))
	end := j.End()
	done := make(chan error)
	go func() { done <- j.Append(context.Background(), payload(1, 50)) }()
	<-entered // record 1 is written, its fdatasync has not run
	fi, err := os.Stat(filepath.Join(dir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= end.Offset {
		t.Fatalf("file is %d bytes: the second record should be written already", fi.Size())
	}
	if got := j.End(); got != end {
		t.Fatalf("End moved to %v before the sync", got)
	}
	if recs, _, _ := j.Read(Pos{}, 10, 1<<20); len(recs) != 1 {
		t.Fatalf("Read returned %d records before the sync, want 1", len(recs))
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := j.Read(Pos{}, 10, 1<<20); len(recs) != 2 {
		t.Fatalf("Read returned %d records after the sync, want 2", len(recs))
	}
}

func TestConcurrentAppends(t *testing.T) {
	bothPrealloc(t, func(t *testing.T, prealloc bool) {
		j := open(t, Options{Dir: t.TempDir(), SegmentSize: 16 << 10, Prealloc: prealloc})
		const writers, per = 32, 100

		// A consumer follows along with Notify while the writers run, as the
		// loader will; it must see every record exactly once.
		stop := make(chan struct{})
		seen := make(chan [][]byte)
		go func() {
			var got [][]byte
			pos := Pos{}
			for {
				recs, next, err := j.Read(pos, 50, 1<<20)
				if err != nil {
					t.Error(err)
					break
				}
				got = append(got, recs...)
				pos = next
				if len(recs) > 0 {
					continue
				}
				select {
				case <-j.Notify():
					continue
				case <-stop:
				}
				if len(got) == writers*per {
					break
				}
			}
			seen <- got
		}()

		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range per {
					if err := j.Append(context.Background(), []byte(fmt.Sprintf("w%02d-%04d", w, i))); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		followed := <-seen

		all, _ := readAll(t, j, Pos{})
		count := map[string]int{}
		for _, r := range all {
			count[string(r)]++
		}
		for w := range writers {
			for i := range per {
				if c := count[fmt.Sprintf("w%02d-%04d", w, i)]; c != 1 {
					t.Fatalf("w%02d-%04d present %d times", w, i, c)
				}
			}
		}
		if len(all) != writers*per {
			t.Fatalf("%d records, want %d", len(all), writers*per)
		}
		equalRecs(t, followed, all) // same records, same order
		st := j.Stats()
		if st.Records != writers*per || st.Groups >= st.Records {
			t.Fatalf("Records=%d Groups=%d: appends were not grouped", st.Records, st.Groups)
		}
		t.Logf("%d records in %d groups, %d segments", st.Records, st.Groups, st.Segments)
	})
}

// TestGroupCommit shows deterministically that everything waiting when the
// writer comes round is committed with one write and one fdatasync.
func TestGroupCommit(t *testing.T) {
	g := newGate()
	j := openHooked(t, Options{Dir: t.TempDir()}, hooks{beforeCommit: g.hook})
	errs := make(chan error, 20)
	go func() { errs <- j.Append(context.Background(), payload(0, 30)) }()
	<-g.entered
	for i := 1; i <= 10; i++ {
		go func() { errs <- j.Append(context.Background(), payload(i, 30)) }()
	}
	waitFor(t, "10 queued records", func() bool { return j.Stats().QueueDepth == 10 })
	close(g.release)
	for range 11 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st := j.Stats()
	if st.Records != 11 || st.Groups != 2 || st.Syncs != 2 {
		t.Fatalf("Records=%d Groups=%d Syncs=%d, want 11, 2, 2", st.Records, st.Groups, st.Syncs)
	}
	if st.QueueDepth != 0 {
		t.Fatalf("QueueDepth = %d after the queue drained", st.QueueDepth)
	}
}

func TestErrFull(t *testing.T) {
	g := newGate()
	j := openHooked(t, Options{Dir: t.TempDir(), QueueLen: 4}, hooks{beforeCommit: g.hook})
	errs := make(chan error, 10)
	go func() { errs <- j.Append(context.Background(), payload(0, 30)) }()
	<-g.entered // the writer holds record 0 and is paused
	for i := 1; i <= 4; i++ {
		go func() { errs <- j.Append(context.Background(), payload(i, 30)) }()
	}
	waitFor(t, "a full queue", func() bool { return j.Stats().QueueDepth == 4 })
	if err := j.Append(context.Background(), payload(5, 30)); !errors.Is(err, ErrFull) {
		t.Fatalf("Append on a full queue = %v, want ErrFull", err)
	}
	if err := j.AppendBatch(context.Background(), [][]byte{payload(6, 30)}); !errors.Is(err, ErrFull) {
		t.Fatalf("AppendBatch on a full queue = %v, want ErrFull", err)
	}
	close(g.release)
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// A batch larger than QueueLen is admitted into a queue with room...
	big := make([][]byte, 10)
	for i := range big {
		big[i] = payload(10+i, 30)
	}
	if err := j.AppendBatch(context.Background(), big); err != nil {
		t.Fatalf("AppendBatch larger than QueueLen: %v", err)
	}
	all, _ := readAll(t, j, Pos{})
	if len(all) != 15 {
		t.Fatalf("%d records, want 15 (the rejected ones must not be written)", len(all))
	}
}

func TestAppendBatchCountsAgainstQueue(t *testing.T) {
	g := newGate()
	j := openHooked(t, Options{Dir: t.TempDir(), QueueLen: 4}, hooks{beforeCommit: g.hook})
	errs := make(chan error, 10)
	go func() { errs <- j.Append(context.Background(), payload(0, 30)) }()
	<-g.entered
	go func() {
		errs <- j.AppendBatch(context.Background(), [][]byte{payload(1, 30), payload(2, 30), payload(3, 30), payload(4, 30), payload(5, 30)})
	}()
	waitFor(t, "the batch to queue", func() bool { return j.Stats().QueueDepth == 5 })
	if err := j.Append(context.Background(), payload(6, 30)); !errors.Is(err, ErrFull) {
		t.Fatalf("Append behind a batch that filled the queue = %v, want ErrFull", err)
	}
	close(g.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestAppendValidation(t *testing.T) {
	j := open(t, Options{Dir: t.TempDir()})
	ctx := context.Background()
	if err := j.Append(ctx, nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty record: %v", err)
	}
	if err := j.Append(ctx, make([]byte, MaxRecordSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	if err := j.AppendBatch(ctx, [][]byte{payload(0, 10), {}}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("batch with an empty record: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := j.Append(cctx, payload(1, 10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	if recs, _, _ := j.Read(Pos{}, 10, 1<<20); len(recs) != 0 {
		t.Fatalf("rejected appends wrote %d records", len(recs))
	}
	max := bytes.Repeat([]byte{7}, MaxRecordSize)
	mustAppend(t, j, max)
	recs, _, err := j.Read(Pos{}, 10, 1<<20)
	if err != nil || len(recs) != 1 || !bytes.Equal(recs[0], max) {
		t.Fatalf("MaxRecordSize record did not round-trip: %d recs, %v", len(recs), err)
	}
}

func TestNotify(t *testing.T) {
	j := open(t, Options{Dir: t.TempDir()})
	select {
	case <-j.Notify():
		t.Fatal("signal before any record")
	default:
	}
	mustAppend(t, j, payload(0, 10))
	mustAppend(t, j, payload(1, 10))
	// The signal is sent before the waiters are released, so it is there now;
	// two groups coalesce into one signal.
	select {
	case <-j.Notify():
	default:
		t.Fatal("no signal after Append returned")
	}
	select {
	case <-j.Notify():
		t.Fatal("signals did not coalesce")
	default:
	}
}

func TestOpenTwice(t *testing.T) {
	dir := t.TempDir()
	j := open(t, Options{Dir: dir})
	if j2, err := Open(Options{Dir: dir}); err == nil {
		j2.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
	j.Close()
	j2 := open(t, Options{Dir: dir})
	j2.Close()
}

func TestOpenCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	j := open(t, Options{Dir: dir})
	mustAppend(t, j, payload(0, 10))
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, want 0700", fi.Mode().Perm())
	}
}

// writeRecords fills a fresh journal with n records of the given size and
// closes it, returning the records and the position of each record's start.
func writeRecords(t *testing.T, opts Options, n, size int) ([][]byte, []Pos) {
	t.Helper()
	j := open(t, opts)
	var want [][]byte
	var starts []Pos
	for i := range n {
		starts = append(starts, j.End())
		want = append(want, payload(i, size))
		mustAppend(t, j, want[i])
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return want, starts
}

func TestTornTail(t *testing.T) {
	const n, size = 10, 60
	const frame = headerSize + size
	cases := []struct {
		name   string
		mutate func(f *os.File, end int64) error
		keep   int   // records that survive
		torn   int64 // TornBytesDropped
	}{
		{"truncate mid-payload", func(f *os.File, end int64) error { return f.Truncate(end - 3) }, n - 1, frame - 3},
		{"truncate mid-header", func(f *os.File, end int64) error { return f.Truncate(end - frame + 5) }, n - 1, 5},
		{"garbage appended", func(f *os.File, end int64) error {
			_, err := f.WriteAt(bytes.Repeat([]byte{0xAB}, 100), end)
			return err
		}, n, 100},
		{"flip payload byte", func(f *os.File, end int64) error { return flip(f, end-1) }, n - 1, frame},
		{"flip crc byte", func(f *os.File, end int64) error { return flip(f, end-frame+5) }, n - 1, frame},
		{"flip length byte", func(f *os.File, end int64) error { return flip(f, end-frame) }, n - 1, frame},
		{"huge length", func(f *os.File, end int64) error {
			_, err := f.WriteAt([]byte{0xff, 0xff, 0xff, 0x7f}, end-frame)
			return err
		}, n - 1, frame},
		{"zeroed header, payload kept", func(f *os.File, end int64) error {
			_, err := f.WriteAt(make([]byte, headerSize), end-frame)
			return err
		}, n - 1, frame},
		{"torn middle record", func(f *os.File, end int64) error { return flip(f, end-3*frame+20) }, n - 3, 3 * frame},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bothPrealloc(t, func(t *testing.T, prealloc bool) {
				dir := t.TempDir()
				opts := Options{Dir: dir, Prealloc: prealloc}
				want, _ := writeRecords(t, opts, n, size)
				f, err := os.OpenFile(filepath.Join(dir, segmentName(1)), os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.mutate(f, n*frame); err != nil {
					t.Fatal(err)
				}
				f.Close()

				j := open(t, opts)
				if got := j.Stats().TornBytesDropped; got != c.torn {
					t.Errorf("TornBytesDropped = %d, want %d", got, c.torn)
				}
				got, _ := readAll(t, j, Pos{})
				equalRecs(t, got, want[:c.keep])
				if end := j.End(); end != (Pos{1, int64(c.keep * frame)}) {
					t.Fatalf("End = %v after recovery", end)
				}
				// New appends go right after the recovered records, and the
				// dropped bytes cannot resurface behind them.
				want = append(want[:c.keep], payload(100, 7), payload(101, 7))
				mustAppend(t, j, want[c.keep])
				mustAppend(t, j, want[c.keep+1])
				got, _ = readAll(t, j, Pos{})
				equalRecs(t, got, want)
				if err := j.Close(); err != nil {
					t.Fatal(err)
				}
				j = open(t, opts)
				if got := j.Stats().TornBytesDropped; got != 0 {
					t.Errorf("TornBytesDropped = %d on the second Open", got)
				}
				got, _ = readAll(t, j, Pos{})
				equalRecs(t, got, want)
			})
		})
	}
}

func flip(f *os.File, off int64) error {
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= 0x40
	_, err := f.WriteAt(b, off)
	return err
}

func TestCorruptOlderSegment(t *testing.T) {
	const size = 50
	const frame = headerSize + size
	opts := Options{SegmentSize: 4 * frame}
	cases := []struct {
		name   string
		mutate func(path string) error
		off    int64 // offset of the bad record in segment 2
	}{
		{"flipped byte", func(p string) error { return flipFile(p, frame+headerSize+7) }, frame},
		{"truncated mid-record", func(p string) error { return os.Truncate(p, 3*frame-10) }, 2 * frame},
		{"truncated mid-header", func(p string) error { return os.Truncate(p, 3*frame+3) }, 3 * frame},
		{"zeroed header", func(p string) error {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt(make([]byte, headerSize), 2*frame)
			return err
		}, 2 * frame},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := opts
			opts.Dir = t.TempDir()
			want, _ := writeRecords(t, opts, 20, size)
			if err := c.mutate(filepath.Join(opts.Dir, segmentName(2))); err != nil {
				t.Fatal(err)
			}
			j := open(t, opts)
			recs, next, err := j.Read(Pos{}, 100, 1<<20)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Read = %d records, %v; want a *CorruptError", len(recs), err)
			}
			if ce.Segment != 2 || ce.Offset != c.off {
				t.Fatalf("error names segment %d offset %d, want 2 and %d", ce.Segment, ce.Offset, c.off)
			}
			if msg := err.Error(); !strings.Contains(msg, segmentName(2)) || !strings.Contains(msg, fmt.Sprint("offset ", c.off)) {
				t.Fatalf("error %q does not name the file and offset", msg)
			}
			// The records before the damage are returned, and reading on from
			// there fails again instead of skipping to segment 3.
			equalRecs(t, recs, want[:4+int(c.off/frame)])
			if next != (Pos{2, c.off}) {
				t.Fatalf("next = %v, want 2:%d", next, c.off)
			}
			if recs, _, err := j.Read(next, 100, 1<<20); !errors.As(err, &ce) || len(recs) != 0 {
				t.Fatalf("second Read = %d records, %v", len(recs), err)
			}
		})
	}

	// Corruption in a segment sealed while open is caught the same way.
	t.Run("sealed this session", func(t *testing.T) {
		opts := opts
		opts.Dir = t.TempDir()
		j := open(t, opts)
		for i := range 10 {
			mustAppend(t, j, payload(i, size))
		}
		if err := flipFile(filepath.Join(opts.Dir, segmentName(1)), 2*frame+20); err != nil {
			t.Fatal(err)
		}
		_, _, err := j.Read(Pos{}, 100, 1<<20)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Segment != 1 || ce.Offset != 2*frame {
			t.Fatalf("Read = %v, want corruption at 1:%d", err, 2*frame)
		}
	})

	// Zero padding after the last record of an older segment is what a crash
	// between rotation and the truncation of a preallocated tail leaves: it
	// is the end of the segment, not corruption.
	t.Run("zero padding is not corruption", func(t *testing.T) {
		opts := opts
		opts.Dir = t.TempDir()
		want, _ := writeRecords(t, opts, 20, size)
		p := filepath.Join(opts.Dir, segmentName(2))
		f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(make([]byte, 1000))
		f.Close()
		j := open(t, opts)
		got, _ := readAll(t, j, Pos{})
		equalRecs(t, got, want)
	})
}

func flipFile(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return flip(f, off)
}

func TestOpenMissingSegment(t *testing.T) {
	const size = 50
	opts := Options{Dir: t.TempDir(), SegmentSize: 4 * (headerSize + size)}
	writeRecords(t, opts, 20, size)
	if err := os.Remove(filepath.Join(opts.Dir, segmentName(3))); err != nil {
		t.Fatal(err)
	}
	_, err := Open(opts)
	if err == nil || !strings.Contains(err.Error(), segmentName(3)) {
		t.Fatalf("Open with a gap = %v, want an error naming segment 3", err)
	}
}

func TestRelease(t *testing.T) {
	bothPrealloc(t, func(t *testing.T, prealloc bool) {
		const size = 50
		const frame = headerSize + size
		dir := t.TempDir()
		opts := Options{Dir: dir, SegmentSize: 4 * frame, Prealloc: prealloc} // 4 records per segment
		j := open(t, opts)
		var want [][]byte
		for i := range 22 { // segments 1..6, the 6th active with 2 records
			want = append(want, payload(i, size))
			mustAppend(t, j, want[i])
		}
		exists := func(num uint64) bool {
			_, err := os.Stat(filepath.Join(dir, segmentName(num)))
			return err == nil
		}
		ps := positions(t, j) // ps[i] is after record i; record i is in segment i/4+1

		// Inside segment 3: only 1 and 2 are wholly before it.
		if err := j.Release(ps[9]); err != nil {
			t.Fatal(err)
		}
		if exists(1) || exists(2) || !exists(3) || j.Stats().Segments != 4 {
			t.Fatalf("after Release(%v): segments 1,2,3 exist = %v,%v,%v", ps[9], exists(1), exists(2), exists(3))
		}
		// Reading from a released position, or from the beginning, continues
		// with what is retained.
		got, _ := readAll(t, j, ps[9])
		equalRecs(t, got, want[10:])
		got, _ = readAll(t, j, Pos{})
		equalRecs(t, got, want[8:])

		// At the exact end of segment 3: it is fully consumed.
		if ps[11] != (Pos{3, 4 * frame}) {
			t.Fatalf("record 11 ends at %v, test assumes 3:%d", ps[11], 4*frame)
		}
		if err := j.Release(ps[11]); err != nil {
			t.Fatal(err)
		}
		if exists(3) || !exists(4) {
			t.Fatal("Release at the end of segment 3 did not delete exactly segment 3")
		}
		got, _ = readAll(t, j, ps[11])
		equalRecs(t, got, want[12:])

		// Everything: the active segment stays.
		end := j.End()
		if err := j.Release(end); err != nil {
			t.Fatal(err)
		}
		if files := segFiles(t, dir); len(files) != 1 || filepath.Base(files[0]) != segmentName(6) {
			t.Fatalf("after releasing everything: %v", files)
		}
		if err := j.Release(Pos{end.Segment, end.Offset + 1}); err == nil {
			t.Fatal("Release beyond End succeeded")
		}
		// Appending and reading go on, also across the next rotation.
		for i := 22; i < 30; i++ {
			want = append(want, payload(i, size))
			mustAppend(t, j, want[i])
		}
		got, _ = readAll(t, j, end)
		equalRecs(t, got, want[22:])

		// A reopened journal starts from the retained segments.
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		j = open(t, opts)
		got, _ = readAll(t, j, Pos{})
		equalRecs(t, got, want[20:])
		// Release of a segment sealed before this Open, at its exact end.
		if err := j.Release(Pos{6, 4 * frame}); err != nil {
			t.Fatal(err)
		}
		if exists(6) || !exists(7) {
			t.Fatal("Release at the end of a segment sealed before Open did not delete it")
		}
	})
}

func TestCloseDrains(t *testing.T) {
	g := newGate()
	dir := t.TempDir()
	j, err := openJournal(Options{Dir: dir}, hooks{beforeCommit: g.hook})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	go func() { errs <- j.Append(context.Background(), payload(0, 30)) }()
	<-g.entered
	for i := 1; i <= 5; i++ {
		go func() { errs <- j.Append(context.Background(), payload(i, 30)) }()
	}
	waitFor(t, "5 queued records", func() bool { return j.Stats().QueueDepth == 5 })
	closed := make(chan error)
	go func() { closed <- j.Close() }()
	waitFor(t, "Close to begin", func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.closed
	})
	if err := j.Append(context.Background(), payload(9, 30)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append during Close = %v, want ErrClosed", err)
	}
	close(g.release)
	for range 6 {
		if err := <-errs; err != nil {
			t.Fatalf("queued Append failed during Close: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := j.Append(context.Background(), payload(9, 30)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The consumer may finish draining after Close.
	if got, _ := readAll(t, j, Pos{}); len(got) != 6 {
		t.Fatalf("Read after Close: %d records, want 6", len(got))
	}
	j2 := open(t, Options{Dir: dir})
	got, _ := readAll(t, j2, Pos{})
	if len(got) != 6 {
		t.Fatalf("%d records after reopen, want 6", len(got))
	}
}

// After a failed fdatasync the journal stops: no retry (the kernel may have
// dropped the pages it failed to write, so a later "successful" fsync would
// lie), every later Append fails, and End never covers the failed group.
func TestFailStop(t *testing.T) {
	injected := errors.New("injected EIO")
	var calls atomic.Int32
	dir := t.TempDir()
	j, err := openJournal(Options{Dir: dir}, hooks{syncHook: func() error {
		if calls.Add(1) == 2 {
			return injected
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, payload(0, 20))
	end := j.End()
	if err := j.Append(context.Background(), payload(1, 20)); !errors.Is(err, injected) {
		t.Fatalf("Append with failing sync = %v", err)
	}
	for i := range 3 {
		if err := j.Append(context.Background(), payload(2+i, 20)); !errors.Is(err, injected) {
			t.Fatalf("Append after failure = %v, want the sticky error", err)
		}
	}
	if err := j.AppendBatch(context.Background(), [][]byte{payload(9, 20)}); !errors.Is(err, injected) {
		t.Fatalf("AppendBatch after failure = %v", err)
	}
	if c := calls.Load(); c != 2 {
		t.Fatalf("%d sync attempts, want 2 (no retry after a failure)", c)
	}
	if got := j.End(); got != end {
		t.Fatalf("End moved to %v past a failed sync", got)
	}
	if recs, _, _ := j.Read(Pos{}, 10, 1<<20); len(recs) != 1 {
		t.Fatalf("Read returned %d records, want 1", len(recs))
	}
	if err := j.Close(); !errors.Is(err, injected) {
		t.Fatalf("Close = %v, want the fatal error", err)
	}
	// Reopening starts over from what is on disk.
	j2 := open(t, Options{Dir: dir})
	got, _ := readAll(t, j2, Pos{})
	if len(got) < 1 || !bytes.Equal(got[0], payload(0, 20)) {
		t.Fatalf("acknowledged record lost after reopen: %d records", len(got))
	}
	mustAppend(t, j2, payload(10, 20))
}
