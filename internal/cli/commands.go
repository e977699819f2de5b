package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"fjord/internal/account"
	"fjord/internal/config"
	"fjord/internal/report"
	"fjord/internal/store"
)

// Version is set at build time with -ldflags "-X fjord/internal/cli.Version=..."
var Version = "dev"

// Run dispatches a sub-command; main only calls this.
func Run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "collect":
		return Collect(args[1:], stdout, stderr)
	case "collector":
		if len(args) > 2 && args[1] == "add" {
			return CollectorAdd(args[2:], stdout, stderr)
		}
		return errors.New("usage: fjord collector add NAME --file COLLECTORS_FILE")
	case "serve":
		return Serve(rest, stdout, stderr)
	case "migrate":
		return Migrate(rest, stdout, stderr)
	case "config":
		if len(rest) > 0 && rest[0] == "check" {
			return ConfigCheck(rest[1:], stdout, stderr)
		}
		return errors.New("usage: fjord config check [flags]")
	case "site":
		if len(rest) > 0 {
			switch rest[0] {
			case "add":
				return SiteAdd(rest[1:], stdout, stderr)
			case "list":
				return SiteList(rest[1:], stdout, stderr)
			}
		}
		return errors.New("usage: fjord site add DOMAIN [--timezone ZONE] [--account ID] | fjord site list")
	case "goal":
		if len(rest) > 0 {
			switch rest[0] {
			case "add":
				return GoalAdd(rest[1:], stdout, stderr)
			case "list":
				return GoalList(rest[1:], stdout, stderr)
			case "remove":
				return GoalRemove(rest[1:], stdout, stderr)
			}
		}
		return errors.New("usage: fjord goal add DOMAIN --event NAME|--page PATTERN | fjord goal list DOMAIN | fjord goal remove DOMAIN ID")
	case "account":
		if len(rest) > 0 {
			switch rest[0] {
			case "create":
				return AccountCreate(rest[1:], stdout, stderr)
			case "list":
				return AccountList(rest[1:], stdout, stderr)
			}
		}
		return errors.New("usage: fjord account create --name NAME --admin-email ADDRESS | fjord account list")
	case "user":
		if len(rest) > 0 {
			switch rest[0] {
			case "add":
				return UserAdd(rest[1:], stdout, stderr)
			case "list":
				return UserList(rest[1:], stdout, stderr)
			case "grant":
				return UserGrant(rest[1:], stdout, stderr)
			case "remove":
				return UserRemove(rest[1:], stdout, stderr)
			case "restore":
				return UserRestore(rest[1:], stdout, stderr)
			}
		}
		return errors.New("usage: fjord user add --account ID --email ADDRESS [--role user|admin] | fjord user list --account ID | fjord user grant --email ADDRESS (--site DOMAIN | --report ID) | fjord user remove|restore --id N")
	case "apikey":
		if len(rest) > 0 {
			switch rest[0] {
			case "create":
				return APIKeyCreate(rest[1:], stdout, stderr)
			case "list":
				return APIKeyList(rest[1:], stdout, stderr)
			case "revoke":
				return APIKeyRevoke(rest[1:], stdout, stderr)
			}
		}
		return errors.New("usage: fjord apikey create --email ADDRESS --name NAME --site DOMAIN [--site DOMAIN ...] --expires 90d | fjord apikey list --email ADDRESS | fjord apikey revoke --id N")
	case "audit":
		if len(rest) > 0 {
			switch rest[0] {
			case "verify":
				return AuditVerify(rest[1:], stdout, stderr)
			case "keygen":
				return AuditKeygen(rest[1:], stdout, stderr)
			}
		}
		return errors.New("usage: fjord audit verify | fjord audit keygen FILE")
	case "staff":
		return Staff(rest, stdout, stderr)
	case "backup":
		return Backup(rest, stdout, stderr)
	case "alerts":
		if len(rest) > 0 {
			switch rest[0] {
			case "list":
				return AlertsList(rest[1:], stdout, stderr)
			case "resolve":
				return AlertsResolve(rest[1:], stdout, stderr)
			}
		}
		return errors.New("usage: fjord alerts list [--open] [--account N] | fjord alerts resolve ID")
	case "incident":
		if len(rest) > 0 {
			switch rest[0] {
			case "open":
				return IncidentOpen(rest[1:], stdout, stderr)
			case "update", "close":
				return IncidentEntry(rest[0], rest[1:], stdout, stderr)
			case "list":
				return IncidentList(rest[1:], stdout, stderr)
			}
		}
		return errors.New("usage: fjord incident open --account N --title T --description D | fjord incident update ID TEXT | fjord incident close ID TEXT | fjord incident list")
	case "stats":
		return Stats(rest, stdout, stderr)
	case "bench":
		return Bench(rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "fjord", versionString())
		return nil
	case "help", "-h", "--help":
		usage(stdout)
		return nil
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", cmd)
}

func versionString() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + bi.GoVersion
	}
	return v
}

func usage(w io.Writer) {
	fmt.Fprint(w, `fjord: security-first web analytics

Commands:
  fjord serve [--listen ADDR] [--data-dir DIR] [--config FILE] [--demo]
  fjord collect --main URL --token-file FILE [--listen ADDR] [--data-dir DIR]
                                     an edge collector: spools what it accepts, forwards it to the main service
  fjord collector add NAME --file COLLECTORS_FILE
                                     a token for an edge collector, printed once (collectors-file on the main service)
  fjord migrate                      apply database migrations and exit
  fjord config check                 explain every problem in the configuration
  fjord account create --name NAME --admin-email ADDRESS   prints the first sign-in link
  fjord account list
  fjord user add --account ID --email ADDRESS [--role user|admin] [--name NAME]
  fjord user list --account ID
  fjord user grant --email ADDRESS (--site DOMAIN | --report ID)
  fjord user remove --id N           the user leaves: access ends, reports move to the account
  fjord user restore --id N          undo a removal within the account's retention period
  fjord apikey create --email ADDRESS --name NAME --site DOMAIN [--site DOMAIN ...] --expires 90d
                                     prints the Stats API key, once
  fjord apikey list --email ADDRESS
  fjord apikey revoke --id N
  fjord site add DOMAIN [--timezone ZONE] [--account ID]
  fjord site list
  fjord goal add DOMAIN --event NAME | --page PATTERN
  fjord goal list DOMAIN
  fjord goal remove DOMAIN ID
  fjord audit verify                 check the audit log's chain and signed checkpoints
  fjord audit keygen FILE            a new key for the audit log's checkpoints
  fjord backup keygen FILE           a new key for the backups (set backup-key to it)
  fjord backup create                a backup now, drilled (restored into scratch and compared)
  fjord backup list                  the backups in backup-dir, with their drills
  fjord backup verify [ID]           drill a backup again (default: the newest)
  fjord backup restore ID [--force]  restore into data-dir (and database, for PostgreSQL)
  fjord staff add --email ADDRESS --role ROLE --trained YYYY-MM-DD [--name NAME]
                                     a staff member (support, consultant, engineer, head-of-development, dpo) and their set-up link
  fjord staff list | remove --id N | link --id N | trained --id N --date YYYY-MM-DD
  fjord alerts list [--open] [--account N]   security alerts
  fjord alerts resolve ID            mark an alert (ALR-42) resolved
  fjord incident open --account N [--account M ...] --title TITLE --description TEXT
                                     record an incident; mails the accounts' Administrators
  fjord incident update ID TEXT      add to an incident's timeline (mailed too)
  fjord incident close ID TEXT       close an incident with a last word (mailed too)
  fjord incident list
  fjord stats --site DOMAIN [--period today|yesterday|7d|30d|90d] [--json]
  fjord bench ingest                 load harness (see BENCHMARKS.md)
  fjord version

Every command takes the settings flags (fjord serve -h lists them); each
setting also reads from the config file and a FJORD_* environment variable.
`)
}

// parse parses a command's flags: the shared settings plus its own. Flags
// may come before or after positional arguments.
func parse(name string, args []string, stderr io.Writer, own func(fs *flag.FlagSet)) (*config.Config, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	build := config.Flags(fs)
	if own != nil {
		own(fs)
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	cfg, err := build()
	return cfg, pos, err
}

// withStores runs f against the server on this data dir if one runs, or
// else against the stores opened directly (after applying the journal).
func withEngine(cfg *config.Config, remote func(*control) error, local func(*engine) error) error {
	if c := dialControl(cfg.SocketPath()); c != nil {
		return remote(c)
	}
	ctx := context.Background()
	eng, err := startEngine(ctx, cfg, newLogger(os.Stderr, "warn"))
	if errors.Is(err, errLocked) {
		// a server is starting or its socket is gone: try it once more
		time.Sleep(time.Second)
		if c := dialControl(cfg.SocketPath()); c != nil {
			return remote(c)
		}
		return fmt.Errorf("%w (%s) but its control socket does not answer", err, cfg.DataDir)
	}
	if err != nil {
		return err
	}
	defer eng.close()
	fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := eng.loader.Flush(fctx); err != nil {
		return err
	}
	return local(eng)
}

// Migrate runs `fjord migrate`: opening the stores applies migrations.
func Migrate(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := parse("migrate", args, stderr, nil)
	if err != nil {
		return err
	}
	if dialControl(cfg.SocketPath()) != nil {
		fmt.Fprintln(stdout, "a server runs on this data dir; it applied the migrations when it started")
		return nil
	}
	st, err := OpenStores(context.Background(), cfg)
	if err != nil {
		return err
	}
	st.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

// SiteAdd runs `fjord site add DOMAIN`.
func SiteAdd(args []string, stdout, stderr io.Writer) error {
	var tz *string
	var acc *int64
	cfg, pos, err := parse("site add", args, stderr, func(fs *flag.FlagSet) {
		tz = fs.String("timezone", "UTC", "IANA time zone of the site, e.g. Europe/Helsinki")
		acc = fs.Int64("account", 0, "the account the site belongs to (fjord account list); without one only the operator sees it")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: fjord site add DOMAIN [--timezone ZONE]")
	}
	var site store.Site
	err = withEngine(cfg, func(c *control) error {
		return c.do("POST", "/sites", map[string]any{"Domain": pos[0], "TimeZone": *tz, "Account": *acc}, &site)
	}, func(e *engine) error {
		site, err = account.AddSite(context.Background(), e.st.Accounts, *acc, pos[0], *tz)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "site %s added (id %d, time zone %s)\n", site.Domain, site.ID, site.TimeZone)
	return nil
}

// SiteList runs `fjord site list`.
func SiteList(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := parse("site list", args, stderr, nil)
	if err != nil {
		return err
	}
	var sites []store.Site
	err = withEngine(cfg, func(c *control) error {
		return c.do("GET", "/sites", nil, &sites)
	}, func(e *engine) error {
		sites, err = e.st.Accounts.Sites(context.Background())
		return err
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDOMAIN\tTIME ZONE")
	for _, s := range sites {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", s.ID, s.Domain, s.TimeZone)
	}
	return tw.Flush()
}

// Stats runs `fjord stats`.
func Stats(args []string, stdout, stderr io.Writer) error {
	var domain, period *string
	var asJSON *bool
	cfg, _, err := parse("stats", args, stderr, func(fs *flag.FlagSet) {
		domain = fs.String("site", "", "site domain")
		period = fs.String("period", "30d", "today, yesterday, 7d, 30d or 90d")
		asJSON = fs.Bool("json", false, "print one JSON object")
	})
	if err != nil {
		return err
	}
	if *domain == "" {
		return errors.New("usage: fjord stats --site DOMAIN [--period 30d] [--json]")
	}
	var h report.Headline
	err = withEngine(cfg, func(c *control) error {
		return c.do("GET", "/stats?site="+urlEscape(*domain)+"&period="+urlEscape(*period), nil, &h)
	}, func(e *engine) error {
		ctx := context.Background()
		site, err := e.st.Accounts.SiteByDomain(ctx, *domain)
		if err != nil {
			return err
		}
		h, err = report.HeadlineOf(ctx, e.st.Events, site, *period, time.Now())
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(h)
	}
	fmt.Fprintf(stdout, "%s, %s (%s to %s)\n", h.Site, h.Period, h.From, h.To)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  visitors\t%d\n  visits\t%d\n  pageviews\t%d\n  bounce rate\t%.1f%%\n  visit duration\t%.0f s\n  events\t%d\n  bots (not counted)\t%d\n",
		h.Visitors, h.Visits, h.Pageviews, h.BounceRate, h.VisitDuration, h.Events, h.Bots)
	return tw.Flush()
}

func urlEscape(s string) string { return url.QueryEscape(s) }

// ConfigCheck runs `fjord config check`.
func ConfigCheck(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := parse("config check", args, stderr, nil)
	if err != nil {
		fmt.Fprintln(stdout, "configuration problems:")
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stdout, "  -", line)
		}
		return errors.New("configuration is not valid")
	}
	problems := append(config.Check(cfg), checkBackups(cfg)...)
	if len(problems) > 0 {
		fmt.Fprintln(stdout, "configuration problems:")
		for _, p := range problems {
			fmt.Fprintln(stdout, "  -", p)
		}
		return errors.New("configuration is not valid")
	}
	mailState := "off (no smtp-host: no sign-in notices, no password reset by mail)"
	if cfg.MailOn() {
		mailState = "through " + cfg.Mail().Addr() + " (" + cfg.Mail().TLS + ")"
	}
	fmt.Fprintf(stdout, "configuration is valid: listen %s, data dir %s, account store %s, event store %s, mail %s\n",
		cfg.Listen, cfg.DataDir, config.Redact(cfg.AccountsURL()), config.Redact(cfg.EventsURL()), mailState)
	return nil
}

// GoalAdd runs `fjord goal add DOMAIN --event NAME | --page PATTERN`.
func GoalAdd(args []string, stdout, stderr io.Writer) error {
	var event, page *string
	cfg, pos, err := parse("goal add", args, stderr, func(fs *flag.FlagSet) {
		event = fs.String("event", "", "custom event name")
		page = fs.String("page", "", "page path pattern, e.g. /blog/** or /product/*/buy")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: fjord goal add DOMAIN --event NAME | --page PATTERN")
	}
	var g store.Goal
	err = withEngine(cfg, func(c *control) error {
		return c.do("POST", "/sites/"+url.PathEscape(pos[0])+"/goals", map[string]string{"Event": *event, "Page": *page}, &g)
	}, func(e *engine) error {
		ctx := context.Background()
		site, err := e.st.Accounts.SiteByDomain(ctx, pos[0])
		if err != nil {
			return err
		}
		g, err = account.AddGoal(ctx, e.st.Accounts, site.ID, *event, *page)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "goal %d added: %s\n", g.ID, g.Name())
	return nil
}

// GoalList runs `fjord goal list DOMAIN`.
func GoalList(args []string, stdout, stderr io.Writer) error {
	cfg, pos, err := parse("goal list", args, stderr, nil)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: fjord goal list DOMAIN")
	}
	var goals []store.Goal
	err = withEngine(cfg, func(c *control) error {
		return c.do("GET", "/sites/"+url.PathEscape(pos[0])+"/goals", nil, &goals)
	}, func(e *engine) error {
		ctx := context.Background()
		site, err := e.st.Accounts.SiteByDomain(ctx, pos[0])
		if err != nil {
			return err
		}
		goals, err = e.st.Accounts.Goals(ctx, site.ID)
		return err
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tGOAL")
	for _, g := range goals {
		fmt.Fprintf(tw, "%d\t%s\n", g.ID, g.Name())
	}
	return tw.Flush()
}

// GoalRemove runs `fjord goal remove DOMAIN ID`.
func GoalRemove(args []string, stdout, stderr io.Writer) error {
	cfg, pos, err := parse("goal remove", args, stderr, nil)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return errors.New("usage: fjord goal remove DOMAIN ID")
	}
	id, err := strconv.ParseInt(pos[1], 10, 64)
	if err != nil {
		return fmt.Errorf("goal id %q is not a number", pos[1])
	}
	err = withEngine(cfg, func(c *control) error {
		return c.do("DELETE", "/sites/"+url.PathEscape(pos[0])+"/goals/"+pos[1], nil, nil)
	}, func(e *engine) error {
		ctx := context.Background()
		site, err := e.st.Accounts.SiteByDomain(ctx, pos[0])
		if err != nil {
			return err
		}
		return e.st.Accounts.DeleteGoal(ctx, site.ID, id)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "goal %d removed\n", id)
	return nil
}
