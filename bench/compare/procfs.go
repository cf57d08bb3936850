package main

import "github.com/wsguard/wsguard/internal/procfs"

// tree returns root and all its descendants, found by scanning the parent
// of every process in /proc (nginx's workers are children of its master).
func tree(root int) []int {
	pids, err := procfs.PIDs()
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, pid := range pids {
		if st, err := procfs.ReadStat(pid); err == nil {
			children[st.PPID] = append(children[st.PPID], pid)
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
		st, err1 := procfs.ReadStat(pid)
		rss, err2 := procfs.ReadRSS(pid)
		if err1 != nil || err2 != nil {
			continue // it exited meanwhile
		}
		fds, _ := procfs.CountFDs(pid)
		u.rss += rss
		u.cpuSec += st.CPUSeconds()
		u.fds += fds
		u.procs++
	}
	return u
}
