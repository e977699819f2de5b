package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

	mu      sync.Mutex
	applied journal.Pos
	waiters []waiter
	kick    chan struct{}

	Applied  atomic.Uint64 // events applied since start
	Batches  atomic.Uint64
	Corrupt  atomic.Uint64 // records that passed the journal's CRC but not DecodeEvent
	Failures atomic.Uint64 // failed Apply attempts (retried)
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
	sp, err := l.Store.Position(ctx)
	if err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	pos := journal.Pos{Segment: sp.Segment, Offset: sp.Offset}
	l.setApplied(pos)
	backoff := 100 * time.Millisecond
	for {
		n, next, err := l.step(ctx, pos)
		if err != nil {
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
		backoff = 100 * time.Millisecond
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
	if err := l.Store.Apply(actx, events, store.JournalPos{Segment: next.Segment, Offset: next.Offset}); err != nil {
		return 0, pos, err
	}
	l.Applied.Add(uint64(len(events)))
	l.Batches.Add(1)
	l.setApplied(next)
	if err := l.J.Release(next); err != nil {
		l.Log.Warn("loader: release journal segments", "err", err)
	}
	return len(recs), next, nil
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
