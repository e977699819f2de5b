package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"fjord/internal/audit"
	"fjord/internal/config"
	"fjord/internal/mail"
	"fjord/internal/secmon"
	"fjord/internal/web"
)

// The operator's side of security monitoring: fjord alerts list|resolve
// and fjord incident open|update|close|list. Through the running server
// when there is one; otherwise on the stores directly, with mail and the
// audit log set up as the server would, so that an incident recorded
// while the server is down still informs the people and is on record.

// localMonitor is a monitor on the engine's store; done waits for its
// mail to go out.
func localMonitor(cfg *config.Config, e *engine) (m *secmon.Monitor, done func(), err error) {
	st, ok := e.st.Accounts.(secmon.Store)
	if !ok {
		return nil, nil, errors.New("this account store keeps no security events")
	}
	log := newLogger(os.Stderr, "warn")
	key, err := secmon.KeyFile(filepath.Join(cfg.DataDir, "secmon.key"))
	if err != nil {
		return nil, nil, err
	}
	m = &secmon.Monitor{Store: st, Accounts: e.st.Accounts, Log: log, Key: key, PublicURL: baseURL(cfg),
		AlertEmail: cfg.AlertEmail, Webhook: cfg.AlertWebhook}
	if as, ok := e.st.Accounts.(audit.Store); ok {
		m.Audit = &audit.Log{Store: as}
		if cfg.AuditKey != "" {
			if m.Audit.Key, err = audit.LoadKey(cfg.AuditKey); err != nil {
				return nil, nil, err
			}
		}
	}
	done = func() {}
	if cfg.MailOn() {
		snd, err := mail.New(cfg.Mail())
		if err != nil {
			return nil, nil, fmt.Errorf("mail: %w", err)
		}
		m.Mail = mail.NewOutbox(snd, log, 1024)
		done = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			m.Flush(ctx)
			m.Mail.Close(ctx)
		}
	} else {
		fmt.Fprintln(os.Stderr, "mail is off (no smtp-host): nobody is mailed")
	}
	return m, done, nil
}

// AlertsList runs `fjord alerts list [--open] [--account N]`.
func AlertsList(args []string, stdout, stderr io.Writer) error {
	var open *bool
	var acc *int64
	cfg, _, err := parse("alerts list", args, stderr, func(fs *flag.FlagSet) {
		open = fs.Bool("open", false, "only alerts not resolved")
		acc = fs.Int64("account", 0, "only alerts of this account (fjord account list)")
	})
	if err != nil {
		return err
	}
	var l []secmon.Alert
	err = withEngine(cfg, func(c *control) error {
		q := "/alerts?"
		if *open {
			q += "open=1&"
		}
		if *acc != 0 {
			q += "account=" + strconv.FormatInt(*acc, 10)
		}
		return c.do("GET", q, nil, &l)
	}, func(e *engine) error {
		st, ok := e.st.Accounts.(secmon.Store)
		if !ok {
			return errors.New("this account store keeps no security events")
		}
		l, err = st.Alerts(context.Background(), secmon.AlertFilter{Account: *acc, OpenOnly: *open, Limit: 1000})
		return err
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALERT\tRULE\tACCOUNT\tSUBJECT\tEVENTS\tFIRST (UTC)\tLAST (UTC)\tSTATE")
	for _, a := range l {
		state := "open"
		if !a.Open() {
			state = "resolved " + a.Resolved.Format("2006-01-02 15:04") + " by " + a.ResolvedBy
		}
		acc := "-"
		if a.Account != 0 {
			acc = strconv.FormatInt(a.Account, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.Name(), a.Rule, acc, a.Subject, a.Count,
			a.First.Format("2006-01-02 15:04"), a.Last.Format("2006-01-02 15:04"), state)
	}
	return tw.Flush()
}

// AlertsResolve runs `fjord alerts resolve ID`.
func AlertsResolve(args []string, stdout, stderr io.Writer) error {
	cfg, pos, err := parse("alerts resolve", args, stderr, nil)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: fjord alerts resolve ID (e.g. ALR-42)")
	}
	id, err := secmon.ParseAlertID(pos[0])
	if err != nil {
		return err
	}
	var a secmon.Alert
	err = withEngine(cfg, func(c *control) error {
		return c.do("POST", "/alerts/"+strconv.FormatInt(id, 10)+"/resolve", struct{}{}, &a)
	}, func(e *engine) error {
		m, done, err := localMonitor(cfg, e)
		if err != nil {
			return err
		}
		defer done()
		a, err = m.ResolveAlert(context.Background(), id, 0, "operator")
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s resolved\n", a.Name())
	return nil
}

// accountList is --account given once or more.
type accountList []int64

func (l *accountList) String() string { return fmt.Sprint(*l) }
func (l *accountList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%q is not an account id", f)
		}
		*l = append(*l, id)
	}
	return nil
}

// IncidentOpen runs `fjord incident open --account N [--account M] --title T --description D`.
func IncidentOpen(args []string, stdout, stderr io.Writer) error {
	var accs accountList
	var title, desc *string
	cfg, _, err := parse("incident open", args, stderr, func(fs *flag.FlagSet) {
		fs.Var(&accs, "account", "an affected account's id (repeat, or separate with commas)")
		title = fs.String("title", "", "a one-line title")
		desc = fs.String("description", "", "what happened, what it means for the account, what is done")
	})
	if err != nil {
		return err
	}
	if len(accs) == 0 || *title == "" || *desc == "" {
		return errors.New("usage: fjord incident open --account N [--account M ...] --title TITLE --description TEXT")
	}
	var in secmon.Incident
	err = withEngine(cfg, func(c *control) error {
		return c.do("POST", "/incidents", web.IncidentOpen{Accounts: accs, Title: *title, Description: *desc}, &in)
	}, func(e *engine) error {
		m, done, err := localMonitor(cfg, e)
		if err != nil {
			return err
		}
		defer done()
		in, err = m.OpenIncident(context.Background(), "operator", accs, *title, *desc)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s opened for %d account(s); their Administrators and main contacts are being mailed\n", in.Name(), len(in.Accounts))
	return nil
}

// IncidentEntry runs `fjord incident update ID TEXT` and `fjord incident
// close ID TEXT`.
func IncidentEntry(verb string, args []string, stdout, stderr io.Writer) error {
	cfg, pos, err := parse("incident "+verb, args, stderr, nil)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return fmt.Errorf("usage: fjord incident %s ID TEXT (e.g. INC-7 \"What changed.\")", verb)
	}
	id, err := secmon.ParseIncidentID(pos[0])
	if err != nil {
		return err
	}
	var in secmon.Incident
	err = withEngine(cfg, func(c *control) error {
		return c.do("POST", "/incidents/"+strconv.FormatInt(id, 10)+"/"+verb, web.IncidentText{Text: pos[1]}, &in)
	}, func(e *engine) error {
		m, done, err := localMonitor(cfg, e)
		if err != nil {
			return err
		}
		defer done()
		if verb == "close" {
			in, err = m.CloseIncident(context.Background(), id, "operator", pos[1])
		} else {
			in, err = m.UpdateIncident(context.Background(), id, "operator", pos[1])
		}
		return err
	})
	if err != nil {
		return err
	}
	what := "updated"
	if verb == "close" {
		what = "closed"
	}
	fmt.Fprintf(stdout, "%s %s; the affected accounts' people are being mailed\n", in.Name(), what)
	return nil
}

// IncidentList runs `fjord incident list`.
func IncidentList(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := parse("incident list", args, stderr, nil)
	if err != nil {
		return err
	}
	var l []secmon.Incident
	err = withEngine(cfg, func(c *control) error {
		return c.do("GET", "/incidents", nil, &l)
	}, func(e *engine) error {
		st, ok := e.st.Accounts.(secmon.Store)
		if !ok {
			return errors.New("this account store keeps no security events")
		}
		l, err = st.Incidents(context.Background(), 0)
		return err
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INCIDENT\tOPENED (UTC)\tBY\tSTATE\tACCOUNTS\tENTRIES\tTITLE")
	for _, in := range l {
		state := "open"
		if !in.Closed.IsZero() {
			state = "closed " + in.Closed.Format("2006-01-02 15:04")
		}
		accs := make([]string, len(in.Accounts))
		for i, a := range in.Accounts {
			accs[i] = strconv.FormatInt(a, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", in.Name(), in.Opened.Format("2006-01-02 15:04"), in.OpenedBy, state,
			strings.Join(accs, ","), len(in.Entries), in.Title)
	}
	return tw.Flush()
}
