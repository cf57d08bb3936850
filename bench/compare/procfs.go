package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in
// /proc/PID/stat. It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is what the harness reads about one process from /proc.
type procStat struct {
	ppid   int
	cpuSec float64 // utime + stime
}

// parseStat parses the text of /proc/PID/stat. The command name is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parsing stat: no ')' in %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("parsing stat: %d fields after the name, want at least 13", len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseUint(f[11], 10, 64)
	st, err3 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, fmt.Errorf("parsing stat: bad number in %q", s)
	}
	return procStat{ppid: ppid, cpuSec: float64(ut+st) / clockTicks}, nil
}

// parseRSS returns VmRSS, in bytes, from the text of /proc/PID/status.
func parseRSS(s string) (int64, error) {
	for _, line := range strings.Split(s, "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parsing status: odd VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing status: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("parsing status: no VmRSS line")
}

// tree returns root and all its descendants, found by scanning the parent
// of every process in /proc (nginx's workers are children of its master).
func tree(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if st, err := parseStat(string(b)); err == nil {
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// usage is the summed resources of a process tree at one moment.
type usage struct {
	rss    int64   // bytes
	cpuSec float64 // user + system, since each process started
	fds    int
	procs  int
}

// sampleTree sums RSS, CPU time and open descriptors over root's tree.
func sampleTree(root int) usage {
	var u usage
	for _, pid := range tree(root) {
		dir := "/proc/" + strconv.Itoa(pid)
		status, err1 := os.ReadFile(dir + "/status")
		stat, err2 := os.ReadFile(dir + "/stat")
		if err1 != nil || err2 != nil {
			continue // it exited meanwhile
		}
		rss, _ := parseRSS(string(status))
		st, _ := parseStat(string(bytes.TrimSpace(stat)))
		ents, _ := os.ReadDir(dir + "/fd")
		u.rss += rss
		u.cpuSec += st.cpuSec
		u.fds += len(ents)
		u.procs++
	}
	return u
}
