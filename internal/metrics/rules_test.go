package metrics_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"fjord/internal/metrics"
)

const rulesDir = "../../deploy/prometheus"

// TestAlertRulesPromtool: promtool accepts the shipped rules, and the
// rules' unit tests (input series -> expected alerts) pass, so each
// alert is shown to fire above its threshold and stay quiet below.
func TestAlertRulesPromtool(t *testing.T) {
	bin := os.Getenv("FJORD_TEST_PROMTOOL")
	if bin == "" {
		t.Skip("set FJORD_TEST_PROMTOOL=/usr/bin/promtool to check the alert rules")
	}
	for _, args := range [][]string{{"check", "rules", "fjord-rules.yml"}, {"test", "rules", "fjord-rules.test.yml"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = rulesDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestAlertRulesUseRegisteredMetrics: every fjord_* name in the rules
// (and their tests' series) is a metric metrics.New registers, so a
// renamed metric cannot leave an alert that never fires.
func TestAlertRulesUseRegisteredMetrics(t *testing.T) {
	registered := map[string]bool{}
	for _, n := range metrics.New().Names() {
		registered[n] = true
	}
	names := regexp.MustCompile(`fjord_[a-z_]+`)
	for _, f := range []string{"fjord-rules.yml", "fjord-rules.test.yml"} {
		b, err := os.ReadFile(filepath.Join(rulesDir, f))
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, n := range names.FindAllString(string(b), -1) {
			base := n
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if !registered[base] {
					base = strings.TrimSuffix(base, suf)
				}
			}
			if !registered[base] {
				t.Errorf("%s uses %s, which metrics.New does not register", f, n)
			}
			seen++
		}
		if seen < 10 {
			t.Fatalf("%s: only %d metric names found; is the pattern still right?", f, seen)
		}
	}
}
