package deploy

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/internal/testsupport"
)

const unitFile = "systemd/wsguard.service"

// unit is a parsed systemd unit: each section's keys with their values
// in order, since a key may repeat.
type unit map[string]map[string][]string

// get returns the last value of key in section, which is the one
// systemd uses for most keys, or "" when it is not set.
func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// parseUnit reads a unit file: [Section] lines, Key=Value lines, and
// comments starting with # or ;.
func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSystemdUnitSettings checks that the unit agrees with wsguard: a
// stop waits out the drain, the reload is wsguard's SIGHUP, the
// descriptor limit gives the connections its comment promises, and the
// hardening is in place.
func TestSystemdUnitSettings(t *testing.T) {
	t.Parallel()
	u := parseUnit(t, unitFile)
	svc := func(key string) string { return u.get("Service", key) }

	// Stop: SIGTERM drains over timeouts.drain, then wsguard allows
	// timeouts.close and a second more (cmd/wsguard serve); systemd's
	// SIGKILL must come later.
	def := config.Default()
	drain := def.Timeouts.Drain.Std() + def.Timeouts.Close.Std() + time.Second
	stop, err := time.ParseDuration(svc("TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec %q: %v", svc("TimeoutStopSec"), err)
	}
	if stop <= drain {
		t.Errorf("TimeoutStopSec %v does not outlast the default drain (%v)", stop, drain)
	}
	if svc("KillSignal") != "SIGTERM" {
		t.Errorf("KillSignal %q: wsguard drains on SIGTERM", svc("KillSignal"))
	}
	if r := svc("ExecReload"); !strings.Contains(r, "kill -HUP $MAINPID") {
		t.Errorf("ExecReload %q: wsguard reloads on SIGHUP", r)
	}
	if s := svc("ExecStart"); !strings.Contains(s, " serve --config ") {
		t.Errorf("ExecStart %q does not run wsguard serve with a config", s)
	}

	// The descriptor limit, and the connections the comment derives
	// from it with config.FDBudget.
	nofile, err := strconv.ParseUint(svc("LimitNOFILE"), 10, 64)
	if err != nil {
		t.Fatalf("LimitNOFILE %q: %v", svc("LimitNOFILE"), err)
	}
	maxConns, _ := config.FDBudget(nofile)
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	promise := regexp.MustCompile(`max_connections\s+# from this limit, .* = (\d+),`).FindSubmatch(b)
	if promise == nil || string(promise[1]) != strconv.Itoa(maxConns) {
		t.Errorf("the LimitNOFILE comment promises %q connections; config.FDBudget(%d) gives %d",
			promise, nofile, maxConns)
	}
	if maxConns < 100000 {
		t.Errorf("LimitNOFILE %d leaves only %d connections: not a large deployment", nofile, maxConns)
	}

	want := map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "DynamicUser": "yes",
		"Restart": "on-failure", "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
		"AmbientCapabilities": "CAP_NET_BIND_SERVICE", "MemoryDenyWriteExecute": "yes",
	}
	for k, v := range want {
		if got := svc(k); got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
}

// TestSystemdUnitVerify has systemd check the unit: systemd-analyze
// verify must print nothing (it warns about unknown keys and bad values
// but exits 0), and its offline security review must rate the exposure
// 3.0 or lower (0 is best, 10 worst). ExecStart is pointed at a wsguard
// built from this tree, since verify checks that the binary exists.
func TestSystemdUnitVerify(t *testing.T) {
	t.Parallel()
	bin := testsupport.LookPath(t, "systemd-analyze")
	wsguard := testsupport.WSGuardBinary(t)
	file := filepath.Join(t.TempDir(), "wsguard.service")
	unit := recipe(t, unitFile, "/usr/local/bin/wsguard", wsguard)
	if err := os.WriteFile(file, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	out, err := exec.CommandContext(ctx, bin, "verify", file).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, bin,
		"security", "--offline=true", "--threshold=30", file).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security rates the unit worse than 3.0: %v\n%s", err, out)
	}
	t.Logf("%s", lastLine(out))
}

// lastLine returns the last non-empty line of b.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
