package wsguard

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"
)

// responseWriter is the http.ResponseWriter the wrapped handler sees. Its
// Hijack hands out a conn that returns the lease when closed; if the
// handler never hijacks, the Guard returns the lease when it returns.
type responseWriter struct {
	http.ResponseWriter
	release  func()
	hijacked atomic.Pointer[conn] // set by Hijack
}

// Hijack implements http.Hijacker.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	c := &conn{Conn: nc, release: w.release}
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
// Close, whoever calls it.
type conn struct {
	net.Conn
	release func() // returns the lease; safe to call more than once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
