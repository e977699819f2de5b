package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"fjord/internal/bench"
)

const benchUsage = `usage:
  fjord bench ingest [--duration 15s] [--concurrency 50] [--warmup 2s] [--rounds 1] [--binary PATH] [--wait-quiet 30s] [--retries 2] [--json]
      runs fjord serve and a bare net/http server as child processes, loads
      both the same way, checks stored == acknowledged (see BENCHMARKS.md)
  fjord bench ceiling-server --listen ADDR
      the bare net/http server (read the body, answer 202) the harness starts`

// Bench runs `fjord bench`.
func Bench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(benchUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "ingest":
		return benchIngest(ctx, args[1:], stdout, stderr)
	case "ceiling-server":
		fs := flag.NewFlagSet("bench ceiling-server", flag.ContinueOnError)
		fs.SetOutput(stderr)
		listen := fs.String("listen", "127.0.0.1:8090", "address to serve on")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return bench.ServeCeiling(ctx, *listen)
	}
	return errors.New(benchUsage)
}

func benchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	fs.DurationVar(&o.Duration, "duration", 15*time.Second, "measured time of each run")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "load before each measured window (not measured)")
	fs.IntVar(&o.Concurrency, "concurrency", 50, "concurrent keep-alive connections (closed loop)")
	fs.IntVar(&o.Rounds, "rounds", 1, "rounds; each runs the ceiling, then fjord")
	fs.StringVar(&o.Binary, "binary", "", "fjord binary to run as the servers (default: this one)")
	fs.StringVar(&o.TempDir, "tmp", "", "parent directory of the data dirs (default: the system temp dir)")
	fs.IntVar(&o.Visitors, "visitors", 10000, "simulated visitors (address and User-Agent pairs)")
	fs.DurationVar(&o.QuietWait, "wait-quiet", 30*time.Second, "before each run, wait up to this long for other processes to use under 0.1 CPU (0: do not wait)")
	fs.IntVar(&o.Retries, "retries", 2, "repeat a run up to this many times when other processes used over 5% of the machine during it")
	asJSON := fs.Bool("json", false, "print one JSON object")
	jsonFile := fs.String("json-file", "", "also write the JSON report to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), benchUsage)
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this binary: %w (give --binary)", err)
		}
		o.Binary = exe
	}
	o.Log = stderr
	rep, err := bench.RunIngest(ctx, o)
	if rep != nil {
		var werr error
		if *asJSON {
			werr = rep.WriteJSON(stdout)
		} else {
			werr = rep.WriteText(stdout)
		}
		if *jsonFile != "" {
			f, ferr := os.Create(*jsonFile)
			if ferr == nil {
				ferr = rep.WriteJSON(f)
				if cerr := f.Close(); ferr == nil {
					ferr = cerr
				}
			}
			if werr == nil {
				werr = ferr
			}
		}
		if err == nil {
			err = werr
		}
	}
	return err
}
