package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"fjord/internal/backup"
	"fjord/internal/secmon"
)

// BackupOutcome is the control socket's answer of a backup or a drill.
type BackupOutcome struct {
	Manifest backup.Manifest `json:"manifest"`
	Drill    backup.Drill    `json:"drill"`
	Error    string          `json:"error,omitempty"` // the backup could not be made (or pruned)
}

// Failure says what went wrong ("": nothing).
func (o BackupOutcome) Failure() string {
	switch {
	case o.Error != "":
		return o.Error
	case !o.Drill.OK:
		return "drill of " + o.Drill.ID + " failed: " + o.Drill.Reason
	}
	return ""
}

// Outcome is what a backup run came to.
func Outcome(m backup.Manifest, d backup.Drill, err error) BackupOutcome {
	o := BackupOutcome{Manifest: m, Drill: d}
	if err != nil {
		o.Error = err.Error()
	}
	return o
}

// RunBackup makes a backup, drills it and prunes the target; a failure
// is a security event, which alerts the operator (PRODUCT §9.6).
func (s *Server) RunBackup(ctx context.Context) BackupOutcome {
	o := Outcome(s.Backups.Run(ctx))
	var failed error
	if f := o.Failure(); f != "" {
		failed = errors.New(f)
	}
	s.Metrics.JobDone("backup", time.Now(), failed)
	s.backupFailed(ctx, o.Failure())
	return o
}

// VerifyBackup drills a backup again; a failure alerts as RunBackup's.
func (s *Server) VerifyBackup(ctx context.Context, id string) backup.Drill {
	d := s.Backups.Verify(ctx, id)
	s.backupFailed(ctx, BackupOutcome{Drill: d}.Failure())
	return d
}

func (s *Server) backupFailed(ctx context.Context, failure string) {
	if failure == "" {
		return
	}
	s.Log.ErrorContext(ctx, "backup failed", "err", failure)
	if s.Security == nil {
		return
	}
	if err := s.Security.Record(context.WithoutCancel(ctx), secmon.Event{Kind: secmon.BackupDrillFailed, Actor: "system", Detail: truncate(failure, 500)}); err != nil {
		s.Log.ErrorContext(ctx, "backup: security event", "err", err)
	}
}

// ctlBackup runs `fjord backup create` for the CLI.
func (s *Server) ctlBackup(w http.ResponseWriter, r *http.Request) {
	if s.Backups == nil {
		s.writeError(w, http.StatusNotFound, "backups are off (no backup-dir)")
		return
	}
	// the CLI may give up waiting; the backup is not left half made
	o := s.RunBackup(context.WithoutCancel(r.Context()))
	detail := "drill passed"
	if f := o.Failure(); f != "" {
		detail = truncate(f, 300)
	}
	s.recordAs(r, "operator", 0, "backup.create", "backup:"+o.Manifest.ID, detail)
	s.writeJSON(w, http.StatusOK, o)
}

// ctlVerifyBackup runs `fjord backup verify` for the CLI.
func (s *Server) ctlVerifyBackup(w http.ResponseWriter, r *http.Request) {
	if s.Backups == nil {
		s.writeError(w, http.StatusNotFound, "backups are off (no backup-dir)")
		return
	}
	id := r.PathValue("id")
	ids, err := s.Backups.Target.List()
	if err != nil {
		s.writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !slices.Contains(ids, id) {
		s.writeError(w, http.StatusNotFound, "no backup "+id+" in the backup dir (fjord backup list shows them)")
		return
	}
	s.writeJSON(w, http.StatusOK, BackupOutcome{Drill: s.VerifyBackup(context.WithoutCancel(r.Context()), id)})
}
