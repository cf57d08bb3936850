package wsguard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard"
	"github.com/wsguard/wsguard/config"
)

// A coder/websocket handler behind a Guard that allows two connections
// per client address: the third is refused before the handler runs.
func ExampleGuard_Handler() {
	cfg := config.Default()
	cfg.Limits.PerIP = 2
	guard, err := wsguard.New(wsguard.Options{Config: cfg})
	if err != nil {
		panic(err)
	}
	defer guard.Close()

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow() // closing the connection frees its slot
		c.Read(r.Context())
	})
	srv := httptest.NewServer(guard.Handler(handler))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for range 3 {
		c, resp, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			body, _ := io.ReadAll(resp.Body)
			fmt.Printf("refused: %d %s", resp.StatusCode, body)
			continue
		}
		defer c.CloseNow()
		fmt.Println("connected")
	}
	// Output:
	// connected
	// connected
	// refused: 429 per_ip limit reached
}
