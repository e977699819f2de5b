package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fjord/internal/ingest"
	"fjord/internal/ingest/journal"
)

// Sender delivers a batch of event records; nil means the receiver holds
// every one of them durably.
type Sender interface {
	Send(ctx context.Context, recs [][]byte) error
}

// Forwarder sends an edge collector's spool to a Sender, in order, and
// releases the spool's segments once their records were confirmed.
type Forwarder struct {
	J   *journal.Journal
	To  Sender
	Log *slog.Logger
	// PosFile keeps how far the spool was confirmed, so a restart does
	// not send the whole retained segment again (it would be harmless:
	// the store counts an id once, but slow).
	PosFile string
	// MaxBatch and MaxBytes bound one batch (defaults 1000 and 1 MiB).
	MaxBatch, MaxBytes int
	// MaxBackoff bounds the pause between failed attempts (default 5 s:
	// the spool starts draining within seconds of the main service's return).
	MaxBackoff time.Duration
	// RejectFile receives, fsynced, the records the main service refuses
	// for good (422: a record it can never read; one of a newer version
	// is kept and retried until the main service is upgraded), so that
	// one such record neither blocks the spool for ever nor is lost.
	// Empty: such a batch is retried like any other failure.
	RejectFile string

	Forwarded atomic.Uint64 // records confirmed since start
	Batches   atomic.Uint64
	Failures  atomic.Uint64 // failed attempts
	Rejected  atomic.Uint64 // records set aside in RejectFile

	mu      sync.Mutex
	pos     journal.Pos
	oldest  time.Time // the time of the oldest event not yet confirmed; zero: none known
	lastOK  time.Time
	lastErr string
}

// Status is what metrics and /readyz show of the forwarder.
type Status struct {
	Pending   int64     // bytes of the spool not yet confirmed
	Oldest    time.Time // event time of the oldest record waiting; zero: nothing waits
	LastOK    time.Time // the last confirmed batch
	LastError string    // the last failure; "" after a success
}

// Status reports the backlog.
func (f *Forwarder) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Status{Pending: f.J.Pending(f.pos), LastOK: f.lastOK, LastError: f.lastErr}
	if st.Pending > 0 {
		st.Oldest = f.oldest
	}
	return st
}

// Run forwards until ctx ends.
func (f *Forwarder) Run(ctx context.Context) error {
	if f.MaxBatch == 0 {
		f.MaxBatch = 1000
	}
	if f.MaxBytes == 0 {
		f.MaxBytes = 1 << 20
	}
	if f.MaxBackoff == 0 {
		f.MaxBackoff = 5 * time.Second
	}
	pos := f.loadPos()
	if f.J.End().Segment < pos.Segment || (f.J.End().Segment == pos.Segment && f.J.End().Offset < pos.Offset) {
		// a spool replaced under the position file: start at its beginning
		pos = journal.Pos{}
	}
	f.setPos(pos, time.Time{})
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		recs, next, err := f.J.Read(pos, f.MaxBatch, f.MaxBytes)
		var ce *journal.CorruptError
		if errors.As(err, &ce) && len(recs) == 0 {
			// Never skipped silently: this stops forwarding, and the status
			// says why, until an operator looks.
			f.fail(fmt.Errorf("spool: %w", err))
			if !sleep(ctx, f.MaxBackoff) {
				break
			}
			continue
		}
		if len(recs) == 0 {
			select {
			case <-ctx.Done():
			case <-f.J.Notify():
			case <-time.After(time.Second):
			}
			continue
		}
		f.noteOldest(recs[0])
		rejected, err := f.deliver(ctx, recs)
		if err != nil {
			f.Failures.Add(1)
			f.fail(err)
			// jitter, so that edges do not return to the main service all
			// at the same moment
			if !sleep(ctx, backoff/2+rand.N(backoff/2+1)) {
				break
			}
			backoff = min(2*backoff, f.MaxBackoff)
			continue
		}
		backoff = 100 * time.Millisecond
		f.Forwarded.Add(uint64(len(recs) - rejected))
		f.Batches.Add(1)
		pos = next
		f.setPos(pos, time.Now())
		f.savePos(pos)
		if err := f.J.Release(pos); err != nil {
			f.Log.Error("forward: release spool", "err", err)
		}
	}
	return ctx.Err()
}

// deliver sends recs and returns how many were set aside. A batch the
// main service refuses for one of its records (422: a record it can never
// read; a record of a newer version is a 400, retried until the main
// service is upgraded) is split in halves until the refused records are
// found (a few requests per bad record); those go to RejectFile and the
// rest are delivered. Any other failure ends it: the caller retries the
// whole batch, and what was delivered before counts once at the main
// service (a record set aside before may then be written twice).
func (f *Forwarder) deliver(ctx context.Context, recs [][]byte) (int, error) {
	err := f.To.Send(ctx, recs)
	var se *StatusError
	if err == nil || f.RejectFile == "" || !errors.As(err, &se) || se.Code != http.StatusUnprocessableEntity {
		return 0, err
	}
	if len(recs) > 1 {
		half := len(recs) / 2
		a, err := f.deliver(ctx, recs[:half])
		if err != nil {
			return 0, err
		}
		b, err := f.deliver(ctx, recs[half:])
		return a + b, err
	}
	if err := ingest.WriteRejects(f.RejectFile, recs, []string{se.Msg}); err != nil {
		return 0, fmt.Errorf("set aside a record the main service refuses: %w", err)
	}
	f.Rejected.Add(1)
	f.Log.Error("forward: the main service refuses a record for good; set aside", "file", f.RejectFile, "reason", se.Msg)
	return 1, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (f *Forwarder) noteOldest(rec []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.oldest.IsZero() {
		return
	}
	if e, err := ingest.DecodeEvent(rec); err == nil {
		f.oldest = e.Time
	}
}

func (f *Forwarder) fail(err error) {
	f.mu.Lock()
	changed := f.lastErr != err.Error()
	f.lastErr = err.Error()
	f.mu.Unlock()
	if changed {
		f.Log.Warn("forward: batch not delivered, will retry", "err", err)
	}
}

func (f *Forwarder) setPos(p journal.Pos, ok time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pos, f.oldest = p, time.Time{}
	if !ok.IsZero() {
		f.lastOK, f.lastErr = ok, ""
	}
}

func (f *Forwarder) loadPos() journal.Pos {
	if f.PosFile == "" {
		return journal.Pos{}
	}
	data, err := os.ReadFile(f.PosFile)
	if err != nil {
		return journal.Pos{}
	}
	seg, off, _ := strings.Cut(strings.TrimSpace(string(data)), ":")
	s, err1 := strconv.ParseUint(seg, 10, 64)
	o, err2 := strconv.ParseInt(off, 10, 64)
	if err1 != nil || err2 != nil || o < 0 {
		return journal.Pos{}
	}
	return journal.Pos{Segment: s, Offset: o}
}

// savePos writes the position under a temporary name and renames it; not
// fsync'd: a position lost in a crash only sends some records again.
func (f *Forwarder) savePos(p journal.Pos) {
	if f.PosFile == "" {
		return
	}
	tmp := f.PosFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(p.String()+"\n"), 0o600); err == nil {
		os.Rename(tmp, f.PosFile)
	}
}
