package httphead

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxHeadSize is the largest request or response head accepted: the start
// line and all header lines, including the empty line that ends them. It is
// the size to give the buffer passed to ReadHead.
const MaxHeadSize = 8 << 10

// ErrHeadTooLarge is returned, unwrapped, by ReadHead when the buffer fills
// before the head ends. A server answers it with 431 Request Header Fields
// Too Large.
var ErrHeadTooLarge = errors.New("httphead: head too large")

// errBadRead is returned when a reader claims more bytes than it was given
// room for; trusting the count would index past the buffer.
var errBadRead = errors.New("httphead: reader returned invalid count")

// maxEmptyReads bounds consecutive reads that return neither bytes nor an
// error, so a broken reader cannot spin ReadHead forever.
const maxEmptyReads = 100

// ReadHead reads from r into buf until the empty line that ends an HTTP
// head. Lines may end in CRLF or a bare LF; an empty first line counts as
// the end, leaving an empty head for the parser to refuse.
//
// It returns head, buf up to and including the terminating empty line, and
// rest, the bytes read past it, which belong to whatever follows the head
// (for an upgrade, the first WebSocket frames). Both are sub-slices of buf;
// head's capacity ends where rest begins, so appending to head cannot
// overwrite rest. Each Read is offered all of buf that is still free.
//
// If buf fills before the head ends, ReadHead returns ErrHeadTooLarge. If r
// fails first, the error wraps io.EOF when r ended before sending anything,
// io.ErrUnexpectedEOF when it ended partway through the head, and r's own
// error (a deadline, say) otherwise; test for them with errors.Is. A head
// completed by the same Read that reported an error is returned without
// the error.
//
// ReadHead never reads past the bytes r has returned, and never reads at
// all once buf is full; a nil or empty buf gives ErrHeadTooLarge at once.
func ReadHead(r io.Reader, buf []byte) (head, rest []byte, err error) {
	var s headScanner
	n, empty := 0, 0
	for {
		if end := s.end(buf[:n]); end >= 0 {
			return buf[:end:end], buf[end:n], nil
		}
		if err != nil {
			return nil, nil, readError(err, n)
		}
		if n == len(buf) {
			return nil, nil, ErrHeadTooLarge
		}

		var m int
		m, err = r.Read(buf[n:])
		if m < 0 || m > len(buf)-n {
			return nil, nil, errBadRead
		}
		n += m

		// A reader that keeps returning 0, nil makes no progress; give
		// up rather than loop forever, as bufio does.
		if m > 0 || err != nil {
			empty = 0
		} else if empty++; empty == maxEmptyReads {
			err = io.ErrNoProgress
		}
	}
}

// readError wraps the error that cut a head short after n bytes.
func readError(err error, n int) error {
	if err == io.EOF && n > 0 {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("httphead: reading head: %w", err)
}

// headScanner finds the empty line that ends a head while the head arrives
// in pieces, remembering how far it has looked so that each byte is
// examined a bounded number of times however small the pieces.
type headScanner struct {
	start int // offset of the first line not yet known to be complete
	pos   int // offset up to which that line has been searched for LF
}

// end returns the length of the head including its terminating empty line,
// or -1 if b does not hold the whole head yet. Every call must pass the
// same bytes as the previous call, possibly with more appended.
func (s *headScanner) end(b []byte) int {
	for {
		// At the start of a line, check for an empty one: LF or CRLF.
		if s.pos == s.start {
			line := b[s.start:]
			switch {
			case len(line) == 0, len(line) == 1 && line[0] == '\r':
				return -1
			case line[0] == '\n':
				return s.start + 1
			case line[0] == '\r' && line[1] == '\n':
				return s.start + 2
			}
		}

		// Not empty: skip to the start of the next line.
		i := bytes.IndexByte(b[s.pos:], '\n')
		if i < 0 {
			s.pos = len(b)
			return -1
		}
		s.start = s.pos + i + 1
		s.pos = s.start
	}
}
