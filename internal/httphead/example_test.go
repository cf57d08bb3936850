package httphead_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wsguard/wsguard/internal/httphead"
)

// The gateway's path for one connection: read the head, parse it, check it
// is an upgrade, and hand the frames that came with it to the relay.
func ExampleReadHead() {
	conn := strings.NewReader("GET /chat HTTP/1.1\r\n" +
		"Host: example.com\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"\r\n" +
		"\x81\x00")

	buf := make([]byte, httphead.MaxHeadSize)
	head, rest, err := httphead.ReadHead(conn, buf)
	if err != nil {
		fmt.Println("read:", err)
		return
	}

	var fields [httphead.MaxFields]httphead.Field
	req, err := httphead.ParseRequest(head, fields[:0])
	var pe *httphead.ParseError
	if errors.As(err, &pe) {
		fmt.Println(pe.Status, pe.Reason)
		return
	}
	if rj := httphead.ValidateUpgrade(&req); rj != nil {
		fmt.Println(rj.Status, rj.Reason)
		return
	}

	fmt.Printf("upgrade to %s, %d bytes of frames already read\n", req.Path(), len(rest))
	fmt.Println("Sec-WebSocket-Accept:", httphead.AcceptKey(req.Get("Sec-WebSocket-Key")))
	// Output:
	// upgrade to /chat, 2 bytes of frames already read
	// Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
}

func ExampleValidateUpgrade() {
	head := "GET /chat HTTP/1.1\r\n" +
		"Host: example.com\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 8\r\n" +
		"\r\n"
	req, err := httphead.ParseRequest([]byte(head), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	if rj := httphead.ValidateUpgrade(&req); rj != nil {
		fmt.Printf("%d %s\n%s: %s\n", rj.Status, rj.Reason, rj.Header, rj.Value)
	}
	// Output:
	// 426 unsupported websocket version
	// Sec-WebSocket-Version: 13
}

func ExampleAppendUpstreamRequest() {
	head := "GET /chat HTTP/1.1\r\n" +
		"Host: example.com\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade, X-Debug\r\n" +
		"X-Debug: 1\r\n" +
		"X-Forwarded-For: 6.6.6.6\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"\r\n"
	req, err := httphead.ParseRequest([]byte(head), nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	up := httphead.AppendUpstreamRequest(nil, &req, &httphead.Forward{
		Target: req.Target, ForwardedFor: "203.0.113.7", RealIP: "203.0.113.7", Proto: "https"})
	fmt.Print(strings.ReplaceAll(string(up), "\r\n", "\n"))
	// Output:
	// GET /chat HTTP/1.1
	// Host: example.com
	// Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==
	// Sec-WebSocket-Version: 13
	// Connection: Upgrade
	// Upgrade: websocket
	// X-Forwarded-For: 203.0.113.7
	// X-Real-IP: 203.0.113.7
	// X-Forwarded-Proto: https
	// X-Forwarded-Host: example.com
}
