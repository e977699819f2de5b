package web

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"fjord/internal/ingest/journal"
)

type oaDoc struct {
	Paths map[string]map[string]struct {
		Parameters []struct {
			Name, In string
			Example  any
		}
		RequestBody *struct {
			Content map[string]struct{ Example any }
		} `json:"requestBody"`
		Responses map[string]struct {
			Content map[string]struct {
				Schema struct {
					Required []string
				}
			}
		}
	}
}

// TestOpenAPICoversEveryRoute: the document and the route table agree,
// both ways.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	var doc oaDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	for _, r := range (&Server{}).Handler().Routes {
		method, path, _ := strings.Cut(r.Pattern, " ")
		// the edge collectors' protocol with the main service is not the
		// public API (docs/operations.md describes it)
		if !strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/api/collector/") {
			continue
		}
		routes[strings.ToLower(method)+" "+path] = true
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %s is not in openapi.json", r.Pattern)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !routes[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which is no route", method, path)
			}
		}
	}
}

// TestOpenAPIExamples sends every documented example and checks the answer
// has a documented success status and the documented required fields.
func TestOpenAPIExamples(t *testing.T) {
	e := newEnv(t, journal.Options{})
	var doc oaDoc
	json.Unmarshal(openAPI, &doc)
	paths := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths) // /api/event first: later examples see its data
	tried := 0
	for _, path := range paths {
		for method, op := range doc.Paths[path] {
			if strings.Contains(path, "{") || method == "options" {
				continue
			}
			q := url.Values{}
			for _, p := range op.Parameters {
				if p.In == "query" && p.Example != nil {
					q.Set(p.Name, toString(p.Example))
				}
			}
			var body []byte
			ctype := ""
			if op.RequestBody != nil {
				for ct, c := range op.RequestBody.Content {
					if c.Example != nil {
						body, _ = json.Marshal(c.Example)
						ctype = ct
						break
					}
				}
				if body == nil {
					t.Errorf("%s %s has a request body but no example", method, path)
					continue
				}
			}
			target := e.http.URL + path
			if len(q) > 0 {
				target += "?" + q.Encode()
			}
			req, _ := http.NewRequest(strings.ToUpper(method), target, bytes.NewReader(body))
			req.Header.Set("User-Agent", ffUA)
			req.Header.Set("Authorization", "Bearer "+e.key)
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			tried++
			status := http.StatusText(resp.StatusCode)
			doc, ok := op.Responses[itoa(int64(resp.StatusCode))]
			if method != "get" && strings.HasPrefix(path, "/api/v2/reports") {
				// a write: API keys read only
				if !ok || resp.StatusCode != 403 {
					t.Errorf("%s %s example with an API key: status %d %s, want a documented 403: %s", method, path, resp.StatusCode, status, got)
				}
				continue
			}
			if !ok || resp.StatusCode >= 300 {
				t.Errorf("%s %s example: status %d %s is not a documented success: %s", method, path, resp.StatusCode, status, got)
				continue
			}
			for _, c := range doc.Content {
				if len(c.Schema.Required) == 0 {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal(got, &m); err != nil {
					t.Errorf("%s %s: answer is not an object: %s", method, path, got)
					continue
				}
				for _, k := range c.Schema.Required {
					if _, ok := m[k]; !ok {
						t.Errorf("%s %s: answer lacks required %q: %s", method, path, k, got)
					}
				}
			}
		}
	}
	if tried < 10 {
		t.Fatalf("only %d examples tried", tried)
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
