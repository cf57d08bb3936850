package frame

import (
	"encoding/binary"
)

// Event says what a call to Parser.Feed consumed.
type Event uint8

// Events reported by Parser.Feed.
const (
	// EventNone: every byte given was consumed and more are needed.
	EventNone Event = iota
	// EventHeader: a frame header is complete; Header describes it.
	EventHeader
	// EventPayload: the consumed bytes are payload of the current frame.
	EventPayload
)

// ProtocolError is a violation of RFC 6455 found in a frame. A peer that
// sends one is closed with status 1002 (or Code when it is set).
type ProtocolError struct {
	Reason string
	code   uint16
}

func (e *ProtocolError) Error() string { return "websocket protocol error: " + e.Reason }

// Code returns the close status for the violation: 1002 unless the
// error says otherwise.
func (e *ProtocolError) Code() uint16 {
	if e.code != 0 {
		return e.code
	}
	return CloseProtocolError
}

func protocolError(reason string) *ProtocolError { return &ProtocolError{Reason: reason} }

// Errors found by the Parser, one per rule of RFC 6455 section 5.
var (
	ErrReservedOpcode   = protocolError("reserved opcode")
	ErrControlTooLong   = protocolError("control frame payload over 125 bytes")
	ErrControlFragment  = protocolError("fragmented control frame")
	ErrLengthOverflow   = protocolError("payload length has its most significant bit set")
	ErrLengthEncoding   = protocolError("payload length not in its shortest encoding")
	ErrUnexpectedCont   = protocolError("continuation frame outside a fragmented message")
	ErrExpectedCont     = protocolError("new data frame inside a fragmented message")
	ErrReservedBits     = protocolError("reserved bits set without an extension that defines them")
	ErrUnmasked         = protocolError("client frame is not masked")
	ErrMasked           = protocolError("server frame is masked")
	ErrBadClosePayload  = protocolError("close frame payload of one byte")
	ErrInvalidCloseCode = protocolError("invalid close code")
)

// Parser decodes a stream of frames incrementally. The zero value is ready
// to use at a frame boundary. A Parser is not safe for concurrent use.
//
// Feed it bytes in any split; it reports each header once complete and
// then the payload bytes as they pass, without copying them. Header
// validity that depends only on the header (opcode, control frame rules,
// length encoding) is checked here; message-level rules are the
// Sequencer's.
type Parser struct {
	hdr       [MaxHeaderSize]byte
	hn        uint8 // header bytes collected
	need      uint8 // header bytes needed; 0 while in payload
	remaining int64 // payload bytes left in the current frame
	h         Header
}

// Feed consumes a prefix of b and returns how many bytes it took and what
// they were. After EventPayload or EventHeader, FrameDone reports whether
// the frame ended. An error leaves the parser unusable.
func (p *Parser) Feed(b []byte) (n int, ev Event, err error) {
	if p.need == 0 && p.remaining > 0 {
		n = len(b)
		if int64(n) > p.remaining {
			n = int(p.remaining)
		}
		p.remaining -= int64(n)
		return n, EventPayload, nil
	}
	if p.need == 0 {
		p.hn, p.need = 0, 2
	}
	for n < len(b) && p.hn < p.need {
		c := int(p.need - p.hn)
		if c > len(b)-n {
			c = len(b) - n
		}
		copy(p.hdr[p.hn:], b[n:n+c])
		p.hn += uint8(c)
		n += c
		if p.hn == 2 && p.need == 2 {
			if err := p.sizeHeader(); err != nil {
				return n, EventNone, err
			}
		}
	}
	if p.hn < p.need {
		return n, EventNone, nil
	}
	if err := p.decode(); err != nil {
		return n, EventNone, err
	}
	p.need = 0
	p.remaining = p.h.Length
	return n, EventHeader, nil
}

// sizeHeader reads the first two bytes and sets need to the full header
// length, rejecting what can be rejected that early.
func (p *Parser) sizeHeader() error {
	b0, b1 := p.hdr[0], p.hdr[1]
	op := Opcode(b0 & 0xF)
	if !op.valid() {
		return ErrReservedOpcode
	}
	l7 := b1 & 0x7F
	if op.IsControl() {
		if b0&0x80 == 0 {
			return ErrControlFragment
		}
		if l7 > MaxControlPayload {
			return ErrControlTooLong
		}
	}
	need := uint8(2)
	switch l7 {
	case 126:
		need += 2
	case 127:
		need += 8
	}
	if b1&0x80 != 0 {
		need += 4
	}
	p.need = need
	return nil
}

// decode fills p.h from the complete header in p.hdr.
func (p *Parser) decode() error {
	b0, b1 := p.hdr[0], p.hdr[1]
	h := Header{
		Fin:    b0&0x80 != 0,
		Rsv:    (b0 >> 4) & 7,
		Op:     Opcode(b0 & 0xF),
		Masked: b1&0x80 != 0,
	}
	i := 2
	switch l7 := b1 & 0x7F; l7 {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(p.hdr[2:]))
		if h.Length <= 125 {
			return ErrLengthEncoding
		}
		i += 2
	case 127:
		u := binary.BigEndian.Uint64(p.hdr[2:])
		if u>>63 != 0 {
			return ErrLengthOverflow
		}
		if u <= 0xFFFF {
			return ErrLengthEncoding
		}
		h.Length = int64(u)
		i += 8
	default:
		h.Length = int64(l7)
	}
	if h.Masked {
		copy(h.Mask[:], p.hdr[i:i+4])
	}
	p.h = h
	return nil
}

// Header returns the current frame's header. It is valid from
// EventHeader until the next frame's header starts.
func (p *Parser) Header() Header { return p.h }

// HeaderBytes returns the wire bytes of the current frame's header. The
// slice aliases the parser and is overwritten by the next frame.
func (p *Parser) HeaderBytes() []byte { return p.hdr[:p.hn] }

// Remaining returns how many payload bytes of the current frame are
// still to come.
func (p *Parser) Remaining() int64 { return p.remaining }

// FrameDone reports whether the current frame is complete: its header
// was seen and no payload remains.
func (p *Parser) FrameDone() bool { return p.need == 0 && p.remaining == 0 }

// AtBoundary reports whether the parser sits between frames, with no
// partial header or payload pending.
func (p *Parser) AtBoundary() bool {
	return p.FrameDone() || (p.need == 2 && p.hn == 0)
}

// InPayload reports whether the current frame's header is complete and
// some of its payload is still to come.
func (p *Parser) InPayload() bool { return p.need == 0 && p.remaining > 0 }
