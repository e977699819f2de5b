package tracker

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestGzipSize(t *testing.T) {
	const limit = 1536 // PRODUCT.md §1.1: at most 1.5 KB gzipped
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(Script())
	zw.Close()
	if b.Len() != GzipSize() {
		t.Errorf("GzipSize() = %d, gzip -9 of Script() = %d", GzipSize(), b.Len())
	}
	if GzipSize() > limit {
		t.Fatalf("fjord.js is %d bytes gzipped, over the %d byte budget", GzipSize(), limit)
	}
	t.Logf("fjord.js: %d bytes, %d gzipped (budget %d)", len(Script()), GzipSize(), limit)
}

func TestScriptIsTheEmbeddedFile(t *testing.T) {
	disk, err := os.ReadFile("fjord.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk, Script()) {
		t.Fatal("Script() differs from fjord.js")
	}
	s := Script()
	s[0] = 'X'
	if Script()[0] == 'X' {
		t.Fatal("Script() returns the embedded slice itself, not a copy")
	}
	for _, banned := range []string{"cookie", "localStorage", "sessionStorage"} {
		if strings.Contains(string(disk), banned) {
			t.Errorf("fjord.js mentions %s", banned)
		}
	}
}

func get(t *testing.T, method string, hdr map[string]string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, "/js/fjord.js", nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, r)
	return w.Result()
}

func TestHandlerIdentity(t *testing.T) {
	res := get(t, "GET", nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := res.Header.Get("Content-Type"); got != "application/javascript; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
	if got := res.Header.Get("Cache-Control"); got != "public, max-age=3600" {
		t.Errorf("Cache-Control %q", got)
	}
	if got := res.Header.Get("Content-Encoding"); got != "" {
		t.Errorf("Content-Encoding %q without Accept-Encoding", got)
	}
	if got := res.Header.Get("Vary"); got != "Accept-Encoding" {
		t.Errorf("Vary %q", got)
	}
	if !bytes.Equal(body, Script()) {
		t.Error("body is not the script")
	}
	if res.Header.Get("Content-Length") != strconv.Itoa(len(Script())) {
		t.Errorf("Content-Length %q", res.Header.Get("Content-Length"))
	}
	et := res.Header.Get("ETag")
	if !strings.HasPrefix(et, `"`) || !strings.HasSuffix(et, `"`) || len(et) < 10 {
		t.Errorf("ETag %q is not a strong entity tag", et)
	}
}

func TestHandlerGzip(t *testing.T) {
	for _, ae := range []string{"gzip", "gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8", "*", "GZIP"} {
		res := get(t, "GET", map[string]string{"Accept-Encoding": ae})
		if res.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", ae, res.Header.Get("Content-Encoding"))
			continue
		}
		raw, _ := io.ReadAll(res.Body)
		if len(raw) != GzipSize() {
			t.Errorf("Accept-Encoding %q: %d bytes, GzipSize %d", ae, len(raw), GzipSize())
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if !bytes.Equal(plain, Script()) {
			t.Errorf("Accept-Encoding %q: gunzipped body is not the script", ae)
		}
		if res.Header.Get("Content-Type") != "application/javascript; charset=utf-8" {
			t.Errorf("Content-Type %q", res.Header.Get("Content-Type"))
		}
	}
	for _, ae := range []string{"identity", "br", "gzip;q=0", "*;q=0", "gzip;q=0, *"} {
		res := get(t, "GET", map[string]string{"Accept-Encoding": ae})
		if res.Header.Get("Content-Encoding") != "" {
			t.Errorf("Accept-Encoding %q: got Content-Encoding %q", ae, res.Header.Get("Content-Encoding"))
		}
	}
	plain := get(t, "GET", nil).Header.Get("ETag")
	gz := get(t, "GET", map[string]string{"Accept-Encoding": "gzip"}).Header.Get("ETag")
	if plain == gz {
		t.Errorf("identity and gzip bodies share ETag %s", plain)
	}
}

func TestHandlerNotModified(t *testing.T) {
	for _, ae := range []string{"", "gzip"} {
		first := get(t, "GET", map[string]string{"Accept-Encoding": ae})
		et := first.Header.Get("ETag")
		for _, inm := range []string{et, `"nope", ` + et, "W/" + et, "*"} {
			res := get(t, "GET", map[string]string{"Accept-Encoding": ae, "If-None-Match": inm})
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("ae %q If-None-Match %s: status %d, %d bytes", ae, inm, res.StatusCode, len(body))
			}
			if res.Header.Get("ETag") != et {
				t.Errorf("304 ETag %q, want %q", res.Header.Get("ETag"), et)
			}
			if res.Header.Get("Cache-Control") == "" {
				t.Error("304 without Cache-Control")
			}
		}
		res := get(t, "GET", map[string]string{"Accept-Encoding": ae, "If-None-Match": `"stale"`})
		if res.StatusCode != 200 {
			t.Errorf("stale If-None-Match: status %d", res.StatusCode)
		}
	}
}

func TestHandlerMethods(t *testing.T) {
	res := get(t, "HEAD", map[string]string{"Accept-Encoding": "gzip"})
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || len(body) != 0 || res.Header.Get("Content-Length") != strconv.Itoa(GzipSize()) {
		t.Errorf("HEAD: status %d, %d bytes, Content-Length %q", res.StatusCode, len(body), res.Header.Get("Content-Length"))
	}
	res = get(t, "POST", nil)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}
