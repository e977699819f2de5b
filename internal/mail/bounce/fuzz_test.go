package bounce

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzClassify checks on any input that classify (without Classify's
// recover, so that a panic fails the test) returns one of the four kinds,
// a clean Reason of at most 200 bytes, a well-formed Status and
// normalized, unique Recipients. The fuzzer reports an input that hangs.
// The seeds are the corpus with both line ends and a few broken shapes.
//
// fuzz-count: 20000x
func FuzzClassify(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		lf, crlf := lineEnds(raw)
		f.Add(lf)
		f.Add(crlf)
	}
	for _, s := range []string{
		"",
		"From: MAILER-DAEMON@x.example\n\n550 5.1.1 <a@example.com>",
		dsnMessage("", block("a@example.com", "failed", "5.1.1", "")),
		"Content-Type: multipart/report; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: utf-8; \\x{F6}\n",
		"Content-Type: text/html\n\n<p>a<b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkResult(t, classify(raw))
		checkResult(t, Classify(raw))
	})
}
