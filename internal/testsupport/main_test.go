package testsupport

import (
	"os"
	"testing"
)

// TestMain removes the wsguard binary that TestStartWSGuard builds.
func TestMain(m *testing.M) {
	os.Exit(RunTests(m))
}
