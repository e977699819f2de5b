package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Service is a server's backups: each run makes a backup, drills it and
// prunes by the policy, one run at a time; it remembers how the last
// one went, for the metrics and the operator's alert.
type Service struct {
	Target  Target
	Sources []Source
	Key     Key
	Check   Check // Key and Now are the Service's
	Keep    Keep
	Region  string
	Version string
	WorkDir string
	Now     func() time.Time
	// Before runs before each snapshot: the server applies what the
	// journal holds, so that a backup has every event acknowledged
	// before it began (nil: nothing).
	Before func(ctx context.Context) error

	run sync.Mutex // one backup or drill at a time
	mu  sync.Mutex
	st  Status
}

// Status is how backups have gone.
type Status struct {
	LastGood    time.Time // the newest backup whose drill passed
	LastGoodID  string
	LastSize    int64     // of the newest good backup
	Newest      time.Time // the newest backup made or attempted
	LastRun     time.Time // when it was made or attempted
	LastFailure string    // why it, or its last drill, failed ("": it went well)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Load reads the target's backups to know how the newest went (at
// start), and removes the scratch copies a crash left behind: they are
// databases in clear.
func (s *Service) Load() error {
	for _, pattern := range []string{filepath.Join(s.WorkDir, "backup-*"), filepath.Join(s.Check.Scratch, "drill-*")} {
		old, _ := filepath.Glob(pattern)
		for _, p := range old {
			os.RemoveAll(p)
		}
	}
	if d, ok := s.Target.(Dir); ok {
		old, _ := filepath.Glob(filepath.Join(string(d), ".fjord-*.partial"))
		for _, p := range old {
			os.RemoveAll(p)
		}
	}
	list, err := List(s.Target)
	if err != nil {
		return err
	}
	for _, e := range list {
		if e.Incomplete || e.Unreadable != "" {
			continue
		}
		d := Drill{At: e.Created}
		if e.Drill != nil {
			d = *e.Drill
		} else {
			d.OK = true // not drilled (a drill that could not record itself): not known bad
		}
		s.record(d, e.Manifest)
	}
	return nil
}

// Status returns how backups have gone.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Run makes a backup, drills it and prunes the target. The error is of
// the backup; a failed drill is in the Drill (and the Status).
func (s *Service) Run(ctx context.Context) (Manifest, Drill, error) {
	s.run.Lock()
	defer s.run.Unlock()
	if s.Before != nil {
		if err := s.Before(ctx); err != nil {
			err = fmt.Errorf("backup: before the snapshot: %w", err)
			s.record(Drill{At: s.now().UTC(), Reason: err.Error()}, Manifest{Created: s.now().UTC()})
			return Manifest{}, Drill{}, err
		}
	}
	m, err := Create(ctx, Options{Target: s.Target, Sources: s.Sources, Recipients: s.Key.Recipients,
		Region: s.Region, Version: s.Version, WorkDir: s.WorkDir, Now: s.Now})
	if err != nil {
		s.record(Drill{At: s.now().UTC(), Reason: err.Error()}, Manifest{Created: s.now().UTC()})
		return m, Drill{}, err
	}
	d := s.drill(ctx, m.ID)
	s.record(d, m)
	list, err := List(s.Target)
	if err == nil {
		for _, id := range Prune(list, s.Keep, s.now()) {
			if derr := s.Target.Delete(id); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}
	if err != nil {
		return m, d, fmt.Errorf("backup %s made, pruning failed: %w", m.ID, err)
	}
	return m, d, nil
}

// Verify drills a backup again.
func (s *Service) Verify(ctx context.Context, id string) Drill {
	s.run.Lock()
	defer s.run.Unlock()
	d := s.drill(ctx, id)
	if m, err := ReadManifest(s.Target, id); err == nil {
		s.record(d, m)
	}
	if !d.OK && s.Status().LastGoodID == id {
		// the newest good backup is not good any more: find the one before
		s.mu.Lock()
		s.st.LastGood, s.st.LastGoodID, s.st.LastSize = time.Time{}, "", 0
		s.mu.Unlock()
		if list, err := List(s.Target); err == nil {
			for _, e := range list {
				if !e.Incomplete && e.Unreadable == "" && e.Drill != nil && e.Drill.OK {
					s.record(Drill{OK: true, At: e.Drill.At}, Manifest{ID: e.ID, Created: e.Created, Files: e.Files})
				}
			}
		}
	}
	return d
}

func (s *Service) drill(ctx context.Context, id string) Drill {
	c := s.Check
	c.Key, c.Now = s.Key, s.Now
	return Verify(ctx, s.Target, id, c)
}

// record notes a backup's drill (or a failed attempt, with the time it
// began as m.Created): the failure shown is the newest backup's, so that
// drilling an older one again neither hides nor raises it.
func (s *Service) record(d Drill, m Manifest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !m.Created.Before(s.st.Newest) {
		s.st.Newest, s.st.LastRun = m.Created, d.At
		s.st.LastFailure = ""
		if !d.OK {
			s.st.LastFailure = d.Reason
		}
	}
	if d.OK && m.Created.After(s.st.LastGood) {
		s.st.LastGood, s.st.LastGoodID = m.Created, m.ID
		s.st.LastSize = 0
		for _, f := range m.Files {
			s.st.LastSize += f.Size
		}
	}
}
