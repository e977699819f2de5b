package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"fjord/internal/audit"
	"fjord/internal/auth"
	"fjord/internal/staff"
)

// The operator's staff commands (fjord staff ...), on the control socket
// or, with no server running, on the data dir. Each change is in the
// audit log with the operator as its actor.

// StaffCommand is one staff command's input.
type StaffCommand struct {
	Verb    string // add, remove, trained, link
	ID      int64
	Email   string
	Name    string
	Role    string
	Trained string // YYYY-MM-DD
}

// StaffResult is its answer: the member, and for add and link the path of
// the set-up link (the caller puts the public URL before it).
type StaffResult struct {
	Member staff.Member
	Link   string
}

// RunStaffCommand runs a staff command on a store.
func RunStaffCommand(ctx context.Context, in *auth.StaffSignin, log *audit.Log, c StaffCommand) (StaffResult, error) {
	var res StaffResult
	var trained time.Time
	if c.Verb == "add" || c.Verb == "trained" {
		t, err := time.Parse("2006-01-02", c.Trained)
		if err != nil {
			return res, errors.New("the training date must be given as YYYY-MM-DD")
		}
		trained = t
	}
	var err error
	var tok string
	switch c.Verb {
	case "add":
		role, perr := staff.ParseRole(c.Role)
		if perr != nil {
			return res, perr
		}
		res.Member, tok, err = in.Add(ctx, c.Email, c.Name, role, trained)
	case "remove":
		err = in.Store.RemoveStaff(ctx, c.ID, time.Now())
	case "trained":
		if trained.After(time.Now()) {
			return res, errors.New("the training date is in the future")
		}
		err = in.Store.SetStaffTrained(ctx, c.ID, trained)
	case "link":
		var m staff.Member
		if m, err = in.Store.Staff(ctx, c.ID); err == nil && !m.Removed.IsZero() {
			err = fmt.Errorf("staff member %d was removed", c.ID)
		}
		if err == nil {
			tok, err = in.NewSetupLink(ctx, c.ID)
		}
	default:
		return res, fmt.Errorf("unknown staff command %q: want add, remove, trained or link", c.Verb)
	}
	if err != nil {
		return res, err
	}
	if res.Member.ID == 0 {
		if res.Member, err = in.Store.Staff(ctx, c.ID); err != nil {
			return res, err
		}
	}
	if tok != "" {
		res.Link = "/staff/setup/" + tok
	}
	if log != nil {
		detail := string(res.Member.Role)
		if c.Verb == "add" || c.Verb == "trained" {
			detail += ", trained " + c.Trained
		}
		if _, err := log.Record(ctx, audit.Entry{Actor: "operator", Action: "staff." + c.Verb, Target: staffActorName(res.Member), Detail: detail}); err != nil {
			return res, fmt.Errorf("the change is made but recording it in the audit log failed: %w", err)
		}
	}
	return res, nil
}

// StaffListed is a member as fjord staff list shows them.
type StaffListed struct {
	staff.Member
	SetUp bool // password and second factor set
}

// ListStaff lists every member, removed ones too.
func ListStaff(ctx context.Context, st staff.Store) ([]StaffListed, error) {
	ms, err := st.StaffList(ctx)
	out := make([]StaffListed, len(ms))
	for i, m := range ms {
		out[i] = StaffListed{m, m.Ready()}
	}
	return out, err
}

func (s *Server) ctlStaffList(w http.ResponseWriter, r *http.Request) {
	if s.StaffSignin == nil {
		s.writeError(w, http.StatusNotFound, "this server keeps no staff")
		return
	}
	ms, err := ListStaff(r.Context(), s.StaffSignin.Store)
	if err != nil {
		s.storeError(w, "list staff", err)
		return
	}
	s.writeJSON(w, 200, ms)
}

func (s *Server) ctlStaff(w http.ResponseWriter, r *http.Request) {
	var in StaffCommand
	if !readJSON(w, r, &in, `{"Verb":"add"|"remove"|"trained"|"link", "ID":..., "Email":..., "Name":..., "Role":..., "Trained":"YYYY-MM-DD"}`) {
		return
	}
	if s.StaffSignin == nil {
		s.writeError(w, http.StatusNotFound, "this server keeps no staff")
		return
	}
	res, err := RunStaffCommand(r.Context(), s.StaffSignin, s.Audit, in)
	if err != nil {
		s.storeError(w, "staff", err)
		return
	}
	if res.Link != "" {
		res.Link = s.PublicURL + res.Link
	}
	s.writeJSON(w, 200, res)
}
