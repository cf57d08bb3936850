package testsupport

import (
	"testing"
	"time"
)

// Poll calls check until it reports true, failing the test after timeout
// with what and check's last description of the state. It is for states
// no event announces (a counter reaching zero); the pause between calls
// is polling, not a guess at timing.
func Poll(t testing.TB, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v for %s: %s", timeout, what, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
