package gowebsocket_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard"
	"github.com/wsguard/wsguard/config"
)

// A coder/websocket server behind a Guard that requires a JWT (HS256,
// secret in a file) and allows one connection per user. The handler
// finds the user in the request's context.
func Example_coder() {
	dir, _ := os.MkdirTemp("", "wsguard-example")
	defer os.RemoveAll(dir)
	secret := []byte("an example secret of 32 bytes...")
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, secret, 0o600)

	cfg := config.Default()
	cfg.Auth.Required = true
	cfg.Auth.JWT.SecretFile = secretFile
	cfg.Limits.PerUser = 1
	guard, err := wsguard.New(wsguard.Options{Config: cfg})
	if err != nil {
		panic(err)
	}
	defer guard.Close()

	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil) // hijacks through the Guard
		if err != nil {
			return
		}
		defer c.CloseNow() // frees the slot
		user, _ := wsguard.User(r.Context())
		c.Write(r.Context(), websocket.MessageText, []byte("hello, "+user))
		c.Read(r.Context()) // until the client goes
	})
	srv := httptest.NewServer(guard.Handler(hello))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dial := func(user string) (*websocket.Conn, *http.Response, error) {
		h := http.Header{}
		if user != "" {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user}).SignedString(secret)
			h.Set("Authorization", "Bearer "+tok)
		}
		return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	}
	refused := func(resp *http.Response) {
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%d %s", resp.StatusCode, body)
	}

	alice, _, err := dial("alice")
	if err != nil {
		panic(err)
	}
	defer alice.CloseNow()
	_, msg, _ := alice.Read(ctx)
	fmt.Println(string(msg))

	_, resp, _ := dial("alice")
	refused(resp)
	_, resp, _ = dial("")
	refused(resp)
	// Output:
	// hello, alice
	// 429 per_user limit reached
	// 401 unauthorized: missing
}
