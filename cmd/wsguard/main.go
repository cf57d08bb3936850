// Command wsguard is a WebSocket-aware reverse proxy that keeps
// connection-exhaustion attacks away from WebSocket backends.
//
// Usage:
//
//	wsguard serve --upstream http://127.0.0.1:8888
//	wsguard serve --config wsguard.yaml
//	wsguard check --config wsguard.yaml
//	wsguard flood --target ws://127.0.0.1:8080/ws
//	wsguard lab --suite quick
//	wsguard version
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "flood":
		return floodCmd(args[1:], stdout, stderr)
	case "lab":
		return labCmd(args[1:], stdout, stderr)
	case "lab-backend":
		return labBackendCmd(args[1:], stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "wsguard", buildVersion())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "wsguard: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: wsguard <command> [flags]

commands:
  serve    run the gateway (wsguard serve --upstream http://127.0.0.1:8888)
  check    validate a config file (wsguard check --config FILE)
  flood    stage an attack on a server you own (wsguard flood --target ws://127.0.0.1:8080/ws)
  lab      attack a backend with and without wsguard and write a report (wsguard lab --suite quick)
  version  print the version

Run "wsguard <command> -h" for the flags of a command.
`)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
