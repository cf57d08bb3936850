package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsguard/wsguard/frame"
)

// msgSize is the payload of every relayed message: small, as chat and
// telemetry messages are. The echo of one is exactly echoLen bytes.
const (
	msgSize = 32
	echoLen = 2 + msgSize
)

// dialWS connects from src to addr and upgrades. A refusal is an error.
func dialWS(addr string, src net.IP) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	// Read the head byte by byte so no relayed byte is left in a buffer.
	br := bufio.NewReaderSize(oneByte{c}, 16)
	status, err := br.ReadString('\n')
	if err == nil && !strings.Contains(status, " 101 ") {
		err = fmt.Errorf("upgrade refused: %s", strings.TrimSpace(status))
	}
	for err == nil {
		var line string
		if line, err = br.ReadString('\n'); line == "\r\n" {
			break
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// oneByte reads at most one byte per call.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

// messages returns n masked text frames of msgSize bytes, back to back.
func messages(n int) []byte {
	payload := []byte(strings.Repeat("m", msgSize))
	mask := [4]byte{1, 2, 3, 4}
	var b []byte
	for range n {
		b = frame.AppendFrame(b, true, frame.OpText, &mask, payload)
	}
	return b
}

// latencyResult is the round-trip time distribution of one run.
type latencyResult struct {
	P50, P99 time.Duration
	N        int
}

// measureLatency sends one message every interval on one connection for
// d and times each echo.
func measureLatency(addr string, interval, d time.Duration) (latencyResult, error) {
	c, err := dialWS(addr, net.IPv4(127, 0, 0, 1))
	if err != nil {
		return latencyResult{}, err
	}
	defer c.Close()
	msg := messages(1)
	buf := make([]byte, echoLen)
	var rtts []time.Duration
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return latencyResult{}, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return latencyResult{}, err
		}
		rtts = append(rtts, time.Since(t0))
	}
	return latencyResult{P50: quantile(rtts, 0.50), P99: quantile(rtts, 0.99), N: len(rtts)}, nil
}

// quantile returns the q-quantile of ds (nearest rank), 0 for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// measureThroughput opens conns connections from 127.0.0.2 on and keeps
// window messages in flight on each for d; it returns the messages
// echoed. The echo is counted in bytes: every echo is echoLen bytes.
func measureThroughput(addr string, conns, window int, d time.Duration) (int64, time.Duration, error) {
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := dialWS(addr, net.IPv4(127, 0, 0, byte(2+i%253)))
		if err != nil {
			closeAll(cs)
			return 0, 0, err
		}
		cs[i] = c
	}
	defer closeAll(cs)

	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	batch := messages(window)
	start := time.Now()
	end := start.Add(d)
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, window*echoLen)
			for time.Now().Before(end) {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write(batch); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					errs <- err
					return
				}
				total.Add(int64(window))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return total.Load(), elapsed, err
	default:
	}
	return total.Load(), elapsed, nil
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}
