package cli

import (
	"errors"
	"testing"
)

// TestCheckRegion: an edge collector is held to the main service's
// allowed regions, and must declare its region unless it listens on
// loopback.
func TestCheckRegion(t *testing.T) {
	eu := []string{"eu-*"}
	for _, tc := range []struct {
		allowed        []string
		region, listen string
		refused        bool
	}{
		{eu, "eu-se-stockholm", ":443", false},
		{eu, "us-east-1", ":443", true},
		{eu, "", ":443", true},
		{eu, "", "127.0.0.1:8081", false},
		{nil, "us-east-1", ":443", false}, // no contact yet: nothing to check against
	} {
		err := checkRegion(tc.allowed, tc.region, tc.listen)
		var re *regionError
		if (err != nil) != tc.refused || (err != nil && !errors.As(err, &re)) {
			t.Errorf("%v %q %q: %v", tc.allowed, tc.region, tc.listen, err)
		}
	}
}
