// Package frame parses and builds WebSocket frames (RFC 6455 section 5).
//
// The Parser is an incremental state machine: bytes in, events out. It
// knows nothing of sockets, never copies or unmasks payload, and keeps
// only a frame header's worth of state, so a relay can hold one per idle
// connection for a few dozen bytes and forward payload straight from its
// read buffer.
package frame

import (
	"encoding/binary"
	"fmt"
)

// Opcode is a frame's opcode (RFC 6455 section 5.2).
type Opcode uint8

// Opcodes defined by RFC 6455.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong or
// a reserved control opcode).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// IsData reports whether op carries message data: text, binary or
// continuation.
func (op Opcode) IsData() bool { return op <= OpBinary }

func (op Opcode) valid() bool {
	return op <= OpBinary || (op >= OpClose && op <= OpPong)
}

// String returns the opcode's name.
func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return fmt.Sprintf("opcode(%#x)", uint8(op))
}

// Reserved bits of the first header byte, as stored in Header.Rsv.
const (
	Rsv1 uint8 = 4
	Rsv2 uint8 = 2
	Rsv3 uint8 = 1
)

// Sizes fixed by RFC 6455.
const (
	// MaxHeaderSize is the longest frame header: 2 bytes, an 8-byte
	// length and a 4-byte mask key.
	MaxHeaderSize = 14
	// MaxControlPayload is the largest payload of a control frame.
	MaxControlPayload = 125
)

// Header is a decoded frame header.
type Header struct {
	Fin    bool
	Rsv    uint8 // RSV1..RSV3 as the bits Rsv1, Rsv2, Rsv3
	Op     Opcode
	Masked bool
	Mask   [4]byte
	Length int64
}

// Size returns the encoded length of h in bytes.
func (h Header) Size() int {
	n := 2
	switch {
	case h.Length > 0xFFFF:
		n += 8
	case h.Length > 125:
		n += 2
	}
	if h.Masked {
		n += 4
	}
	return n
}

// AppendHeader appends the wire form of h to dst, using the shortest
// length encoding.
func AppendHeader(dst []byte, h Header) []byte {
	b0 := h.Rsv<<4 | uint8(h.Op)&0xF
	if h.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if h.Masked {
		b1 = 0x80
	}
	switch {
	case h.Length > 0xFFFF:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.Length))
	case h.Length > 125:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(h.Length))
	default:
		dst = append(dst, b0, b1|byte(h.Length))
	}
	if h.Masked {
		dst = append(dst, h.Mask[:]...)
	}
	return dst
}

// AppendFrame appends a whole frame to dst. With a non-nil mask the
// payload is masked as it is copied; payload itself is not modified.
func AppendFrame(dst []byte, fin bool, op Opcode, mask *[4]byte, payload []byte) []byte {
	h := Header{Fin: fin, Op: op, Length: int64(len(payload))}
	if mask != nil {
		h.Masked, h.Mask = true, *mask
	}
	dst = AppendHeader(dst, h)
	start := len(dst)
	dst = append(dst, payload...)
	if mask != nil {
		MaskBytes(*mask, 0, dst[start:])
	}
	return dst
}

// MaskBytes XORs b in place with key, starting at position pos of the
// key stream, and returns the position after b. Masking twice unmasks.
func MaskBytes(key [4]byte, pos int, b []byte) int {
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}
