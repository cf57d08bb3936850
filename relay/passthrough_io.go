package relay

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// The readers and writers a passthrough request moves its bytes with.

// idleConn refreshes its deadlines before every read and write, so that
// a connection fails only when no byte moved for idle.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(b)
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(b)
}

// idleReader refreshes a connection's read deadline before each read.
type idleReader struct {
	r    io.Reader
	conn net.Conn
	idle time.Duration
}

func (ir *idleReader) Read(p []byte) (int, error) {
	ir.conn.SetReadDeadline(time.Now().Add(ir.idle))
	return ir.r.Read(p)
}

// cappedBody passes a request body on until more than max bytes have
// come, then fails: a body over the cap is cut off, not buffered.
type cappedBody struct {
	r        io.ReadCloser
	left     int64
	exceeded atomic.Bool // read by the handler while the transport reads
	ended    atomic.Bool // the body was read to its end
}

var errBodyTooLarge = errors.New("request body over passthrough.max_body")

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		b.exceeded.Store(true)
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.exceeded.Store(true)
		return 0, errBodyTooLarge
	}
	if err == io.EOF {
		b.ended.Store(true)
	}
	return n, err
}

// Close does not close the client's body: net/http would read it to its
// end first, and a chunked body has no end an attacker must send. The
// connection closes after the request instead.
func (b *cappedBody) Close() error { return nil }

// keepAlive is the read side of a client connection that carries plain
// requests.
type keepAlive struct {
	base     io.Reader    // the client: its socket, or over TLS a drainReader
	drain    *drainReader // nil for plain TCP
	leftover []byte       // bytes read past the last request
	served   int          // plain requests answered so far
}

func newKeepAlive(client side) *keepAlive {
	if client.tls == nil {
		return &keepAlive{base: client.sock}
	}
	d := &drainReader{tc: client.tls, rb: rbufPool.Get().(*rbuf)}
	return &keepAlive{base: d, drain: d}
}

// next returns where the next request head is read from.
func (ka *keepAlive) next() io.Reader {
	return io.MultiReader(bytes.NewReader(ka.leftover), ka.base)
}

// release returns the drainReader's buffer.
func (ka *keepAlive) release() {
	if ka.drain != nil && ka.drain.rb != nil {
		rbufPool.Put(ka.drain.rb)
		ka.drain.rb = nil
	}
}

// drainReader reads a TLS connection a whole record at a time into its
// own buffer (a record's plaintext fits), so that crypto/tls never holds
// plaintext that the guard has not seen.
type drainReader struct {
	tc       *tls.Conn
	rb       *rbuf
	off, end int
}

func (d *drainReader) Read(p []byte) (int, error) {
	if d.off == d.end {
		n, err := d.tc.Read(d.rb.b)
		if n == 0 {
			return 0, err
		}
		d.off, d.end = 0, n
	}
	n := copy(p, d.rb.b[d.off:d.end])
	d.off += n
	return n, nil
}

// buffered returns and forgets the bytes read but not yet passed on.
func (d *drainReader) buffered() []byte {
	b := d.rb.b[d.off:d.end]
	d.off, d.end = 0, 0
	return b
}

// peekBuffered returns the bytes br holds unread.
func peekBuffered(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return b
}

// onlyReader and onlyWriter hide ReadFrom and WriteTo, so that
// io.CopyBuffer uses the pooled buffer and writes each piece at once.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// lingerClose ends the client's side of a connection whose request body
// was not read whole: it stops writing, then reads and drops what the
// client still sends for a moment, so that the close does not reset the
// connection before the client has read the answer.
func lingerClose(client side) {
	if client.tls != nil {
		client.tls.CloseWrite()
	}
	if tc, ok := client.sock.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	client.sock.SetReadDeadline(time.Now().Add(time.Second))
	io.CopyN(io.Discard, client.conn(), 1<<20)
}
