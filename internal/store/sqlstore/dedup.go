package sqlstore

import (
	"fmt"

	"fjord/internal/store"
)

// An event's identity is its id together with its site and its time (in
// stored milliseconds): the collector gives each site's copy of a
// multi-site hit its own id, and a re-sent event keeps its time. The same
// id at another time is another event. Apply keeps one event per identity
// for as long as it is stored, so that a batch delivered twice (an edge's
// re-send after a lost acknowledgement, a redelivery after a crash between
// commit and ack) is counted once.

// EventKey is an event's identity.
type EventKey struct {
	Site int64
	TS   int64
	ID   [16]byte
}

// KeyOf is the identity of e.
func KeyOf(e *store.Event) EventKey {
	return EventKey{Site: e.SiteID, TS: store.Millis(e.Time), ID: e.ID}
}

// FindStored is an engine's look-up, inside the apply transaction: the
// identities among events (no two alike) that the events table holds.
type FindStored func(events []store.Event) (map[EventKey]bool, error)

// Dedup returns the events of a batch that are new: without the repeats
// of an identity within the batch (the first is kept) and without those
// find says are stored; and how many it dropped. It copies only when it
// drops something. The engines call it before storing the batch and
// before ApplyRollups, so that the rollups and the live state see only
// what is kept.
func Dedup(events []store.Event, find FindStored) ([]store.Event, int, error) {
	if len(events) == 0 {
		return events, 0, nil
	}
	kept := FirstOfEach(events)
	stored, err := find(kept)
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
