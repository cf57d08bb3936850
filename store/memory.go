package store

import (
	"context"
	"sync"
)

// Memory is a Store for a single gateway process. Counters that return to
// zero are deleted, so its size follows the open connections, not the
// number of clients ever seen. The zero value is not usable; call
// NewMemory. It is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	counts map[Key]int // guarded by mu; never holds a zero
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{counts: make(map[Key]int)}
}

// Acquire implements Store.
func (m *Memory) Acquire(_ context.Context, claims []Claim) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	for i, c := range claims {
		if c.Limit > 0 && m.counts[c.Key] >= c.Limit {
			return i, nil
		}
	}
	for _, c := range claims {
		m.counts[c.Key]++
	}
	return -1, nil
}

// Release implements Store. Releasing a key that holds nothing is a
// no-op rather than a negative count.
func (m *Memory) Release(_ context.Context, keys []Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	for _, k := range keys {
		switch n := m.counts[k]; {
		case n > 1:
			m.counts[k] = n - 1
		case n == 1:
			delete(m.counts, k)
		}
	}
	return nil
}

// Count implements Store.
func (m *Memory) Count(_ context.Context, key Key) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[key], nil
}

// Len returns how many counters are non-zero.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.counts)
}
