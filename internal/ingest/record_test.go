package ingest

import (
	"reflect"
	"testing"
	"time"

	"fjord/internal/store"
)

func sample() store.Event {
	return store.Event{ID: [16]byte{1, 2, 3}, SiteID: 7, Time: time.UnixMilli(1767225600123).UTC(), Name: "pageview",
		VisitorID: 1<<63 + 5, Hostname: "a.example", Path: "/ü", Referrer: "https://www.google.com/", Source: "Google",
		Channel: "Organic Search", UTMSource: "x", Country: "FI", Browser: "Firefox", BrowserVersion: "128",
		OS: "Linux", Device: "desktop", Props: `{"a":"b"}`, Interactive: true, ScrollDepth: 55, EngagedMS: 12345}
}

func TestRecordRoundTrip(t *testing.T) {
	e := sample()
	got, err := DecodeEvent(EncodeEvent(nil, &e))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("got %+v\nwant %+v", got, e)
	}
}

func TestRecordRejectsDamage(t *testing.T) {
	e := sample()
	rec := EncodeEvent(nil, &e)
	for i := 0; i < len(rec); i++ {
		if _, err := DecodeEvent(rec[:i]); err == nil {
			t.Fatalf("truncated at %d accepted", i)
		}
	}
	if _, err := DecodeEvent(append(rec, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	bad := append([]byte{}, rec...)
	bad[0] = 9
	if _, err := DecodeEvent(bad); err == nil {
		t.Fatal("unknown version accepted")
	}
}

func FuzzDecodeEvent(f *testing.F) {
	e := sample()
	f.Add(EncodeEvent(nil, &e))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, rec []byte) {
		ev, err := DecodeEvent(rec)
		if err != nil {
			return
		}
		again, err := DecodeEvent(EncodeEvent(nil, &ev))
		if err != nil || !reflect.DeepEqual(again, ev) {
			t.Fatalf("re-encode differs: %v", err)
		}
	})
}
