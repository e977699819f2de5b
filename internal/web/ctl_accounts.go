package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"fjord/internal/account"
	"fjord/internal/store"
)

// Control-socket handlers of accounts and users (the operator's CLI). A
// new person's first sign-in link is in the answer, once.

// AccountCreated answers POST /accounts.
type AccountCreated struct {
	Account store.Account
	Admin   store.User
	Link    string // the full first sign-in link
}

// UserAdded answers POST /users.
type UserAdded struct {
	User store.User
	Link string
}

func readJSON(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "want "+shape, http.StatusBadRequest)
		return false
	}
	return true
}

// storeError answers a store error: its kind as the status, its message
// (which never holds an e-mail address or a secret).
func (s *Server) storeError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrConflict):
		s.writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, store.ErrNotFound):
		s.writeError(w, http.StatusNotFound, err.Error())
	default:
		s.Log.Error(what, "err", err)
		s.writeError(w, http.StatusBadRequest, err.Error())
	}
}

func (s *Server) ctlAccounts(w http.ResponseWriter, r *http.Request) {
	accs, err := s.Accounts.Accounts(r.Context())
	if err != nil {
		s.storeError(w, "list accounts", err)
		return
	}
	s.writeJSON(w, 200, accs)
}

func (s *Server) ctlCreateAccount(w http.ResponseWriter, r *http.Request) {
	var in struct{ Name, AdminEmail string }
	if !readJSON(w, r, &in, `{"Name":..., "AdminEmail":...}`) {
		return
	}
	acc, inv, err := account.CreateAccount(r.Context(), s.Accounts, s.Auth, in.Name, in.AdminEmail)
	if err != nil {
		s.storeError(w, "create account", err)
		return
	}
	s.writeJSON(w, 201, AccountCreated{Account: acc, Admin: inv.User, Link: s.PublicURL + inv.Link})
}

func (s *Server) ctlUsers(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.URL.Query().Get("account"), 10, 64)
	if err != nil {
		s.writeError(w, 400, "account: want the account's id")
		return
	}
	users, err := s.Accounts.Users(r.Context(), id)
	if err != nil {
		s.storeError(w, "list users", err)
		return
	}
	for i := range users {
		users[i].PasswordHash = "" // not for the CLI's eyes either
	}
	s.writeJSON(w, 200, users)
}

func (s *Server) ctlAddUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Account           int64
		Email, Name, Role string
	}
	if !readJSON(w, r, &in, `{"Account":..., "Email":..., "Role":"admin"|"user", "Name":...}`) {
		return
	}
	if !s.accountExists(w, r, in.Account) {
		return
	}
	inv, err := account.AddUser(r.Context(), s.Accounts, s.Auth, in.Account, in.Email, in.Name, in.Role)
	if err != nil {
		s.storeError(w, "add user", err)
		return
	}
	s.writeJSON(w, 201, UserAdded{User: inv.User, Link: s.PublicURL + inv.Link})
}

func (s *Server) accountExists(w http.ResponseWriter, r *http.Request, id int64) bool {
	if _, err := s.Accounts.Account(r.Context(), id); err != nil {
		s.storeError(w, "account", err)
		return false
	}
	return true
}

// ctlGrant gives a User (by e-mail) a site (by domain) or a saved report
// (by id).
func (s *Server) ctlGrant(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email, Site string
		Report      int64
	}
	if !readJSON(w, r, &in, `{"Email":..., "Site":"domain"} or {"Email":..., "Report":id}`) {
		return
	}
	u, err := s.Accounts.UserByEmail(r.Context(), in.Email)
	if err != nil {
		s.writeError(w, 404, "no user with that e-mail address")
		return
	}
	var site int64
	if in.Site != "" {
		st, err := s.Accounts.SiteByDomain(r.Context(), in.Site)
		if err != nil {
			s.writeError(w, 404, "site "+domainQuote(in.Site)+": no such site")
			return
		}
		site = st.ID
	}
	if err := s.Accounts.Grant(r.Context(), u.ID, site, in.Report); err != nil {
		s.storeError(w, "grant", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ctlLeave removes a user (a leaver) or restores one.
func (s *Server) ctlLeave(w http.ResponseWriter, r *http.Request) {
	var in struct{ ID int64 }
	if !readJSON(w, r, &in, `{"ID": user id}`) {
		return
	}
	var err error
	switch r.PathValue("verb") {
	case "remove":
		err = s.Accounts.RemoveUser(r.Context(), in.ID, s.Now())
	case "restore":
		err = s.Accounts.RestoreUser(r.Context(), in.ID, s.Now())
	default:
		s.writeError(w, http.StatusNotFound, "want /users/remove or /users/restore")
		return
	}
	if err != nil {
		s.storeError(w, r.PathValue("verb")+" user", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
