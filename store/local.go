package store

// Views of a Memory for the shared stores, which keep what their own
// instance holds in one.

// keys returns the keys of the non-zero counters.
func (m *Memory) keys() []Key {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Key, 0, len(m.counts))
	for k := range m.counts {
		out = append(out, k)
	}
	return out
}

// countsOf returns the counts of keys, read at one instant.
func (m *Memory) countsOf(keys []Key) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int, len(keys))
	for i, k := range keys {
		out[i] = m.counts[k]
	}
	return out
}
