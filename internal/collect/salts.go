package collect

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"fjord/internal/store"
)

// SaltStore keeps the salts: the event store on the main service, the
// edge collector's copy of the main service's salts on an edge.
type SaltStore interface {
	// Salt returns the salt of a site's local day, creating it when absent.
	Salt(ctx context.Context, siteID int64, day string, create func() []byte) ([]byte, error)
	// DropSalts destroys every salt created before the cutoff.
	DropSalts(ctx context.Context, createdBefore time.Time) (int, error)
}

// SaltKeeper keeps each site's salt of the day. A site's day runs from its
// local midnight to the next, so one local day never spans two salts; the
// salts are kept in the event store so a restart keeps today's visitors
// whole, and destroyed 48 hours after they were made (Drop).
type SaltKeeper struct {
	Store SaltStore

	mu    sync.Mutex
	cache map[saltKey][]byte
	// create serialises trips to the store: many requests of a new day
	// arrive at once, and one of them is enough.
	create sync.Mutex
	zones  map[string]*time.Location
}

type saltKey struct {
	site int64
	day  string
}

// Day is the site's local calendar day of t.
func (k *SaltKeeper) Day(site store.Site, t time.Time) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	loc, err := k.zone(site.TimeZone)
	if err != nil {
		return "", err
	}
	return t.In(loc).Format(time.DateOnly), nil
}

func (k *SaltKeeper) zone(name string) (*time.Location, error) {
	if k.zones == nil {
		k.zones = map[string]*time.Location{}
	}
	if loc, ok := k.zones[name]; ok {
		return loc, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	k.zones[name] = loc
	return loc, nil
}

// Salt returns the salt of the site's local day at t.
func (k *SaltKeeper) Salt(ctx context.Context, site store.Site, t time.Time) ([]byte, error) {
	day, err := k.Day(site, t)
	if err != nil {
		return nil, err
	}
	key := saltKey{site.ID, day}
	k.mu.Lock()
	s, ok := k.cache[key]
	k.mu.Unlock()
	if ok {
		return s, nil
	}
	k.create.Lock()
	defer k.create.Unlock()
	k.mu.Lock()
	s, ok = k.cache[key]
	k.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err = k.Store.Salt(ctx, site.ID, day, func() []byte {
		b := make([]byte, 32)
		rand.Read(b)
		return b
	})
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.cache == nil {
		k.cache = map[saltKey][]byte{}
	}
	k.cache[key] = s
	k.mu.Unlock()
	return s, nil
}

// Drop destroys salts made more than 48 hours before now, in the store and
// in memory. Run it at least hourly.
func (k *SaltKeeper) Drop(ctx context.Context, now time.Time) (int, error) {
	n, err := k.Store.DropSalts(ctx, now.Add(-48*time.Hour))
	if err != nil {
		return 0, err
	}
	// Forget every in-memory copy; the live ones are read back from the
	// store on next use, the destroyed ones are gone for good.
	k.mu.Lock()
	k.cache = nil
	k.mu.Unlock()
	return n, nil
}
