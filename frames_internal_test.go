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
