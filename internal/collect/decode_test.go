package collect

import (
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func TestDecodePlausibleAndFjordAgree(t *testing.T) {
	p, err := DecodeJSON([]byte(`{"n":"Signup","u":"https://a.test/x?y=1#h","d":"a.test","r":"https://ref.test/","p":{"plan":"pro","n":2,"ok":true,"skip":null},"h":1,"i":false}`), t0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := DecodeJSON([]byte(`{"name":"Signup","url":"https://a.test/x?y=1#h","domain":"a.test","referrer":"https://ref.test/","props":{"plan":"pro","n":2,"ok":true},"interactive":false}`), t0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != f.Name || p.URL.String() != f.URL.String() || p.Referrer != f.Referrer || PropsJSON(p.Props) != PropsJSON(f.Props) || p.Interactive || f.Interactive {
		t.Fatalf("plausible %+v\nfjord %+v", p, f)
	}
	if PropsJSON(p.Props) != `{"n":"2","ok":"true","plan":"pro"}` || !p.HashMode {
		t.Fatalf("props %s hash %v", PropsJSON(p.Props), p.HashMode)
	}
	q, err := DecodeQuery(url.Values{"n": {"Signup"}, "u": {"https://a.test/x?y=1#h"}, "d": {"a.test"}, "r": {"https://ref.test/"}, "p": {`{"plan":"pro","n":2,"ok":true}`}, "i": {"false"}}, t0)
	if err != nil || PropsJSON(q.Props) != PropsJSON(p.Props) || q.Interactive {
		t.Fatalf("query: %+v %v", q, err)
	}
	m, err := DecodeJSON([]byte(`{"n":"pageview","u":"https://a.test/","d":"A.test, b.test"}`), t0)
	if err != nil || len(m.Domains) != 2 || m.Domains[0] != "a.test" {
		t.Fatalf("multi-domain: %+v %v", m, err)
	}
}

func TestDecodeLimits(t *testing.T) {
	long := strings.Repeat("a", MaxNameLen+1)
	many := "{"
	for i := 0; i <= MaxProps; i++ {
		if i > 0 {
			many += ","
		}
		many += `"k` + strings.Repeat("x", i) + `":"v"`
	}
	many += "}"
	for _, body := range []string{
		`{"n":"` + long + `","u":"https://a.test/","d":"a.test"}`,
		`{"n":"x","u":"https://a.test/` + strings.Repeat("p", MaxURLLen) + `","d":"a.test"}`,
		`{"n":"x","u":"https://a.test/","d":"a.test","p":` + many + `}`,
		`{"n":"x","u":"https://a.test/","d":"a.test","p":{"k":"` + strings.Repeat("v", MaxPropValue+1) + `"}}`,
		`{"n":"x","u":"https://a.test/","d":"` + strings.Repeat("d.", 130) + `"}`,
		`{"n":"x","u":"ftp://a.test/","d":"a.test"}`,
	} {
		if _, err := DecodeJSON([]byte(body), t0); err == nil {
			t.Errorf("accepted %.80s…", body)
		}
	}
	if _, err := DecodeJSON(make([]byte, MaxBody+1), t0); err == nil || err.(*DecodeError).Reason != ReasonTooLarge {
		t.Errorf("oversize: %v", err)
	}
}

func checkHit(t *testing.T, h Hit, now time.Time) {
	if h.Name == "" || len(h.Name) > MaxNameLen || !utf8.ValidString(h.Name) {
		t.Fatalf("bad name %q", h.Name)
	}
	if h.URL == nil || (h.URL.Scheme != "http" && h.URL.Scheme != "https") || h.URL.Host == "" {
		t.Fatalf("bad url %v", h.URL)
	}
	if len(h.Domains) == 0 || len(h.Domains) > 10 {
		t.Fatalf("domains %v", h.Domains)
	}
	if len(h.Props) > MaxProps {
		t.Fatalf("%d props", len(h.Props))
	}
	for k, v := range h.Props {
		if !utf8.ValidString(k) || !utf8.ValidString(v) || len(v) > MaxPropValue {
			t.Fatalf("prop %q=%q", k, v)
		}
	}
	if !h.Time.IsZero() && (h.Time.Before(now.Add(-MaxPast)) || h.Time.After(now.Add(MaxFuture))) {
		t.Fatalf("time %v accepted", h.Time)
	}
	if h.ScrollDepth < -1 || h.ScrollDepth > 100 || h.EngagedMS < 0 {
		t.Fatalf("engagement %d %d", h.ScrollDepth, h.EngagedMS)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"n":"pageview","u":"https://a.test/x","d":"a.test","r":"https://www.google.com/"}`,
		`{"name":"Signup","url":"https://a.test/","domain":"a.test","props":{"a":1},"id":"00112233445566778899aabbccddeeff","ts":1795860000000}`,
		`{"n":"engagement","u":"https://a.test/","d":"a.test","sd":50,"e":1000,"h":1,"i":false,"p":"{\"a\":\"b\"}"}`,
		`{}`, `[]`, `{"n":1}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := DecodeJSON(body, t0)
		if err != nil {
			if _, ok := err.(*DecodeError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		checkHit(t, h, t0)
	})
}

func FuzzDecodeQuery(f *testing.F) {
	f.Add("n=pageview&u=https%3A%2F%2Fa.test%2F&d=a.test")
	f.Add("name=x&url=http://a.test&domain=a.test&props=%7B%22a%22%3A1%7D&ts=1795860000000&i=0")
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		h, err := DecodeQuery(v, t0)
		if err != nil {
			if _, ok := err.(*DecodeError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		checkHit(t, h, t0)
	})
}
