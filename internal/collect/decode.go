// Package collect turns collection requests into events: it decodes
// Fjord's and Plausible's payloads, validates them, enriches them and
// hashes the visitor. It never sees the store; ingest takes it from there.
package collect

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of a collection request (PRODUCT §1.8).
const (
	MaxBody      = 8 << 10
	MaxNameLen   = 120
	MaxURLLen    = 2000
	MaxProps     = 30
	MaxPropKey   = 300
	MaxPropValue = 2000
	// A client-supplied time may lie this far in the past or future; beyond
	// it the event is refused rather than filed on a day it did not happen.
	MaxPast   = 24 * time.Hour
	MaxFuture = 5 * time.Minute
)

// Hit is a decoded, validated collection request, before enrichment.
type Hit struct {
	Name        string
	URL         *url.URL
	Domains     []string // Plausible allows "a.com,b.com": one event per site
	Referrer    string
	Props       map[string]string
	ID          [16]byte
	HasID       bool
	Interactive bool
	HashMode    bool
	ScrollDepth int16 // -1 unknown
	EngagedMS   int32
	Time        time.Time // zero: the time of receipt
}

// DecodeError is a refusal with the reason the client is told.
type DecodeError struct{ Reason, Field, Msg string }

func (e *DecodeError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}

func bad(reason, field, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: reason, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Refusal reasons, used as metric labels.
const (
	ReasonBadJSON   = "bad_json"
	ReasonBadField  = "bad_field"
	ReasonBadUTF8   = "bad_utf8"
	ReasonTooLarge  = "too_large"
	ReasonBadTime   = "bad_time"
	ReasonUnknown   = "unknown_site"
	ReasonForeign   = "foreign_domain"
	ReasonQueueFull = "queue_full"
)

// payload is the union of Fjord's own fields and Plausible's short ones.
// Both are decoded into the same struct; a request uses one or the other.
type payload struct {
	Name        *string         `json:"name"`
	URL         *string         `json:"url"`
	Domain      *string         `json:"domain"`
	Referrer    *string         `json:"referrer"`
	Props       json.RawMessage `json:"props"`
	ID          *string         `json:"id"`
	Interactive *bool           `json:"interactive"`
	TS          *int64          `json:"ts"`

	N  *string         `json:"n"`
	U  *string         `json:"u"`
	D  *string         `json:"d"`
	R  *string         `json:"r"`
	P  json.RawMessage `json:"p"`
	M  json.RawMessage `json:"m"`
	H  json.RawMessage `json:"h"`
	I  *bool           `json:"i"`
	V  json.RawMessage `json:"v"`
	SD *float64        `json:"sd"`
	E  *float64        `json:"e"`
}

// DecodeJSON decodes a POST body (application/json or text/plain).
func DecodeJSON(body []byte, now time.Time) (Hit, error) {
	if len(body) > MaxBody {
		return Hit{}, bad(ReasonTooLarge, "", "body is larger than %d bytes", MaxBody)
	}
	if !utf8.Valid(body) {
		return Hit{}, bad(ReasonBadUTF8, "", "body is not valid UTF-8")
	}
	var p payload
	// Unmarshal rather than a Decoder: no reader buffer per request.
	if err := json.Unmarshal(body, &p); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) && strings.Contains(se.Error(), "after top-level value") {
			return Hit{}, bad(ReasonBadJSON, "", "body has data after the JSON object")
		}
		return Hit{}, bad(ReasonBadJSON, "", "body is not a JSON object: %v", err)
	}
	return p.hit(now)
}

// DecodeQuery decodes the GET pixel's query: the same fields as the JSON
// payload (name/n, url/u, domain/d, referrer/r, props/p as JSON text).
func DecodeQuery(q url.Values, now time.Time) (Hit, error) {
	var p payload
	str := func(keys ...string) *string {
		for _, k := range keys {
			if v, ok := q[k]; ok && len(v) > 0 {
				s := v[0]
				return &s
			}
		}
		return nil
	}
	total := 0
	for k, vs := range q {
		total += len(k)
		for _, v := range vs {
			total += len(v)
			if !utf8.ValidString(v) || !utf8.ValidString(k) {
				return Hit{}, bad(ReasonBadUTF8, k, "not valid UTF-8")
			}
		}
	}
	if total > MaxBody {
		return Hit{}, bad(ReasonTooLarge, "", "query is larger than %d bytes", MaxBody)
	}
	p.Name = str("name", "n")
	p.URL = str("url", "u")
	p.Domain = str("domain", "d")
	p.Referrer = str("referrer", "r")
	p.ID = str("id")
	if s := str("props", "p", "m"); s != nil {
		p.Props = json.RawMessage(*s)
	}
	if s := str("h"); s != nil {
		p.H = json.RawMessage(strconv.Quote(*s))
	}
	if s := str("interactive", "i"); s != nil {
		b := *s != "false" && *s != "0"
		p.Interactive = &b
	}
	if s := str("ts"); s != nil {
		ts, err := strconv.ParseInt(*s, 10, 64)
		if err != nil {
			return Hit{}, bad(ReasonBadTime, "ts", "want unix milliseconds")
		}
		p.TS = &ts
	}
	return p.hit(now)
}

func pick(a, b *string) *string {
	if a != nil {
		return a
	}
	return b
}

func (p *payload) hit(now time.Time) (Hit, error) {
	h := Hit{ScrollDepth: -1, Interactive: true}
	name := pick(p.Name, p.N)
	if name == nil || strings.TrimSpace(*name) == "" {
		return h, bad(ReasonBadField, "name", "missing event name (\"name\" or \"n\")")
	}
	h.Name = strings.TrimSpace(*name)
	if len(h.Name) > MaxNameLen {
		return h, bad(ReasonBadField, "name", "longer than %d bytes", MaxNameLen)
	}
	raw := pick(p.URL, p.U)
	if raw == nil || *raw == "" {
		return h, bad(ReasonBadField, "url", "missing page URL (\"url\" or \"u\")")
	}
	if len(*raw) > MaxURLLen {
		return h, bad(ReasonBadField, "url", "longer than %d bytes", MaxURLLen)
	}
	u, err := url.Parse(*raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return h, bad(ReasonBadField, "url", "want an absolute http(s) URL")
	}
	h.URL = u
	dom := pick(p.Domain, p.D)
	if dom == nil || strings.TrimSpace(*dom) == "" {
		return h, bad(ReasonBadField, "domain", "missing site domain (\"domain\" or \"d\")")
	}
	for _, d := range strings.Split(*dom, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" || len(d) > 253 {
			return h, bad(ReasonBadField, "domain", "empty or over-long domain in %q", *dom)
		}
		h.Domains = append(h.Domains, d)
		if len(h.Domains) > 10 {
			return h, bad(ReasonBadField, "domain", "more than 10 domains")
		}
	}
	if r := pick(p.Referrer, p.R); r != nil {
		if len(*r) > MaxURLLen {
			return h, bad(ReasonBadField, "referrer", "longer than %d bytes", MaxURLLen)
		}
		h.Referrer = *r
	}
	props := p.Props
	if props == nil {
		props = p.P
	}
	if props == nil {
		props = p.M
	}
	if h.Props, err = decodeProps(props); err != nil {
		return h, err
	}
	if p.ID != nil {
		b, err := hex.DecodeString(strings.ReplaceAll(*p.ID, "-", ""))
		if err != nil || len(b) != 16 {
			return h, bad(ReasonBadField, "id", "want 32 hexadecimal digits")
		}
		copy(h.ID[:], b)
		h.HasID = true
	}
	if i := p.Interactive; i != nil {
		h.Interactive = *i
	} else if p.I != nil {
		h.Interactive = *p.I
	}
	if len(p.H) > 0 {
		// Plausible sends 1; accept true and "1" too.
		s := strings.Trim(string(p.H), `"`)
		h.HashMode = s == "1" || s == "true"
	}
	if h.Name == "engagement" {
		h.Interactive = false
		if p.SD != nil {
			if *p.SD < 0 || *p.SD > 100 {
				return h, bad(ReasonBadField, "sd", "scroll depth must be 0 to 100")
			}
			h.ScrollDepth = int16(*p.SD)
		}
		if p.E != nil {
			if *p.E < 0 || *p.E > 30*24*3600*1000 {
				return h, bad(ReasonBadField, "e", "engaged time out of range")
			}
			h.EngagedMS = int32(*p.E)
		}
	}
	if p.TS != nil {
		t := time.UnixMilli(*p.TS).UTC()
		if t.Before(now.Add(-MaxPast)) || t.After(now.Add(MaxFuture)) {
			return h, bad(ReasonBadTime, "ts", "timestamp is more than %s before or %s after now", MaxPast, MaxFuture)
		}
		h.Time = t
	}
	return h, nil
}

// decodeProps accepts an object of scalar values, or (as Plausible's
// script may send) a JSON string holding such an object.
func decodeProps(raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, bad(ReasonBadField, "props", "bad string: %v", err)
		}
		raw = []byte(s)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, bad(ReasonBadField, "props", "want an object of string, number or boolean values")
	}
	if len(m) > MaxProps {
		return nil, bad(ReasonBadField, "props", "more than %d properties", MaxProps)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k == "" || len(k) > MaxPropKey {
			return nil, bad(ReasonBadField, "props", "property name empty or longer than %d bytes", MaxPropKey)
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(v)
		case nil:
			continue // Plausible drops null values
		default:
			return nil, bad(ReasonBadField, "props", "property %q is not a string, number or boolean", k)
		}
		if len(s) > MaxPropValue {
			return nil, bad(ReasonBadField, "props", "property %q is longer than %d bytes", k, MaxPropValue)
		}
		out[k] = s
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// PropsJSON is the stored form of props: a JSON object with sorted keys.
func PropsJSON(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, k)
		b.WriteByte(':')
		writeJSONString(&b, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// writeJSONString writes s as a JSON string without HTML escaping, so
// the stored form is no longer than what the client sent.
func writeJSONString(b *strings.Builder, s string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	b.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}
