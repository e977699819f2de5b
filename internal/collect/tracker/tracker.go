// Package tracker serves Fjord's tracker script, /js/fjord.js (PRODUCT.md
// §1.1, §1.3).
//
// fjord.js is hand-minified from the readable fjord.src.js in this directory;
// both are kept in step by hand and the tests run the same checks on both.
// There is no build step: the served file is embedded as it is.
package tracker

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

//go:embed fjord.js
var script []byte

var (
	gzScript []byte // script gzipped once at best compression
	etag     string // strong ETag of the identity body
	gzETag   string // strong ETag of the gzip body (a different representation)
)

func init() {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		panic(err)
	}
	if _, err := zw.Write(script); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	gzScript = b.Bytes()
	sum := sha256.Sum256(script)
	tag := hex.EncodeToString(sum[:12])
	etag = `"` + tag + `"`
	gzETag = `"` + tag + `-gz"`
}

// Script returns a copy of the tracker script as served (uncompressed).
func Script() []byte { return bytes.Clone(script) }

// GzipSize is the size in bytes of the script gzipped at best compression,
// as served to clients that accept gzip.
func GzipSize() int { return len(gzScript) }

// Handler serves the tracker script for GET and HEAD: gzip when the client
// accepts it, a strong ETag per representation, 304 on a matching
// If-None-Match, and an hour of public caching.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, tag := script, etag
	gz := acceptsGzip(r.Header.Values("Accept-Encoding"))
	if gz {
		body, tag = gzScript, gzETag
	}
	h.Set("Content-Type", "application/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("ETag", tag)
	h.Add("Vary", "Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	// Embedded by pages on other origins, including ones that set
	// Cross-Origin-Embedder-Policy: require-corp.
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	if noneMatch(r.Header.Values("If-None-Match"), tag) {
		h.Del("Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// acceptsGzip reports whether Accept-Encoding allows gzip: "gzip" (or
// "x-gzip", or "*" when gzip is not named) with a q-value above 0.
func acceptsGzip(values []string) bool {
	star := false
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "gzip" && name != "x-gzip" && name != "*" {
				continue
			}
			ok := qNonZero(params)
			if name == "*" {
				star = ok
				continue
			}
			return ok
		}
	}
	return star
}

// qNonZero reports whether the parameters of an Accept-Encoding item leave
// it acceptable, i.e. carry no q-value of zero.
func qNonZero(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err != nil || q > 0
		}
	}
	return true
}

// noneMatch reports whether If-None-Match lists tag or "*" (weak comparison,
// as RFC 9110 §13.1.2 asks for If-None-Match).
func noneMatch(values []string, tag string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == tag {
				return true
			}
		}
	}
	return false
}
