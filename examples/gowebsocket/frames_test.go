package gowebsocket_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard"
	"github.com/wsguard/wsguard/config"
)

// A server written with one library: echo runs until reading fails and
// returns why; flood writes until writing fails.
type library struct {
	name  string
	echo  http.HandlerFunc
	flood http.HandlerFunc
}

// libraries are the servers the frame policies are checked with, each
// reporting its handler's final error on errs.
func libraries(errs chan<- error) []library {
	big := make([]byte, 64<<10)
	up := websocket.Upgrader{}
	return []library{{
		name: "gorilla",
		echo: func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				typ, msg, err := c.ReadMessage()
				if err == nil {
					err = c.WriteMessage(typ, msg)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		},
		flood: func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				if err := c.WriteMessage(websocket.BinaryMessage, big); err != nil {
					errs <- err
					return
				}
			}
		},
	}, {
		name: "gobwas",
		echo: func(w http.ResponseWriter, r *http.Request) {
			c, _, _, err := ws.UpgradeHTTP(r, w)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				// ReadClientData answers pings itself.
				msg, op, err := wsutil.ReadClientData(c)
				if err == nil {
					err = wsutil.WriteServerMessage(c, op, msg)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		},
		flood: func(w http.ResponseWriter, r *http.Request) {
			c, _, _, err := ws.UpgradeHTTP(r, w)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				if err := wsutil.WriteServerMessage(c, ws.OpBinary, big); err != nil {
					errs <- err
					return
				}
			}
		},
	}}
}

// TestFramePolicies checks Options.FramePolicies with servers written
// with gorilla/websocket and gobwas/ws (coder/websocket is covered in the
// wsguard module itself): the idle rule counts data frames only, the size
// cap closes with 1009, a client that stops reading is cut off by
// timeouts.write, and each frees its slot.
func TestFramePolicies(t *testing.T) {
	t.Parallel()
	for _, lib := range libraries(nil) {
		t.Run(lib.name, func(t *testing.T) {
			t.Parallel()
			t.Run("idle", func(t *testing.T) {
				t.Parallel()
				g, url, errs := serveFramed(t, lib.name, func(l library) http.Handler { return l.echo })
				c := dialGorilla(t, url)
				closed := make(chan error, 1)
				go func() {
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							closed <- err
							return
						}
					}
				}()
				pings := 0
				for done := false; !done; {
					select {
					case err := <-closed:
						wantClose(t, err, websocket.CloseGoingAway, "idle timeout")
						done = true
					case <-time.After(100 * time.Millisecond):
						if c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)) == nil {
							pings++
						}
					}
				}
				if pings < 3 {
					t.Errorf("closed after %d pings; the idle time is 500ms", pings)
				}
				wantPolicyError(t, errs, "idle timeout")
				waitOpen(t, g, 0)
			})
			t.Run("size", func(t *testing.T) {
				t.Parallel()
				g, url, errs := serveFramed(t, lib.name, func(l library) http.Handler { return l.echo })
				c := dialGorilla(t, url)
				for _, n := range []int{1024, 1025} {
					if err := c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", n))); err != nil {
						t.Fatal(err)
					}
				}
				if _, msg, err := c.ReadMessage(); err != nil || len(msg) != 1024 {
					t.Fatalf("echo of a max_size message: %d bytes, %v", len(msg), err)
				}
				_, _, err := c.ReadMessage()
				wantClose(t, err, websocket.CloseMessageTooBig, "message too big")
				wantPolicyError(t, errs, "message too big")
				waitOpen(t, g, 0)
			})
			t.Run("write", func(t *testing.T) {
				t.Parallel()
				g, url, errs := serveFramed(t, lib.name, func(l library) http.Handler { return l.flood })
				dialGorilla(t, url) // and never read
				wantPolicyError(t, errs, "write timeout")
				waitOpen(t, g, 0)
			})
		})
	}
}

// serveFramed runs the named library's handler, chosen by pick, behind a
// Guard with frame policies: idle 500ms, max_size 1KiB, write 300ms.
func serveFramed(t *testing.T, name string, pick func(library) http.Handler) (*wsguard.Guard, string, <-chan error) {
	t.Helper()
	cfg := config.Default()
	cfg.Limits.HandshakeRate, cfg.Limits.HandshakeBurst = 1000, 1000
	cfg.Timeouts.Idle = config.Duration(500 * time.Millisecond)
	cfg.Timeouts.Write = config.Duration(300 * time.Millisecond)
	cfg.Messages.MaxSize = 1024
	g, err := wsguard.New(wsguard.Options{Config: cfg, FramePolicies: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	errs := make(chan error, 4)
	var h http.Handler
	for _, l := range libraries(errs) {
		if l.name == name {
			h = pick(l)
		}
	}
	srv := httptest.NewServer(g.Handler(h))
	t.Cleanup(srv.Close)
	return g, "ws" + strings.TrimPrefix(srv.URL, "http"), errs
}

func dialGorilla(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantClose checks that a client read ended with the guard's close frame.
func wantClose(t *testing.T, err error, code int, reason string) {
	t.Helper()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Text != reason {
		t.Fatalf("client read: %v, want close %d %q", err, code, reason)
	}
}

// wantPolicyError checks that the server's handler saw the guard's
// PolicyError, through whatever the library wrapped it in.
func wantPolicyError(t *testing.T, errs <-chan error, reason string) {
	t.Helper()
	select {
	case err := <-errs:
		var pe *wsguard.PolicyError
		if !errors.As(err, &pe) || pe.Reason != reason {
			t.Errorf("handler got %v, want a PolicyError %q", err, reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not end")
	}
}
