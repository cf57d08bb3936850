package httphead

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"testing"
	"unsafe"
)

// seedHeads are starting points shared by the parser fuzz targets.
var seedHeads = []string{
	browserHandshake,
	handshake("GET /chat HTTP/1.1", minimalFields...),
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
	"GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
	"HTTP/1.1 101\n\n",
	"\r\n",
}

// referenceHeadEnd finds the end of the first empty line in b the slow,
// obvious way, or returns -1.
func referenceHeadEnd(b []byte) int {
	for start := 0; start < len(b); {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			return -1
		}
		if line := b[start : start+i]; len(line) == 0 || string(line) == "\r" {
			return start + i + 1
		}
		start += i + 1
	}
	return -1
}

func FuzzReadHead(f *testing.F) {
	for _, h := range seedHeads {
		f.Add([]byte(h+"\x81\x00"), uint64(1), uint16(len(h)), uint8(3))
	}
	f.Add([]byte("GET / HTTP/1.1\r\n\r"), uint64(2), uint16(100), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, bufSize uint16, maxChunk uint8) {
		size := int(bufSize) % (2 * MaxHeadSize)
		r := newChunkReader(data, seed, 1+int(maxChunk))
		head, rest, err := ReadHead(r, make([]byte, size))

		// Work out what should happen from the bytes that fit in buf.
		window := data[:min(len(data), size)]
		end := referenceHeadEnd(window)
		switch {
		case end >= 0:
			if err != nil {
				t.Fatalf("head ends at %d but err = %v", end, err)
			}
			if len(head) != end {
				t.Fatalf("len(head) = %d, want %d", len(head), end)
			}
			if got := append(append([]byte(nil), head...), rest...); !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("head+rest = %q is not a prefix of the input", got)
			}
			if len(head)+len(rest) > size {
				t.Fatalf("head+rest is %d bytes, more than the %d-byte buffer", len(head)+len(rest), size)
			}
		case len(data) >= size:
			if err != ErrHeadTooLarge {
				t.Fatalf("no end within %d bytes, err = %v, want ErrHeadTooLarge", size, err)
			}
		case len(data) == 0:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("empty input, err = %v, want io.EOF", err)
			}
		default:
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncated input, err = %v, want io.ErrUnexpectedEOF", err)
			}
		}
	})
}

// within reports whether s lies inside head's bytes.
func within(head, s []byte) bool {
	if s == nil {
		return true
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(head)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= base && p+uintptr(len(s)) <= base+uintptr(len(head))
}

// checkFields fails t unless every field points into head and is well formed.
func checkFields(t *testing.T, head []byte, fs Fields) {
	t.Helper()
	if len(fs) > MaxFields {
		t.Fatalf("%d fields, more than MaxFields", len(fs))
	}
	for i, f := range fs {
		if !within(head, f.Name) || !within(head, f.Value) {
			t.Fatalf("field %d (%q: %q) points outside the head", i, f.Name, f.Value)
		}
		if !isToken(f.Name) {
			t.Fatalf("field %d name %q is not a token", i, f.Name)
		}
		if !bytes.Equal(f.Value, trimOWS(f.Value)) {
			t.Fatalf("field %d value %q is not trimmed", i, f.Value)
		}
		for _, c := range f.Value {
			if !isValueChar(c) {
				t.Fatalf("field %d value %q holds control byte %#x", i, f.Value, c)
			}
		}
	}
}

// appendFields writes fields and the empty line that ends a head.
func appendFields(b []byte, fs Fields) []byte {
	for _, f := range fs {
		b = fmt.Appendf(b, "%s: %s\r\n", f.Name, f.Value)
	}
	return append(b, "\r\n"...)
}

func equalFields(a, b Fields) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Name, b[i].Name) || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func FuzzParseRequest(f *testing.F) {
	for _, h := range seedHeads {
		f.Add([]byte(h))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		r, err := ParseRequest(head, nil)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason == "" || (pe.Status != 400 && pe.Status != 431) {
				t.Fatalf("error %v is not a proper *ParseError", err)
			}
			return
		}
		if !within(head, r.Method) || !within(head, r.Target) {
			t.Fatalf("method %q or target %q points outside the head", r.Method, r.Target)
		}
		checkFields(t, head, r.Fields)

		// Written out again in canonical form, it must parse the same.
		again := fmt.Appendf(nil, "%s %s HTTP/%d.%d\r\n", r.Method, r.Target, r.Major, r.Minor)
		again = appendFields(again, r.Fields)
		r2, err := ParseRequest(again, nil)
		if err != nil {
			t.Fatalf("re-serialised request %q does not parse: %v", again, err)
		}
		if !bytes.Equal(r.Method, r2.Method) || !bytes.Equal(r.Target, r2.Target) ||
			r.Major != r2.Major || r.Minor != r2.Minor || !equalFields(r.Fields, r2.Fields) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", r, r2)
		}

		if ValidateUpgrade(&r) == nil {
			checkAdmitted(t, head, &r)
		}
	})
}

// checkAdmitted holds an admitted handshake to two standards: net/http must
// read it the same way (a disagreement is a smuggling gap), and the head we
// send upstream must itself be a valid handshake.
func checkAdmitted(t *testing.T, head []byte, r *Request) {
	t.Helper()
	hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		t.Fatalf("admitted, but net/http refuses it: %v", err)
	}
	if hr.Method != string(r.Method) || hr.RequestURI != string(r.Target) ||
		hr.Host != string(r.Get("Host")) {
		t.Fatalf("net/http reads %s %s host %q", hr.Method, hr.RequestURI, hr.Host)
	}
	for _, f := range r.Fields {
		key := textproto.CanonicalMIMEHeaderKey(string(f.Name))
		if key != "Host" && !bytes.Equal([]byte(hr.Header.Get(key)), r.Get(key)) {
			t.Fatalf("net/http reads %s as %q, we read %q", key, hr.Header.Get(key), r.Get(key))
		}
	}

	up := AppendUpstreamRequest(nil, r, &Forward{Target: r.Target, ForwardedFor: "192.0.2.1", RealIP: "192.0.2.1", Proto: "https"})
	ur, err := ParseRequest(up, nil)
	if err != nil {
		t.Fatalf("upstream head %q does not parse: %v", up, err)
	}
	if rj := ValidateUpgrade(&ur); rj != nil {
		t.Fatalf("upstream head %q is refused: %v", up, rj)
	}
	if string(ur.Get("X-Forwarded-For")) != "192.0.2.1" || ur.Count("X-Forwarded-For") != 1 {
		t.Fatalf("upstream head %q does not carry exactly our X-Forwarded-For", up)
	}
}

func FuzzParseResponse(f *testing.F) {
	for _, h := range seedHeads {
		f.Add([]byte(h))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		r, err := ParseResponse(head, nil)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("error %v is not a proper *ParseError", err)
			}
			return
		}
		if r.Status < 100 || r.Status > 999 || !within(head, r.Reason) {
			t.Fatalf("status %d or reason %q out of bounds", r.Status, r.Reason)
		}
		checkFields(t, head, r.Fields)

		again := fmt.Appendf(nil, "HTTP/%d.%d %03d %s\r\n", r.Major, r.Minor, r.Status, r.Reason)
		again = appendFields(again, r.Fields)
		r2, err := ParseResponse(again, nil)
		if err != nil {
			t.Fatalf("re-serialised response %q does not parse: %v", again, err)
		}
		if r.Major != r2.Major || r.Minor != r2.Minor || r.Status != r2.Status ||
			!bytes.Equal(r.Reason, r2.Reason) || !equalFields(r.Fields, r2.Fields) {
			t.Fatalf("round trip changed the response:\n%+v\n%+v", r, r2)
		}
	})
}
