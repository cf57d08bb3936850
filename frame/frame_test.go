package frame

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// parsed is one frame as seen through the Parser.
type parsed struct {
	h       Header
	payload []byte
}

// parseAll feeds stream to a fresh Parser in chunks chosen by split and
// returns the frames it saw, checking that payload events only ever cover
// bytes of the current frame.
func parseAll(t testing.TB, stream []byte, split func(rest int) int) ([]parsed, error) {
	var (
		p   Parser
		out []parsed
	)
	for len(stream) > 0 {
		chunk := stream[:split(len(stream))]
		stream = stream[len(chunk):]
		for len(chunk) > 0 {
			n, ev, err := p.Feed(chunk)
			if err != nil {
				return out, err
			}
			if n == 0 && ev != EventHeader {
				t.Fatalf("Feed consumed nothing with %d bytes available", len(chunk))
			}
			switch ev {
			case EventHeader:
				out = append(out, parsed{h: p.Header()})
				if got := p.HeaderBytes(); len(got) != p.Header().Size() {
					t.Fatalf("HeaderBytes len %d, header size %d", len(got), p.Header().Size())
				}
			case EventPayload:
				last := &out[len(out)-1]
				last.payload = append(last.payload, chunk[:n]...)
			}
			chunk = chunk[n:]
		}
	}
	if !p.AtBoundary() {
		return out, errors.New("stream ended inside a frame")
	}
	return out, nil
}

func TestParserRoundTrip(t *testing.T) {
	t.Parallel()
	mask := [4]byte{1, 2, 3, 4}
	frames := []struct {
		fin  bool
		op   Opcode
		mask *[4]byte
		size int
	}{
		{true, OpText, nil, 0},
		{true, OpText, &mask, 5},
		{false, OpBinary, &mask, 125},
		{true, OpPing, &mask, 3},
		{false, OpContinuation, nil, 126},
		{true, OpContinuation, &mask, 65535},
		{true, OpBinary, nil, 65536},
		{true, OpClose, nil, 2},
	}
	var stream []byte
	for i, f := range frames {
		payload := bytes.Repeat([]byte{byte(i + 1)}, f.size)
		stream = AppendFrame(stream, f.fin, f.op, f.mask, payload)
	}
	splits := map[string]func(int) int{
		"whole":  func(rest int) int { return rest },
		"bytes":  func(int) int { return 1 },
		"random": func(rest int) int { return 1 + rand.IntN(min(rest, 300)) },
	}
	for name, split := range splits {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := parseAll(t, stream, split)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(frames) {
				t.Fatalf("got %d frames, want %d", len(got), len(frames))
			}
			for i, f := range frames {
				g := got[i]
				if g.h.Fin != f.fin || g.h.Op != f.op || g.h.Masked != (f.mask != nil) || g.h.Length != int64(f.size) {
					t.Errorf("frame %d: header %+v, want fin=%v op=%v size=%d", i, g.h, f.fin, f.op, f.size)
				}
				want := bytes.Repeat([]byte{byte(i + 1)}, f.size)
				if f.mask != nil {
					MaskBytes(*f.mask, 0, g.payload)
				}
				if !bytes.Equal(g.payload, want) {
					t.Errorf("frame %d: payload differs", i)
				}
			}
		})
	}
}

func TestParserErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"reserved data opcode", []byte{0x83, 0x00}, ErrReservedOpcode},
		{"reserved control opcode", []byte{0x8B, 0x00}, ErrReservedOpcode},
		{"fragmented ping", []byte{0x09, 0x00}, ErrControlFragment},
		{"long ping", []byte{0x89, 126, 0, 126}, ErrControlTooLong},
		{"length msb", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, ErrLengthOverflow},
		{"16-bit length for 5 bytes", []byte{0x82, 126, 0, 5}, ErrLengthEncoding},
		{"64-bit length for 300 bytes", []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 1, 44}, ErrLengthEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseAll(t, tt.input, func(int) int { return 1 })
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Code() != CloseProtocolError {
				t.Fatalf("error %v does not carry close code 1002", err)
			}
		})
	}
}

func TestSequencer(t *testing.T) {
	t.Parallel()
	m := func(fin bool, op Opcode, n int64) Header {
		return Header{Fin: fin, Op: op, Masked: true, Length: n}
	}
	tests := []struct {
		name    string
		seq     Sequencer
		headers []Header
		want    error
		size    int64
	}{
		{"fragments with ping between", Sequencer{FromClient: true},
			[]Header{m(false, OpText, 3), m(true, OpPing, 1), m(true, OpContinuation, 4)}, nil, 7},
		{"lone continuation", Sequencer{FromClient: true},
			[]Header{m(true, OpContinuation, 1)}, ErrUnexpectedCont, 0},
		{"text inside message", Sequencer{FromClient: true},
			[]Header{m(false, OpText, 1), m(true, OpText, 1)}, ErrExpectedCont, 1},
		{"unmasked from client", Sequencer{FromClient: true},
			[]Header{{Fin: true, Op: OpText}}, ErrUnmasked, 0},
		{"masked from server", Sequencer{},
			[]Header{m(true, OpText, 1)}, ErrMasked, 0},
		{"rsv1 without extension", Sequencer{FromClient: true},
			[]Header{{Fin: true, Op: OpText, Masked: true, Rsv: Rsv1}}, ErrReservedBits, 0},
		{"rsv1 with deflate", Sequencer{FromClient: true, Deflate: true},
			[]Header{{Fin: false, Op: OpText, Masked: true, Rsv: Rsv1, Length: 2}, m(true, OpContinuation, 2)}, nil, 4},
		{"rsv1 on continuation with deflate", Sequencer{FromClient: true, Deflate: true},
			[]Header{m(false, OpText, 1), {Op: OpContinuation, Fin: true, Masked: true, Rsv: Rsv1}}, ErrReservedBits, 1},
		{"rsv2 with deflate", Sequencer{FromClient: true, Deflate: true},
			[]Header{{Fin: true, Op: OpText, Masked: true, Rsv: Rsv2}}, ErrReservedBits, 0},
		{"unknown extension", Sequencer{FromClient: true, AnyRSV: true},
			[]Header{{Fin: true, Op: OpText, Masked: true, Rsv: Rsv2 | Rsv3, Length: 9}}, nil, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.seq
			var err error
			for _, h := range tt.headers {
				if _, err = s.Check(h); err != nil {
					break
				}
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if s.MessageSize() != tt.size {
				t.Fatalf("message size %d, want %d", s.MessageSize(), tt.size)
			}
		})
	}
}

func TestClosePayload(t *testing.T) {
	t.Parallel()
	long := string(bytes.Repeat([]byte("é"), 100)) // 200 bytes
	p := AppendClosePayload(nil, CloseGoingAway, long)
	if len(p) > MaxControlPayload {
		t.Fatalf("payload %d bytes, over the control limit", len(p))
	}
	code, reason, err := ParseClosePayload(p)
	if err != nil || code != CloseGoingAway || len(reason) != 122 {
		t.Fatalf("got %d %d %v; want 1001, 122 bytes of reason cut on a rune boundary", code, len(reason), err)
	}
	bad := []struct {
		name string
		p    []byte
	}{
		{"one byte", []byte{3}},
		{"1005 on the wire", []byte{0x03, 0xED}},
		{"code 999", []byte{0x03, 0xE7}},
		{"code 5000", []byte{0x13, 0x88}},
		{"invalid utf8", []byte{0x03, 0xE8, 0xFF}},
	}
	for _, b := range bad {
		if _, _, err := ParseClosePayload(b.p); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
	if code, _, err := ParseClosePayload(nil); err != nil || code != CloseNoStatus {
		t.Errorf("empty payload: %d %v, want 1005", code, err)
	}
}

func FuzzParser(f *testing.F) {
	mask := [4]byte{9, 8, 7, 6}
	f.Add(AppendFrame(nil, true, OpText, &mask, []byte("hello")), uint8(1))
	f.Add(AppendFrame(AppendFrame(nil, false, OpBinary, nil, make([]byte, 300)), true, OpContinuation, nil, nil), uint8(7))
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, uint8(3))
	f.Add([]byte{0x82, 126, 1, 0}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		// Whatever the split, the parser must see the same frames.
		whole, errWhole := parseAll(t, data, func(rest int) int { return rest })
		chunk := int(step%32) + 1
		split, errSplit := parseAll(t, data, func(rest int) int { return min(rest, chunk) })
		if (errWhole == nil) != (errSplit == nil) || len(whole) != len(split) {
			t.Fatalf("split changed the outcome: %v/%d vs %v/%d", errWhole, len(whole), errSplit, len(split))
		}
		for i := range whole {
			if whole[i].h != split[i].h || !bytes.Equal(whole[i].payload, split[i].payload) {
				t.Fatalf("frame %d differs between splits", i)
			}
			// Re-encoding a header with a minimal length gives back a
			// header the parser reads the same.
			re := AppendHeader(nil, whole[i].h)
			var p Parser
			n, ev, err := p.Feed(re)
			if err != nil || ev != EventHeader || n != len(re) || p.Header() != whole[i].h {
				t.Fatalf("re-encoded header %x parsed as %+v (%v)", re, p.Header(), err)
			}
		}
	})
}

func BenchmarkParserSmallFrames(b *testing.B) {
	mask := [4]byte{1, 2, 3, 4}
	var stream []byte
	for range 64 {
		stream = AppendFrame(stream, true, OpText, &mask, []byte("0123456789abcdef"))
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	seq := Sequencer{FromClient: true}
	for b.Loop() {
		var p Parser
		for rest := stream; len(rest) > 0; {
			n, ev, err := p.Feed(rest)
			if err != nil {
				b.Fatal(err)
			}
			if ev == EventHeader {
				if _, err := seq.Check(p.Header()); err != nil {
					b.Fatal(err)
				}
			}
			rest = rest[n:]
		}
	}
}
