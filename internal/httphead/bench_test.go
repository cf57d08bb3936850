package httphead

import (
	"bytes"
	"testing"
)

// BenchmarkParseRequest measures parsing alone on a browser handshake.
func BenchmarkParseRequest(b *testing.B) {
	head := []byte(browserHandshake)
	fields := make([]Field, 0, MaxFields)
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := ParseRequest(head, fields)
		if err != nil {
			b.Fatal(err)
		}
		fields = r.Fields
	}
}

// BenchmarkParseAndValidate measures what the gateway does with every
// handshake before admission: parse, then check it is an upgrade.
func BenchmarkParseAndValidate(b *testing.B) {
	head := []byte(browserHandshake)
	fields := make([]Field, 0, MaxFields)
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := ParseRequest(head, fields)
		if err != nil {
			b.Fatal(err)
		}
		if rj := ValidateUpgrade(&r); rj != nil {
			b.Fatal(rj)
		}
		fields = r.Fields
	}
}

// BenchmarkParseRefused measures the cost of refusing a smuggling attempt
// found on the last line.
func BenchmarkParseRefused(b *testing.B) {
	head := []byte(browserHandshake[:len(browserHandshake)-2] + "Host : evil\r\n\r\n")
	fields := make([]Field, 0, MaxFields)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(head, fields); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkReadHead measures finding the end of a head that arrives in one
// read, followed by a frame.
func BenchmarkReadHead(b *testing.B) {
	input := []byte(browserHandshake + "\x81\x85abcdefghi")
	buf := make([]byte, MaxHeadSize)
	r := bytes.NewReader(input)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(input)
		if _, _, err := ReadHead(r, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendUpstreamRequest measures writing the upstream head.
func BenchmarkAppendUpstreamRequest(b *testing.B) {
	r, err := ParseRequest([]byte(browserHandshake), nil)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, MaxHeadSize)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendUpstreamRequest(dst[:0], &r, &Forward{Target: r.Target, ForwardedFor: "203.0.113.7", RealIP: "203.0.113.7", Proto: "https"})
	}
}

// BenchmarkAcceptKey measures computing Sec-WebSocket-Accept.
func BenchmarkAcceptKey(b *testing.B) {
	key := []byte("dGhlIHNhbXBsZSBub25jZQ==")
	b.ReportAllocs()
	for b.Loop() {
		_ = AcceptKey(key)
	}
}
