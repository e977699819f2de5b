package cli

import (
	"errors"
	"io"
)

// Bench runs `fjord bench`.
func Bench(args []string, stdout, stderr io.Writer) error {
	return errors.New("usage: fjord bench ingest (see BENCHMARKS.md)")
}
