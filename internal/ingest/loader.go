package ingest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fjord/internal/ingest/journal"
	"fjord/internal/store"
)

// Loader applies the journal to the event store in large batches. The
// store records how far it got in the same transaction as the events, so
// after a crash the loader resumes exactly there: nothing lost, nothing
// applied twice.
type Loader struct {
	J     *journal.Journal
	Store store.EventStore
	Log   *slog.Logger
	// MaxBatch bounds one Apply; Interval is the pause after a batch that
	// was not full, which lets the next batch grow large under load (one
	// DuckDB commit costs ~0.75 ms of CPU whatever its size).
	MaxBatch int
	Interval time.Duration
	// RejectFile receives, fsynced, the records the store refuses for good
	// (found by isolating a batch that keeps failing), so one bad record
	// neither stops collection nor is lost.
	RejectFile string
	// KeepApplied is how long a journal segment is kept after all its
	// records were applied (zero: released at once). The event store's
	// copy can be lost after it was applied: a PostgreSQL primary that
	// dies before its asynchronous standby received the last batches
	// leaves a promoted standby whose recorded position is older than the
	// primary's, and the loader then replays from that position. It can
	// only if the journal still holds those records.
	KeepApplied time.Duration

	// held: the first position applied in each segment not yet released,
	// and when; oldest first (one entry per segment, not per batch).
	held []heldPos

	mu      sync.Mutex
	applied journal.Pos
	waiters []waiter
	kick    chan struct{}

	Applied  atomic.Uint64 // events applied since start
	Batches  atomic.Uint64
	Corrupt  atomic.Uint64 // records that passed the journal's CRC but not DecodeEvent
	Failures atomic.Uint64 // failed Apply attempts (retried)
	Rejected atomic.Uint64 // records set aside in RejectFile
}

type heldPos struct {
	pos journal.Pos
	at  time.Time
}

type waiter struct {
	pos journal.Pos
	ch  chan struct{}
}

func less(p, q journal.Pos) bool {
	return p.Segment < q.Segment || (p.Segment == q.Segment && p.Offset < q.Offset)
}

// Run applies until ctx ends, then applies what is left and returns.
func (l *Loader) Run(ctx context.Context) error {
	if l.MaxBatch == 0 {
		l.MaxBatch = 10000
	}
	if l.Interval == 0 {
		l.Interval = 100 * time.Millisecond
	}
	l.mu.Lock()
	if l.kick == nil {
		l.kick = make(chan struct{}, 1)
	}
	l.mu.Unlock()
	sp, err := l.Store.Position(ctx, l.J.ID())
	if err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	pos := journal.Pos{Segment: sp.Segment, Offset: sp.Offset}
	l.setApplied(pos)
	backoff := 100 * time.Millisecond
	failed := 0
	for {
		n, next, err := l.step(ctx, pos)
		if err != nil && failed >= 2 {
			// The same batch failed three times: if the store refuses some
			// of its records but takes the others, set those aside.
			n, next, err = l.isolate(ctx, pos)
		}
		if err != nil {
			failed++
			l.Failures.Add(1)
			l.Log.Error("loader: apply failed, will retry", "pos", pos.String(), "err", err)
			select {
			case <-ctx.Done():
				return err
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff, failed = 100*time.Millisecond, 0
		pos = next
		if n >= l.MaxBatch {
			continue
		}
		if ctx.Err() != nil {
			if n == 0 {
				return nil
			}
			continue // drain before stopping
		}
		if n > 0 {
			// Let the next batch accumulate, unless someone waits for it.
			select {
			case <-ctx.Done():
			case <-l.kick:
			case <-time.After(l.Interval):
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-l.J.Notify():
		case <-l.kick:
		}
	}
}

// step applies one batch starting at pos.
func (l *Loader) step(ctx context.Context, pos journal.Pos) (int, journal.Pos, error) {
	end := l.J.End() // before Read: if Read finds nothing, all up to end is applied
	recs, next, err := l.J.Read(pos, l.MaxBatch, 16<<20)
	if err != nil {
		return 0, pos, fmt.Errorf("read journal at %s: %w", pos, err)
	}
	if len(recs) == 0 {
		// pos and the journal's end may name the same point differently
		// (the store's zero position and the first segment's start).
		l.caughtUp(end)
		return 0, pos, nil
	}
	events := make([]store.Event, 0, len(recs))
	for _, r := range recs {
		e, err := DecodeEvent(r)
		if err != nil {
			// A record with a good CRC that does not decode is a bug or a
			// version skew; keeping the loader stuck on it would stop all
			// collection, so it is logged and counted instead.
			l.Corrupt.Add(1)
			l.Log.Error("loader: undecodable journal record skipped", "near", pos.String(), "err", err)
			continue
		}
		events = append(events, e)
	}
	// Apply must not be cut short by shutdown: use a context of its own.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := l.Store.Apply(actx, events, store.JournalPos{Journal: l.J.ID(), Segment: next.Segment, Offset: next.Offset}); err != nil {
		return 0, pos, err
	}
	l.Applied.Add(uint64(len(events)))
	l.Batches.Add(1)
	l.setApplied(next)
	l.free(next)
	return len(recs), next, nil
}

// isolate checks the batch at pos event by event. Only when the store takes
// some and refuses others (a poison record, not a store that is down) are
// the refused ones written to RejectFile and the rest applied.
func (l *Loader) isolate(ctx context.Context, pos journal.Pos) (int, journal.Pos, error) {
	recs, next, err := l.J.Read(pos, l.MaxBatch, 16<<20)
	if err != nil || len(recs) == 0 {
		return 0, pos, fmt.Errorf("isolate at %s: %v", pos, err)
	}
	var good []store.Event
	var bad [][]byte
	var reasons []string
	for _, r := range recs {
		e, err := DecodeEvent(r)
		if err != nil {
			l.Corrupt.Add(1)
			continue
		}
		if err := l.Store.Check(ctx, []store.Event{e}); err != nil {
			bad, reasons = append(bad, r), append(reasons, err.Error())
			continue
		}
		good = append(good, e)
	}
	if len(bad) == 0 || len(good) == 0 || l.RejectFile == "" {
		return 0, pos, fmt.Errorf("batch at %s fails as a whole (%d of %d records refused alone)", pos, len(bad), len(recs))
	}
	if err := WriteRejects(l.RejectFile, bad, reasons); err != nil {
		return 0, pos, fmt.Errorf("set aside refused records: %w", err)
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := l.Store.Apply(actx, good, store.JournalPos{Journal: l.J.ID(), Segment: next.Segment, Offset: next.Offset}); err != nil {
		return 0, pos, err
	}
	l.Rejected.Add(uint64(len(bad)))
	l.Log.Error("loader: records the event store refuses were set aside", "count", len(bad), "file", l.RejectFile, "near", pos.String())
	l.Applied.Add(uint64(len(good)))
	l.Batches.Add(1)
	l.setApplied(next)
	l.free(next)
	return len(recs), next, nil
}

// WriteRejects appends one line per record: the time, the reason it was
// refused and the record in base64 (it can be decoded with DecodeEvent),
// then fsyncs.
func WriteRejects(path string, recs [][]byte, reasons []string) error {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	var b strings.Builder
	for i, r := range recs {
		fmt.Fprintf(&b, "%s\t%q\t%s\n", time.Now().UTC().Format(time.RFC3339), reasons[i], base64.StdEncoding.EncodeToString(r))
	}
	// a failed write (a full disk) must be an error: fsync would succeed
	// with nothing dirty, and the caller then drops the records
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if os.IsNotExist(statErr) {
		// a new file: its directory entry must be durable too
		return syncDir(filepath.Dir(path))
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// free releases the journal segments applied at least KeepApplied ago,
// now that everything before next is applied. Releasing up to the first
// position applied in a segment frees the segments before it, whose
// records were all applied by then.
func (l *Loader) free(next journal.Pos) {
	upTo := next
	if l.KeepApplied > 0 {
		now := time.Now()
		if n := len(l.held); n == 0 || l.held[n-1].pos.Segment != next.Segment {
			l.held = append(l.held, heldPos{next, now})
		}
		k := 0
		for k < len(l.held) && now.Sub(l.held[k].at) >= l.KeepApplied {
			k++
		}
		if k == 0 {
			return
		}
		upTo = l.held[k-1].pos
		l.held = l.held[k-1:] // the entry released up to stays: its segment is still held
	}
	if err := l.J.Release(upTo); err != nil {
		l.Log.Warn("loader: release journal segments", "err", err)
	}
}

func (l *Loader) setApplied(p journal.Pos) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applied = p
	l.release(p)
}

// release wakes the waiters of positions up to p; l.mu is held.
func (l *Loader) release(p journal.Pos) {
	keep := l.waiters[:0]
	for _, w := range l.waiters {
		if less(p, w.pos) {
			keep = append(keep, w)
		} else {
			close(w.ch)
		}
	}
	l.waiters = keep
}

// caughtUp releases the waiters of positions up to end, which the loader
// found nothing left to apply before.
func (l *Loader) caughtUp(end journal.Pos) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.release(end)
}

// Flush waits until everything durable in the journal when it was called
// is in the event store, so a reader sees every acknowledged event.
func (l *Loader) Flush(ctx context.Context) error {
	target := l.J.End()
	l.mu.Lock()
	if !less(l.applied, target) {
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, waiter{target, ch})
	if l.kick == nil {
		l.kick = make(chan struct{}, 1)
	}
	kick := l.kick
	l.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		for i, w := range l.waiters {
			if w.ch == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				break
			}
		}
		l.mu.Unlock()
		return errors.New("loader: timed out waiting for the event store to catch up with the journal")
	}
}

// Lag is how many journal bytes are durable but not yet applied, within
// the current segment (a cheap indication for metrics).
func (l *Loader) Lag() int64 {
	end := l.J.End()
	l.mu.Lock()
	defer l.mu.Unlock()
	if end.Segment != l.applied.Segment {
		return end.Offset
	}
	return end.Offset - l.applied.Offset
}
