package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// benchstatVersion pins golang.org/x/perf, run with `go run pkg@version`
// so benchstat is no dependency of the module.
const benchstatVersion = "v0.0.0-20260908200009-22c9c6c9d4da"

// goBenchmarks are the Go benchmarks of figure 5: the frame parser, the
// admission decision, the store's acquire and release (memory and Redis;
// the Redis one starts its own redis-server), and whole handshakes
// through the relay.
var goBenchmarks = []struct{ pkg, pattern string }{
	{"./frame", "ParserSmallFrames"},
	{"./admission", "AdmitRelease"},
	{"./store", "AcquireRelease"},
	{"./relay", "Handshakes"},
}

// runGoBenchmarks runs goBenchmarks with -benchmem, several times each,
// into dir/gobench.txt and returns benchstat's summary of them.
func runGoBenchmarks(dir string, quick bool) (string, error) {
	count, benchtime := 6, "1s"
	if quick {
		count, benchtime = 3, "200ms"
	}
	file := filepath.Join(dir, "gobench.txt")
	f, err := os.Create(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, b := range goBenchmarks {
		logf("go test -bench %s %s", b.pattern, b.pkg)
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", b.pattern, "-benchmem",
			"-count", strconv.Itoa(count), "-benchtime", benchtime, b.pkg)
		cmd.Stdout, cmd.Stderr = f, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("go test -bench %s %s: %w", b.pattern, b.pkg, err)
		}
	}
	// benchstat names the column after the file; run it beside the file
	// so the name is short.
	cmd := exec.Command("go", "run", "golang.org/x/perf/cmd/benchstat@"+benchstatVersion, "gobench.txt")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("benchstat: %w\n%s", err, out)
	}
	return string(out), nil
}
