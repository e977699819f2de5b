package account

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"

	"fjord/internal/auth"
	"fjord/internal/store"
)

// CheckEmail tells whether an e-mail address can be a user's: one plain
// address (no display name), at most 254 bytes. The message does not
// repeat the address.
func CheckEmail(e string) error {
	e = strings.TrimSpace(e)
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e || len(e) > 254 || !strings.Contains(e, "@") {
		return fmt.Errorf("the e-mail address is not a plain address like name@example.com")
	}
	return nil
}

func checkName(what, n string) error {
	if strings.TrimSpace(n) == "" || utf8.RuneCountInString(n) > 200 || strings.ContainsAny(n, "\r\n\x00") {
		return fmt.Errorf("%s: want 1 to 200 characters on one line", what)
	}
	return nil
}

// Invited is a new user with the one-time link of their first sign-in.
type Invited struct {
	User store.User
	Link string // the path /signin/link/TOKEN; shown once
}

// CreateAccount makes an account with its first Administrator (the main
// contact) and returns the Administrator's first sign-in link.
func CreateAccount(ctx context.Context, st store.AccountStore, a *auth.Service, name, adminEmail string) (store.Account, Invited, error) {
	if err := checkName("account name", name); err != nil {
		return store.Account{}, Invited{}, err
	}
	if err := CheckEmail(adminEmail); err != nil {
		return store.Account{}, Invited{}, err
	}
	acc, admin, err := st.CreateAccount(ctx, store.Account{Name: strings.TrimSpace(name)}, store.User{Email: adminEmail})
	if err != nil {
		return store.Account{}, Invited{}, err
	}
	inv, err := invite(ctx, a, admin)
	return acc, inv, err
}

// AddUser adds an Administrator or a User to an account and returns their
// first sign-in link.
func AddUser(ctx context.Context, st store.AccountStore, a *auth.Service, accountID int64, email, name, role string) (Invited, error) {
	if role != store.RoleAdmin && role != store.RoleUser {
		return Invited{}, fmt.Errorf("role %q: want admin or user", role)
	}
	if err := CheckEmail(email); err != nil {
		return Invited{}, err
	}
	if name != "" {
		if err := checkName("name", name); err != nil {
			return Invited{}, err
		}
	}
	u, err := st.AddUser(ctx, store.User{AccountID: accountID, Email: email, Name: name, Role: role})
	if err != nil {
		return Invited{}, err
	}
	return invite(ctx, a, u)
}

func invite(ctx context.Context, a *auth.Service, u store.User) (Invited, error) {
	tok, err := a.NewLink(ctx, u.ID, store.LinkWelcome)
	if err != nil {
		return Invited{User: u}, err
	}
	return Invited{User: u, Link: "/signin/link/" + tok}, nil
}
