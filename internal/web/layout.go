package web

import (
	"fmt"
	"html/template"
	"net/http"

	"fjord/internal/store"
)

// The signed-in pages other than the dashboard share one layout: a header
// with the user's links and sign-out, and the page's own content, a
// template named "content" over pageData.

var layoutTmpl = template.Must(template.New("layout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · Fjord</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><div class="wrap"><header class="top"><h1><span class="brand">Fjord</span> · {{.Title}}</h1>
{{if .Acting}}<nav class="account" aria-label="Account"><a href="/">Sites</a> <a href="/admin">Administration</a> <a href="/staff/">Staff console</a></nav>
<form class="signout" method="post" action="/staff/act/stop"><input type="hidden" name="csrf" value="{{.CSRF}}"><span class="who">{{.User}}</span> <button type="submit">Stop acting</button></form></header>
<p class="notice" role="status" id="acting">{{.Acting}}</p>
{{else}}<nav class="account" aria-label="Account"><a href="/">Sites</a> <a href="/datafeeds">Datafeeds</a> <a href="/schedules">E-mail reports</a> <a href="/keys">API keys</a> <a href="/account/2fa">Security</a>{{if .Admin}} <a href="/admin">Administration</a> <a href="/incidents">Incidents</a>{{end}}</nav>
<form class="signout" method="post" action="/signout"><input type="hidden" name="csrf" value="{{.CSRF}}"><span class="who">{{.User}}</span> <button type="submit">Sign out</button></form></header>{{end}}
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}{{if .Notice}}<p class="notice" role="status">{{.Notice}}</p>{{end}}
<main>{{block "content" .}}{{end}}</main></div></body></html>`))

// pageTemplate is the layout with a page's "content".
func pageTemplate(content string) *template.Template {
	return template.Must(template.Must(layoutTmpl.Clone()).Parse(`{{define "content"}}` + content + `{{end}}`))
}

// pageData is what the layout shows; Data is the page's own.
type pageData struct {
	Title, User, CSRF, Error, Notice string
	Admin                            bool
	Acting                           string // staff acting under a grant: which, and that it is recorded
	Data                             any
}

// actingNotice is the banner of a staff member acting under a grant ("":
// the viewer is not).
func actingNotice(v *viewer) string {
	a := v.staff
	if a == nil {
		return ""
	}
	return fmt.Sprintf("Staff access to %s under grant #%d (%s) until %s UTC: every request is recorded and shown to the account's Administrators.",
		v.account.Name, a.grant.ID, a.grant.Scope, a.grant.Expires.Format("2006-01-02 15:04"))
}

func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, code int, t *template.Template, p pageData) {
	if v := viewerOf(r); v != nil {
		p.User, p.CSRF, p.Admin = v.user.Email, v.session.CSRF, v.user.Role == store.RoleAdmin
		p.Acting = actingNotice(v)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := t.Execute(w, p); err != nil {
		s.Log.ErrorContext(r.Context(), "render", "page", p.Title, "err", err)
	}
}
