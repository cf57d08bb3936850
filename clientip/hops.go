package clientip

import (
	"net/netip"

	"github.com/wsguard/wsguard/internal/httphead"
)

// Bounds on the work one Resolve does, whatever the client sends. A head
// is at most httphead.MaxHeadSize bytes anyway, and no real deployment
// has dozens of proxies in a row.
const (
	maxHops        = 64                   // chain entries examined, from the right
	maxHeaderBytes = httphead.MaxHeadSize // header line bytes examined, from the last line
)

// A hop is one entry of a forwarding chain, located in the header line it
// came from. It is small so that a whole chain fits on the stack.
type hop struct {
	line       int32  // index of the line in the Fields
	start, end uint16 // the entry's bytes in the line's value
	flags      uint8
}

// Flags of a hop.
const (
	hopEscaped uint8 = 1 << iota // the entry holds backslash escapes
	hopBad                       // the entry's element is malformed: not an address
)

// hops collects the rightmost maxHops entries of a chain in a ring,
// without allocating.
type hops struct {
	fs   httphead.Fields
	ring [maxHops]hop
	n    int  // entries added, including those the ring has dropped
	cut  bool // header lines left of those examined were skipped
}

// collect adds the entries of every line of header h, left to right. It
// takes lines from the right while they fit in maxHeaderBytes, so an
// examined line is always shorter than a hop can address.
func (hs *hops) collect(fs httphead.Fields, h Header) {
	hs.fs = fs
	name := h.field()
	first, size := len(fs), 0
	for i := len(fs) - 1; i >= 0; i-- {
		if !httphead.EqualFold(fs[i].Name, name) {
			continue
		}
		size += len(fs[i].Value) + 1
		if size > maxHeaderBytes {
			hs.cut = true
			break
		}
		first = i
	}
	for i := first; i < len(fs); i++ {
		if !httphead.EqualFold(fs[i].Name, name) {
			continue
		}
		if h == HeaderForwarded {
			scanForwarded(hs, i, fs[i].Value)
		} else {
			scanXFF(hs, i, fs[i].Value)
		}
	}
}

// add records the entry at value[start:end] of line.
func (hs *hops) add(line, start, end int, flags uint8) {
	hs.ring[hs.n%maxHops] = hop{int32(line), uint16(start), uint16(end), flags}
	hs.n++
}

// len returns how many entries can be examined.
func (hs *hops) len() int { return min(hs.n, maxHops) }

// truncated reports whether the chain goes on left of the examined entries.
func (hs *hops) truncated() bool { return hs.cut || hs.n > maxHops }

// at returns the k-th entry from the right; k < hs.len().
func (hs *hops) at(k int) hop { return hs.ring[(hs.n-1-k)%maxHops] }

// text returns the k-th entry from the right as the header wrote it.
func (hs *hops) text(k int) []byte {
	h := hs.at(k)
	return hs.fs[h.line].Value[h.start:h.end]
}

// addr parses the k-th entry from the right.
func (hs *hops) addr(k int) (netip.Addr, bool) {
	h := hs.at(k)
	if h.flags&hopBad != 0 {
		return netip.Addr{}, false
	}
	b := hs.text(k)
	if h.flags&hopEscaped != 0 {
		var buf [maxNode]byte
		var ok bool
		if b, ok = unescape(buf[:0], b); !ok {
			return netip.Addr{}, false
		}
	}
	return parseNode(b)
}

// unescape appends to dst, whose capacity bounds the result, the content of
// a quoted-string with each backslash escape replaced by the byte it
// protects. It reports false if the result does not fit.
func unescape(dst, b []byte) ([]byte, bool) {
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+1 < len(b) {
			i++
		}
		if len(dst) == cap(dst) {
			return dst, false
		}
		dst = append(dst, b[i])
	}
	return dst, true
}
