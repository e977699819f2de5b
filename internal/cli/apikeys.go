package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"fjord/internal/auth"
	"fjord/internal/web"
)

// multiFlag is a flag that may be given more than once.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// APIKeyCreate runs `fjord apikey create --email E --name N --site D
// [--site D2] --expires 90d` and prints the key, once.
func APIKeyCreate(args []string, stdout, stderr io.Writer) error {
	var email, name, expires *string
	var sites multiFlag
	cfg, _, err := parse("apikey create", args, stderr, func(fs *flag.FlagSet) {
		email = fs.String("email", "", "e-mail address of the key's user")
		name = fs.String("name", "", "what the key is for (1 to 100 characters)")
		fs.Var(&sites, "site", "a site (domain) the key may read; give it once per site")
		expires = fs.String("expires", "", "how long the key works: 12h, 90d, 1y (from 1h to 1y)")
	})
	if err != nil {
		return err
	}
	if *email == "" || *name == "" || len(sites) == 0 || *expires == "" {
		return errors.New("usage: fjord apikey create --email ADDRESS --name NAME --site DOMAIN [--site DOMAIN ...] --expires 90d")
	}
	in := web.CreateAPIKeyRequest{Email: *email, Name: *name, Sites: sites, Expires: *expires}
	var out web.APIKeyCreated
	err = withEngine(cfg, func(c *control) error {
		return c.do("POST", "/apikeys", in, &out)
	}, func(e *engine) error {
		out, err = web.OperatorCreateKey(context.Background(), e.st.Accounts, &auth.Service{Store: e.st.Accounts}, in)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API key %d %q for %s, expires %s UTC. It is shown only now:\n  %s\n",
		out.Key.ID, out.Key.Name, strings.Join(out.Key.Sites, ", "), out.Key.Expires.UTC().Format("2006-01-02 15:04"), out.Token)
	return nil
}

// APIKeyList runs `fjord apikey list --email E`.
func APIKeyList(args []string, stdout, stderr io.Writer) error {
	var email *string
	cfg, _, err := parse("apikey list", args, stderr, func(fs *flag.FlagSet) {
		email = fs.String("email", "", "e-mail address of the keys' user")
	})
	if err != nil {
		return err
	}
	if *email == "" {
		return errors.New("usage: fjord apikey list --email ADDRESS")
	}
	var keys []web.APIKeyInfo
	err = withEngine(cfg, func(c *control) error {
		return c.do("GET", "/apikeys?email="+url.QueryEscape(*email), nil, &keys)
	}, func(e *engine) error {
		keys, err = web.OperatorListKeys(context.Background(), e.st.Accounts, *email, time.Now())
		return err
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tKEY\tSITES\tCREATED\tEXPIRES\tLAST USED\tSTATE")
	when := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04")
	}
	for _, k := range keys {
		fmt.Fprintf(tw, "%d\t%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, strings.Join(k.Sites, ","),
			when(k.Created), when(k.Expires), when(k.LastUsed), k.State)
	}
	return tw.Flush()
}

// APIKeyRevoke runs `fjord apikey revoke --id N`.
func APIKeyRevoke(args []string, stdout, stderr io.Writer) error {
	var id *int64
	cfg, _, err := parse("apikey revoke", args, stderr, func(fs *flag.FlagSet) {
		id = fs.Int64("id", 0, "the key's number (fjord apikey list)")
	})
	if err != nil {
		return err
	}
	if *id <= 0 {
		return errors.New("usage: fjord apikey revoke --id N")
	}
	err = withEngine(cfg, func(c *control) error {
		return c.do("POST", "/apikeys/"+strconv.FormatInt(*id, 10)+"/revoke", nil, nil)
	}, func(e *engine) error {
		return (&auth.Service{Store: e.st.Accounts}).RevokeKey(context.Background(), 0, *id)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API key %d revoked\n", *id)
	return nil
}
