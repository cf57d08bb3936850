package wsguard

import (
	"testing"

	"github.com/wsguard/wsguard/frame"
)

// TestFollowSplitHead checks that the server's side is followed through
// a handshake response and frames split at any byte.
func TestFollowSplitHead(t *testing.T) {
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
	msg := frame.AppendFrame(nil, true, frame.OpText, nil, []byte("hello"))
	stream := append([]byte(head), msg...)
	for cut := range len(stream) + 1 {
		f := &frames{pol: &framePolicy{idleBoth: true}}
		f.follow(stream[:cut])
		f.follow(stream[cut:])
		if f.out != outFrames || !f.wp.AtBoundary() {
			t.Fatalf("cut %d: state %d, at boundary %v; want between frames", cut, f.out, f.wp.AtBoundary())
		}
		if f.lastData.Load() == 0 {
			t.Fatalf("cut %d: the data frame was not seen", cut)
		}
	}
	// A "\r\n\r" that is not followed by "\n" does not end the head.
	f := &frames{pol: &framePolicy{}}
	f.follow([]byte("HTTP/1.1 101 x\r\nA: b\r\n\rC: d\r\n"))
	if f.out != outHead {
		t.Fatalf("state %d, want still in the head", f.out)
	}
}

// FuzzWatch feeds arbitrary bytes, split at an arbitrary point, through
// both directions' watchers: they must never panic, and the split must
// not change what they conclude.
func FuzzWatch(f *testing.F) {
	f.Add([]byte("HTTP/1.1 101 x\r\n\r\n\x81\x02hi"), 3)
	f.Add(frame.AppendFrame(nil, false, frame.OpText, &[4]byte{1, 2, 3, 4}, []byte("abc")), 1)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		if cut < 0 || cut > len(b) {
			cut = len(b) / 2
		}
		pol := &framePolicy{idleBoth: true, maxSize: 8, maxFragments: 2}
		whole, split := newFuzzFrames(pol), newFuzzFrames(pol)
		whole.follow(b)
		split.follow(b[:cut])
		split.follow(b[cut:])
		if whole.out != split.out || whole.wp.AtBoundary() != split.wp.AtBoundary() {
			t.Fatalf("out %d/%d, boundary %v/%v", whole.out, split.out,
				whole.wp.AtBoundary(), split.wp.AtBoundary())
		}

		w := newFuzzFrames(pol)
		keep, e, _ := w.inspect(b)
		s := newFuzzFrames(pol)
		keep1, e1, _ := s.inspect(b[:cut])
		if e1 == nil {
			var keep2 int
			keep2, e1, _ = s.inspect(b[cut:])
			keep1 = cut + keep2
		}
		if (e == nil) != (e1 == nil) || (e != nil && e.Reason != e1.Reason) {
			t.Fatalf("whole: %v, split: %v", e, e1)
		}
		if keep > len(b) || (e == nil && keep != len(b)) {
			t.Fatalf("keep %d of %d with %v", keep, len(b), e)
		}
		// Bytes of the breaking frame's header that came in an earlier
		// read were delivered with it; nothing after the cut beyond
		// what the whole stream kept may be.
		if e != nil && keep1 > max(keep, cut) {
			t.Fatalf("split kept %d bytes, whole %d, cut %d", keep1, keep, cut)
		}
	})
}

func newFuzzFrames(pol *framePolicy) *frames {
	f := &frames{pol: pol}
	f.rseq.FromClient = true
	f.rseq.AnyRSV = true
	return f
}
