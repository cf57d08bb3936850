package flood

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h: with it
// a socket bound to a source address gets its port at connect time, per
// destination, so one source address is not limited to one ephemeral port
// range for all targets.
const ipBindAddressNoPort = 24

// bindControl returns the dialer hook for a socket bound to src, or nil
// when src is the zero Addr.
func bindControl(src netip.Addr) func(network, address string, c syscall.RawConn) error {
	if !src.IsValid() {
		return nil
	}
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
		})
		if err != nil {
			return err
		}
		// An old kernel without the option still binds, with a port
		// chosen at bind time.
		_ = serr
		return nil
	}
}

// readRSS returns the process's resident set size in bytes, or 0 when it
// cannot be read.
func readRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// workerSysProcAttr kills a worker process when the parent dies, so that
// no flood outlives the run that started it.
func workerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
