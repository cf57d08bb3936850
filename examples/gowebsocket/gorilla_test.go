package gowebsocket_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard"
	"github.com/wsguard/wsguard/config"
)

// TestGorillaSlots checks the limits and the slot's return with
// gorilla/websocket, which hijacks through http.Hijacker: the slot comes
// back when the client vanishes, when the handler closes, and when the
// handler panics after the upgrade.
func TestGorillaSlots(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		handle func(c *websocket.Conn)
	}{
		{"client vanishes", func(c *websocket.Conn) {
			defer c.Close()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}},
		{"handler closes", func(c *websocket.Conn) {
			c.ReadMessage()
			c.WriteMessage(websocket.TextMessage, []byte("bye"))
			c.Close()
		}},
		{"handler panics", func(c *websocket.Conn) {
			c.ReadMessage()
			c.WriteMessage(websocket.TextMessage, []byte("bye"))
			panic(http.ErrAbortHandler)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Limits.PerIP = 1
			cfg.Limits.HandshakeRate, cfg.Limits.HandshakeBurst = 1000, 1000
			g, err := wsguard.New(wsguard.Options{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			up := websocket.Upgrader{}
			srv := httptest.NewServer(g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c, err := up.Upgrade(w, r, nil); err == nil {
					tt.handle(c)
				}
			})))
			defer srv.Close()
			url := "ws" + strings.TrimPrefix(srv.URL, "http")

			for range 3 { // a leaked slot would refuse the next round
				c, _, err := websocket.DefaultDialer.Dial(url, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, resp, err := websocket.DefaultDialer.Dial(url, nil); err == nil {
					t.Fatal("second connection admitted with per_ip: 1")
				} else if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("second connection: %v, want 429", err)
				}
				if tt.name == "client vanishes" {
					c.NetConn().Close() // no close frame
				} else {
					c.WriteMessage(websocket.TextMessage, []byte("go"))
					c.ReadMessage() // "bye", then the end
					c.ReadMessage()
					c.Close()
				}
				waitOpen(t, g, 0)
			}
		})
	}
}

// waitOpen polls until g holds want connections, failing after 5 s.
func waitOpen(t *testing.T, g *wsguard.Guard, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for g.Open() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Guard.Open() = %d, want %d", g.Open(), want)
		}
		time.Sleep(5 * time.Millisecond) // polling a state, not a guess at timing
	}
}
