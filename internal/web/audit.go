package web

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"fjord/internal/audit"
	"fjord/internal/secmon"
)

// The audit log on the server: verified at start and hourly, with a
// checkpoint signed at each hourly check (PRODUCT §7.4).

func (s *Server) auditPublic() ed25519.PublicKey {
	if s.Audit == nil || s.Audit.Key == nil {
		return nil
	}
	return s.Audit.Key.Public().(ed25519.PublicKey)
}

// CheckAudit verifies the chain's tail (what no signature covers yet) and
// then signs a checkpoint over the newest entry: in that order, so that a
// rewritten tail is found before it could be signed. A break is a
// security event, and returned.
func (s *Server) CheckAudit(ctx context.Context) error {
	if s.Audit == nil {
		return nil
	}
	r, err := audit.VerifyTail(ctx, s.Audit.Store, s.auditPublic())
	var b *audit.BreakError
	if errors.As(err, &b) {
		s.auditBroken(ctx, b)
		return err
	}
	if err != nil {
		return err
	}
	// what this process has seen verified never goes back: deleting the
	// newest checkpoint with the entries after it leaves a chain that
	// verifies, but shorter than it was
	if r.Entries < s.auditSeen.entries.Load() || r.LastSigned < s.auditSeen.signed.Load() {
		b := &audit.BreakError{Seq: r.Entries + 1, Reason: fmt.Sprintf("missing: the log ends at %d with its last checkpoint at %d, but this server saw it verified up to %d and %d",
			r.Entries, r.LastSigned, s.auditSeen.entries.Load(), s.auditSeen.signed.Load())}
		s.auditBroken(ctx, b)
		return b
	}
	s.auditSeen.entries.Store(r.Entries)
	s.auditSeen.signed.Store(r.LastSigned)
	s.Log.Debug("audit log tail verified", "entries", r.Entries, "signed", r.LastSigned)
	if s.Audit.Key != nil {
		return s.Audit.Checkpoint(ctx)
	}
	return nil
}

// auditBroken raises the security event of a broken chain.
func (s *Server) auditBroken(ctx context.Context, b *audit.BreakError) {
	s.Log.Error("security event: the audit log is broken", "entry", b.Seq, "reason", b.Reason)
	if s.Security != nil {
		if err := s.Security.Record(ctx, secmon.Event{Kind: secmon.AuditBroken, Actor: "system", Detail: b.Error()}); err != nil {
			s.Log.Error("security event", "kind", secmon.AuditBroken, "err", err)
		}
	}
}

// auditMark is the longest chain and latest checkpoint a server has
// verified.
type auditMark struct{ entries, signed atomic.Int64 }

// ctlAuditVerify is fjord audit verify through a running server.
func (s *Server) ctlAuditVerify(w http.ResponseWriter, r *http.Request) {
	if s.Audit == nil {
		s.writeError(w, http.StatusNotFound, "this server keeps no audit log")
		return
	}
	rep, err := audit.Verify(r.Context(), s.Audit.Store, s.auditPublic())
	var b *audit.BreakError
	if errors.As(err, &b) {
		s.writeError(w, http.StatusConflict, b.Error())
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "audit verify", "err", err)
		s.writeError(w, 500, "reading the audit log failed")
		return
	}
	s.writeJSON(w, 200, rep)
}

// record writes an audit entry for an action of the request's viewer (or
// of the system, outside a session). Entries name people by id only (a
// leaver's entries stay, pseudonymous) and never hold a secret. A failure
// to record is logged: the action has happened.
func (s *Server) record(r *http.Request, account int64, action, target, detail string) {
	actor := "anonymous"
	if v := viewerOf(r); v != nil && v.staff != nil {
		// a staff request is one entry, written when it is answered
		v.staff.did = append(v.staff.did, strings.TrimSpace(action+" "+target+" "+detail))
		return
	} else if v != nil {
		actor = fmt.Sprintf("user:%d", v.user.ID)
	}
	s.recordAs(r, actor, account, action, target, detail)
}

// recordAs is record for an actor the request has no session of yet (a
// sign-in).
func (s *Server) recordAs(r *http.Request, actor string, account int64, action, target, detail string) {
	s.writeEntry(r, audit.Entry{Actor: actor, Account: account, Action: action, Target: target, Detail: detail})
}

// writeEntry appends an entry to the audit log, if there is one. It is
// written even when the client has gone (the action happened); a failure
// is logged.
func (s *Server) writeEntry(r *http.Request, e audit.Entry) {
	s.writeEntryCtx(r.Context(), e)
}

// writeEntryCtx is writeEntry outside a request (the periodic jobs).
func (s *Server) writeEntryCtx(ctx context.Context, e audit.Entry) {
	if s.Audit == nil {
		return
	}
	if _, err := s.Audit.Record(context.WithoutCancel(ctx), e); err != nil {
		s.Log.Error("audit", "action", e.Action, "err", err)
	}
}
