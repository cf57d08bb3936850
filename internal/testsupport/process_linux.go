package testsupport

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the child if the test binary
// dies without running its cleanups (a panic, a -timeout abort), so no
// server outlives the test run.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
