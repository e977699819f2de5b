package web

import (
	"embed"
	"net/http"
)

//go:embed static/openapi.json
var openAPI []byte

//go:embed static/dashboard.css static/dashboard.js
var staticFiles embed.FS

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
