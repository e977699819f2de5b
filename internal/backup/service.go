package backup

import (
	"context"
	"errors"
	"fmt"
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

	run sync.Mutex // one backup or drill at a time
	mu  sync.Mutex
	st  Status
}

// Status is how backups have gone.
type Status struct {
	LastGood    time.Time // the newest backup whose drill passed
	LastGoodID  string
	LastRun     time.Time
	LastFailure string // of the last run or drill ("": it went well)
	LastSize    int64
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Load reads the target's backups to know the newest good one (at start).
func (s *Service) Load() error {
	list, err := List(s.Target)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range list {
		if !e.Incomplete && e.Drill != nil && e.Drill.OK && e.Created.After(s.st.LastGood) {
			s.st.LastGood, s.st.LastGoodID = e.Created, e.ID
		}
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
	m, err := Create(ctx, Options{Target: s.Target, Sources: s.Sources, Recipients: s.Key.Recipients,
		Region: s.Region, Version: s.Version, WorkDir: s.WorkDir, Now: s.Now})
	if err != nil {
		s.record(Drill{At: s.now().UTC(), Reason: err.Error()}, m)
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
	return d
}

func (s *Service) drill(ctx context.Context, id string) Drill {
	c := s.Check
	c.Key, c.Now = s.Key, s.Now
	return Verify(ctx, s.Target, id, c)
}

func (s *Service) record(d Drill, m Manifest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.At.After(s.st.LastRun) {
		s.st.LastRun = d.At
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

// Problem says what is wrong with the backups at now, for the operator's
// alert: the last run or drill failed, or no backup is good for longer
// than twice the schedule ("": nothing is wrong).
func (s *Service) Problem(now time.Time, every time.Duration) string {
	st := s.Status()
	switch {
	case st.LastFailure != "":
		return "the last backup failed: " + st.LastFailure
	case every > 0 && !st.LastGood.IsZero() && now.Sub(st.LastGood) > 2*every:
		return fmt.Sprintf("no good backup since %s (%s ago; one is made every %s)", st.LastGood.UTC().Format(time.RFC3339), now.Sub(st.LastGood).Round(time.Minute), every)
	}
	return ""
}
