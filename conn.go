package wsguard

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// responseWriter is the http.ResponseWriter the wrapped handler sees. Its
// Hijack hands out a conn that returns the lease when closed; if the
// handler never hijacks, the Guard returns the lease when it returns.
type responseWriter struct {
	http.ResponseWriter
	release  func()
	frames   *framePolicy         // nil: no frame policies
	closes   func(rule string)    // counts a policy close
	status   int                  // the status written before the hijack, if any
	hijacked atomic.Pointer[conn] // set by Hijack
}

// WriteHeader records the status, which tells Hijack whether the
// library sent its 101 response through the ResponseWriter.
func (w *responseWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Hijack implements http.Hijacker.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	c := &conn{Conn: nc, release: w.release}
	if w.frames != nil {
		// Everything the library reads and writes must pass through c:
		// it gets fresh buffers over c, and c serves the bytes the
		// server had already buffered first.
		c.watch(w.frames, w.closes, brw.Reader, w.status == http.StatusSwitchingProtocols)
		brw = bufio.NewReadWriter(bufio.NewReaderSize(c, brw.Reader.Size()),
			bufio.NewWriterSize(c, brw.Writer.Size()))
	}
	w.hijacked.Store(c)
	return c, brw, nil
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() {
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

// conn is a hijacked connection that returns its lease on the first
// Close, whoever calls it. With frame policies on, it also watches the
// frames that pass through it (frames.go).
type conn struct {
	net.Conn
	release func()  // returns the lease; safe to call more than once
	f       *frames // nil: no frame policies
}

func (c *conn) Read(b []byte) (int, error) {
	if c.f == nil {
		return c.Conn.Read(b)
	}
	return c.readFramed(b)
}

func (c *conn) Write(b []byte) (int, error) {
	if c.f == nil {
		return c.Conn.Write(b)
	}
	return c.writeFramed(b)
}

func (c *conn) Close() error {
	if c.f == nil {
		err := c.Conn.Close()
		c.release()
		return err
	}
	return c.closeFramed()
}

func (c *conn) SetDeadline(t time.Time) error {
	if c.f == nil {
		return c.Conn.SetDeadline(t)
	}
	c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// SetReadDeadline passes the library's deadline on, except once a policy
// has ended the connection: the close handshake's deadline then stands.
func (c *conn) SetReadDeadline(t time.Time) error {
	if c.f != nil && c.f.ended.Load() != nil {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline passes the library's deadline on and remembers it, so
// that timeouts.write does not override an earlier one.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.f != nil {
		var ns int64
		if !t.IsZero() {
			ns = t.UnixNano()
		}
		c.f.userWrite.Store(ns)
	}
	return c.Conn.SetWriteDeadline(t)
}
