package sqlstore

import (
	"fmt"
	"time"

	"fjord/internal/store"
)

// An event's identity is its site and its id: the tracker makes one id
// per event and sends it to every collector it tries, and the collector
// gives each site's copy of a multi-site hit its own id. Apply keeps one
// event per identity, so that an event counts once however it arrives
// twice:
//
//   - the same record again (an edge's re-send after a lost
//     acknowledgement, a redelivery after a crash between commit and ack)
//     carries the same time, and is recognised for as long as the first
//     copy is stored, by (site, time, id) in the events;
//   - the same event received by two collectors (the tracker's fail-over
//     after an answer that was lost) has two receipt times, and is
//     recognised by (site, id) in recent_ids, which holds the identities of
//     the events whose time is within DedupWindow of now.

// DedupWindow is how long an event's id is remembered whatever the time a
// repeat carries (PRODUCT §9.5: at least 48 hours).
const DedupWindow = 72 * time.Hour

// EventKey is an event's identity.
type EventKey struct {
	Site int64
	ID   [16]byte
}

// KeyOf is the identity of e.
func KeyOf(e *store.Event) EventKey {
	return EventKey{Site: e.SiteID, ID: e.ID}
}

// FindStored is an engine's look-up, inside the apply transaction: the
// identities among events (no two alike) that are stored: in recent_ids
// for events at or after cutoff, by (site, time, id) in the events for
// older ones.
type FindStored func(events []store.Event, cutoff int64) (map[EventKey]bool, error)

// Cutoff is the time (stored milliseconds) from which events' identities
// are kept in recent_ids.
func (e *EventReads) Cutoff() int64 {
	now := time.Now
	if e.DedupNow != nil {
		now = e.DedupNow
	}
	return store.Millis(now().Add(-DedupWindow))
}

// PruneDue tells, at most every ten minutes, that recent_ids should lose
// the identities older than the cutoff. Call it under the write lock.
func (e *EventReads) PruneDue() bool {
	if now := time.Now(); now.Sub(e.pruned) >= 10*time.Minute {
		e.pruned = now
		return true
	}
	return false
}

// Recent are the events whose identity goes to recent_ids.
func Recent(events []store.Event, cutoff int64) []store.Event {
	var out []store.Event
	for i := range events {
		if store.Millis(events[i].Time) >= cutoff {
			out = append(out, events[i])
		}
	}
	return out
}

// Dedup returns the events of a batch that are new: without the repeats
// of an identity within the batch (the first is kept) and without those
// find says are stored; and how many it dropped. It copies only when it
// drops something. The engines call it before storing the batch and
// before ApplyRollups, so that the rollups and the live state see only
// what is kept.
func Dedup(events []store.Event, cutoff int64, find FindStored) ([]store.Event, int, error) {
	if len(events) == 0 {
		return events, 0, nil
	}
	kept := FirstOfEach(events)
	stored, err := find(kept, cutoff)
	if err != nil {
		return nil, 0, fmt.Errorf("look up stored event ids: %w", err)
	}
	kept = Without(kept, stored)
	return kept, len(events) - len(kept), nil
}

// FirstOfEach returns events without the repeats of an identity, keeping
// the first of each, in order.
func FirstOfEach(events []store.Event) []store.Event {
	seen := make(map[EventKey]struct{}, len(events))
	var out []store.Event // nil until the first repeat
	for i := range events {
		k := KeyOf(&events[i])
		if _, dup := seen[k]; dup {
			if out == nil {
				out = append(make([]store.Event, 0, len(events)-1), events[:i]...)
			}
			continue
		}
		seen[k] = struct{}{}
		if out != nil {
			out = append(out, events[i])
		}
	}
	if out == nil {
		return events
	}
	return out
}

// Without returns the events whose identity is not in drop, in order.
func Without(events []store.Event, drop map[EventKey]bool) []store.Event {
	if len(drop) == 0 {
		return events
	}
	out := make([]store.Event, 0, len(events))
	for i := range events {
		if !drop[KeyOf(&events[i])] {
			out = append(out, events[i])
		}
	}
	return out
}

// Duplicates is how many events committed Apply calls dropped as repeats
// since the store was opened.
func (e *EventReads) Duplicates() uint64 { return e.dups.Load() }

// CountDuplicates adds n to Duplicates; the engines call it once their
// batch is committed, so that a failed batch, retried, counts once.
func (e *EventReads) CountDuplicates(n int) {
	if n > 0 {
		e.dups.Add(uint64(n))
	}
}
