package mail

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Outbox runs mail work in the background: a bounded queue and one
// worker, so that a slow or unreachable SMTP server delays no answer and
// a burst of work cannot grow memory without bound. Work is a function
// (building a message may need the store, as a reset link does) that
// sends through the Outbox's Sender.
type Outbox struct {
	Sender *Sender
	log    *slog.Logger

	jobs    chan job
	mu      sync.Mutex
	cond    *sync.Cond
	pending int
	closed  bool
	stop    context.CancelFunc
	done    chan struct{}
}

type job struct {
	what string
	fn   func(ctx context.Context, s *Sender) error
}

// JobTimeout bounds one piece of work, sending included.
const JobTimeout = time.Minute

// NewOutbox starts an Outbox with room for size waiting jobs.
func NewOutbox(s *Sender, log *slog.Logger, size int) *Outbox {
	ctx, stop := context.WithCancel(context.Background())
	o := &Outbox{Sender: s, log: log, jobs: make(chan job, size), stop: stop, done: make(chan struct{})}
	o.cond = sync.NewCond(&o.mu)
	go o.run(ctx)
	return o
}

func (o *Outbox) run(ctx context.Context) {
	defer close(o.done)
	for j := range o.jobs {
		jctx, cancel := context.WithTimeout(ctx, JobTimeout)
		err := j.fn(jctx, o.Sender)
		cancel()
		if err != nil {
			// the error names what failed but no address (Sender.Send
			// scrubs it) and no secret
			o.log.Warn("mail not sent", "what", j.what, "err", err)
		}
		o.mu.Lock()
		o.pending--
		o.cond.Broadcast()
		o.mu.Unlock()
	}
}

// Go queues work, described by what for the log (no addresses, no
// tokens). It never blocks: when the queue is full, or the Outbox closed,
// the work is dropped, logged, and Go returns false.
func (o *Outbox) Go(what string, fn func(ctx context.Context, s *Sender) error) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		o.log.Warn("mail not sent: shutting down", "what", what)
		return false
	}
	select {
	case o.jobs <- job{what, fn}:
		o.pending++
		return true
	default:
		o.log.Warn("mail not sent: the outbox is full", "what", what, "size", cap(o.jobs))
		return false
	}
}

// Flush waits until every job queued so far has run, or ctx ends.
func (o *Outbox) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		o.mu.Lock()
		o.cond.Broadcast()
		o.mu.Unlock()
	})
	defer stop()
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.pending > 0 && ctx.Err() == nil {
		o.cond.Wait()
	}
	return ctx.Err()
}

// Close takes no more work and waits for the queued work until ctx ends;
// then the work still running is cancelled.
func (o *Outbox) Close(ctx context.Context) {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.jobs)
	}
	o.mu.Unlock()
	select {
	case <-o.done:
	case <-ctx.Done():
		o.stop()
		<-o.done
	}
}
