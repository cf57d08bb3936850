package flood

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsguard/wsguard/frame"
	"github.com/wsguard/wsguard/internal/httphead"
)

// serverOptions say how a testServer behaves.
type serverOptions struct {
	status     int           // answer upgrades with this status instead of 101
	refuseFrom netip.Addr    // answer only this source with status (503 when status is 0)
	echo       bool          // send every data message back
	echoDelay  time.Duration // before each echo
	pingEvery  time.Duration // ping every client at this interval
	maxMessage int64         // close with 1009 once a message grows past this
	closeWith  uint16        // close every connection with this code once upgraded
	flood      bool          // on the first data message, write until a write blocks
	answerAt   int           // answer 408 once this many header lines arrived
}

// testServer is a WebSocket server for tests, written with the frame
// parser so that it sees every frame, control frames included, and
// records what each connection sent and when.
type testServer struct {
	t    *testing.T
	ln   net.Listener
	opts serverOptions

	mu      sync.Mutex // guards conns and changed
	conns   []*serverConn
	changed chan struct{} // closed and replaced on every change
}

// serverConn is what the server saw of one connection.
type serverConn struct {
	remote   netip.AddrPort
	lines    []timedLine // header lines of the request, as they arrived
	reads    int         // reads that brought request head bytes
	upgraded bool
	frames   []recFrame
	messages [][]byte             // complete data messages (unmasked, first 64 KiB)
	sizes    []int64              // their sizes
	pings    map[string]time.Time // pings sent, by payload
	pongs    []pongSeen
	blocked  bool   // a write to the client timed out
	closed   uint16 // code of the client's close frame; 0 for none
	ended    bool
}

type timedLine struct {
	at   time.Time
	line string
}

type recFrame struct {
	at     time.Time
	op     frame.Opcode
	fin    bool
	length int64
}

type pongSeen struct {
	at      time.Time
	payload string
}

func startServer(t *testing.T, opts serverOptions) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, ln: ln, opts: opts, changed: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(nc)
			}()
		}
	}()
	return s
}

func (s *testServer) url(path string) string { return "ws://" + s.ln.Addr().String() + path }

// update applies f to c under the lock and wakes waiters.
func (s *testServer) update(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

// snapshot returns copies of the connections' records.
func (s *testServer) snapshot() []serverConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]serverConn, len(s.conns))
	for i, c := range s.conns {
		out[i] = *c
		out[i].lines = append([]timedLine(nil), c.lines...)
		out[i].frames = append([]recFrame(nil), c.frames...)
		out[i].messages = append([][]byte(nil), c.messages...)
		out[i].sizes = append([]int64(nil), c.sizes...)
		out[i].pongs = append([]pongSeen(nil), c.pongs...)
		out[i].pings = map[string]time.Time{}
		for k, v := range c.pings {
			out[i].pings[k] = v
		}
	}
	return out
}

// waitFor waits until cond holds for the records, failing after 10s.
func (s *testServer) waitFor(what string, cond func(conns []serverConn) bool) []serverConn {
	s.t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		conns := s.snapshot()
		if cond(conns) {
			return conns
		}
		select {
		case <-changed:
		case <-timeout.C:
			s.t.Fatalf("server: no %s within 10s", what)
		}
	}
}

// allEnded waits until every connection the server saw has ended.
func (s *testServer) allEnded() []serverConn {
	s.t.Helper()
	return s.waitFor("end of every connection", func(conns []serverConn) bool {
		for _, c := range conns {
			if !c.ended {
				return false
			}
		}
		return true
	})
}

// serve handles one connection.
func (s *testServer) serve(nc net.Conn) {
	defer nc.Close()
	c := &serverConn{remote: netip.MustParseAddrPort(nc.RemoteAddr().String()), pings: map[string]time.Time{}}
	s.update(func() { s.conns = append(s.conns, c) })
	defer s.update(func() { c.ended = true })

	key, rest, ok := s.readHead(nc, c)
	if !ok {
		return
	}
	status := s.opts.status
	if s.opts.refuseFrom.IsValid() {
		status = 0
		if c.remote.Addr() == s.opts.refuseFrom {
			status = max(s.opts.status, 503)
		}
	}
	if status != 0 {
		fmt.Fprintf(nc, "HTTP/1.1 %d Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status)
		return
	}
	fmt.Fprintf(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: %s\r\n\r\n", httphead.AcceptKey([]byte(key)))
	s.update(func() { c.upgraded = true })

	w := &serverWriter{nc: nc}
	if s.opts.closeWith != 0 {
		w.close(s.opts.closeWith)
	}
	if s.opts.pingEvery > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go s.ping(w, c, stop)
	}
	s.readFrames(nc, w, c, rest)
}

// readHead reads the request head a read at a time, recording when each
// line arrived. It returns the Sec-WebSocket-Key and the bytes after the
// head.
func (s *testServer) readHead(nc net.Conn, c *serverConn) (key string, rest []byte, ok bool) {
	var head []byte
	buf := make([]byte, 4096)
	done := 0 // bytes of head already split into lines
	for {
		n, err := nc.Read(buf)
		if n > 0 {
			now := time.Now()
			head = append(head, buf[:n]...)
			s.update(func() { c.reads++ })
			for {
				i := bytes.IndexByte(head[done:], '\n')
				if i < 0 {
					break
				}
				line := string(head[done : done+i+1])
				done += i + 1
				s.update(func() { c.lines = append(c.lines, timedLine{now, line}) })
				if s.opts.answerAt > 0 && len(c.lines) >= s.opts.answerAt {
					fmt.Fprint(nc, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
					return "", nil, false
				}
				if line == "\r\n" {
					for _, l := range c.lines {
						if k, v, _ := strings.Cut(l.line, ":"); strings.EqualFold(k, "Sec-WebSocket-Key") {
							key = strings.TrimSpace(v)
						}
					}
					return key, head[done:], true
				}
			}
		}
		if err != nil || len(head) > 64<<10 {
			return "", nil, false
		}
	}
}

// readFrames reads the client's frames until it closes.
func (s *testServer) readFrames(nc net.Conn, w *serverWriter, c *serverConn, rest []byte) {
	var p frame.Parser
	var msg, ctl []byte
	var msgSize int64
	var mask [4]byte
	pos := 0
	buf := make([]byte, 32<<10)
	data := rest
	for {
		for len(data) > 0 {
			n, ev, err := p.Feed(data)
			if err != nil {
				w.close(frame.CloseProtocolError)
				return
			}
			chunk := data[:n]
			data = data[n:]
			h := p.Header()
			switch ev {
			case frame.EventHeader:
				mask, pos = h.Mask, 0
				s.update(func() { c.frames = append(c.frames, recFrame{time.Now(), h.Op, h.Fin, h.Length}) })
				if h.Op.IsControl() {
					ctl = ctl[:0]
				} else if h.Op != frame.OpContinuation {
					msg, msgSize = msg[:0], 0
				}
			case frame.EventPayload:
				payload := append([]byte(nil), chunk...)
				pos = frame.MaskBytes(mask, pos, payload)
				if h.Op.IsControl() {
					ctl = append(ctl, payload...)
				} else {
					msgSize += int64(len(payload))
					if len(msg) < 64<<10 {
						msg = append(msg, payload[:min(len(payload), 64<<10-len(msg))]...)
					}
					if s.opts.maxMessage > 0 && msgSize > s.opts.maxMessage {
						w.close(frame.CloseTooBig)
						return
					}
				}
			}
			if ev == frame.EventNone || !p.FrameDone() {
				continue
			}
			if !s.frameDone(w, c, h, ctl, msg, msgSize) {
				return
			}
		}
		n, err := nc.Read(buf)
		if err != nil {
			return
		}
		data = buf[:n]
	}
}

// frameDone acts on a complete frame; it returns false when the
// connection is over.
func (s *testServer) frameDone(w *serverWriter, c *serverConn, h frame.Header, ctl, msg []byte, size int64) bool {
	switch {
	case h.Op == frame.OpClose:
		code, _, _ := frame.ParseClosePayload(ctl)
		s.update(func() { c.closed = code })
		w.close(frame.CloseNormal)
		return false
	case h.Op == frame.OpPing:
		w.write(frame.OpPong, ctl)
	case h.Op == frame.OpPong:
		s.update(func() { c.pongs = append(c.pongs, pongSeen{time.Now(), string(ctl)}) })
	case !h.Op.IsControl() && h.Fin:
		m := append([]byte(nil), msg...)
		s.update(func() {
			c.messages = append(c.messages, m)
			c.sizes = append(c.sizes, size)
		})
		if s.opts.echo {
			time.Sleep(s.opts.echoDelay) // the latency the probe must see
			w.write(frame.OpText, m)
		}
		if s.opts.flood && len(c.messages) == 1 {
			go func() {
				if w.flood() {
					s.update(func() { c.blocked = true })
				}
			}()
		}
	}
	return true
}

// ping pings the client every pingEvery with a numbered payload until
// stop is closed.
func (s *testServer) ping(w *serverWriter, c *serverConn, stop <-chan struct{}) {
	t := time.NewTicker(s.opts.pingEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-t.C:
		case <-stop:
			return
		}
		payload := "p" + strconv.Itoa(i)
		s.update(func() { c.pings[payload] = time.Now() })
		if w.write(frame.OpPing, []byte(payload)) != nil {
			return
		}
	}
}

// serverWriter serialises the server's writes to one connection.
type serverWriter struct {
	mu sync.Mutex // guards writes to nc
	nc net.Conn
}

func (w *serverWriter) write(op frame.Opcode, payload []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := w.nc.Write(frame.AppendFrame(nil, true, op, nil, payload))
	return err
}

func (w *serverWriter) close(code uint16) {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], code)
	w.write(frame.OpClose, p[:])
}

// flood writes 64 KiB messages until one does not go out within 200ms,
// and reports whether that happened (rather than another error).
func (w *serverWriter) flood() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := frame.AppendFrame(nil, true, frame.OpBinary, nil, make([]byte, 64<<10))
	for {
		w.nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := w.nc.Write(msg); err != nil {
			return errors.Is(err, net.ErrClosed) == false && isTimeout(err)
		}
	}
}
