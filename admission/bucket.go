package admission

import (
	"net/netip"
	"sync"
	"time"
)

// Bucket is a token bucket: it holds up to Burst tokens and gains Rate
// tokens per second. The zero value is empty; call Fill first. It is not
// safe for concurrent use.
type Bucket struct {
	tokens float64
	last   int64 // unix nanoseconds of the last update
}

// Fill makes b full as of now.
func (b *Bucket) Fill(burst int, now time.Time) {
	b.tokens, b.last = float64(burst), now.UnixNano()
}

// TakeAt takes one token at time now if one is there. Otherwise it takes
// nothing and returns how long until a token is due.
func (b *Bucket) TakeAt(now time.Time, rate float64, burst int) (ok bool, wait time.Duration) {
	ns := now.UnixNano()
	if elapsed := ns - b.last; elapsed > 0 {
		b.tokens = min(float64(burst), b.tokens+float64(elapsed)*rate/1e9)
	}
	b.last = ns
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait = time.Duration((1 - b.tokens) / rate * 1e9)
	if wait <= 0 {
		// Short of a whole token by rounding error only: refills add up
		// in floating point, so a token that is due may sum to just
		// under 1. It is due now, and a refusal must name a wait.
		b.tokens = 0
		return true, 0
	}
	return false, wait
}

// rateTable keeps one Bucket per client prefix, at most size of them; the
// least recently used goes when a new prefix arrives at a full table.
// A forgotten bucket is as good as a full one, so eviction can only make
// the table more lenient, never refuse anyone wrongly.
type rateTable struct {
	mu      sync.Mutex
	size    int
	buckets map[netip.Prefix]*rateEntry // guarded by mu
	lru     rateEntry                   // sentinel of the recency list, guarded by mu
}

type rateEntry struct {
	Bucket
	key        netip.Prefix
	prev, next *rateEntry
}

func newRateTable(size int) *rateTable {
	t := &rateTable{size: size, buckets: make(map[netip.Prefix]*rateEntry)}
	t.lru.prev, t.lru.next = &t.lru, &t.lru
	return t
}

// takeAt takes a token from key's bucket at time now.
func (t *rateTable) takeAt(key netip.Prefix, now time.Time, rate float64, burst int) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()

	e := t.buckets[key]
	if e == nil {
		e = t.insert(key)
		e.Fill(burst, now)
	} else {
		e.unlink()
	}
	e.pushFront(&t.lru)
	return e.TakeAt(now, rate, burst)
}

// insert adds an entry for key, recycling the least recently used one
// when the table is full. The caller holds t.mu and links the entry.
func (t *rateTable) insert(key netip.Prefix) *rateEntry {
	var e *rateEntry
	if len(t.buckets) >= t.size && t.lru.prev != &t.lru {
		e = t.lru.prev
		e.unlink()
		delete(t.buckets, e.key)
		*e = rateEntry{}
	} else {
		e = new(rateEntry)
	}
	e.key = key
	t.buckets[key] = e
	return e
}

func (t *rateTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.buckets)
}

func (e *rateEntry) unlink() {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (e *rateEntry) pushFront(head *rateEntry) {
	e.prev, e.next = head, head.next
	head.next.prev = e
	head.next = e
}
