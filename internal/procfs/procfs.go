// Package procfs reads what wsguard's measuring tools (wsguard lab,
// bench/compare, bench/idlemem) need to know of a process from Linux's
// /proc: its parent and process group, the CPU time it used, its
// resident memory and its open descriptors.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports.
const ClockTicks = 100

// Stat is what /proc/PID/stat says of a process.
type Stat struct {
	PPID     int    // parent process
	PGRP     int    // process group
	CPUTicks uint64 // utime + stime, in ClockTicks
}

// CPUSeconds returns the CPU time in seconds.
func (s Stat) CPUSeconds() float64 { return float64(s.CPUTicks) / ClockTicks }

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(path(pid, "stat"))
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// ParseStat parses the text of /proc/PID/stat. The command name, field
// 2, is in parentheses and may itself hold spaces and parentheses, so
// the fields are counted from its last ')'.
func ParseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("procfs: stat: no ')' in %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3, the state; ppid is field 4, pgrp 5, utime 14,
	// stime 15.
	if len(f) < 13 {
		return Stat{}, fmt.Errorf("procfs: stat: %d fields after the name, want at least 13", len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	ut, err3 := strconv.ParseUint(f[11], 10, 64)
	st, err4 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return Stat{}, fmt.Errorf("procfs: stat: bad number in %q", b)
	}
	return Stat{PPID: ppid, PGRP: pgrp, CPUTicks: ut + st}, nil
}

// ReadRSS returns the resident set size of pid in bytes (VmRSS of
// /proc/PID/status).
func ReadRSS(pid int) (int64, error) {
	b, err := os.ReadFile(path(pid, "status"))
	if err != nil {
		return 0, err
	}
	return ParseRSS(b)
}

// ParseRSS returns VmRSS, in bytes, from the text of /proc/PID/status.
func ParseRSS(b []byte) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("procfs: status: odd VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("procfs: status: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("procfs: status: no VmRSS line")
}

// CountFDs returns how many descriptors pid holds open.
func CountFDs(pid int) (int, error) {
	ents, err := os.ReadDir(path(pid, "fd"))
	return len(ents), err
}

// PIDs lists the processes in /proc.
func PIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func path(pid int, file string) string {
	return "/proc/" + strconv.Itoa(pid) + "/" + file
}
