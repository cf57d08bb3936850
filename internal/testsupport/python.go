package testsupport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PythonTimeout bounds a [RunPython] call.
const PythonTimeout = 60 * time.Second

// RunPython runs a Python script with the interpreter from [Python] and
// returns its stdout. A relative script path is taken from the repository
// root, such as "internal/testsupport/pyclient.py". The script is killed
// after [PythonTimeout]. A non-nil error carries the script's stderr; for a
// non-zero exit it wraps an *exec.ExitError.
func RunPython(t testing.TB, script string, args ...string) (stdout string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), PythonTimeout)
	defer cancel()
	return RunPythonContext(ctx, t, script, args...)
}

// RunPythonContext is [RunPython] with the caller's context in place of the
// default timeout. If ctx ends first the script is killed and the error
// wraps ctx's error.
func RunPythonContext(
	ctx context.Context, t testing.TB, script string, args ...string,
) (stdout string, err error) {
	t.Helper()
	py := Python(t)
	if !filepath.IsAbs(script) {
		script = filepath.Join(RepoRoot(t), script)
	}

	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, py, append([]string{script}, args...)...)
	cmd.Env = append(cmd.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	cmd.WaitDelay = pipeGrace
	err = cmd.Run()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return out.String(), fmt.Errorf("running %s: %w; stderr: %s",
			filepath.Base(script), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// pyclientScript is the echo client, relative to the repository root.
const pyclientScript = "internal/testsupport/pyclient.py"

// RealClientScript runs one session with Python websockets or Tornado's
// client (its docstring gives the JSON it takes and prints), relative to
// the repository root, for [RunPython].
const RealClientScript = "internal/testsupport/realclients/realclient.py"

// EchoOptions configures a [RunPyClient] run. The zero value opens a
// connection and closes it without sending.
type EchoOptions struct {
	Count       int    // text messages to send and expect back
	Size        int    // characters per message; 0 means pyclient's 32
	Subprotocol string // subprotocol to offer; "" offers none
	CAFile      string // PEM CAs a wss:// server is verified with; "" for ws://
}

// EchoSummary is what pyclient.py reports about one connection.
type EchoSummary struct {
	Sent        int    `json:"sent"`        // messages sent
	Echoed      int    `json:"echoed"`      // messages that came back unchanged
	CloseCode   int    `json:"close_code"`  // code in the peer's close frame; 0 if none
	Subprotocol string `json:"subprotocol"` // negotiated subprotocol; "" if none
	Status      int    `json:"status"`      // HTTP status of a refused handshake; 0 otherwise
	Error       string `json:"error"`       // why the run failed; "" on success
}

// RunPyClient runs pyclient.py against the WebSocket uri. It returns the
// client's summary, which is filled in as far as the client got even when
// err is non-nil, so a test can assert how a refusal looked (Status,
// CloseCode). err is non-nil when the client failed or mismatched an echo.
func RunPyClient(t testing.TB, uri string, opts EchoOptions) (EchoSummary, error) {
	t.Helper()
	args := []string{uri, "--count", strconv.Itoa(opts.Count)}
	if opts.Size > 0 {
		args = append(args, "--size", strconv.Itoa(opts.Size))
	}
	if opts.Subprotocol != "" {
		args = append(args, "--subprotocol", opts.Subprotocol)
	}
	if opts.CAFile != "" {
		args = append(args, "--cafile", opts.CAFile)
	}

	out, runErr := RunPython(t, pyclientScript, args...)
	sum, parseErr := parseSummary(out)
	if runErr != nil {
		return sum, runErr
	}
	if parseErr != nil {
		return sum, parseErr
	}
	return sum, nil
}

// PyEcho sends n echo messages to uri with pyclient.py and returns the
// summary. It fails the test unless all n came back and the connection
// closed normally.
func PyEcho(t testing.TB, uri string, n int) EchoSummary {
	t.Helper()
	sum, err := RunPyClient(t, uri, EchoOptions{Count: n})
	if err != nil {
		t.Fatalf("python echo client against %s: %v", uri, err)
	}
	if sum.Echoed != n || sum.CloseCode != 1000 {
		t.Fatalf("python echo client against %s: got %+v, want %d echoed and close code 1000",
			uri, sum, n)
	}
	return sum
}

// parseSummary decodes the JSON line that pyclient.py prints last.
func parseSummary(stdout string) (EchoSummary, error) {
	var sum EchoSummary
	line := lastLine([]byte(stdout))
	if line == "" {
		return sum, errors.New("pyclient printed no summary")
	}
	if err := json.Unmarshal([]byte(line), &sum); err != nil {
		return sum, fmt.Errorf("decoding pyclient summary %q: %w", line, err)
	}
	return sum, nil
}
