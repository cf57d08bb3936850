package relay

import (
	"container/heap"
	"net/netip"
)

// Fair admission under pressure (limits.pressure): when the instance is
// nearly full, a newcomer from a prefix holding less than its fair share
// may take the slot of an idle connection from the heaviest prefix.

// maxVictimScan bounds how many connections of the heaviest prefix are
// looked at to find the longest idle one.
const maxVictimScan = 32

// fairIndex counts open connections per client prefix and finds the
// heaviest prefix in O(log n). Entries go when a prefix reaches zero, so
// its memory is bounded by the open connections. It is not safe for
// concurrent use: Server guards it with connsMu.
type fairIndex struct {
	slot     int // which conn.fairPos this index keeps
	byPrefix map[netip.Prefix]*prefixConns
	heap     prefixHeap // max-heap by len(conns)
}

// prefixConns is one prefix's open connections.
type prefixConns struct {
	prefix netip.Prefix
	conns  []*conn // each conn's fairPos[slot] is its index here
	pos    int     // index in fairIndex.heap
}

func newFairIndex(slot int) *fairIndex {
	return &fairIndex{slot: slot, byPrefix: make(map[netip.Prefix]*prefixConns)}
}

// add indexes c under its lease's prefix.
func (f *fairIndex) add(c *conn) {
	p := c.lease.Prefix()
	e := f.byPrefix[p]
	if e == nil {
		e = &prefixConns{prefix: p}
		f.byPrefix[p] = e
		heap.Push(&f.heap, e)
	}
	c.fairPos[f.slot] = len(e.conns)
	e.conns = append(e.conns, c)
	heap.Fix(&f.heap, e.pos)
}

// remove drops c from the index; removing a conn not indexed is a no-op.
func (f *fairIndex) remove(c *conn) {
	i := c.fairPos[f.slot]
	if i < 0 {
		return
	}
	e := f.byPrefix[c.lease.Prefix()]
	if e == nil || i >= len(e.conns) || e.conns[i] != c {
		return
	}
	last := e.conns[len(e.conns)-1]
	e.conns[i] = last
	last.fairPos[f.slot] = i
	e.conns[len(e.conns)-1] = nil
	e.conns = e.conns[:len(e.conns)-1]
	c.fairPos[f.slot] = -1
	if len(e.conns) == 0 {
		heap.Remove(&f.heap, e.pos)
		delete(f.byPrefix, e.prefix)
		return
	}
	heap.Fix(&f.heap, e.pos)
}

// count returns the open connections of prefix p.
func (f *fairIndex) count(p netip.Prefix) int {
	if e := f.byPrefix[p]; e != nil {
		return len(e.conns)
	}
	return 0
}

// prefixes returns how many prefixes hold open connections.
func (f *fairIndex) prefixes() int { return len(f.heap) }

// victim picks the connection to evict for a newcomer whose prefix holds
// mine connections: the heaviest prefix must hold more than floor and
// more than mine, and the victim is its connection with the oldest data
// activity among those that started at or before graceEnd (unix ns),
// looking at no more than maxVictimScan of them. It returns nil when no
// connection qualifies.
func (f *fairIndex) victim(mine, floor int, graceEnd int64) *conn {
	if len(f.heap) == 0 {
		return nil
	}
	e := f.heap[0]
	if n := len(e.conns); n <= floor || n <= mine {
		return nil
	}
	var best *conn
	var bestData int64
	for _, c := range e.conns[:min(len(e.conns), maxVictimScan)] {
		if c.start > graceEnd || !c.running.Load() || c.closing.Load() {
			continue
		}
		if d := c.lastData.Load(); best == nil || d < bestData {
			best, bestData = c, d
		}
	}
	return best
}

// prefixHeap is a max-heap of prefixes by open connections.
type prefixHeap []*prefixConns

func (h prefixHeap) Len() int           { return len(h) }
func (h prefixHeap) Less(i, j int) bool { return len(h[i].conns) > len(h[j].conns) }
func (h prefixHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}

func (h *prefixHeap) Push(x any) {
	e := x.(*prefixConns)
	e.pos = len(*h)
	*h = append(*h, e)
}

func (h *prefixHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
