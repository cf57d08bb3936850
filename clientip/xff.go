package clientip

import "bytes"

// scanXFF adds the entries of one X-Forwarded-For line to hs. The line is
// a comma-separated list; each entry is trimmed of spaces and tabs, and an
// empty one ("a,,b") is skipped. What an entry holds is judged later, and
// only if the walk reaches it.
func scanXFF(hs *hops, line int, v []byte) {
	for start := 0; start <= len(v); {
		end := len(v)
		if i := bytes.IndexByte(v[start:], ','); i >= 0 {
			end = start + i
		}
		if s, e := trimSpan(v, start, end); s < e {
			hs.add(line, s, e, 0)
		}
		start = end + 1
	}
}
