//go:build !linux

package testsupport

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal; the t.Cleanup registered by start still stops the process.
func setParentDeathSignal(cmd *exec.Cmd) {}
