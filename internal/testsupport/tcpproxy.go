package testsupport

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TCPProxy forwards connections from a fixed loopback address to a
// target that can change, so that a test can make a server (Redis, say)
// vanish and come back at the same address, or come back as another,
// empty server. Its methods are safe for concurrent use; it is stopped by
// t.Cleanup when the test ends.
type TCPProxy struct {
	Addr string // the address clients connect to

	mu     sync.Mutex // guards target, ln, conns
	target string
	ln     net.Listener // nil while down
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// StartTCPProxy listens on a free loopback port and forwards each
// connection to target.
func StartTCPProxy(t testing.TB, target string) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("tcp proxy: %v", err)
	}
	p := &TCPProxy{Addr: ln.Addr().String(), target: target, conns: make(map[net.Conn]struct{})}
	p.serve(ln)
	t.Cleanup(func() {
		p.Down()
		p.wg.Wait()
	})
	return p
}

// Down closes the listener and every forwarded connection: clients see
// resets and then refused connections.
func (p *TCPProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Up listens again on Addr and forwards new connections to target. The
// port was free a moment ago; it retries for up to 5 seconds if another
// socket still holds it.
func (p *TCPProxy) Up(target string) error {
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", p.Addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the port, not a guess at timing
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
	p.serve(ln)
	return nil
}

// serve accepts on ln until it is closed.
func (p *TCPProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			target := p.target
			up := p.ln == ln
			if up {
				p.conns[c] = struct{}{}
			}
			p.mu.Unlock()
			if !up {
				c.Close()
				continue
			}
			p.wg.Go(func() { p.forward(c, target) })
		}
	})
}

// forward copies between c and a new connection to target.
func (p *TCPProxy) forward(c net.Conn, target string) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
		up.Close()
	}()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			dst.Close()
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}
