package web

import (
	_ "embed"
	"net/http"
)

//go:embed static/openapi.json
var openAPI []byte

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Write(openAPI)
}
