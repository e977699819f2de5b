package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"text/tabwriter"
	"time"

	"fjord/internal/audit"
	"fjord/internal/backup"
	"fjord/internal/config"
	"fjord/internal/store/duckdb"
	"fjord/internal/store/postgres"
	"fjord/internal/store/sqlstore"
	"fjord/internal/web"
)

const backupUsage = "usage: fjord backup keygen FILE | create | list | verify [ID] | restore ID [--force]"

// Backup runs `fjord backup ...` (PRODUCT §9.6).
func Backup(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(backupUsage)
	}
	switch args[0] {
	case "keygen":
		return backupKeygen(args[1:], stdout, stderr)
	case "create":
		return backupCreate(args[1:], stdout, stderr)
	case "list":
		return backupList(args[1:], stdout, stderr)
	case "verify":
		return backupVerify(args[1:], stdout, stderr)
	case "restore":
		return backupRestore(args[1:], stdout, stderr)
	}
	return errors.New(backupUsage)
}

func backupKeygen(args []string, stdout, stderr io.Writer) error {
	_, pos, err := parse("backup keygen", args, stderr, nil)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: fjord backup keygen FILE")
	}
	rcpt, err := backup.KeyGen(pos[0], time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup key written to %s: set backup-key to it, and keep a copy away from the backups (without it they cannot be restored)\npublic key: %s\n", pos[0], rcpt)
	return nil
}

// checkBackups is config check's part on backups: the key opens, the
// directory takes files, pg_dump is there for PostgreSQL.
func checkBackups(cfg *config.Config) []string {
	if cfg.BackupDir == "" {
		return nil
	}
	var out []string
	if _, err := backup.LoadKey(cfg.BackupKey, cfg.BackupRecipients); err != nil {
		out = append(out, err.Error())
	}
	probe := filepath.Join(cfg.BackupDir, ".fjord-write-check")
	if err := os.MkdirAll(cfg.BackupDir, 0o700); err != nil {
		out = append(out, fmt.Sprintf("backup-dir %q cannot be created: %v", cfg.BackupDir, err))
	} else if err := os.WriteFile(probe, nil, 0o600); err != nil {
		out = append(out, fmt.Sprintf("backup-dir %q is not writable: %v", cfg.BackupDir, err))
	}
	os.Remove(probe)
	if config.IsPostgres(cfg.AccountsURL()) || config.IsPostgres(cfg.EventsURL()) {
		for _, tool := range []string{"pg_dump", "pg_restore"} {
			if _, err := exec.LookPath(tool); err != nil {
				out = append(out, fmt.Sprintf("backups of PostgreSQL need %s, which is not installed (Debian: postgresql-client)", tool))
			}
		}
	}
	return out
}

// backupConfig parses the flags and refuses a config without backups.
func backupConfig(name string, args []string, stderr io.Writer, own func(*flag.FlagSet)) (*config.Config, []string, error) {
	cfg, pos, err := parse(name, args, stderr, own)
	if err != nil {
		return nil, nil, err
	}
	if cfg.BackupDir == "" {
		return nil, nil, errors.New("backup-dir is not set: backups are off")
	}
	return cfg, pos, nil
}

// newBackupService builds the backups of a server's stores.
func newBackupService(cfg *config.Config, st *Stores) (*backup.Service, error) {
	key, err := backup.LoadKey(cfg.BackupKey, cfg.BackupRecipients)
	if err != nil {
		return nil, err
	}
	svc := &backup.Service{Target: backup.Dir(cfg.BackupDir), Key: key, Region: cfg.BackupRegion, Version: Version,
		WorkDir: cfg.DataDir, Keep: backup.Keep(cfg.BackupKeep), Check: backup.Check{Scratch: cfg.DataDir}}
	if cfg.AuditKey != "" {
		k, err := audit.LoadKey(cfg.AuditKey)
		if err != nil {
			return nil, err
		}
		svc.Check.AuditKey = k.Public().(ed25519.PublicKey)
	}
	acc, ok := st.Accounts.(*sqlstore.Accounts)
	if !ok {
		return nil, fmt.Errorf("account store %T: no backups of it", st.Accounts)
	}
	aURL, eURL := cfg.AccountsURL(), cfg.EventsURL()
	switch {
	case config.IsPostgres(aURL) && aURL == eURL:
		svc.Sources = []backup.Source{{Name: "database", Engine: backup.Postgres, DB: acc.DB, URL: aURL}}
	case config.IsPostgres(aURL):
		svc.Sources = []backup.Source{{Name: "accounts", Engine: backup.Postgres, DB: acc.DB, URL: aURL}}
	default:
		svc.Sources = []backup.Source{{Name: "accounts", Engine: backup.SQLite, DB: acc.DB}}
	}
	switch ev := st.Events.(type) {
	case *duckdb.Store:
		svc.Sources = append(svc.Sources, backup.Source{Name: "events", Engine: backup.DuckDB, DB: ev.DB})
	case *postgres.Events:
		if aURL != eURL {
			svc.Sources = append(svc.Sources, backup.Source{Name: "events", Engine: backup.Postgres, DB: ev.DB, URL: eURL})
		}
	default:
		return nil, fmt.Errorf("event store %T: no backups of it", st.Events)
	}
	if config.IsPostgres(aURL) {
		svc.Check.Postgres, svc.Check.PostgresURL = acc.DB, aURL
	} else if ev, ok := st.Events.(*postgres.Events); ok {
		svc.Check.Postgres, svc.Check.PostgresURL = ev.DB, eURL
	}
	return svc, nil
}

func printOutcome(w io.Writer, o web.BackupOutcome) error {
	if o.Error != "" {
		return errors.New(o.Error)
	}
	if o.Manifest.ID != "" {
		var size int64
		for _, f := range o.Manifest.Files {
			size += f.Size
		}
		fmt.Fprintf(w, "backup %s made: %d files, %d bytes, %d audit entries\n", o.Manifest.ID, len(o.Manifest.Files), size, o.Manifest.Audit)
	}
	if !o.Drill.OK {
		return fmt.Errorf("drill of %s FAILED: %s", o.Drill.ID, o.Drill.Reason)
	}
	fmt.Fprintf(w, "drill of %s passed in %.1f s: restored, integrity checked, every table and the audit chain as recorded\n", o.Drill.ID, o.Drill.Seconds)
	return nil
}

func backupCreate(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := backupConfig("backup create", args, stderr, nil)
	if err != nil {
		return err
	}
	var o web.BackupOutcome
	err = withEngine(cfg, func(c *control) error {
		c.hc.Timeout = 0 // a backup of a large store takes its time
		return c.do("POST", "/backups", nil, &o)
	}, func(e *engine) error {
		svc, err := newBackupService(cfg, e.st)
		if err != nil {
			return err
		}
		o = web.Outcome(svc.Run(context.Background()))
		return nil
	})
	if err != nil {
		return err
	}
	return printOutcome(stdout, o)
}

func backupVerify(args []string, stdout, stderr io.Writer) error {
	cfg, pos, err := backupConfig("backup verify", args, stderr, nil)
	if err != nil {
		return err
	}
	id, err := backupID(cfg, pos)
	if err != nil {
		return err
	}
	var o web.BackupOutcome
	err = withEngine(cfg, func(c *control) error {
		c.hc.Timeout = 0
		return c.do("POST", "/backups/"+id+"/verify", nil, &o)
	}, func(e *engine) error {
		svc, err := newBackupService(cfg, e.st)
		if err != nil {
			return err
		}
		o = web.BackupOutcome{Drill: svc.Verify(context.Background(), id)}
		return nil
	})
	if err != nil {
		return err
	}
	return printOutcome(stdout, o)
}

// backupID is the backup named on the command line, or the newest.
func backupID(cfg *config.Config, pos []string) (string, error) {
	switch len(pos) {
	case 1:
		return pos[0], nil
	case 0:
		ids, err := backup.Dir(cfg.BackupDir).List()
		if err != nil {
			return "", err
		}
		if len(ids) == 0 {
			return "", fmt.Errorf("no backups in %s", cfg.BackupDir)
		}
		return ids[len(ids)-1], nil
	}
	return "", errors.New(backupUsage)
}

func backupList(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := backupConfig("backup list", args, stderr, nil)
	if err != nil {
		return err
	}
	list, err := backup.List(backup.Dir(cfg.BackupDir))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tREGION\tBYTES\tDRILL")
	for _, e := range list {
		if e.Incomplete {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tincomplete (no manifest)\n", e.ID)
			continue
		}
		var size int64
		for _, f := range e.Files {
			size += f.Size
		}
		drill := "not drilled"
		if d := e.Drill; d != nil {
			drill = "passed " + d.At.Format(time.RFC3339)
			if !d.OK {
				drill = "FAILED " + d.At.Format(time.RFC3339) + ": " + d.Reason
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.ID, e.Created.Format(time.RFC3339), e.Region, size, drill)
	}
	return tw.Flush()
}

func backupRestore(args []string, stdout, stderr io.Writer) error {
	var force bool
	cfg, pos, err := backupConfig("backup restore", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "replace the stores that are there (never those of a running server)")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: fjord backup restore ID [--data-dir DIR] [--database URL] [--force]")
	}
	key, err := backup.LoadKey(cfg.BackupKey, nil)
	if err != nil {
		return err
	}
	// the data dir's lock: a running server's stores are never replaced
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("%w: stop it before restoring into %s", err, cfg.DataDir)
	}
	defer lock.Close()
	to := backup.RestoreTo{DataDir: cfg.DataDir, Force: force, Databases: map[string]string{}}
	if u := cfg.AccountsURL(); config.IsPostgres(u) {
		to.Databases["accounts"], to.Databases["database"] = u, u
	}
	if u := cfg.EventsURL(); config.IsPostgres(u) {
		to.Databases["events"] = u
	}
	m, err := backup.Restore(context.Background(), backup.Dir(cfg.BackupDir), pos[0], key, to)
	if err != nil {
		return err
	}
	// The data dir's journal belongs to the stores just replaced: records
	// the snapshot lacks may be gone from it already (applied segments are
	// deleted), so it is not replayed onto the restored stores but kept
	// aside for the operator.
	if _, err := os.Stat(cfg.JournalDir()); err == nil {
		aside := cfg.JournalDir() + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(cfg.JournalDir(), aside); err != nil {
			return fmt.Errorf("restored %s, but moving the old journal aside failed (move it before starting the server): %w", m.ID, err)
		}
		fmt.Fprintf(stdout, "the data dir's journal was moved to %s\n", aside)
	}
	fmt.Fprintf(stdout, "restored %s (made %s) into %s\n", m.ID, m.Created.Format(time.RFC3339), cfg.DataDir)
	return nil
}

// backupJob is serve's schedule: a backup when the newest good one is
// older than every (a minute after start at the soonest), drilled and
// pruned; a failed one is tried again hourly, and alerts. It looks again
// at least hourly, so a backup made meanwhile (fjord backup create) or a
// clock set back is seen.
func backupJob(ctx context.Context, srv *web.Server, every time.Duration) {
	start := time.Now()
	for {
		st := srv.Backups.Status()
		next := st.LastGood.Add(every)
		if st.LastFailure != "" {
			next = st.LastRun.Add(time.Hour)
		}
		if soonest := start.Add(time.Minute); next.Before(soonest) {
			next = soonest
		}
		if st.LastGood.After(time.Now()) {
			next = time.Now() // a backup from the future: the clock was set back
		}
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(min(wait, time.Hour)):
			}
			continue
		}
		if o := srv.RunBackup(ctx); o.Failure() == "" {
			srv.Log.Info("backup made and drilled", "id", o.Manifest.ID, "seconds", o.Drill.Seconds)
		}
		if ctx.Err() != nil {
			return
		}
	}
}
