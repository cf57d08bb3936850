package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/relay"
)

// check validates a config file and prints every problem as
// file:line: key: problem.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "YAML config `file` to check")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *file == "" {
		fmt.Fprintln(stderr, "wsguard check: --config FILE is required")
		return 2
	}
	cfg, err := config.Load(*file)
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil {
		// The certificate, key and CA files must load, not just be named.
		err = relay.CheckTLS(cfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d routes)\n", *file, len(cfg.Routes))
	return 0
}
