// Command fjord is the whole product: server, collector and tools.
package main

import (
	"fmt"
	"os"
	_ "time/tzdata" // site time zones must work on hosts without zoneinfo

	"fjord/internal/cli"
)

func main() {
	if err := cli.Run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fjord:", err)
		os.Exit(1)
	}
}
