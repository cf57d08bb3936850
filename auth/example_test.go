package auth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsguard/wsguard/auth"
	"github.com/wsguard/wsguard/internal/httphead"
)

// A browser's handshake carries its token in Sec-WebSocket-Protocol. The
// gateway verifies it, forwards the request without it, and knows what to
// answer if the backend selects no protocol.
func ExampleAuthenticator_Extract() {
	dir, err := os.MkdirTemp("", "auth-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	secret := []byte("an example secret of thirty-two bytes or more")
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, append(secret, '\n'), 0o600); err != nil {
		fmt.Println(err)
		return
	}

	a, err := auth.New(context.Background(), auth.Options{
		Required:   true,
		SecretFile: secretFile,
		Sources:    []auth.Source{auth.SourceHeader, auth.SourceSubprotocol, auth.SourceQuery},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()

	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice"}).SignedString(secret)
	head := "GET /chat?room=7 HTTP/1.1\r\n" +
		"Host: chat.example.com\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: wsguard.bearer, bearer." + token + ", chat.v1\r\n" +
		"\r\n"
	req, err := httphead.ParseRequest([]byte(head), nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	c, found, err := a.Extract(&req)
	if err == nil && !found && a.Required() {
		err = auth.ErrMissing
	}
	var user string
	if err == nil {
		user, err = a.Verify(c.Token)
	}
	if ae, ok := errors.AsType[*auth.Error](err); ok {
		fmt.Println(ae.Status(), ae.WWWAuthenticate())
		return
	}

	fmt.Println("user:", user, "from", c.Source)
	fmt.Printf("forward Sec-WebSocket-Protocol: %s\n", c.Protocols)
	fmt.Println("answer if upstream selects none:", c.Echo)
	fmt.Println("target unchanged:", c.Target == nil)

	// A request with no token at all is refused with a bare challenge.
	bare := strings.Replace(head, "Sec-WebSocket-Protocol: wsguard.bearer, bearer."+token+", chat.v1\r\n", "", 1)
	req, _ = httphead.ParseRequest([]byte(bare), nil)
	if _, found, _ := a.Extract(&req); !found && a.Required() {
		fmt.Println(auth.ErrMissing.Status(), auth.ErrMissing.WWWAuthenticate())
	}
	// Output:
	// user: alice from subprotocol
	// forward Sec-WebSocket-Protocol: chat.v1
	// answer if upstream selects none: wsguard.bearer
	// target unchanged: true
	// 401 Bearer
}
