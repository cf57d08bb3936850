package httphead

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkReader returns data in pieces of random size between 1 and max.
type chunkReader struct {
	data []byte
	rng  *rand.Rand
	max  int
}

func newChunkReader(data []byte, seed uint64, max int) *chunkReader {
	return &chunkReader{data: data, rng: rand.New(rand.NewPCG(seed, seed^0x9e37)), max: max}
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(1+r.rng.IntN(r.max), len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// funcReader adapts a function to io.Reader.
type funcReader func(p []byte) (int, error)

func (f funcReader) Read(p []byte) (int, error) { return f(p) }

func TestReadHead(t *testing.T) {
	t.Parallel()
	const req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	exact := "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 100) + "\r\n\r\n"
	tests := []struct {
		name     string
		input    string
		bufSize  int
		wantHead string
		wantErr  error // checked with errors.Is
	}{
		{name: "crlf", input: req + "\x81\x05hello", bufSize: 64, wantHead: req},
		{name: "bare lf", input: "GET / HTTP/1.1\nHost: a\n\nrest", bufSize: 64,
			wantHead: "GET / HTTP/1.1\nHost: a\n\n"},
		{name: "crlf then bare lf", input: "GET / HTTP/1.1\r\nHost: a\r\n\nx", bufSize: 64,
			wantHead: "GET / HTTP/1.1\r\nHost: a\r\n\n"},
		{name: "empty first line", input: "\r\nGET / HTTP/1.1\r\n\r\n", bufSize: 64, wantHead: "\r\n"},
		{name: "bare lf first line", input: "\nGET", bufSize: 64, wantHead: "\n"},
		{name: "cr cr lf is not an empty line", input: "GET / HTTP/1.1\r\nX: a\r\r\n\r\n", bufSize: 64,
			wantHead: "GET / HTTP/1.1\r\nX: a\r\r\n\r\n"},
		{name: "lf cr x is not an end", input: "A\n\rB\n\n", bufSize: 64, wantHead: "A\n\rB\n\n"},
		{name: "terminator exactly at buffer end", input: exact + "more", bufSize: len(exact), wantHead: exact},
		{name: "terminator one byte past buffer end", input: exact, bufSize: len(exact) - 1,
			wantErr: ErrHeadTooLarge},
		{name: "too large", input: strings.Repeat("a", MaxHeadSize+1), bufSize: MaxHeadSize,
			wantErr: ErrHeadTooLarge},
		{name: "empty buffer", input: req, bufSize: 0, wantErr: ErrHeadTooLarge},
		{name: "eof mid head", input: "GET / HTTP/1.1\r\nHost: a\r\n", bufSize: 64,
			wantErr: io.ErrUnexpectedEOF},
		{name: "eof mid terminator", input: "GET / HTTP/1.1\r\n\r", bufSize: 64,
			wantErr: io.ErrUnexpectedEOF},
		{name: "eof before anything", input: "", bufSize: 64, wantErr: io.EOF},
	}
	readers := []struct {
		name string
		make func(data []byte) io.Reader
	}{
		{"whole", func(d []byte) io.Reader { return bytes.NewReader(d) }},
		{"one byte", func(d []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(d)) }},
		{"random chunks", func(d []byte) io.Reader { return newChunkReader(d, uint64(len(d)), 7) }},
		{"data with eof", func(d []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(d)) }},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				t.Parallel()
				input := []byte(tt.input)
				head, rest, err := ReadHead(rd.make(input), make([]byte, tt.bufSize))
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("err = %v, want %v", err, tt.wantErr)
					}
					if head != nil || rest != nil {
						t.Errorf("got head %q, rest %q with an error", head, rest)
					}
					return
				}
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if string(head) != tt.wantHead {
					t.Errorf("head = %q, want %q", head, tt.wantHead)
				}
				// rest is whatever was read past the head, exactly as sent.
				after := input[len(head):]
				if !bytes.HasPrefix(after, rest) {
					t.Errorf("rest = %q is not a prefix of %q", rest, after)
				}
				if rd.name == "whole" {
					want := after[:min(len(after), tt.bufSize-len(head))]
					if !bytes.Equal(rest, want) {
						t.Errorf("rest = %q, want %q", rest, want)
					}
				}
				if cap(head) != len(head) {
					t.Errorf("cap(head) = %d, want %d so appends cannot reach rest", cap(head), len(head))
				}
			})
		}
	}
}

func TestReadHeadReaderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		reader  io.Reader
		wantErr error
	}{
		{
			name:    "deadline",
			reader:  io.MultiReader(strings.NewReader("GET / HT"), iotest.ErrReader(os.ErrDeadlineExceeded)),
			wantErr: os.ErrDeadlineExceeded,
		},
		{
			name:    "no progress",
			reader:  funcReader(func([]byte) (int, error) { return 0, nil }),
			wantErr: io.ErrNoProgress,
		},
		{
			name:    "count larger than window",
			reader:  funcReader(func(p []byte) (int, error) { return len(p) + 1, nil }),
			wantErr: errBadRead,
		},
		{
			name:    "negative count",
			reader:  funcReader(func([]byte) (int, error) { return -1, nil }),
			wantErr: errBadRead,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ReadHead(tt.reader, make([]byte, 64))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestReadHeadOffersWholeWindow(t *testing.T) {
	t.Parallel()
	input := []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
	const bufSize = 100
	src := newChunkReader(input, 1, 5)
	read := 0
	r := funcReader(func(p []byte) (int, error) {
		if len(p) != bufSize-read {
			t.Errorf("Read offered %d bytes, want the %d still free", len(p), bufSize-read)
		}
		n, err := src.Read(p)
		read += n
		return n, err
	})

	head, _, err := ReadHead(r, make([]byte, bufSize))
	if err != nil || !bytes.Equal(head, input) {
		t.Fatalf("ReadHead = %q, %v; want %q, nil", head, err, input)
	}
}

func TestReadHeadManySeeds(t *testing.T) {
	t.Parallel()
	input := []byte(browserHandshake + "\x81\x85abcdefghi")
	for seed := range uint64(200) {
		head, rest, err := ReadHead(newChunkReader(input, seed, 40), make([]byte, MaxHeadSize))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if string(head) != browserHandshake {
			t.Fatalf("seed %d: head = %q", seed, head)
		}
		if !bytes.HasPrefix(input[len(head):], rest) {
			t.Fatalf("seed %d: rest = %q is not what followed the head", seed, rest)
		}
	}
}
