// Package journal is a durable, append-only, checksummed log with group
// commit. It is the write-ahead log of the collector (an HTTP handler answers
// 2xx only after Append returns nil, so every acknowledged record survives a
// kill -9 or power loss) and the spool of an edge collector. It stores opaque
// byte records and knows nothing about what they mean.
//
// # Group commit
//
// One writer goroutine owns the files. Append queues its record and waits;
// the writer takes everything queued at that moment, writes it with one
// pwrite, makes it durable with one fdatasync, and then releases all those
// waiters together. There is no timer: while one group is being synced the
// next one accumulates, so the group size follows the load by itself (about
// 10 records per sync at 50 concurrent requests on the reference machine).
//
// # On-disk format
//
// Dir holds segment files named by a zero-padded decimal number
// (00000000000000000001.wal, ...) and a LOCK file. A segment is a sequence of
// records, each
//
//	u32 little-endian payload length | u32 little-endian CRC-32C(payload) | payload
//
// A length of 0 is never a record: it marks the end of data, which is what a
// preallocated (zero) tail reads as. Records never span segments.
//
// # Recovery
//
// Open CRC-scans only the newest segment: older segments were fdatasync'd
// completely before the next one was created, so only the newest can have a
// torn tail. Everything after the last valid record in the newest segment is
// dropped (see Stats.TornBytesDropped). A bad record anywhere else is
// reported as a *CorruptError naming the file and offset, never skipped.
//
// # Failure
//
// A full disk is not fatal. A write or a segment creation that fails with
// ENOSPC or EDQUOT, and a group refused because the file system's free space
// is below Options.Reserve, answer that group with an error wrapping
// ErrNoSpace (the collector answers 503) and the journal keeps accepting
// Appends, so collection resumes by itself once space is back. Nothing of
// such a group was acknowledged, and write(2) failing for lack of space
// leaves no dirty pages behind that the kernel could drop later, so the
// writer can go back: it truncates the active segment to its durable data
// (which also removes a partial write, garbage that later appends could
// otherwise line up as records), fdatasyncs that truncation, and carries on
// from there. A failed rotation leaves the full segment active, and the next
// group tries again.
//
// A group split across a rotation may fail after its first part was
// synced into the full segment: that part is durable and consumers read it,
// but only the waiters all of whose records were durable are told success.
// The waiter whose records were cut is told failure although some of them
// are stored; it may retry, and the event ids make the duplicates harmless
// downstream.
//
// Any other failed write, and any failed fdatasync whatever its errno,
// stops the journal for good: the current group and every later Append get
// the error. Retrying fsync is unsafe because Linux may already have dropped
// the dirty pages and would report success for data that never reached the
// disk. Reopening re-reads what is actually on disk.
package journal

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultSegmentSize = 64 << 20
	DefaultQueueLen    = 8192
)

// Options configure a Journal. Zero values take the defaults.
type Options struct {
	Dir string // created 0700 if missing

	// SegmentSize is the size after which the writer starts a new segment
	// file. Release deletes whole segments, so this is also the granularity
	// at which disk space is given back. Default 64 MiB.
	SegmentSize int64

	// QueueLen is the number of records that may wait for the writer. Beyond
	// it Append returns ErrFull at once, so an overloaded collector answers
	// 503 quickly instead of piling up goroutines. Default 8192.
	QueueLen int

	// Prealloc reserves SegmentSize bytes for each new segment with
	// fallocate, so a group's fdatasync need not log a file-size change and
	// a block allocation. On this machine, in paired runs with 50 concurrent
	// appenders, it made the median sync 0.58 -> 0.41 ms and gave 1.25x the
	// records/s; without it syncs also grew slower as the file grew.
	Prealloc bool

	// Reserve is the free space (bytes, as statfs reports to unprivileged
	// users) that the journal leaves on its file system: while less is free,
	// every group is refused with ErrNoSpace before it is written, so the
	// other files on that disk (the databases the journal feeds) keep a
	// margin. The writer reads the free space at most every 100 ms and
	// subtracts what it allocated since. Zero: no check, only a failed write
	// refuses. SetReserve changes it while the journal runs.
	Reserve int64
}

// reserveInterval is how often the writer reads the file system's free
// space while Reserve is set.
const reserveInterval = 100 * time.Millisecond

// hooks let this package's tests pause the writer or fail a sync at an exact
// point. They live outside Options so that Options stays a plain comparable
// value for callers.
type hooks struct {
	beforeCommit func()       // writer: after taking a group, before writing it
	syncHook     func() error // writer: before each fdatasync; an error stands in for a failed sync
	// writeHook replaces the segment write (f.WriteAt(b, off)): it may
	// write part of b itself and return an error, as a disk that fills up
	// half-way through a pwrite would.
	writeHook func(f *os.File, b []byte, off int64) (int, error)
	// createHook runs before a new segment file is created at rotation; an
	// error stands in for a failed open(O_CREAT).
	createHook func(num uint64) error
}

// Pos is the position just after a record: Read returns records after a
// Pos, Release frees what lies before one. Segment numbers only increase, so
// positions compare by (Segment, Offset). The zero Pos is the beginning of
// the journal.
type Pos struct {
	Segment uint64
	Offset  int64
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Segment, p.Offset) }

func (p Pos) less(q Pos) bool {
	return p.Segment < q.Segment || (p.Segment == q.Segment && p.Offset < q.Offset)
}

var (
	// ErrFull means QueueLen records are already waiting for the writer;
	// the collector answers 503 and the client retries later.
	ErrFull = errors.New("journal: queue full")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("journal: closed")
	// ErrEmpty rejects an empty record: length 0 marks the end of data on disk.
	ErrEmpty = errors.New("journal: empty record")
	// ErrTooLarge rejects a record longer than MaxRecordSize.
	ErrTooLarge = errors.New("journal: record too large")
	// ErrNoSpace means the group was refused for lack of disk space: a
	// write or a segment creation failed with ENOSPC or EDQUOT (the error
	// wraps that errno too), or the free space was below Options.Reserve.
	// It is not fatal: none of the group's records was acknowledged (but
	// see the package documentation on a group split across a rotation),
	// and later Appends are tried again. The collector answers 503.
	ErrNoSpace = errors.New("journal: no space")
)

// Stats are counters since Open.
type Stats struct {
	QueueDepth       int    // records waiting for the writer now
	Groups           uint64 // groups committed; Records/Groups is the average group size
	Records          uint64 // records made durable
	Bytes            uint64 // bytes written, headers included
	Syncs            uint64 // fdatasync calls (a group that crosses into a new segment needs two)
	Segments         int    // segment files on disk
	SyncNanos        int64  // total time spent in fdatasync
	TornBytesDropped int64  // bytes of the newest segment discarded by Open (zero padding not counted)
	NoSpace          uint64 // groups answered with ErrNoSpace (a failed write or rotation, or below Reserve)
	// Commits counts group commits (write and fdatasync of one group, what
	// every waiting Append waits for) by duration: Commits[i] those that
	// took at most CommitBound(i) and more than CommitBound(i-1); the last
	// those longer than any bound. CommitNanos is their total duration.
	// Fixed buckets in atomics keep the writer free of allocations and of
	// any metrics library; the metrics package turns them into a histogram.
	Commits     [CommitBuckets]uint64
	CommitNanos int64
}

// CommitBuckets is the number of buckets of Stats.Commits: bounds from
// 100 µs doubling to 1.6 s, and one for anything longer.
const CommitBuckets = 16

// CommitBound is the upper bound of bucket i of Stats.Commits (i below
// CommitBuckets-1; the last bucket has none).
func CommitBound(i int) time.Duration { return 100 * time.Microsecond << i }

// commitBucket is the bucket of a commit that took d.
func commitBucket(d time.Duration) int {
	for i := 0; i < CommitBuckets-1; i++ {
		if d <= CommitBound(i) {
			return i
		}
	}
	return CommitBuckets - 1
}

// segment is one file in the retained range. end is the size of its record
// data once the writer has moved past it; -1 while unknown, either because
// it is the active segment or because it was sealed before this Open (then
// Read finds the end by reading, and may meet zero padding).
type segment struct {
	num uint64
	end int64
}

type request struct {
	frames []byte // encoded records, ready to write
	n      int    // number of records in frames
	done   chan error
}

// Journal is safe for concurrent use. See the package documentation.
type Journal struct {
	opts  Options
	hooks hooks
	id    string   // names this journal where its consumer records a position
	dir   *os.File // for fsync after creating a segment
	lock  *os.File

	// mu guards the queue. cond wakes the writer.
	mu     sync.Mutex
	cond   sync.Cond
	queue  []*request
	queued int   // records in queue
	closed bool  // no more Appends
	err    error // sticky fatal error (fail-stop)

	// stateMu guards what readers and Release see.
	stateMu sync.Mutex
	segs    []segment // contiguous numbers, oldest first; the last is the active one
	// released is the furthest position Release was given.
	released Pos
	end      Pos // after the last durable record

	releaseMu  sync.Mutex // serialises Release
	notify     chan struct{}
	writerDone chan struct{}
	reqs       sync.Pool
	torn       int64

	groups, records, bytes, syncs atomic.Uint64
	noSpace                       atomic.Uint64
	reserve                       atomic.Int64 // Options.Reserve, changed by SetReserve
	syncNanos                     atomic.Int64
	commits                       [CommitBuckets]atomic.Uint64
	commitNanos                   atomic.Int64

	// Owned by the writer goroutine (and by Open before it starts).
	active   *os.File
	seg      uint64 // number of active
	size     int64  // bytes of records in active
	synced   int64  // bytes of active known durable
	fileSize int64  // size of the active file, larger than size when preallocated
	buf      []byte
	spare    []*request
	// The writer's estimate of the free space, for Reserve: what statfs
	// said at freeAt, less what the writer allocated since; -1 unknown.
	free   int64
	freeAt time.Time
	// short: a group was refused for lack of space since the active
	// segment began (see recycle)
	short bool
}

// Open opens or creates the journal in opts.Dir and recovers it after a
// crash: the newest segment is CRC-scanned, anything after its last valid
// record is truncated (counted in Stats.TornBytesDropped), and the file and
// directory are fsync'd so that End() only ever reports durable data. Only
// one Journal (in any process) may have a directory open at a time.
func Open(opts Options) (*Journal, error) { return openJournal(opts, hooks{}) }

func openJournal(opts Options, h hooks) (*Journal, error) {
	if opts.Dir == "" {
		return nil, errors.New("journal: Options.Dir is empty")
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = DefaultQueueLen
	}
	if err := makeDir(opts.Dir); err != nil {
		return nil, err
	}
	j := &Journal{
		opts:       opts,
		hooks:      h,
		notify:     make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
	j.cond.L = &j.mu
	j.reserve.Store(opts.Reserve)
	j.free = -1
	j.reqs.New = func() any { return &request{done: make(chan error, 1)} }
	ok := false
	defer func() {
		if !ok {
			j.closeFiles()
		}
	}()

	var err error
	if j.lock, err = os.OpenFile(filepath.Join(opts.Dir, lockName), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := lockFile(j.lock); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("journal: %s is already open by another Journal or process", opts.Dir)
		}
		return nil, fmt.Errorf("journal: lock %s: %w", j.lock.Name(), err)
	}
	if j.dir, err = os.Open(opts.Dir); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if j.id, err = readOrCreateID(opts.Dir, j.dir); err != nil {
		return nil, err
	}
	nums, err := listSegments(opts.Dir)
	if err != nil {
		return nil, err
	}
	if len(nums) == 0 {
		f, size, err := j.createSegment(1)
		if err != nil {
			return nil, err
		}
		j.active, j.seg, j.size, j.synced, j.fileSize = f, 1, 0, 0, size
		j.segs = []segment{{num: 1, end: -1}}
	} else {
		for i := 1; i < len(nums); i++ {
			// Release deletes oldest first and the writer adds one at a time,
			// so a gap means someone removed a file: records are missing.
			if nums[i] != nums[i-1]+1 {
				return nil, fmt.Errorf("journal: %s: segment %s is missing (have %s and %s)",
					opts.Dir, segmentName(nums[i-1]+1), segmentName(nums[i-1]), segmentName(nums[i]))
			}
		}
		for _, n := range nums {
			j.segs = append(j.segs, segment{num: n, end: -1})
		}
		if err := j.recoverNewest(nums[len(nums)-1]); err != nil {
			return nil, err
		}
	}
	// Covers a segment created above and a truncation: both must be durable
	// before any record is acknowledged on top of them.
	if err := j.dir.Sync(); err != nil {
		return nil, fmt.Errorf("journal: fsync %s: %w", opts.Dir, err)
	}
	j.end = Pos{Segment: j.seg, Offset: j.size}
	ok = true
	go j.run()
	return j, nil
}

// makeDir creates dir (and missing parents) 0700 and fsyncs each parent
// that gained an entry, so the directory itself survives a power loss.
func makeDir(dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("journal: %w", err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("journal: fsync %s: %w", dir, err)
	}
	return nil
}

func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var nums []uint64
	for _, e := range ents { // ReadDir sorts by name; zero padding makes that numeric order
		if n, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			nums = append(nums, n)
		}
	}
	return nums, nil
}

func (j *Journal) segmentPath(num uint64) string {
	return filepath.Join(j.opts.Dir, segmentName(num))
}

// createSegment creates segment num and makes its directory entry durable
// before anything is written to it; otherwise a power loss could lose the
// whole file together with acknowledged records. It returns the file and
// its size (non-zero when preallocated); the caller makes it active. A
// creation that fails for lack of space returns an error wrapping
// ErrNoSpace and leaves no file behind.
func (j *Journal) createSegment(num uint64) (*os.File, int64, error) {
	path := j.segmentPath(num)
	var f *os.File
	err := error(nil)
	if h := j.hooks.createHook; h != nil {
		err = h(num)
	}
	if err == nil {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		if isNoSpace(err) {
			return nil, 0, fmt.Errorf("%w: create segment %s: %w", ErrNoSpace, path, err)
		}
		return nil, 0, fmt.Errorf("journal: create segment: %w", err)
	}
	size, err := j.prealloc(f, 0)
	if err == nil {
		err = j.dir.Sync()
	}
	if err != nil {
		f.Close()
		// Best effort: an empty newest segment is harmless at the next Open,
		// but a leftover file would make the next creation fail (O_EXCL).
		_ = os.Remove(path)
		return nil, 0, fmt.Errorf("journal: create %s: %w", path, err)
	}
	return f, size, nil
}

// prealloc applies Options.Prealloc to f (whose current size is size) and
// returns the resulting file size. Preallocation is an optimisation, so a
// failure to allocate (no fallocate, no space) is not an error: the file
// then grows as it is written, and a real lack of space fails the write.
func (j *Journal) prealloc(f *os.File, size int64) (int64, error) {
	if !j.opts.Prealloc || size >= j.opts.SegmentSize {
		return size, nil
	}
	_ = preallocate(f, j.opts.SegmentSize)
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// recoverNewest makes segment num the active segment, keeping only its
// valid prefix.
func (j *Journal) recoverNewest(num uint64) error {
	f, err := os.OpenFile(j.segmentPath(num), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("journal: %w", err))
	}
	size := fi.Size()
	valid, err := scanValid(f, size)
	if err != nil {
		return fail(err)
	}
	tail, err := lastNonZero(f, valid, size)
	if err != nil {
		return fail(err)
	}
	if tail > valid {
		// Truncate rather than leave the garbage behind: later appends
		// overwrite it only partly, and a leftover stretch could then line
		// up as "valid" records of a group that was never acknowledged.
		j.torn = tail - valid
		if err := f.Truncate(valid); err != nil {
			return fail(fmt.Errorf("journal: truncate torn tail: %w", err))
		}
		size = valid
	}
	if size, err = j.prealloc(f, size); err != nil {
		return fail(fmt.Errorf("journal: %w", err))
	}
	// After a kill -9 the recovered records may still be only in the page
	// cache; End() will call them durable, so make them so (and the
	// truncation with them).
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("journal: fsync %s: %w", f.Name(), err))
	}
	j.active, j.seg, j.size, j.synced, j.fileSize = f, num, valid, valid, size
	return nil
}

func checkRecord(rec []byte) error {
	switch {
	case len(rec) == 0:
		return ErrEmpty
	case len(rec) > MaxRecordSize:
		return fmt.Errorf("%w: %d bytes, maximum %d", ErrTooLarge, len(rec), MaxRecordSize)
	}
	return nil
}

// Append adds rec to the journal and returns nil once it is durable
// (written and fdatasync'd together with whatever else was waiting). It
// returns ErrFull at once when QueueLen records are already waiting,
// ErrClosed after Close, an error wrapping ErrNoSpace when its group was
// refused for lack of disk space (not fatal: later Appends are tried), and
// the journal's fatal error after any other failed write or a failed sync.
//
// If ctx ends while waiting, Append returns ctx.Err() but the record stays
// queued and may still become durable: a caller that answers an error then
// may see the record later. A client that retries then sends the same
// event twice; counting an event id once is the fail-over issue's work
// (the tracker already sends one id per event).
// rec is copied before Append returns, whichever way it returns.
func (j *Journal) Append(ctx context.Context, rec []byte) error {
	if err := checkRecord(rec); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := j.reqs.Get().(*request)
	// Encode (and checksum) here, on the caller's goroutine: the CRC work is
	// spread over all CPUs and the writer only copies bytes.
	r.frames = appendFrame(r.frames[:0], rec)
	r.n = 1
	return j.submit(ctx, r)
}

// AppendBatch is Append for several records queued as one unit (bulk
// loading). The unit is admitted if the queue is not full and may take it
// past QueueLen; it counts against QueueLen while it waits. Records keep
// their order. The batch is not atomic: after a crash before it returns,
// a prefix of it may be present.
func (j *Journal) AppendBatch(ctx context.Context, recs [][]byte) error {
	if len(recs) == 0 {
		return nil
	}
	total := 0
	for i, rec := range recs {
		if err := checkRecord(rec); err != nil {
			return fmt.Errorf("journal: batch record %d: %w", i, err)
		}
		total += headerSize + len(rec)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{frames: make([]byte, 0, total), n: len(recs), done: make(chan error, 1)}
	for _, rec := range recs {
		r.frames = appendFrame(r.frames, rec)
	}
	return j.submit(ctx, r)
}

func (j *Journal) submit(ctx context.Context, r *request) error {
	j.mu.Lock()
	var err error
	switch {
	case j.closed:
		err = ErrClosed
	case j.err != nil:
		err = j.err
	case j.queued >= j.opts.QueueLen:
		err = ErrFull
	}
	if err != nil {
		j.mu.Unlock()
		j.putRequest(r)
		return err
	}
	j.queue = append(j.queue, r)
	j.queued += r.n
	j.cond.Signal()
	j.mu.Unlock()

	select {
	case err := <-r.done:
		j.putRequest(r)
		return err
	case <-ctx.Done():
		// The writer still owns r and will send on r.done; r is simply not
		// reused.
		return ctx.Err()
	}
}

func (j *Journal) putRequest(r *request) {
	if cap(r.frames) > 4<<10 {
		r.frames = nil // do not pin one large record's buffer in the pool
	}
	j.reqs.Put(r)
}

// run is the writer goroutine: it takes everything queued, commits it as one
// group, and releases the group's waiters; it exits when closed and drained.
func (j *Journal) run() {
	defer close(j.writerDone)
	for {
		j.mu.Lock()
		for len(j.queue) == 0 && !j.closed {
			j.cond.Wait()
		}
		if len(j.queue) == 0 {
			j.mu.Unlock()
			return
		}
		batch := j.queue
		j.queue = j.spare[:0]
		j.queued = 0
		err := j.err
		j.mu.Unlock()

		acked := 0
		if err == nil {
			if h := j.hooks.beforeCommit; h != nil {
				h()
			}
			start := time.Now()
			acked, err = j.commit(batch)
			switch {
			case err == nil:
				// Only committed groups, so that the histogram's count is
				// Groups and refusals do not pass for fast commits.
				took := time.Since(start)
				j.commits[commitBucket(took)].Add(1)
				j.commitNanos.Add(int64(took))
			case errors.Is(err, ErrNoSpace):
				// Not fatal: commit left the writer where the group found it
				// (plus any part of it that became durable).
				j.noSpace.Add(1)
				j.short = true
			default:
				j.mu.Lock()
				if j.err == nil {
					j.err = err
				}
				err = j.err
				j.mu.Unlock()
			}
		}
		for i, r := range batch {
			if i < acked {
				r.done <- nil
			} else {
				r.done <- err
			}
			batch[i] = nil
		}
		j.spare = batch[:0]
	}
}

// commit writes and syncs one group. Normally that is one write and one
// fdatasync; a group that fills the active segment is split, the full
// segment synced, and the rest written to a new one.
//
// acked is how many of batch's requests are durable in full: all of them
// when err is nil. When a split group fails after its first part was
// synced, those before the request that was cut are durable and acked;
// the cut one has some records durable (consumers will read them) but is
// answered with the error, and so is everything after it.
func (j *Journal) commit(batch []*request) (acked int, err error) {
	if err := j.recycle(); err != nil {
		return j.failed(0, 0, err)
	}
	if j.belowReserve() {
		return 0, fmt.Errorf("%w: less than the reserve of %d bytes is free on %s", ErrNoSpace, j.reserve.Load(), j.opts.Dir)
	}
	limit := j.opts.SegmentSize
	buf := j.buf[:0]
	pending, durable := 0, 0 // records in buf; records of this group already synced
	for i, r := range batch {
		if j.size+int64(len(buf)+len(r.frames)) <= limit {
			buf = append(buf, r.frames...)
			pending += r.n
			continue
		}
		for f := r.frames; len(f) > 0; {
			n := headerSize + int(binary.LittleEndian.Uint32(f))
			// An empty segment takes any record, even one larger than
			// SegmentSize, so every record has a home.
			if used := j.size + int64(len(buf)); used > 0 && used+int64(n) > limit {
				if err := j.writeSync(buf); err != nil {
					return j.failed(acked, durable, err)
				}
				durable += pending
				pending = 0
				acked = i // every request before r is now durable, r only in part
				buf = buf[:0]
				if err := j.rotate(); err != nil {
					return j.failed(acked, durable, err)
				}
			}
			buf = append(buf, f[:n]...)
			pending++
			f = f[n:]
		}
	}
	if err := j.writeSync(buf); err != nil {
		return j.failed(acked, durable, err)
	}
	if cap(buf) > 1<<20 {
		buf = nil // a bulk batch should not pin its buffer for good
	}
	j.buf = buf[:0]
	j.groups.Add(1)
	j.records.Add(uint64(durable + pending))
	j.signal()
	return len(batch), nil
}

// failed ends a commit that failed after durable of its records were
// synced: consumers are told about those.
func (j *Journal) failed(acked, durable int, err error) (int, error) {
	if durable > 0 {
		j.records.Add(uint64(durable))
		j.signal()
	}
	return acked, err
}

func (j *Journal) signal() {
	select {
	case j.notify <- struct{}{}:
	default: // a signal is already pending; consumers read all that is new
	}
}

// belowReserve reports whether the file system's free space is below
// Options.Reserve. statfs is called at most every reserveInterval; in
// between, the estimate is the last reading less what the writer's files
// grew by since, so a burst cannot run far past the reserve; a rotation
// (which gives back a preallocated tail and may preallocate anew) and a
// write refused for space make the next group read it again. Lowering the
// reserve takes effect at the next group.
func (j *Journal) belowReserve() bool {
	reserve := j.reserve.Load()
	if reserve <= 0 {
		return false
	}
	if now := time.Now(); j.freeAt.IsZero() || now.Sub(j.freeAt) >= reserveInterval {
		j.free, j.freeAt = freeSpace(j.dir), now
	}
	return j.free >= 0 && j.free < reserve // unknown (no statfs): no check
}

// spent lowers the free-space estimate by n bytes the writer allocated.
func (j *Journal) spent(n int64) {
	if j.free >= 0 {
		j.free = max(j.free-n, 0)
	}
}

// SetReserve changes Options.Reserve while the journal runs; it applies
// from the next group the writer takes.
func (j *Journal) SetReserve(n int64) { j.reserve.Store(n) }

// writeSync appends buf to the active segment, fdatasyncs it and publishes
// the new end. A write that fails for lack of space is undone (see
// undoWrite) and returns an error wrapping ErrNoSpace.
func (j *Journal) writeSync(buf []byte) error {
	if len(buf) > 0 {
		// pwrite at our own offset, not O_APPEND: with Prealloc the file is
		// already longer than its data.
		var err error
		if h := j.hooks.writeHook; h != nil {
			_, err = h(j.active, buf, j.size)
		} else {
			_, err = j.active.WriteAt(buf, j.size)
		}
		if err != nil {
			if isNoSpace(err) {
				return j.undoWrite(err)
			}
			return fmt.Errorf("journal: write: %w", err)
		}
		j.size += int64(len(buf))
		if j.size > j.fileSize {
			j.spent(j.size - j.fileSize)
			j.fileSize = j.size
		}
		j.bytes.Add(uint64(len(buf)))
	}
	if j.synced == j.size {
		return nil
	}
	if err := j.sync(); err != nil {
		return err
	}
	j.synced = j.size
	j.stateMu.Lock()
	j.end = Pos{Segment: j.seg, Offset: j.size}
	j.stateMu.Unlock()
	return nil
}

// sync fdatasyncs the active segment. Its failure is fatal, whatever the
// errno: see the package documentation.
func (j *Journal) sync() error {
	if h := j.hooks.syncHook; h != nil {
		if err := h(); err != nil {
			return fmt.Errorf("journal: fdatasync %s: %w", j.active.Name(), err)
		}
	}
	start := time.Now()
	err := fdatasync(j.active)
	j.syncNanos.Add(int64(time.Since(start)))
	j.syncs.Add(1)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// undoWrite takes the active segment back to its durable data after a
// write failed with ENOSPC or EDQUOT (werr). Nothing of the group was
// acknowledged, and a write(2) refused for lack of space leaves no dirty
// pages that writeback could fail on later and the kernel drop silently
// (the reason a failed fdatasync is fatal), so going back is safe. The
// truncation also removes a partial write: left in place, its stretch of
// records could line up behind later, shorter appends as records that were
// never acknowledged. It is synced so that a crash cannot bring the stretch
// back behind records acknowledged later, nor into a segment sealed later.
// The segment is not preallocated again (the disk is full); it grows as it
// is written until the next rotation.
func (j *Journal) undoWrite(werr error) error {
	j.freeAt = time.Time{} // read the free space again at the next group
	if err := j.active.Truncate(j.size); err != nil {
		return fmt.Errorf("journal: write: %v; truncating %s back to %d bytes: %w", werr, j.active.Name(), j.size, err)
	}
	j.fileSize = j.size
	if err := j.sync(); err != nil {
		return fmt.Errorf("journal: write: %v; after the truncation: %w", werr, err)
	}
	return fmt.Errorf("%w: %w", ErrNoSpace, werr)
}

// rotate seals the active segment (already synced by the caller) and starts
// the next one. If the new segment cannot be created for lack of space,
// the full segment stays active (without its preallocated tail) and the
// error wraps ErrNoSpace; the next group that does not fit tries again.
func (j *Journal) rotate() error {
	old, oldSize := j.active, j.size
	if j.fileSize > oldSize {
		// Give back the preallocated tail, so that the sealed segment ends at
		// its last record and disk use matches data (and the new segment can
		// use the space). Not synced: if a crash loses the truncation, the
		// zero tail still reads as "end".
		if err := old.Truncate(oldSize); err != nil {
			return fmt.Errorf("journal: truncate %s: %w", old.Name(), err)
		}
		j.fileSize = oldSize
	}
	// Space was given back and perhaps preallocated: read it again.
	j.freeAt = time.Time{}
	f, size, err := j.createSegment(j.seg + 1)
	if err != nil {
		return err
	}
	// Its data is already durable, so a close error cannot lose records.
	_ = old.Close()
	j.active, j.seg, j.size, j.synced, j.fileSize = f, j.seg+1, 0, 0, size
	j.stateMu.Lock()
	j.segs[len(j.segs)-1].end = oldSize
	j.segs = append(j.segs, segment{num: j.seg, end: -1})
	j.stateMu.Unlock()
	return nil
}

// recycle starts a new segment, after a group was refused for lack of
// space, once every record of the active segment was released: Release
// never deletes the active segment, so an edge collector's spool whose
// disk filled would otherwise stay full after it drained.
func (j *Journal) recycle() error {
	if j.size == 0 || !j.short {
		return nil
	}
	at := Pos{Segment: j.seg, Offset: j.size}
	j.stateMu.Lock()
	consumed := !j.released.less(at)
	j.stateMu.Unlock()
	if !consumed {
		return nil
	}
	if err := j.rotate(); err != nil {
		return err
	}
	j.short = false
	return j.Release(at)
}

// End returns the position after the last durable record.
func (j *Journal) End() Pos {
	j.stateMu.Lock()
	defer j.stateMu.Unlock()
	return j.end
}

// Notify returns a channel that receives a signal whenever new durable
// records exist. Signals coalesce (capacity 1, never blocking the writer),
// so after a signal read until Read returns nothing; there may be a spurious
// signal for records already read. It is meant for one consumer.
func (j *Journal) Notify() <-chan struct{} { return j.notify }

// QueueLen is how many records may wait for the writer (Options.QueueLen
// with its default applied): QueueDepth against it is how near collection
// is to shedding.
func (j *Journal) QueueLen() int { return j.opts.QueueLen }

// Stats returns the journal's counters.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	depth := j.queued
	j.mu.Unlock()
	j.stateMu.Lock()
	segs := len(j.segs)
	j.stateMu.Unlock()
	var commits [CommitBuckets]uint64
	for i := range commits {
		commits[i] = j.commits[i].Load()
	}
	return Stats{
		Commits:          commits,
		CommitNanos:      j.commitNanos.Load(),
		QueueDepth:       depth,
		Groups:           j.groups.Load(),
		Records:          j.records.Load(),
		Bytes:            j.bytes.Load(),
		Syncs:            j.syncs.Load(),
		Segments:         segs,
		SyncNanos:        j.syncNanos.Load(),
		TornBytesDropped: j.torn,
		NoSpace:          j.noSpace.Load(),
	}
}

// Close stops accepting Appends, lets the writer commit everything already
// queued (those Appends return normally), and closes the files. It returns
// the journal's fatal error, if it had one. Read and Release keep working
// after Close so a consumer can finish draining. Calling Close again returns
// nil.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		<-j.writerDone
		return nil
	}
	j.closed = true
	j.cond.Broadcast()
	j.mu.Unlock()
	<-j.writerDone

	j.mu.Lock()
	err := j.err
	j.mu.Unlock()
	return errors.Join(err, j.closeFiles())
}

func (j *Journal) closeFiles() error {
	var errs []error
	if j.active != nil {
		// Everything written was synced before its Append returned; a close
		// error here cannot lose acknowledged data, but report it.
		errs = append(errs, j.active.Close())
		j.active = nil
	}
	if j.dir != nil {
		errs = append(errs, j.dir.Close())
	}
	if j.lock != nil {
		errs = append(errs, j.lock.Close()) // releases the flock
	}
	return errors.Join(errs...)
}

// ID names this journal: several journals (servers, edge collectors) may
// feed one store, and each position belongs to one of them.
func (j *Journal) ID() string { return j.id }

// readOrCreateID reads the journal's ID file, or writes a new random one
// (fsynced, with the directory) the first time.
func readOrCreateID(dir string, d *os.File) (string, error) {
	path := filepath.Join(dir, "ID")
	if b, err := os.ReadFile(path); err == nil {
		id := strings.TrimSpace(string(b))
		if len(id) != 32 {
			return "", fmt.Errorf("journal: %s is damaged (want 32 hex digits)", path)
		}
		return id, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("journal: %w", err)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("journal: %w", err)
	}
	if _, err := f.WriteString(id + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("journal: %w", err)
	}
	f.Close()
	return id, d.Sync()
}
