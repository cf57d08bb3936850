package gatewaytest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// Backend is the upstream of a test gateway: a coder/websocket server
// that echoes every message, except on paths that start with /firehose,
// where it writes 64 KiB messages as fast as it can until the connection
// fails (a client that does not read makes the gateway's writes time
// out).
type Backend struct {
	*httptest.Server
}

// StartBackend runs a Backend on loopback until the test ends.
func StartBackend(t testing.TB) *Backend {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			InsecureSkipVerify: true,
			CompressionMode:    websocket.CompressionDisabled,
		})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(-1)
		if strings.HasPrefix(r.URL.Path, "/firehose") {
			firehose(r.Context(), c)
			return
		}
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return &Backend{Server: srv}
}

// firehose writes until a write fails or the request ends. The reads
// that CloseRead starts answer the gateway's close.
func firehose(ctx context.Context, c *websocket.Conn) {
	ctx = c.CloseRead(ctx)
	msg := make([]byte, 64<<10)
	for {
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			return
		}
	}
}
