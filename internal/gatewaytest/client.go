package gatewaytest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/frame"
)

// DialOptions say how a test client connects.
type DialOptions struct {
	// Local is the source address, such as "127.0.0.7"; "" lets the
	// kernel choose.
	Local string
	// Header is sent with the upgrade request.
	Header http.Header
	// RecvBuffer, when above zero, shrinks the client socket's receive
	// buffer (SO_RCVBUF) so that a client that does not read stalls the
	// gateway's writes soon.
	RecvBuffer int
}

// Dial upgrades to ws://addr+path with coder/websocket. On refusal the
// error is non-nil and the response, if any, carries the status and the
// gateway's reason in its body.
func Dial(ctx context.Context, addr, path string, o DialOptions) (*websocket.Conn, *http.Response, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if o.Local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.Local)}
	}
	if o.RecvBuffer > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.RecvBuffer)
			})
			return errors.Join(err, serr)
		}
	}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+path, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr},
		HTTPHeader: o.Header,
	})
	if c != nil {
		c.SetReadLimit(-1)
	}
	return c, resp, err
}

// MustDial is Dial that fails the test unless the upgrade succeeds. The
// connection is dropped when the test ends.
func MustDial(t testing.TB, addr, path string, o DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, resp, err := Dial(ctx, addr, path, o)
	if err != nil {
		t.Fatalf("upgrade to %s from %q: %v (%s)", path, o.Local, err, Describe(resp))
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// Refused upgrades to path and returns the refusal's status and body; it
// fails the test if the upgrade succeeds or no HTTP answer comes.
func Refused(t testing.TB, addr, path string, o DialOptions) (status int, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, resp, err := Dial(ctx, addr, path, o)
	if err == nil {
		c.CloseNow()
		t.Fatalf("upgrade to %s from %q succeeded, want a refusal", path, o.Local)
	}
	if resp == nil {
		t.Fatalf("upgrade to %s from %q: no answer: %v", path, o.Local, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Describe renders a handshake response for a failure message.
func Describe(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%s %q", resp.Status, b)
}

// CloseCode reads from c until it fails and returns the close code the
// gateway sent, or -1 when the connection ended without one.
func CloseCode(ctx context.Context, c *websocket.Conn) (int, error) {
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		if code := websocket.CloseStatus(err); code != -1 {
			return int(code), nil
		}
		return -1, err
	}
}

// RawConn is a WebSocket client written by hand, for tests that break
// the protocol on purpose.
type RawConn struct {
	nc net.Conn
	br *bufio.Reader
}

// DialRaw upgrades to path from local ("" for any) by hand, failing the
// test unless the answer is 101. The socket closes when the test ends.
func DialRaw(t testing.TB, addr, local, path string) *RawConn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	var key [16]byte
	rand.Read(key[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\n" +
		"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
		base64.StdEncoding.EncodeToString(key[:]) + "\r\n\r\n"
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatalf("writing the upgrade request: %v", err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("raw upgrade: %s", Describe(resp))
	}
	return &RawConn{nc: nc, br: br}
}

// WriteFrame sends one masked frame with the given first header byte
// (FIN, RSV bits and opcode) and payload.
func (c *RawConn) WriteFrame(first byte, payload []byte) error {
	b := frame.AppendFrame(nil, true, frame.OpBinary, &[4]byte{1, 2, 3, 4}, payload)
	b[0] = first
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

// CloseCode reads frames until a close frame and returns its code.
func (c *RawConn) CloseCode(timeout time.Duration) (int, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return -1, err
		}
		n := int64(h[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(c.br, ext[:]); err != nil {
				return -1, err
			}
			n = int64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(c.br, ext[:]); err != nil {
				return -1, err
			}
			n = int64(binary.BigEndian.Uint64(ext[:]))
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			return -1, err
		}
		if frame.Opcode(h[0]&0x0f) == frame.OpClose {
			code, _, err := frame.ParseClosePayload(payload)
			return int(code), err
		}
	}
}
