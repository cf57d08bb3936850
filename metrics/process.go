package metrics

import (
	"os"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// OpenFDs returns how many descriptors this process has open, or -1 if
// it cannot tell. It reads /proc/self/fd, so it costs a directory read.
func OpenFDs() int {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return -1
	}
	return len(names) - 1 // not the descriptor of the read itself
}

// FDLimit returns the soft limit on open descriptors, or 0 if unknown.
func FDLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return lim.Cur
}

// RegisterFDs registers wsguard_fds_open and wsguard_fds_limit on reg.
// Each proxied connection holds two descriptors, so these two say how
// much room is left before accept fails.
func RegisterFDs(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "fds_open",
			Help: "File descriptors this process holds open.",
		}, func() float64 { return float64(OpenFDs()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "fds_limit",
			Help: "The process's soft limit on open file descriptors.",
		}, func() float64 { return float64(FDLimit()) }),
	)
}

// RegisterProcess registers on reg what the wsguard binary serves beside
// the data plane's collectors: the Go runtime and process collectors and
// the descriptor gauges of RegisterFDs. Tests that scrape an in-process
// gateway call it too, so they see the metrics the binary has.
func RegisterProcess(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	RegisterFDs(reg)
}
