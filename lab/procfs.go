package lab

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// groupUsage is what one process group held at one moment.
type groupUsage struct {
	procs   int
	fds     int
	fdLimit int // the soft limit of the member holding the most descriptors
	rss     int64
	ticks   uint64   // utime+stime of the members alive now
	sockets []uint64 // inodes of the members' sockets
}

// readGroup reads every process of process group pgid from /proc.
func readGroup(pgid int) groupUsage {
	var u groupUsage
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return u
	}
	most := -1
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		grp, ticks, ok := readStat(pid)
		if !ok || grp != pgid {
			continue
		}
		u.procs++
		u.ticks += ticks
		u.rss += readRSS(pid)
		n, socks := readFDs(pid)
		u.fds += n
		u.sockets = append(u.sockets, socks...)
		if n > most {
			most, u.fdLimit = n, readNofile(pid)
		}
	}
	return u
}

// readStat returns the process group and CPU ticks of pid.
func readStat(pid int) (pgrp int, ticks uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseStat(b)
}

// parseStat reads the process group (field 5) and utime+stime (fields 14
// and 15) of a /proc/PID/stat line. The command name, field 2, may hold
// spaces and parentheses, so fields are counted from its last ')'.
func parseStat(b []byte) (pgrp int, ticks uint64, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, 0, false
	}
	pg, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseUint(f[11], 10, 64)
	st, err3 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	return pg, ut + st, true
}

// readRSS returns VmRSS of pid in bytes.
func readRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	return parseVmRSS(b)
}

// parseVmRSS finds "VmRSS: N kB" in a /proc/PID/status file.
func parseVmRSS(b []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// readFDs counts pid's open descriptors and returns its sockets' inodes.
func readFDs(pid int) (int, []uint64) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, nil
	}
	var socks []uint64
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		if ino, err := strconv.ParseUint(strings.TrimSuffix(l[len("socket:["):], "]"), 10, 64); err == nil {
			socks = append(socks, ino)
		}
	}
	return len(ents), socks
}

// readNofile returns the soft "Max open files" of pid, 0 when unknown.
func readNofile(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		return 0
	}
	return parseNofile(b)
}

// parseNofile reads the soft limit of the "Max open files" line of a
// /proc/PID/limits file.
func parseNofile(b []byte) int {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}

// establishedInodes returns the inodes of every established TCP socket of
// this network namespace, from /proc/net/tcp and tcp6.
func establishedInodes() map[uint64]bool {
	set := map[uint64]bool{}
	for _, p := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		addEstablished(f, set)
		f.Close()
	}
	return set
}

// addEstablished adds the inodes of the ESTABLISHED (state 01) lines of a
// /proc/net/tcp table to set.
func addEstablished(r interface{ Read([]byte) (int, error) }, set map[uint64]bool) {
	sc := bufio.NewScanner(r)
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "01" {
			continue
		}
		if ino, err := strconv.ParseUint(f[9], 10, 64); err == nil && ino != 0 {
			set[ino] = true
		}
	}
}

// hardNofile returns this process's hard descriptor limit.
func hardNofile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	return rl.Max, nil
}
