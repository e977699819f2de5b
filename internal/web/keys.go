package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"fjord/internal/auth"
	"fjord/internal/authz"
	"fjord/internal/store"
	"fjord/internal/usage"
)

// API keys (PRODUCT §3.4): the Stats API's guard, the signed-in user's
// page of their own keys (/keys), and the operator's control-socket
// routes. A key is shown once, on the page that answers its creation, and
// never logged; what it may read is decided per request (see api.go and
// auth's package comment).

// guardAPIKey serves h to a request with a valid API key as
// "Authorization: Bearer KEY", with the key's principal in its context.
func (s *Server) guardAPIKey(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		tok, present, ok := bearerToken(r.Header)
		switch {
		case !present:
			w.Header().Set("WWW-Authenticate", `Bearer realm="fjord"`)
			s.writeError(w, http.StatusUnauthorized, "the Stats API needs an API key, sent as \"Authorization: Bearer KEY\"; make one in the dashboard at /keys")
			return
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="fjord", error="invalid_request"`)
			s.writeError(w, http.StatusUnauthorized, "the Authorization header is not \"Bearer\" and one API key")
			return
		}
		if s.Auth == nil {
			s.writeError(w, http.StatusServiceUnavailable, "API keys are not available on this server")
			return
		}
		k, u, err := s.Auth.CheckKey(r.Context(), tok)
		if errors.Is(err, auth.ErrBadKey) {
			// the reason names the key's id at most, never the key
			s.Log.DebugContext(r.Context(), "API key refused", "reason", err.Error())
			w.Header().Set("WWW-Authenticate", `Bearer realm="fjord", error="invalid_token"`)
			s.writeError(w, http.StatusUnauthorized, auth.ErrBadKey.Error())
			return
		}
		var c *apiCaller
		var acc store.Account
		if err == nil {
			c = &apiCaller{key: k, user: u}
			c.p, err = auth.KeyPrincipal(r.Context(), s.Accounts, u, k)
		}
		if err == nil {
			acc, err = s.Accounts.Account(r.Context(), u.AccountID)
		}
		if err != nil {
			s.Log.ErrorContext(r.Context(), "API key", "err", err)
			s.writeError(w, 500, "checking the API key failed")
			return
		}
		// the account's rule holds for keys too: one made before the rule
		// works again once its user has set up a second factor
		if acc.RequireSecondFactor && u.TOTPSecret == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fjord", error="invalid_token"`)
			s.writeError(w, http.StatusUnauthorized, "the account requires a second factor, which the key's user has not set up: sign in to the dashboard and set it up at /account/2fa")
			return
		}
		s.Metrics.APIRequest(acc.ID)
		s.countUse(acc.ID, 0, usage.APICalls, 1)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), apiCallerKey{}, c)))
	})
}

// bearerToken reads an Authorization header of the form "Bearer TOKEN"
// (the scheme in any case, RFC 6750's token characters). present: there
// is an Authorization header; ok: it has that form, once.
func bearerToken(h http.Header) (token string, present, ok bool) {
	vals := h.Values("Authorization")
	if len(vals) == 0 {
		return "", false, false
	}
	if len(vals) > 1 {
		return "", true, false
	}
	scheme, rest, found := strings.Cut(vals[0], " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true, false
	}
	token = strings.TrimLeft(rest, " ")
	if token == "" || len(token) > 200 {
		return "", true, false
	}
	// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
	body := strings.TrimRight(token, "=")
	if body == "" {
		return "", true, false
	}
	for _, c := range []byte(body) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return "", true, false
		}
	}
	return token, true, true
}

// ---- the signed-in user's keys

// keyLives are the expiries the form offers (any from 1h to 1y is taken).
var keyLives = []struct{ Value, Label string }{
	{"7d", "7 days"}, {"30d", "30 days"}, {"90d", "90 days"}, {"180d", "180 days"}, {"1y", "1 year"},
}

const defaultKeyLife = "90d"

type keyRow struct {
	ID                         int64
	Name, Prefix, Sites, State string
	Created, Expires, LastUsed string
	Active                     bool
}

type keySite struct {
	ID      int64
	Domain  string
	Checked bool
	// ReportsOnly: a User granted single saved reports of the site, not
	// the site
	ReportsOnly bool
}

type keysPageData struct {
	User, CSRF, Error string
	// the key just made, shown once
	Token, TokenName string
	Keys             []keyRow
	Sites            []keySite
	Name             string
	Lives            []keyLifeOption
}

type keyLifeOption struct {
	Value, Label string
	Selected     bool
}

var keysTmpl = template.Must(template.New("keys").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API keys · Fjord</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><div class="wrap"><header class="top"><h1><a class="brand" href="/">Fjord</a> · API keys</h1>
<form class="signout" method="post" action="/signout"><input type="hidden" name="csrf" value="{{.CSRF}}"><span class="who">{{.User}}</span> <button type="submit">Sign out</button></form></header>
{{if .Token}}<section class="card newkey" aria-labelledby="newkey-h"><h2 id="newkey-h">Your new key “{{.TokenName}}”</h2>
<p>Copy it now: it is shown only this once, and Fjord keeps only a hash of it.</p>
<p><label for="token" class="sr-only">The key</label><input id="token" class="token" readonly value="{{.Token}}" size="52" spellcheck="false" autocomplete="off"></p>
<p><small>Send it as <code>Authorization: Bearer KEY</code> to the Stats API (<a href="/api/openapi.json">routes</a>).</small></p></section>{{end}}
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<section class="card" aria-labelledby="list-h"><h2 id="list-h">Your keys</h2>
<p><small>A key reads the Stats API for its sites, and never more than you may read: if your access to a site ends, so does the key's. Keys cannot change anything.</small></p>
<table class="keys"><thead><tr><th scope="col">Name</th><th scope="col">Key</th><th scope="col">Sites</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col"><span class="sr-only">Action</span></th></tr></thead><tbody>
{{range .Keys}}<tr><td>{{.Name}}</td><td><code>{{.Prefix}}…</code></td><td>{{.Sites}}</td><td>{{.Created}}</td><td>{{.Expires}}</td><td>{{.LastUsed}}</td><td>{{.State}}</td>
<td>{{if .Active}}<form method="post" action="/keys/{{.ID}}/revoke"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button type="submit" aria-label="Revoke {{.Name}}">Revoke</button></form>{{end}}</td></tr>
{{else}}<tr><td colspan="8">No keys yet.</td></tr>{{end}}
</tbody></table></section>
<section class="card" aria-labelledby="new-h"><h2 id="new-h">New key</h2>
{{if .Sites}}<form method="post" action="/keys" class="keyform">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<p><label for="name">Name <small>(what it is for, 1 to 100 characters)</small></label><br>
<input id="name" name="name" required maxlength="100" value="{{.Name}}"></p>
<fieldset><legend>Sites it may read</legend>
{{range .Sites}}<label><input type="checkbox" name="site" value="{{.ID}}"{{if .Checked}} checked{{end}}> {{.Domain}}{{if .ReportsOnly}} <small>(only the saved reports granted to you)</small>{{end}}</label><br>
{{end}}</fieldset>
<p><label for="expires">Expires after</label>
<select id="expires" name="expires">{{range .Lives}}<option value="{{.Value}}"{{if .Selected}} selected{{end}}>{{.Label}}</option>{{end}}</select></p>
<button type="submit">Create key</button>
</form>{{else}}<p>You may read no site, so a key would read nothing: an Administrator grants sites.</p>{{end}}
</section></div></body></html>`))

// keyForm is what the new-key form asks.
type keyForm struct {
	Name  string
	Sites []int64
	Life  string
}

// decodeKeyForm reads the new-key form; it refuses what no valid form
// sends (a site id that is no number, too many sites), and leaves the
// rest to auth.CreateKey.
func decodeKeyForm(f url.Values) (keyForm, error) {
	kf := keyForm{Name: f.Get("name"), Life: f.Get("expires")}
	if kf.Life == "" {
		kf.Life = defaultKeyLife
	}
	if len(f["site"]) > auth.MaxKeySites {
		return kf, &auth.KeyRequestError{Msg: "sites: too many"}
	}
	for _, v := range f["site"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return kf, &auth.KeyRequestError{Msg: "sites: not a site"}
		}
		kf.Sites = append(kf.Sites, id)
	}
	return kf, nil
}

// scopeSites are the sites the viewer may scope a key to.
func (s *Server) scopeSites(ctx context.Context, v *viewer) ([]store.Site, error) {
	all, err := s.Accounts.Sites(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.Site
	for _, st := range all {
		if st.AccountID != v.user.AccountID {
			continue
		}
		ok, err := auth.MayScope(ctx, s.Accounts, v.p, st)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, st)
		}
	}
	return out, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04") + " UTC"
}

// renderKeys answers the keys page with the viewer's keys and the form
// (filled with kf after a refusal).
func (s *Server) renderKeys(w http.ResponseWriter, r *http.Request, code int, d keysPageData, kf keyForm) {
	ctx := r.Context()
	v := viewerOf(r)
	d.User, d.CSRF = v.user.Email, v.session.CSRF
	keys, err := s.Accounts.APIKeys(ctx, v.user.ID)
	var sites []store.Site
	var all []store.Site
	if err == nil {
		sites, err = s.scopeSites(ctx, v)
	}
	if err == nil {
		all, err = s.Accounts.Sites(ctx)
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "keys page", "err", err)
		http.Error(w, "listing the keys failed", 500)
		return
	}
	domain := map[int64]string{}
	for _, st := range all {
		if st.AccountID == v.user.AccountID {
			domain[st.ID] = st.Domain
		}
	}
	now := s.Now()
	for _, k := range keys {
		var names []string
		for _, id := range k.Sites {
			if n, ok := domain[id]; ok {
				names = append(names, n)
			}
		}
		state := auth.KeyState(k, now)
		d.Keys = append(d.Keys, keyRow{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Sites: strings.Join(names, ", "), State: state,
			Created: fmtTime(k.Created), Expires: fmtTime(k.Expires), LastUsed: fmtTime(k.LastUsed), Active: state == "active"})
	}
	for _, st := range sites {
		whole := authz.Decide(v.p, authz.ReadSite, siteResource(st)) == authz.Allow
		d.Sites = append(d.Sites, keySite{ID: st.ID, Domain: st.Domain, Checked: slices.Contains(kf.Sites, st.ID), ReportsOnly: !whole})
	}
	d.Name = kf.Name
	life := kf.Life
	if life == "" {
		life = defaultKeyLife
	}
	for _, l := range keyLives {
		d.Lives = append(d.Lives, keyLifeOption{Value: l.Value, Label: l.Label, Selected: l.Value == life})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	keysTmpl.Execute(w, d)
}

// keysPage is GET /keys: the viewer's keys and the new-key form.
func (s *Server) keysPage(w http.ResponseWriter, r *http.Request) {
	s.renderKeys(w, r, 200, keysPageData{}, keyForm{})
}

// keysCreate is POST /keys: a new key, shown once on the answer.
func (s *Server) keysCreate(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	kf, err := decodeKeyForm(r.PostForm)
	var tok string
	var k store.APIKey
	if err == nil {
		var life time.Duration
		if life, err = auth.ParseKeyLife(kf.Life); err != nil {
			err = &auth.KeyRequestError{Msg: err.Error()}
		} else {
			tok, k, err = s.Auth.CreateKey(r.Context(), v.user, auth.NewKey{Name: kf.Name, Sites: kf.Sites, Life: life})
		}
	}
	var bad *auth.KeyRequestError
	switch {
	case errors.As(err, &bad):
		s.renderKeys(w, r, http.StatusBadRequest, keysPageData{Error: "The key was not made: " + bad.Msg + "."}, kf)
		return
	case err != nil:
		s.Log.ErrorContext(r.Context(), "create API key", "err", err)
		http.Error(w, "making the key failed", 500)
		return
	}
	s.Log.InfoContext(r.Context(), "API key created", "user", v.user.ID, "key", k.ID)
	s.record(r, v.user.AccountID, "apikey.create", fmt.Sprintf("apikey:%d", k.ID), fmt.Sprintf("%d sites, expires %s", len(k.Sites), k.Expires.Format(time.DateOnly)))
	s.renderKeys(w, r, http.StatusCreated, keysPageData{Token: tok, TokenName: k.Name}, keyForm{})
}

// keysRevoke is POST /keys/{id}/revoke: only the viewer's own keys;
// another's, or none, is 404.
func (s *Server) keysRevoke(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	err = s.Auth.RevokeKey(r.Context(), v.user.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.Log.ErrorContext(r.Context(), "revoke API key", "err", err)
		http.Error(w, "revoking the key failed", 500)
		return
	}
	s.Log.InfoContext(r.Context(), "API key revoked", "user", v.user.ID, "key", id)
	s.record(r, v.user.AccountID, "apikey.revoke", fmt.Sprintf("apikey:%d", id), "")
	http.Redirect(w, r, "/keys", http.StatusSeeOther)
}

// ---- the operator's routes (control socket) and what the CLI shares

// APIKeyInfo is a key as the operator sees it: never the key itself.
type APIKeyInfo struct {
	ID       int64
	User     int64
	Name     string
	Prefix   string
	Sites    []string // domains
	Created  time.Time
	Expires  time.Time
	LastUsed time.Time // zero: never
	State    string    // active, expired or revoked
}

// APIKeyCreated answers POST /apikeys: the key, shown once.
type APIKeyCreated struct {
	Key   APIKeyInfo
	Token string
}

// CreateAPIKeyRequest is the body of POST /apikeys.
type CreateAPIKeyRequest struct {
	Email, Name string
	Sites       []string // domains
	Expires     string   // 90d, 12h, 1y
}

// OperatorError is a refusal of an operator's request with its HTTP
// status.
type OperatorError struct {
	Code int
	Msg  string
}

func (e *OperatorError) Error() string { return e.Msg }

func keyInfo(k store.APIKey, domains map[int64]string, now time.Time) APIKeyInfo {
	in := APIKeyInfo{ID: k.ID, User: k.UserID, Name: k.Name, Prefix: k.Prefix, Sites: []string{},
		Created: k.Created, Expires: k.Expires, LastUsed: k.LastUsed, State: auth.KeyState(k, now)}
	for _, id := range k.Sites {
		in.Sites = append(in.Sites, domains[id])
	}
	return in
}

func siteDomains(ctx context.Context, st store.AccountStore) (map[int64]string, error) {
	all, err := st.Sites(ctx)
	if err != nil {
		return nil, err
	}
	m := map[int64]string{}
	for _, s := range all {
		m[s.ID] = s.Domain
	}
	return m, nil
}

// OperatorCreateKey makes a key for the user of an e-mail address, over
// sites named by domain; the control socket and the CLI without a
// server share it. A refusal is an *OperatorError.
func OperatorCreateKey(ctx context.Context, st store.AccountStore, a *auth.Service, in CreateAPIKeyRequest) (APIKeyCreated, error) {
	u, err := st.UserByEmail(ctx, in.Email)
	if errors.Is(err, store.ErrNotFound) {
		return APIKeyCreated{}, &OperatorError{404, "no user with that e-mail address"}
	}
	if err != nil {
		return APIKeyCreated{}, err
	}
	life, err := auth.ParseKeyLife(in.Expires)
	if err != nil {
		return APIKeyCreated{}, &OperatorError{400, err.Error()}
	}
	if len(in.Sites) == 0 {
		return APIKeyCreated{}, &OperatorError{400, "sites: name at least one site (--site DOMAIN)"}
	}
	p, err := auth.PrincipalOf(ctx, st, u)
	if err != nil {
		return APIKeyCreated{}, err
	}
	var ids []int64
	for _, d := range in.Sites {
		site, err := st.SiteByDomain(ctx, d)
		if errors.Is(err, store.ErrNotFound) {
			return APIKeyCreated{}, &OperatorError{404, "site " + domainQuote(d) + ": no such site"}
		}
		if err != nil {
			return APIKeyCreated{}, err
		}
		ok, err := auth.MayScope(ctx, st, p, site)
		if err != nil {
			return APIKeyCreated{}, err
		}
		if !ok {
			return APIKeyCreated{}, &OperatorError{400, "site " + domainQuote(d) + ": not a site this user may read (an Administrator reads the account's sites, a User those granted)"}
		}
		ids = append(ids, site.ID)
	}
	tok, k, err := a.CreateKey(ctx, u, auth.NewKey{Name: in.Name, Sites: ids, Life: life})
	var bad *auth.KeyRequestError
	if errors.As(err, &bad) {
		return APIKeyCreated{}, &OperatorError{400, bad.Msg}
	}
	if err != nil {
		return APIKeyCreated{}, err
	}
	domains, err := siteDomains(ctx, st)
	if err != nil {
		return APIKeyCreated{}, err
	}
	return APIKeyCreated{Key: keyInfo(k, domains, k.Created), Token: tok}, nil
}

// OperatorListKeys lists the keys of the user of an e-mail address.
func OperatorListKeys(ctx context.Context, st store.AccountStore, email string, now time.Time) ([]APIKeyInfo, error) {
	u, err := st.UserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &OperatorError{404, "no user with that e-mail address"}
	}
	if err != nil {
		return nil, err
	}
	keys, err := st.APIKeys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	domains, err := siteDomains(ctx, st)
	if err != nil {
		return nil, err
	}
	out := []APIKeyInfo{}
	for _, k := range keys {
		out = append(out, keyInfo(k, domains, now))
	}
	return out, nil
}

func (s *Server) operatorError(w http.ResponseWriter, what string, err error) {
	var oe *OperatorError
	if errors.As(err, &oe) {
		s.writeError(w, oe.Code, oe.Msg)
		return
	}
	s.Log.Error(what, "err", err)
	s.writeError(w, 500, what+" failed")
}

func (s *Server) ctlAPIKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := OperatorListKeys(r.Context(), s.Accounts, r.URL.Query().Get("email"), s.Now())
	if err != nil {
		s.operatorError(w, "listing API keys", err)
		return
	}
	s.writeJSON(w, 200, keys)
}

func (s *Server) ctlCreateAPIKey(w http.ResponseWriter, r *http.Request) {
	var in CreateAPIKeyRequest
	if !readJSON(w, r, &in, `{"Email":..., "Name":..., "Sites":["domain",...], "Expires":"90d"}`) {
		return
	}
	out, err := OperatorCreateKey(r.Context(), s.Accounts, s.Auth, in)
	if err != nil {
		s.operatorError(w, "creating an API key", err)
		return
	}
	s.Log.InfoContext(r.Context(), "API key created", "user", out.Key.User, "key", out.Key.ID)
	s.writeJSON(w, 201, out)
}

func (s *Server) ctlRevokeAPIKey(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, 400, "id: want the key's number (fjord apikey list)")
		return
	}
	if err := s.Auth.RevokeKey(r.Context(), 0, id); errors.Is(err, store.ErrNotFound) {
		s.writeError(w, 404, "no API key "+strconv.FormatInt(id, 10))
		return
	} else if err != nil {
		s.operatorError(w, "revoking the API key", err)
		return
	}
	s.Log.InfoContext(r.Context(), "API key revoked", "key", id)
	w.WriteHeader(http.StatusNoContent)
}
