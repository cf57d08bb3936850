package gowebsocket_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/wsguard/wsguard"
	"github.com/wsguard/wsguard/config"
)

// A gorilla/websocket server behind a Guard that allows one connection
// per client address: the second is refused before the handler runs,
// as the gateway would refuse it.
func Example_gorilla() {
	cfg := config.Default()
	cfg.Limits.PerIP = 1
	guard, err := wsguard.New(wsguard.Options{Config: cfg})
	if err != nil {
		panic(err)
	}
	defer guard.Close()

	upgrader := websocket.Upgrader{}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil) // hijacks through the Guard
		if err != nil {
			return
		}
		defer c.Close() // frees the slot
		key, _ := wsguard.ClientKey(r.Context())
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(typ, fmt.Appendf(nil, "%s from %s", msg, key))
		}
	})
	srv := httptest.NewServer(guard.Handler(echo))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	first, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		panic(err)
	}
	defer first.Close()
	first.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, reply, _ := first.ReadMessage()
	fmt.Println(string(reply))

	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == websocket.ErrBadHandshake {
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d Retry-After: %s, %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Output:
	// hello from 127.0.0.1/32
	// 429 Retry-After: 5, per_ip limit reached
}
