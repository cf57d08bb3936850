package deploy

import (
	"os"
	"testing"

	"github.com/wsguard/wsguard/internal/testsupport"
)

// TestMain removes the wsguard binary that the recipe tests build.
func TestMain(m *testing.M) {
	os.Exit(testsupport.RunTests(m))
}
