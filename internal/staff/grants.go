package staff

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"fjord/internal/store"
)

// Service applies the grant and training rules.
type Service struct {
	Store Store
	Rules Rules
	Now   func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// RequestError names what is wrong in an access request.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

func requestError(format string, args ...any) error {
	return &RequestError{fmt.Sprintf(format, args...)}
}

// Request asks for access to an account. The member must be trained; the
// reason is required; the duration at most the role's limit.
func (s *Service) Request(ctx context.Context, m Member, account int64, reason string, scope Scope, d time.Duration) (Grant, error) {
	now := s.now()
	if !s.Rules.Trained(m, now) {
		return Grant{}, ErrUntrained
	}
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return Grant{}, requestError("a reason (the ticket) is required")
	case utf8.RuneCountInString(reason) > maxReasonRunes:
		return Grant{}, requestError("the reason is longer than %d characters", maxReasonRunes)
	case strings.ContainsFunc(reason, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return Grant{}, requestError("the reason must be one line of text")
	}
	if _, err := ParseScope(string(scope)); err != nil {
		return Grant{}, &RequestError{err.Error()}
	}
	if lim := s.Rules.GrantLimit(m.Role); d <= 0 || d > lim {
		return Grant{}, requestError("a %s's grant lasts at most %v (asked: %v)", m.Role, lim, d)
	}
	return s.Store.RequestGrant(ctx, Grant{Staff: m.ID, Account: account, Reason: reason, Scope: scope, Duration: d, Requested: now})
}

// Approve approves another member's waiting request (four eyes).
func (s *Service) Approve(ctx context.Context, by Member, id int64) (Grant, error) {
	now := s.now()
	if !by.Role.MayApprove() {
		return Grant{}, ErrNoApprove
	}
	if !s.Rules.Trained(by, now) {
		return Grant{}, ErrUntrained
	}
	g, err := s.Store.StaffGrant(ctx, id)
	if err != nil {
		return Grant{}, err
	}
	if g.Staff == by.ID {
		return Grant{}, ErrOwnGrant
	}
	asker, err := s.Store.Staff(ctx, g.Staff)
	if err != nil {
		return Grant{}, err
	}
	if !asker.Removed.IsZero() || g.State(now) != "requested" {
		return Grant{}, ErrNotPending
	}
	if !s.Rules.Trained(asker, now) {
		return Grant{}, fmt.Errorf("the requester's training has lapsed: %w", ErrUntrained)
	}
	g, err = s.Store.ApproveGrant(ctx, id, by.ID, now.Add(-RequestTTL), now)
	if errors.Is(err, store.ErrConflict) {
		return Grant{}, ErrNotPending
	}
	return g, err
}

// Revoke ends a grant early: its holder, or a member who may approve.
func (s *Service) Revoke(ctx context.Context, by Member, id int64) (Grant, error) {
	g, err := s.Store.StaffGrant(ctx, id)
	if err != nil {
		return Grant{}, err
	}
	if g.Staff != by.ID && !by.Role.MayApprove() {
		return Grant{}, store.ErrNotFound
	}
	if err := s.Store.RevokeGrant(ctx, id, by.ID, s.now()); err != nil {
		return Grant{}, err
	}
	return s.Store.StaffGrant(ctx, id)
}

// Acting is the grant a member acts under now, if it still holds: theirs,
// active, and they trained. Anything else is ErrNoGrant or ErrUntrained.
func (s *Service) Acting(ctx context.Context, m Member, grant int64) (Grant, error) {
	if grant == 0 {
		return Grant{}, ErrNoGrant
	}
	g, err := s.Store.StaffGrant(ctx, grant)
	if errors.Is(err, store.ErrNotFound) {
		return Grant{}, ErrNoGrant
	}
	if err != nil {
		return Grant{}, err
	}
	now := s.now()
	if g.Staff != m.ID || !g.Active(now) {
		return g, ErrNoGrant
	}
	if !s.Rules.Trained(m, now) {
		return g, ErrUntrained
	}
	return g, nil
}

// DueReminders lists the members whose training lapses within
// ReminderBeforeLapse (or has lapsed) and who were not reminded of that
// training date yet; the caller mails them and calls SetStaffReminded.
func (s *Service) DueReminders(ctx context.Context) ([]Member, error) {
	all, err := s.Store.StaffList(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var due []Member
	for _, m := range all {
		if m.Removed.IsZero() && !m.TrainedAt.IsZero() && !m.RemindedFor.Equal(m.TrainedAt) &&
			!now.Before(s.Rules.TrainingLapses(m).Add(-ReminderBeforeLapse)) {
			due = append(due, m)
		}
	}
	return due, nil
}
