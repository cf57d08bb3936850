package lab

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/wsguard/wsguard/internal/procfs"
)

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
	pids, err := procfs.PIDs()
	if err != nil {
		return u
	}
	most := -1
	for _, pid := range pids {
		st, err := procfs.ReadStat(pid)
		if err != nil || st.PGRP != pgid {
			continue
		}
		rss, _ := procfs.ReadRSS(pid) // 0 once it has exited
		u.procs++
		u.ticks += st.CPUTicks
		u.rss += rss
		n, socks := readFDs(pid)
		u.fds += n
		u.sockets = append(u.sockets, socks...)
		if n > most {
			most, u.fdLimit = n, readNofile(pid)
		}
	}
	return u
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
