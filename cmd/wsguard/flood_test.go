package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/internal/testsupport"
)

// echoServer is a WebSocket echo server that counts its upgrades.
type echoServer struct {
	url      string // ws://host:port
	upgrades atomic.Int64
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	e := &echoServer{}
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer c.CloseNow()
		e.upgrades.Add(1)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		wg.Wait()
	})
	e.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return e
}

// readResult reads the JSON a flood run wrote.
func readResult(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v\n%s", file, err, b)
	}
	return doc
}

func TestFloodUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"unknown scenario", []string{"--scenario", "nap"}, `unknown scenario "nap"`},
		{"bad rate", []string{"--rate", "fast"}, `rate "fast"`},
		{"no connections", []string{"--connections", "0"}, `--connections must be at least 1`},
		{"zero duration", []string{"--duration", "0s"}, `--duration must be positive`},
		{"bad sources", []string{"--sources", "127.0.0.9-127.0.0.2"}, `ends before it starts`},
		{"no procs", []string{"--procs", "0"}, `--procs must be at least 1`},
		{"TLS", []string{"--target", "wss://127.0.0.1/ws"}, `TLS targets are not supported`},
		{"not loopback", []string{"--target", "ws://192.0.2.1:8080/ws"}, `not on loopback.*--allow-target 192\.0\.2\.1/32`},
		{"probe not loopback", []string{"--target", "ws://127.0.0.1:1/ws", "--probe-target", "ws://192.0.2.1/ws"}, `probe.*not on loopback`},
		{"outside the allowed range", []string{"--target", "ws://192.0.2.1/ws", "--allow-target", "198.51.100.0/24"}, `not on loopback`},
		{"stray argument", []string{"extra"}, `unexpected argument "extra"`},
		{"missing token file", []string{"--token-file", "/nonexistent/tokens"}, `/nonexistent/tokens`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runWSGuard(t, t.TempDir(), append([]string{"flood"}, tt.args...)...)
			if code != 2 || stdout != "" {
				t.Errorf("exit status %d, stdout %q; want 2 and nothing", code, stdout)
			}
			if !matches(tt.stderr, stderr) {
				t.Errorf("stderr %q does not match %q", stderr, tt.stderr)
			}
		})
	}
}

func TestFloodHelpHidesTheWorkerFlag(t *testing.T) {
	t.Parallel()
	_, stderr, code := runWSGuard(t, t.TempDir(), "flood", "-h")
	if code != 0 || !strings.Contains(stderr, "--probe-interval") || !strings.Contains(stderr, "slow-reader") {
		t.Fatalf("exit status %d, help:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "--worker") {
		t.Errorf("help shows the internal --worker flag:\n%s", stderr)
	}
}

func TestFloodRunWritesSummaryAndJSON(t *testing.T) {
	t.Parallel()
	e := startEcho(t)
	dir := t.TempDir()
	stdout, stderr, code := runWSGuard(t, dir, "flood", "--target", e.url+"/ws",
		"--scenario", "idle-hold,ping-keepalive", "--ping-every", "200ms",
		"--connections", "4", "--rate", "0", "--duration", "1500ms", "--json", "out.json")
	if code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr)
	}
	// Not a terminal: the summary, and no progress line.
	if strings.Contains(stdout, "\r") || !strings.HasPrefix(stdout, "wsguard flood: idle-hold,ping-keepalive against") {
		t.Errorf("stdout:\n%q", stdout)
	}
	for _, want := range []string{"ping-keepalive", "probe: ", "total"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	doc := readResult(t, filepath.Join(dir, "out.json"))
	for key, want := range map[string]float64{"attempted": 4, "opened": 4, "held_at_end": 4, "procs": 1} {
		if doc[key] != want {
			t.Errorf("%s = %v, want %v", key, doc[key], want)
		}
	}
	probe, _ := doc["probe"].(map[string]any)
	if probe == nil || probe["attempts"].(float64) < 5 || probe["success_rate"] != 1.0 {
		t.Errorf("probe %v, want every probe of at least 5 to succeed", probe)
	}
	for _, key := range []string{"refused", "failed", "closed_by_server"} {
		if _, ok := doc[key].(map[string]any); !ok {
			t.Errorf("%s = %v, want an object", key, doc[key])
		}
	}
}

func TestFloodProcsMergesWorkers(t *testing.T) {
	t.Parallel()
	e := startEcho(t)
	dir := t.TempDir()
	stdout, stderr, code := runWSGuard(t, dir, "flood", "--target", e.url+"/ws", "--procs", "2",
		"--connections", "6", "--rate", "0", "--duration", "2s", "--sources", "127.0.0.2-127.0.0.4",
		"--json", "out.json")
	if code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	doc := readResult(t, filepath.Join(dir, "out.json"))
	for key, want := range map[string]float64{"attempted": 6, "opened": 6, "held_at_end": 6, "procs": 2, "connections": 6} {
		if doc[key] != want {
			t.Errorf("%s = %v, want %v", key, doc[key], want)
		}
	}
	probe := doc["probe"].(map[string]any)
	attempts := probe["attempts"].(float64)
	if attempts < 5 || probe["successes"] != attempts {
		t.Errorf("probe %v, want every probe of at least 5 to succeed", probe)
	}
	if got := e.upgrades.Load(); got != 6+int64(attempts) {
		t.Errorf("server upgraded %d connections, want 6 and %v probes", got, attempts)
	}
	// The series adds up the workers' open connections.
	series := doc["series"].([]any)
	if last := series[len(series)-1].(map[string]any); last["open"] != 6.0 {
		t.Errorf("last second %v, want 6 open", last)
	}
	tool := doc["tool"].(map[string]any)
	if tool["peak_open"] != 6.0 {
		t.Errorf("tool %v, want a peak of 6 over both workers", tool)
	}
}

func TestFloodSaysWhenDescriptorsCapTheRun(t *testing.T) {
	t.Parallel()
	e := startEcho(t)
	dir := t.TempDir()
	// A shell lowers both limits for the run; the tool can raise nothing.
	stdout, stderr, code := runShell(t, dir, "ulimit -n 100 && exec "+testsupport.WSGuardBinary(t)+
		" flood --target "+e.url+"/ws --connections 200 --rate 0 --duration 1s --probe-interval 0 --json out.json")
	if code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "descriptor limit (100) caps this process at 36 connections of the 200") {
		t.Errorf("stdout does not say the limit capped the run:\n%s", stdout)
	}
	doc := readResult(t, filepath.Join(dir, "out.json"))
	if doc["attempted"] != 36.0 || len(doc["warnings"].([]any)) != 1 {
		t.Errorf("attempted %v, warnings %v; want 36 and one warning", doc["attempted"], doc["warnings"])
	}
}

// matches reports whether s matches the regular expression re.
func matches(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// runShell runs script with sh in dir and returns its output and status.
func runShell(t *testing.T, dir, script string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		code = ee.ExitCode()
	default:
		t.Fatalf("running %s: %v\nstderr:\n%s", script, err, errOut.String())
	}
	return out.String(), errOut.String(), code
}
