//go:build !linux

package flood

import (
	"net/netip"
	"syscall"
)

func bindControl(netip.Addr) func(network, address string, c syscall.RawConn) error {
	return nil
}

func readRSS() int64 { return 0 }

func workerSysProcAttr() *syscall.SysProcAttr { return nil }
