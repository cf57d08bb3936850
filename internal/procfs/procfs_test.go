package procfs

import (
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr bool
	}{
		{"plain", "123 (nginx) S 100 123 123 0 -1 4194560 50 0 0 0 250 75 0 0 20 0 1 0 5 0 0",
			Stat{PPID: 100, PGRP: 123, CPUTicks: 325}, false},
		// A command name with spaces and parentheses, as a process may choose.
		{"name with spaces and parens", "4242 (py) thon (x)) S 1 4240 4240 0 -1 4194560 1234 0 0 0 150 37 0 0 20 0 3 0 999 1000 200 18446744073709551615\n",
			Stat{PPID: 1, PGRP: 4240, CPUTicks: 187}, false},
		{"empty", "", Stat{}, true},
		{"no name", "7 R 1", Stat{}, true},
		{"too short", "7 (x) R 1 2", Stat{}, true},
		{"bad number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 zz 0 0 0 20 0 1 0 5 0 0", Stat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseStat = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if s := (Stat{CPUTicks: 325}); s.CPUSeconds() != 3.25 {
		t.Errorf("CPUSeconds = %v, want 3.25", s.CPUSeconds())
	}
}

func TestParseRSS(t *testing.T) {
	t.Parallel()
	rss, err := ParseRSS([]byte("Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads: 1\n"))
	if err != nil || rss != 1234*1024 {
		t.Fatalf("ParseRSS = %d, %v; want %d", rss, err, 1234*1024)
	}
	for _, bad := range []string{"Name: x\n", "VmRSS: 12\n", "VmRSS: x kB\n"} {
		if _, err := ParseRSS([]byte(bad)); err == nil {
			t.Errorf("ParseRSS(%q) accepted it", bad)
		}
	}
}

// TestThisProcess reads the test's own process, which certainly has a
// stat, some memory and open descriptors.
func TestThisProcess(t *testing.T) {
	t.Parallel()
	pid := os.Getpid()
	st, err := ReadStat(pid)
	if err != nil || st.PPID != os.Getppid() {
		t.Errorf("ReadStat = %+v, %v; want parent %d", st, err, os.Getppid())
	}
	if rss, err := ReadRSS(pid); err != nil || rss <= 0 {
		t.Errorf("ReadRSS = %d, %v", rss, err)
	}
	if n, err := CountFDs(pid); err != nil || n < 3 {
		t.Errorf("CountFDs = %d, %v; want at least stdin, stdout and stderr", n, err)
	}
	pids, err := PIDs()
	found := false
	for _, p := range pids {
		found = found || p == pid
	}
	if err != nil || !found {
		t.Errorf("PIDs (%d, %v) does not list this process", len(pids), err)
	}
}
