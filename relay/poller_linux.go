package relay

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
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
	epfd  int
	file  *os.File        // epfd, registered with the Go runtime's netpoller
	raw   syscall.RawConn // of file: run parks on it instead of blocking in epoll_wait
	wakeR int             // read end of a pipe that stops run
	wakeW int

	// work hands a ready pump to a parked worker; run starts a new one
	// when none waits. Workers outlive one event so that the stack a
	// pump grew to (writev through net.Conn is deep) is reused instead of
	// grown again from the starting size on every event, which profiled at about a
	// seventh of the relay's CPU. At most maxIdleWorkers stay parked, so
	// idle connections still own no goroutine.
	work chan *pump
	idle atomic.Int32 // workers parked on work

	mu     sync.Mutex
	slots  []*conn  // guarded by mu; nil where free
	gens   []int32  // guarded by mu; generation of each slot
	free   []uint32 // guarded by mu
	closed bool     // guarded by mu
}

const wakeToken = -1

// maxIdleWorkers bounds the workers parked between events. A burst
// needing more starts more goroutines, which end after their run.
const maxIdleWorkers = 128

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
	p := &poller{epfd: epfd, wakeR: fds[0], wakeW: fds[1], work: make(chan *pump)}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeToken}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wakeR, &ev); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("registering wake pipe: %w", err)
	}
	// An epoll instance is itself readable while it has events ready, so
	// the runtime's netpoller can wait on it like on a socket.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("making epoll instance non-blocking: %w", err)
	}
	p.file = os.NewFile(uintptr(epfd), "relay-epoll")
	if p.raw, err = p.file.SyscallConn(); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("registering epoll instance with the runtime: %w", err)
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
	o := epollOps.Get().(*epollOp)
	o.epfd, o.op = p.epfd, op
	o.ev = syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(c.slot<<1) | int32(dir),
		Pad:    c.gen,
	}
	err := c.pumps[dir].raw.Control(o.fn)
	if err == nil {
		err = o.err
	}
	o.err = nil
	epollOps.Put(o)
	return err
}

// epollOp is one epoll_ctl call made through RawConn.Control, which
// takes a closure through an interface: pooled with its closure, it costs
// no allocation per call, where a fresh closure cost three.
type epollOp struct {
	epfd, op int
	ev       syscall.EpollEvent
	err      error
	fn       func(fd uintptr)
}

var epollOps = sync.Pool{New: func() any {
	o := new(epollOp)
	o.fn = func(fd uintptr) { o.err = syscall.EpollCtl(o.epfd, o.op, int(fd), &o.ev) }
	return o
}}

// run dispatches readiness events until close is called.
//
// It never blocks a thread in epoll_wait: it polls with a zero timeout
// and, when nothing is ready, parks on the epoll instance in the
// runtime's netpoller, like a goroutine reading a socket. A blocked
// epoll_wait cost a thread handoff per wake-up (the pumps it readied sat
// queued until the runtime retook the blocked thread's P or woke another
// thread) and kept sysmon busy retaking; parked, the pumps run on the
// thread that found them ready.
func (p *poller) run() {
	events := make([]syscall.EpollEvent, 256)
	var (
		n    int
		werr error
	)
	poll := func(fd uintptr) bool {
		n, werr = syscall.EpollWait(int(fd), events, 0)
		if werr == syscall.EINTR {
			n, werr = 0, nil
		}
		return n > 0 || werr != nil
	}
	for {
		err := p.raw.Read(poll)
		if err != nil && werr == nil {
			// Only a runtime that cannot poll an epoll instance gets
			// here (nothing else closes it): wait in epoll_wait instead.
			n, werr = syscall.EpollWait(p.epfd, events, -1)
			if werr == syscall.EINTR {
				n, werr = 0, nil
			}
		}
		if werr != nil {
			p.closeFDs()
			return
		}
		if !p.dispatchAll(events[:n]) {
			return
		}
	}
}

// dispatchAll hands each event's pump to a worker. It returns false,
// after closing the poller's descriptors, when the wake pipe fired.
func (p *poller) dispatchAll(events []syscall.EpollEvent) bool {
	for i := range events {
		ev := events[i]
		if ev.Fd == wakeToken {
			p.closeFDs()
			return false
		}
		slot, dir := uint32(ev.Fd)>>1, int(ev.Fd&1)
		p.mu.Lock()
		var c *conn
		if int(slot) < len(p.slots) && p.gens[slot] == ev.Pad {
			c = p.slots[slot]
		}
		p.mu.Unlock()
		if c != nil {
			p.dispatch(&c.pumps[dir])
		}
	}
	return true
}

// dispatch runs pm on a parked worker, or on a new one if none waits.
func (p *poller) dispatch(pm *pump) {
	select {
	case p.work <- pm:
	default:
		go p.worker(pm)
	}
}

// worker runs pm, then waits for the next pump to run while fewer than
// maxIdleWorkers others wait; it ends when the poller closes.
func (p *poller) worker(pm *pump) {
	for pm != nil {
		pm.run()
		if p.idle.Add(1) > maxIdleWorkers {
			p.idle.Add(-1)
			return
		}
		pm = <-p.work
		p.idle.Add(-1)
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

// closeFDs runs when run stops, so nothing sends on work any more.
func (p *poller) closeFDs() {
	close(p.work)
	if p.file != nil {
		p.file.Close()
	} else {
		syscall.Close(p.epfd)
	}
	syscall.Close(p.wakeR)
	syscall.Close(p.wakeW)
}
