package relay

import (
	"sort"
	"sync"
	"time"
)

// Count is a key (a client prefix or a user) with a count.
type Count struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// topK estimates the heaviest keys of a stream in bounded memory: the
// Space-Saving algorithm keeps at most size counters, and a new key
// takes over the smallest one (inheriting its count as an upper error
// bound). An attacker inventing endless addresses costs nothing more than
// size entries.
type topK struct {
	size   int
	counts map[string]int
}

func newTopK(size int) *topK { return &topK{size: size, counts: make(map[string]int, size)} }

func (t *topK) add(key string) {
	if _, ok := t.counts[key]; ok || len(t.counts) < t.size {
		t.counts[key]++
		return
	}
	// Replace the smallest counter. A linear scan of size entries is
	// cheap next to the refusal it accounts for, and keeps no heap.
	minKey, minN := "", int(^uint(0)>>1)
	for k, n := range t.counts {
		if n < minN {
			minKey, minN = k, n
		}
	}
	delete(t.counts, minKey)
	t.counts[key] = minN + 1
}

// windowedTop keeps topK sketches for the last few intervals, so that a
// query sees recent heavy hitters rather than those of last week.
type windowedTop struct {
	mu       sync.Mutex
	interval time.Duration
	slots    []*topK // guarded by mu; ring of per-interval sketches
	starts   []int64 // guarded by mu; start of each slot's interval
	size     int
}

func newWindowedTop(size, slots int, interval time.Duration) *windowedTop {
	w := &windowedTop{interval: interval, size: size}
	w.slots = make([]*topK, slots)
	w.starts = make([]int64, slots)
	for i := range w.slots {
		w.slots[i] = newTopK(size)
	}
	return w
}

// add counts key at time now.
func (w *windowedTop) add(key string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.slotLocked(now).add(key)
}

// slotLocked returns the sketch for now, recycling a stale one. w.mu is
// held.
func (w *windowedTop) slotLocked(now time.Time) *topK {
	n := now.UnixNano() / int64(w.interval)
	i := int(n % int64(len(w.slots)))
	if w.starts[i] != n {
		w.starts[i] = n
		w.slots[i] = newTopK(w.size)
	}
	return w.slots[i]
}

// top returns the k heaviest keys of the intervals within window of now.
func (w *windowedTop) top(k int, window time.Duration, now time.Time) []Count {
	w.mu.Lock()
	sum := make(map[string]int)
	oldest := (now.UnixNano() - int64(window)) / int64(w.interval)
	for i, t := range w.slots {
		if w.starts[i] < oldest || w.starts[i] == 0 {
			continue
		}
		for key, n := range t.counts {
			sum[key] += n
		}
	}
	w.mu.Unlock()
	return topOf(sum, k)
}

// topOf returns the k largest entries of counts, largest first.
func topOf(counts map[string]int, k int) []Count {
	out := make([]Count, 0, len(counts))
	for key, n := range counts {
		out = append(out, Count{Key: key, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	if len(out) > k {
		out = out[:k]
	}
	return out
}
