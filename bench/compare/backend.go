package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/wsguard/wsguard/frame"
	"github.com/wsguard/wsguard/internal/httphead"
)

// runBackend serves the echo backend on addr until the process is
// killed. Every proxy and the direct measurement talk to the same
// backend process, so its cost is the same for all of them.
func runBackend(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go echoConn(c)
	}
}

// echoConn upgrades c and echoes every data frame back unmasked, one
// write per read, so a burst of small messages costs the backend one
// write rather than one per message. A close frame is answered and ends
// the connection.
func echoConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	if err := acceptUpgrade(c, br); err != nil {
		return
	}
	var (
		p    frame.Parser
		h    frame.Header
		pos  int
		in   = make([]byte, 32<<10)
		out  []byte
		done bool
	)
	for !done {
		n, err := br.Read(in)
		if err != nil {
			return
		}
		out = out[:0]
		for b := in[:n]; len(b) > 0; {
			k, ev, err := p.Feed(b)
			if err != nil {
				return
			}
			switch ev {
			case frame.EventHeader:
				h, pos = p.Header(), 0
				op := h.Op
				if op == frame.OpPing {
					op = frame.OpPong
				}
				done = done || op == frame.OpClose
				out = frame.AppendHeader(out, frame.Header{Fin: h.Fin, Op: op, Length: h.Length})
			case frame.EventPayload:
				start := len(out)
				out = append(out, b[:k]...)
				pos = frame.MaskBytes(h.Mask, pos, out[start:])
			}
			b = b[k:]
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// acceptUpgrade reads an upgrade request from br and answers 101.
func acceptUpgrade(c net.Conn, br *bufio.Reader) error {
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	if key == "" || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		fmt.Fprint(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return errors.New("not an upgrade")
	}
	_, err = fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"+
		"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", httphead.AcceptKey([]byte(key)))
	return err
}
