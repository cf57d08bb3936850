package relay

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wsguard/wsguard/internal/testsupport"
)

// testCA is testsupport.CA under a short local name.
type testCA = testsupport.CA

func newTestCA(t testing.TB, name string) *testCA { return testsupport.NewCA(t, name) }

// writeFile writes b to name in dir and returns its path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// replaceFile swaps name in dir for b atomically (write, then rename), as
// certificate tools and Kubernetes do.
func replaceFile(t testing.TB, dir, name string, b []byte) {
	t.Helper()
	tmp := writeFile(t, dir, name+".new", b)
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}
