package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSysctlNote checks that every key of the sysctl note names a
// setting this kernel has, and that fs.nr_open leaves room for the
// systemd unit's LimitNOFILE.
func TestSysctlNote(t *testing.T) {
	t.Parallel()
	f, err := os.Open("sysctl/99-wsguard.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	values := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("line %d: not key = value: %q", n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		values[k] = v
		proc := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if _, err := os.Stat(proc); err != nil {
			t.Errorf("line %d: %s is not a setting of this kernel: %v", n, k, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"net.ipv4.ip_local_port_range", "net.core.somaxconn",
		"net.ipv4.tcp_max_syn_backlog", "fs.nr_open"} {
		if values[k] == "" {
			t.Errorf("the note does not set %s", k)
		}
	}

	nrOpen, err := strconv.ParseUint(values["fs.nr_open"], 10, 64)
	if err != nil {
		t.Fatalf("fs.nr_open %q: %v", values["fs.nr_open"], err)
	}
	nofile, err := strconv.ParseUint(parseUnit(t, unitFile).get("Service", "LimitNOFILE"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if nofile > nrOpen {
		t.Errorf("LimitNOFILE %d is above fs.nr_open %d: systemd could not apply it", nofile, nrOpen)
	}
}
