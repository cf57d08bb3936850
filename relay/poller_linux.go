package relay

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// poller waits for readability of every idle connection with one epoll
// instance, so that an idle proxied connection owns no goroutine and no
// buffer. Registrations are one-shot: an event disarms its socket until
// the pump that handled it re-arms it, so one direction of a connection
// never has two pumps at once.
//
// The epoll data of a registration is a slot index and a generation, not
// a pointer or a descriptor number: a stale event for a closed (and maybe
// reused) descriptor finds a different generation and is dropped.
type poller struct {
	epfd   int
	wakeR  int // read end of a pipe that stops run
	wakeW  int
	mu     sync.Mutex
	slots  []*conn  // guarded by mu; nil where free
	gens   []int32  // guarded by mu; generation of each slot
	free   []uint32 // guarded by mu
	closed bool     // guarded by mu
}

const wakeToken = -1

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating epoll instance: %w", err)
	}
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("creating wake pipe: %w", err)
	}
	p := &poller{epfd: epfd, wakeR: fds[0], wakeW: fds[1]}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeToken}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wakeR, &ev); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("registering wake pipe: %w", err)
	}
	return p, nil
}

// add gives c a slot. Each pump registers its socket when it first arms.
func (p *poller) add(c *conn) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errors.New("poller closed")
	}
	var slot uint32
	if n := len(p.free); n > 0 {
		slot = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		slot = uint32(len(p.slots))
		p.slots = append(p.slots, nil)
		p.gens = append(p.gens, 0)
	}
	p.gens[slot]++
	p.slots[slot] = c
	c.slot, c.gen = slot, p.gens[slot]
	p.mu.Unlock()
	return nil
}

// remove drops c's registrations and frees its slot. The sockets must
// still be open; closing them afterwards is the caller's.
func (p *poller) remove(c *conn) {
	for dir := range c.pumps {
		_ = p.ctl(syscall.EPOLL_CTL_DEL, c, dir)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(c.slot) < len(p.slots) && p.slots[c.slot] == c {
		p.slots[c.slot] = nil
		p.free = append(p.free, c.slot)
	}
}

func (p *poller) ctl(op int, c *conn, dir int) error {
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(c.slot<<1) | int32(dir),
		Pad:    c.gen,
	}
	var opErr error
	err := c.pumps[dir].raw.Control(func(fd uintptr) {
		opErr = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return err
	}
	return opErr
}

// run dispatches readiness events until close is called.
func (p *poller) run() {
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for i := range n {
			ev := events[i]
			if ev.Fd == wakeToken {
				p.closeFDs()
				return
			}
			slot, dir := uint32(ev.Fd)>>1, int(ev.Fd&1)
			p.mu.Lock()
			var c *conn
			if int(slot) < len(p.slots) && p.gens[slot] == ev.Pad {
				c = p.slots[slot]
			}
			p.mu.Unlock()
			if c != nil {
				go c.pumps[dir].run()
			}
		}
	}
}

// close stops run. Registered connections are left to their owners.
func (p *poller) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	syscall.Write(p.wakeW, []byte{1})
}

func (p *poller) closeFDs() {
	syscall.Close(p.epfd)
	syscall.Close(p.wakeR)
	syscall.Close(p.wakeW)
}
