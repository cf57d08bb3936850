package testsupport

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// debianChromium is where Debian's chromium package puts its launcher.
const debianChromium = "/usr/bin/chromium"

// ChromiumTimeout bounds a [DumpDOM] call.
const ChromiumTimeout = 60 * time.Second

// Chromium returns the path of a Chromium browser: Debian's
// /usr/bin/chromium if it is there, else chromium on PATH. When there is
// none it calls [Require].
func Chromium(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat(debianChromium); err == nil && !fi.IsDir() {
		return debianChromium
	}
	return LookPath(t, "chromium")
}

// DumpDOM loads url in headless Chromium, with a fresh profile in a
// temporary directory and the browser's background traffic off, and
// returns the DOM as serialised once the page has loaded (--dump-dom). A
// page that must finish some work first, such as a WebSocket exchange,
// should hold its load event until then, for instance by keeping its own
// response open.
//
// The browser and every process it started are killed when it exits or
// after [ChromiumTimeout]. A non-nil error carries the end of the
// browser's stderr.
func DumpDOM(t testing.TB, url string) (string, error) {
	t.Helper()
	bin := Chromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), ChromiumTimeout)
	defer cancel()

	var out, errOut bytes.Buffer
	cmd := chromiumCommand(ctx, t, bin, "--dump-dom", url)
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting chromium: %w", err)
	}
	err := cmd.Wait()
	// Renderers and helpers may outlive the browser for a moment; none
	// may write to the profile once the test removes it.
	killGroup(cmd.Process.Pid)
	if ctx.Err() != nil {
		err = fmt.Errorf("chromium still running after %v: %w", ChromiumTimeout, ctx.Err())
	}
	if err != nil {
		return out.String(), fmt.Errorf("chromium --dump-dom %s: %w; stderr ends:\n%s",
			url, err, lastLines(errOut.String(), 15))
	}
	return out.String(), nil
}

// chromiumCommand returns the command that runs the browser bin
// headless with a fresh profile in a temporary directory, the browser's
// background traffic off, and args after those flags. The browser and
// every process it starts are in a process group of their own, killed
// when ctx ends.
func chromiumCommand(ctx context.Context, t testing.TB, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir=" + t.TempDir()}, args...)...)
	cmd.WaitDelay = pipeGrace
	setOwnGroup(cmd)
	cmd.Cancel = func() error {
		killGroup(cmd.Process.Pid)
		return nil
	}
	return cmd
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
