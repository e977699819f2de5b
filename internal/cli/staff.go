package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"fjord/internal/audit"
	"fjord/internal/auth"
	"fjord/internal/staff"
	"fjord/internal/web"
)

// Staff runs `fjord staff add|list|remove|trained|link`.
func Staff(args []string, stdout, stderr io.Writer) error {
	const usage = "usage: fjord staff add --email ADDRESS --role ROLE --trained YYYY-MM-DD [--name NAME] | fjord staff list | fjord staff remove --id N | fjord staff trained --id N --date YYYY-MM-DD | fjord staff link --id N"
	if len(args) == 0 {
		return errors.New(usage)
	}
	verb := args[0]
	switch verb {
	case "list":
		return staffList(args[1:], stdout, stderr)
	case "add", "remove", "trained", "link":
	default:
		return errors.New(usage)
	}
	var c web.StaffCommand
	cfg, _, err := parse("staff "+verb, args[1:], stderr, func(fs *flag.FlagSet) {
		switch verb {
		case "add":
			fs.StringVar(&c.Email, "email", "", "the staff member's e-mail address")
			fs.StringVar(&c.Name, "name", "", "their name")
			fs.StringVar(&c.Role, "role", "", "support, consultant, engineer, head-of-development or dpo")
			fs.StringVar(&c.Trained, "trained", "", "the date of their last security and privacy training, YYYY-MM-DD")
		case "trained":
			fs.Int64Var(&c.ID, "id", 0, "the staff member's id (fjord staff list)")
			fs.StringVar(&c.Trained, "date", "", "the date of the training, YYYY-MM-DD")
		case "remove", "link":
			fs.Int64Var(&c.ID, "id", 0, "the staff member's id (fjord staff list)")
		}
	})
	if err != nil {
		return err
	}
	switch {
	case verb == "add" && (c.Email == "" || c.Role == "" || c.Trained == ""),
		verb != "add" && c.ID == 0:
		return errors.New(usage)
	}
	c.Verb = verb
	var res web.StaffResult
	err = withEngine(cfg, func(ctl *control) error {
		return ctl.do("POST", "/staff", c, &res)
	}, func(e *engine) error {
		st, ok := e.st.Accounts.(staff.Store)
		if !ok {
			return errors.New("this account store keeps no staff")
		}
		var log *audit.Log
		if as, ok := e.st.Accounts.(audit.Store); ok {
			log = &audit.Log{Store: as}
		}
		res, err = web.RunStaffCommand(context.Background(), &auth.StaffSignin{Store: st}, log, c)
		if res.Link != "" {
			res.Link = baseURL(cfg) + res.Link
		}
		return err
	})
	if err != nil {
		return err
	}
	m := res.Member
	switch verb {
	case "add":
		fmt.Fprintf(stdout, "staff member %d added (%s); they set their password and second factor, within %v, from the staff ranges, at\n  %s\n", m.ID, m.Role, auth.StaffSetupTTL, res.Link)
	case "link":
		fmt.Fprintf(stdout, "a new set-up link for staff member %d, good once for %v:\n  %s\n", m.ID, auth.StaffSetupTTL, res.Link)
	case "remove":
		fmt.Fprintf(stdout, "staff member %d removed: their sessions ended and their grants were revoked\n", m.ID)
	case "trained":
		fmt.Fprintf(stdout, "staff member %d: training recorded on %s\n", m.ID, m.TrainedAt.Format("2006-01-02"))
	}
	return nil
}

func staffList(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := parse("staff list", args, stderr, nil)
	if err != nil {
		return err
	}
	var ms []web.StaffListed
	err = withEngine(cfg, func(c *control) error {
		return c.do("GET", "/staff", nil, &ms)
	}, func(e *engine) error {
		st, ok := e.st.Accounts.(staff.Store)
		if !ok {
			return errors.New("this account store keeps no staff")
		}
		ms, err = web.ListStaff(context.Background(), st)
		return err
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tE-MAIL\tNAME\tROLE\tTRAINED\tSIGN-IN SET UP\tREMOVED")
	for _, m := range ms {
		removed := ""
		if !m.Removed.IsZero() {
			removed = m.Removed.Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%v\t%s\n", m.ID, m.Email, m.Name, m.Role, m.TrainedAt.Format("2006-01-02"), m.SetUp, removed)
	}
	return tw.Flush()
}
