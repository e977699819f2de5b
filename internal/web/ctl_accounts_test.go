package web

import (
	"net/http/httptest"
	"strings"
	"testing"

	"fjord/internal/ingest/journal"
)

// FuzzControlRequests sends arbitrary JSON bodies to every POST route of
// the control socket: each answers with a 2xx or a 4xx naming the
// problem, never a panic or a 5xx.
func FuzzControlRequests(f *testing.F) {
	e := newEnv(f, journal.Options{})
	h := e.srv.ControlHandler()
	var paths []string
	for _, r := range h.Routes {
		if p, ok := strings.CutPrefix(r.Pattern, "POST "); ok {
			paths = append(paths, strings.NewReplacer("{id}", "1", "{verb}", "update").Replace(p))
		}
	}
	if len(paths) < 6 {
		f.Fatalf("only %d POST routes on the control socket: %v", len(paths), paths)
	}
	f.Add(uint8(0), `{"Name":"Acme","AdminEmail":"a@b.example"}`)
	f.Add(uint8(1), `{"Account":1,"Email":"x@acme.test","Role":"user"}`)
	f.Add(uint8(2), `{"Email":"user@acme.test","Site":"site.test"}`)
	f.Add(uint8(3), `{"ID":2}`)
	f.Add(uint8(4), `{"Email":"user@acme.test","Name":"CI","Sites":["site.test"],"Expires":"30d"}`)
	f.Add(uint8(5), `{"ID":-1,"Extra":[]}`)
	f.Add(uint8(6), `{}`)
	f.Add(uint8(7), `{"Accounts":[1,2],"Title":"Lost laptop","Description":"What happened."}`)
	f.Add(uint8(8), `{"Text":"An update."}`)
	f.Add(uint8(8), `{"Text":""}`)
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		path := paths[int(which)%len(paths)]
		w := httptest.NewRecorder()
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		h.ServeHTTP(w, req)
		if w.Code >= 500 || w.Code < 200 {
			t.Fatalf("POST %s %q: %d %s", path, body, w.Code, w.Body)
		}
		if w.Code >= 400 && strings.TrimSpace(w.Body.String()) == "" {
			t.Fatalf("POST %s %q: %d without a message", path, body, w.Code)
		}
	})
}
