//go:build !linux

package testsupport

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal; the t.Cleanup registered by start still stops the process.
func setParentDeathSignal(cmd *exec.Cmd) {}

// setOwnGroup does nothing here; killGroup cannot reach the child's
// helpers either.
func setOwnGroup(cmd *exec.Cmd) {}

// killGroup does nothing here.
func killGroup(pid int) {}
