package web

import "html/template"

var dashTmpl = template.Must(template.New("dash").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Site.Domain}} · Fjord</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css">
<script defer src="/static/dashboard.js"></script>
</head><body><div class="wrap">
<header class="top">
  <h1><span class="brand">Fjord</span> · {{.Site.Domain}}</h1>
  <form class="controls" method="get" action="/dashboard/go">
    <label for="site-picker" class="sr-only">Site</label>
    <select id="site-picker" name="to">{{range .Sites}}<option value="{{.URL}}"{{if .Active}} selected{{end}}>{{.Label}}</option>{{end}}</select>
    <button id="site-go" type="submit">Go</button>
  </form>
  {{if .Acting}}<form class="signout" method="post" action="/staff/act/stop"><input type="hidden" name="csrf" value="{{.CSRF}}"><span class="who">{{.User}}</span> <button type="submit">Stop acting</button></form>
  {{else}}<form class="signout" method="post" action="/signout"><input type="hidden" name="csrf" value="{{.CSRF}}"><span class="who">{{.User}}</span> <button type="submit">Sign out</button></form>{{end}}
  <p class="realtime" aria-live="polite"><strong id="realtime-count" data-site="{{.Site.Domain}}">{{.Realtime}}</strong> current visitors</p>
</header>
{{if .Acting}}<p class="notice" role="status" id="acting">{{.Acting}}</p>{{end}}
<nav class="periods" aria-label="Period">
{{range .Periods}}<a href="{{.URL}}"{{if .Active}} aria-current="page"{{end}}>{{.Label}}</a>{{end}}
<a href="{{.Compare.URL}}"{{if .Compare.Active}} aria-current="true"{{end}}>{{if .Compare.Active}}Stop comparing{{else}}Compare{{end}}</a>
</nav>
<p class="range">{{.Range}}</p>
{{if .Filters}}<div class="filters" aria-label="Filters">{{range .Filters}}<a class="chip" href="{{.URL}}" title="Remove this filter">{{.Label}} <span aria-hidden="true">×</span><span class="sr-only">remove</span></a>{{end}}</div>{{end}}
<ul class="stats" aria-label="Headline numbers">
{{range .Stats}}<li><div class="label">{{.Label}}</div><div class="value" data-stat="{{.Label}}">{{.Value}}</div>{{if .HasChange}}<div class="change {{if .Good}}good{{else}}bad{{end}}">{{if .Up}}↑ {{else if .Down}}↓ {{end}}{{.Change}}</div>{{end}}</li>
{{end}}</ul>
<section class="card" aria-label="Visitors over time">{{.Chart}}</section>
<div class="panels">
{{range .Panels}}<section class="card panel" id="panel-{{.ID}}">
<h2>{{.Title}} <small><a href="{{.CSV}}">CSV</a> · <a href="{{.JSON}}">JSON</a></small></h2>
{{if .Rows}}<table><thead><tr><th scope="col">{{.Title}}</th><th scope="col" class="num">{{.Metric}}</th></tr></thead><tbody>
{{range .Rows}}<tr><td class="label"><div class="bar w{{.Bar}}"></div>{{if .Filter}}<a href="{{.Filter}}" title="Filter by {{.Label}}">{{.Label}}</a>{{else}}<span class="t">{{.Label}}</span>{{end}}</td><td class="num">{{.Value}}</td></tr>
{{end}}</tbody></table>{{else}}<p class="empty">Nothing in this period.</p>{{end}}
</section>
{{end}}</div>
<section class="card" aria-label="Save as a report"><form class="inline" method="post" action="/dashboard/{{.Site.Domain}}/reports">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="period" value="{{.Period}}">{{range .RawFilters}}<input type="hidden" name="f" value="{{.}}">{{end}}
<label for="save-panel">Save</label> <select id="save-panel" name="panel">{{range .PanelDefs}}<option value="{{.ID}}">{{.Title}}</option>{{end}}</select>
<label for="save-name">with these filters and this period as the report</label> <input id="save-name" name="name" required maxlength="200" placeholder="Name">
<button type="submit">Save</button></form></section>
<footer>Computed in {{.Elapsed}}. Times in {{.Site.TimeZone}}.</footer>
</div></body></html>`))
