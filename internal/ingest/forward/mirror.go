package forward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"fjord/internal/store"
)

// Snapshot is what the main service tells an edge collector: its sites
// with their settings, each site's salt of today (and of tomorrow in the
// last hours of the site's day, so an edge that loses the main service at
// midnight still hashes with the main service's salt), and the regions
// where data may be (PRODUCT §9.7), which the edge checks its own against.
type Snapshot struct {
	Sites          []store.Site `json:"sites"`
	Salts          []Salt       `json:"salts"`
	AllowedRegions []string     `json:"allowed_regions"`
	Time           time.Time    `json:"time"`
}

// Salt is one site's salt of one local day.
type Salt struct {
	Site int64  `json:"site"`
	Day  string `json:"day"`
	Salt []byte `json:"salt"`
	// Since is when this copy was first held; it is destroyed 48 hours
	// later, as the main service destroys its own.
	Since time.Time `json:"since"`
}

// Mirror is the edge collector's copy of the main service's Snapshot, kept
// in a file (mode 0600) so that an edge restarted while the main service is
// away goes on collecting. It is the edge's collect.SiteSource and
// collect.SaltStore.
//
// A salt the edge needs and has not got (the main service was away when
// the day began) is made by the edge and kept for the day: the edge's
// visitors of that day are then hashed with another salt than the main
// service's, so a visitor seen by both that day counts twice in the
// unique visitors. Nothing else differs.
type Mirror struct {
	Path string

	mu    sync.Mutex
	state Snapshot
	has   bool
}

// Load reads the file; a missing file is an empty mirror.
func (m *Mirror) Load() error {
	data, err := os.ReadFile(m.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("edge state: %w", err)
	}
	var s Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("edge state %s: %w", m.Path, err)
	}
	m.mu.Lock()
	m.state, m.has = s, true
	m.mu.Unlock()
	return nil
}

// Has tells whether the mirror holds a snapshot (from the main service now
// or from an earlier run).
func (m *Mirror) Has() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.has
}

// Updated is when the main service's last snapshot was taken.
func (m *Mirror) Updated() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.Time
}

// AllowedRegions are the main service's allowed regions.
func (m *Mirror) AllowedRegions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.AllowedRegions
}

// Update takes a new snapshot: sites and regions are replaced; salts are
// added, but a salt the edge already holds for a site's day is kept, so
// that one day's visitors at this edge are hashed with one salt.
func (m *Mirror) Update(s Snapshot, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := Snapshot{Sites: s.Sites, AllowedRegions: s.AllowedRegions, Time: s.Time}
	held := map[[2]any]bool{}
	for _, x := range m.state.Salts {
		next.Salts = append(next.Salts, x)
		held[[2]any{x.Site, x.Day}] = true
	}
	for _, x := range s.Salts {
		if !held[[2]any{x.Site, x.Day}] {
			x.Since = now
			next.Salts = append(next.Salts, x)
		}
	}
	if err := m.save(next); err != nil {
		return err
	}
	m.state, m.has = next, true
	return nil
}

// save writes the state under a temporary name, fsyncs it and renames it:
// a salt must be on disk before an event hashed with it is acknowledged.
func (m *Mirror) save(s Snapshot) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := m.Path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("edge state: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, m.Path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("edge state: %w", err)
	}
	if d, err := os.Open(filepath.Dir(m.Path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Sites lists the main service's sites.
func (m *Mirror) Sites(ctx context.Context) ([]store.Site, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.has {
		return nil, errors.New("no list of sites yet: the main service has not been reached")
	}
	return m.state.Sites, nil
}

// Salt returns the salt of a site's day, making one when the mirror has
// none (see Mirror).
func (m *Mirror) Salt(ctx context.Context, siteID int64, day string, create func() []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.state.Salts {
		if x.Site == siteID && x.Day == day {
			return x.Salt, nil
		}
	}
	next := m.state
	next.Salts = append(append([]Salt(nil), m.state.Salts...), Salt{Site: siteID, Day: day, Salt: create(), Since: time.Now()})
	if err := m.save(next); err != nil {
		return nil, err
	}
	m.state = next
	return next.Salts[len(next.Salts)-1].Salt, nil
}

// DropSalts destroys the salts held since before the cutoff.
func (m *Mirror) DropSalts(ctx context.Context, before time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := m.state
	next.Salts = nil
	for _, x := range m.state.Salts {
		if !x.Since.Before(before) {
			next.Salts = append(next.Salts, x)
		}
	}
	n := len(m.state.Salts) - len(next.Salts)
	if n == 0 {
		return 0, nil
	}
	if err := m.save(next); err != nil {
		return 0, err
	}
	m.state = next
	return n, nil
}
