package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"fjord/internal/account"
	"fjord/internal/auth"
	"fjord/internal/config"
	"fjord/internal/store"
	"fjord/internal/web"
)

// AccountCreate runs `fjord account create --name N --admin-email E`.
func AccountCreate(args []string, stdout, stderr io.Writer) error {
	var name, email *string
	cfg, _, err := parse("account create", args, stderr, func(fs *flag.FlagSet) {
		name = fs.String("name", "", "the customer organisation's name")
		email = fs.String("admin-email", "", "e-mail address of its first Administrator (the main contact)")
	})
	if err != nil {
		return err
	}
	if *name == "" || *email == "" {
		return errors.New("usage: fjord account create --name NAME --admin-email ADDRESS")
	}
	var out web.AccountCreated
	err = withEngine(cfg, func(c *control) error {
		return c.do("POST", "/accounts", map[string]string{"Name": *name, "AdminEmail": *email}, &out)
	}, func(e *engine) error {
		acc, inv, err := account.CreateAccount(context.Background(), e.st.Accounts, &auth.Service{Store: e.st.Accounts}, *name, *email)
		out = web.AccountCreated{Account: acc, Admin: inv.User, Link: baseURL(cfg) + inv.Link}
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "account %q created (id %d); its Administrator signs in first, within %v, at\n  %s\n",
		out.Account.Name, out.Account.ID, auth.WelcomeTTL, out.Link)
	return nil
}

// AccountList runs `fjord account list`.
func AccountList(args []string, stdout, stderr io.Writer) error {
	cfg, _, err := parse("account list", args, stderr, nil)
	if err != nil {
		return err
	}
	var accs []store.Account
	err = withEngine(cfg, func(c *control) error {
		return c.do("GET", "/accounts", nil, &accs)
	}, func(e *engine) error {
		accs, err = e.st.Accounts.Accounts(context.Background())
		return err
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tMAIN CONTACT\tSECOND FACTOR REQUIRED")
	for _, a := range accs {
		fmt.Fprintf(tw, "%d\t%s\tuser %d\t%v\n", a.ID, a.Name, a.MainContact, a.RequireSecondFactor)
	}
	return tw.Flush()
}

// UserAdd runs `fjord user add --account ID --email E [--role user|admin]`.
func UserAdd(args []string, stdout, stderr io.Writer) error {
	var acc *int64
	var email, name, role *string
	cfg, _, err := parse("user add", args, stderr, func(fs *flag.FlagSet) {
		acc = fs.Int64("account", 0, "the account's id (fjord account list)")
		email = fs.String("email", "", "the person's e-mail address")
		name = fs.String("name", "", "the person's name (optional)")
		role = fs.String("role", store.RoleUser, "admin (Administrator) or user (User: sees what is granted)")
	})
	if err != nil {
		return err
	}
	if *acc == 0 || *email == "" {
		return errors.New("usage: fjord user add --account ID --email ADDRESS [--role user|admin] [--name NAME]")
	}
	var out web.UserAdded
	err = withEngine(cfg, func(c *control) error {
		return c.do("POST", "/users", map[string]any{"Account": *acc, "Email": *email, "Name": *name, "Role": *role}, &out)
	}, func(e *engine) error {
		inv, err := account.AddUser(context.Background(), e.st.Accounts, &auth.Service{Store: e.st.Accounts}, *acc, *email, *name, *role)
		out = web.UserAdded{User: inv.User, Link: baseURL(cfg) + inv.Link}
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %d added as %s; they sign in first, within %v, at\n  %s\n", out.User.ID, out.User.Role, auth.WelcomeTTL, out.Link)
	return nil
}

// UserList runs `fjord user list --account ID`.
func UserList(args []string, stdout, stderr io.Writer) error {
	var acc *int64
	cfg, _, err := parse("user list", args, stderr, func(fs *flag.FlagSet) {
		acc = fs.Int64("account", 0, "the account's id")
	})
	if err != nil {
		return err
	}
	if *acc == 0 {
		return errors.New("usage: fjord user list --account ID")
	}
	var users []store.User
	err = withEngine(cfg, func(c *control) error {
		return c.do("GET", fmt.Sprintf("/users?account=%d", *acc), nil, &users)
	}, func(e *engine) error {
		users, err = e.st.Accounts.Users(context.Background(), *acc)
		return err
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tE-MAIL\tNAME\tROLE")
	for _, u := range users {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", u.ID, u.Email, u.Name, u.Role)
	}
	return tw.Flush()
}

// UserGrant runs `fjord user grant --email E (--site DOMAIN | --report ID)`.
func UserGrant(args []string, stdout, stderr io.Writer) error {
	var email, site *string
	var rep *int64
	cfg, _, err := parse("user grant", args, stderr, func(fs *flag.FlagSet) {
		email = fs.String("email", "", "the User's e-mail address")
		site = fs.String("site", "", "a site (domain) to grant whole")
		rep = fs.Int64("report", 0, "a saved report (id) to grant")
	})
	if err != nil {
		return err
	}
	if *email == "" || (*site == "") == (*rep == 0) {
		return errors.New("usage: fjord user grant --email ADDRESS (--site DOMAIN | --report ID)")
	}
	err = withEngine(cfg, func(c *control) error {
		return c.do("POST", "/grants", map[string]any{"Email": *email, "Site": *site, "Report": *rep}, nil)
	}, func(e *engine) error {
		ctx := context.Background()
		u, err := e.st.Accounts.UserByEmail(ctx, *email)
		if err != nil {
			return errors.New("no user with that e-mail address")
		}
		var siteID int64
		if *site != "" {
			st, err := e.st.Accounts.SiteByDomain(ctx, *site)
			if err != nil {
				return fmt.Errorf("site %q: no such site", *site)
			}
			siteID = st.ID
		}
		return e.st.Accounts.Grant(ctx, u.ID, siteID, *rep)
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "granted")
	return nil
}

// baseURL is the start of links made with no server running.
func baseURL(cfg *config.Config) string { return publicURL(cfg, cfg.Listen) }

// UserRemove runs `fjord user remove --id N`: the user leaves at once
// (sessions, links and keys end; saved reports move to the account) and
// can be restored until the account's retention period has passed.
func UserRemove(args []string, stdout, stderr io.Writer) error {
	return userLeave("remove", args, stdout, stderr)
}

// UserRestore runs `fjord user restore --id N`.
func UserRestore(args []string, stdout, stderr io.Writer) error {
	return userLeave("restore", args, stdout, stderr)
}

func userLeave(verb string, args []string, stdout, stderr io.Writer) error {
	var id *int64
	cfg, _, err := parse("user "+verb, args, stderr, func(fs *flag.FlagSet) {
		id = fs.Int64("id", 0, "the user's id (fjord user list)")
	})
	if err != nil {
		return err
	}
	if *id <= 0 {
		return fmt.Errorf("usage: fjord user %s --id N", verb)
	}
	err = withEngine(cfg, func(c *control) error {
		return c.do("POST", "/users/"+verb, map[string]any{"ID": *id}, nil)
	}, func(e *engine) error {
		if verb == "remove" {
			return e.st.Accounts.RemoveUser(context.Background(), *id, time.Now())
		}
		return e.st.Accounts.RestoreUser(context.Background(), *id, time.Now())
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %d: %sd\n", *id, verb)
	return nil
}
