//go:build unix

package config

import "syscall"

// nofileLimit returns the soft RLIMIT_NOFILE, which the Go runtime raises
// to the hard limit at startup, or fallbackNofile if it cannot be read.
func nofileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return fallbackNofile
	}
	return uint64(rl.Cur)
}
