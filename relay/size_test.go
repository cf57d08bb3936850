package relay

import (
	"testing"
	"unsafe"
)

// TestConnSize guards what every idle connection costs in its own
// struct: conn (with its two pumps and two out streams) is allocated from
// the 704-byte size class. A field that pushes it past 704 moves every
// connection to the 768-byte class; if that is worth it, raise the bound
// here and re-measure with `go run ./bench/compare` (BENCHMARKS.md).
func TestConnSize(t *testing.T) {
	t.Parallel()
	const sizeClass = 704
	if got := unsafe.Sizeof(conn{}); got > sizeClass {
		t.Errorf("conn is %d bytes, past the %d-byte size class (pump %d, outStream %d)",
			got, sizeClass, unsafe.Sizeof(pump{}), unsafe.Sizeof(outStream{}))
	}
}
