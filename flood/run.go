package flood

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fdReserve is the number of descriptors a process keeps for itself
// (standard streams, the probe, DNS) when the limit caps its connections.
const fdReserve = 64

// endGrace is how long a run waits, after its end, for its connections to
// close on their own before it cuts them off.
const endGrace = 3 * time.Second

// sampleEvery is how often the series, the tool's memory and the progress
// callback are sampled.
const sampleEvery = 250 * time.Millisecond

// run is one process's share of a flood.
type run struct {
	cfg      Config
	ep       endpoint // the target, checked
	probeEP  endpoint // the probe's target, checked; zero without a probe
	probeSrc netip.Addr
	dial     dialFunc
	rec      *recorder
	local    int // connections this process opens
	fdLimit  uint64
	warnings []string

	epoch, end time.Time
	ctx        context.Context // cancelled by stop, for dials
	cancel     context.CancelFunc
	stopped    atomic.Bool
	stopCh     chan struct{} // closed by stop
	stopOnce   sync.Once
	pacer      pacer
	live       liveSet
	wg         sync.WaitGroup // every goroutine of the run but the sampler

	// Payloads shared by all connections, never modified.
	readerReq []byte
	fragment  []byte
}

// Run floods cfg.Target as cfg says and returns what happened once the
// run has ended, after cfg.Duration or when ctx is cancelled (the Result
// then says Interrupted). progress, when not nil, is called from another
// goroutine about four times a second with the figures so far.
//
// The error is non-nil only when the run could not start: it wraps
// ErrConfig when cfg is invalid or the target may not be flooded, and in
// that case no packet was sent to the target. Whatever the target does
// during the run is reported in the Result, not as an error.
func Run(ctx context.Context, cfg Config, progress func(Progress)) (*Result, error) {
	r, err := newRun(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	return r.execute(ctx, progress), nil
}

// newRun checks cfg and its targets and prepares a run. With conns false
// it opens no connection and only probes (the parent of RunProcs).
func newRun(ctx context.Context, cfg Config, conns bool) (*run, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r := &run{cfg: cfg, dial: cfg.dial, stopCh: make(chan struct{})}
	if r.dial == nil {
		r.dial = dialTCP
	}

	// The target check comes before anything is sent anywhere.
	var err error
	if r.ep, err = checkTarget(ctx, cfg.Target, cfg.AllowTargets); err != nil {
		return nil, err
	}
	if cfg.Sources.Len() > 0 && !r.ep.addr.Addr().Is4() {
		return nil, configErrorf("sources are IPv4 but the target is %s", r.ep.addr.Addr())
	}
	if cfg.Probe.Interval > 0 {
		if r.probeEP, err = checkTarget(ctx, cfg.Probe.Target, cfg.AllowTargets); err != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
		r.probeSrc = cfg.Probe.Source
		if !r.probeSrc.IsValid() {
			r.probeSrc = defaultProbeSource(r.probeEP.addr.Addr(), cfg.Sources)
		}
		if r.probeSrc.IsValid() && !r.probeEP.addr.Addr().Is4() {
			return nil, configErrorf("probe source %s is IPv4 but the probe target is %s",
				r.probeSrc, r.probeEP.addr.Addr())
		}
	}

	// This process's share, within its descriptor limit.
	if conns {
		p := cfg.Part
		r.local = (cfg.Connections - p.Index + p.Of - 1) / p.Of
	}
	r.fdLimit = raiseFDLimit()
	if room := int64(r.fdLimit) - fdReserve; r.fdLimit > 0 && int64(r.local) > room {
		r.warnings = append(r.warnings, fmt.Sprintf(
			"the descriptor limit (%d) caps this process at %d connections of the %d asked; "+
				"spread the run with --procs", r.fdLimit, max(room, 0), r.local))
		r.local = int(max(room, 0))
	}

	r.epoch = cfg.Part.Epoch
	if r.epoch.IsZero() {
		r.epoch = time.Now()
	}
	r.end = r.epoch.Add(cfg.Duration)
	seconds := int((cfg.Duration + time.Second - 1) / time.Second)
	r.rec = newRecorder(r.epoch, seconds, cfg.Probe.Timeout, cfg.Scenarios)
	if cfg.Rate > 0 {
		r.pacer.interval = time.Duration(float64(time.Second) * float64(cfg.Part.Of) / cfg.Rate)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.readerReq = []byte(cfg.ReaderRequest)
	r.fragment = []byte(strings.Repeat("f", cfg.FragmentSize))
	return r, nil
}

// defaultProbeSource picks the probe's address for a loopback IPv4
// target: 127.0.0.1 when the attack does not use it, else the highest
// loopback address outside the sources. Without --sources the attack
// comes from 127.0.0.1, the kernel's choice on loopback. Other targets
// leave the choice to the kernel.
func defaultProbeSource(dst netip.Addr, sources Sources) netip.Addr {
	if !dst.Is4() || !dst.IsLoopback() {
		return netip.Addr{}
	}
	home := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if sources.Len() > 0 && !sources.Contains(home) {
		return home
	}
	for u, tries := uint32(0x7ffffffe), 0; tries < 1<<16; u, tries = u-1, tries+1 {
		if a := fromV4(u); !sources.Contains(a) {
			return a
		}
	}
	return netip.Addr{}
}

// over reports whether the run has ended or been stopped.
func (r *run) over() bool {
	return r.stopped.Load() || !time.Now().Before(r.end)
}

// stop ends the run early: everything blocked on the network wakes up.
func (r *run) stop() {
	r.stopOnce.Do(func() {
		r.stopped.Store(true)
		close(r.stopCh)
		r.cancel()
		r.live.stopAll()
	})
}

// execute runs the flood to its end and collects the result.
func (r *run) execute(ctx context.Context, progress func(Progress)) *Result {
	res := &Result{
		Target:      r.cfg.Target,
		Scenarios:   r.cfg.Scenarios,
		Started:     r.epoch,
		Connections: r.cfg.Connections,
		Rate:        r.cfg.Rate,
		Procs:       r.cfg.Part.Of,
		Warnings:    append([]string{}, r.warnings...),
	}
	tool := Tool{FDLimit: r.fdLimit, RSSStartBytes: readRSS()}
	if r.probeEP.url != "" {
		res.Probe = &ProbeResult{
			Target:     r.probeEP.url,
			IntervalMS: float64(r.cfg.Probe.Interval) / float64(time.Millisecond),
		}
		if r.probeSrc.IsValid() {
			res.Probe.Source = r.probeSrc.String()
		}
	}
	unhook := context.AfterFunc(ctx, r.stop)
	defer unhook()
	defer r.cancel()

	samplerDone, samplerExited := make(chan struct{}), make(chan int)
	go r.sample(progress, &tool, samplerDone, samplerExited)
	if res.Probe != nil {
		r.wg.Add(1)
		go r.probeLoop()
	}
	r.wg.Add(1)
	go r.openAll()

	// Wait for the end, then for the connections to close.
	end := time.NewTimer(time.Until(r.end))
	select {
	case <-end.C:
	case <-r.stopCh:
		res.Interrupted = true
	}
	end.Stop()
	stopped := time.Now()
	r.waitGoroutines()
	close(samplerDone)
	filled := <-samplerExited

	r.rec.result(res)
	r.finishSeries(res, filled, stopped)
	res.Seconds = min(stopped.Sub(r.epoch), r.cfg.Duration).Seconds()
	tool.BytesPerConn = perConn(tool)
	res.Tool = tool
	return res
}

// waitGoroutines waits for every goroutine of the run, cutting the
// remaining connections off after endGrace.
func (r *run) waitGoroutines() {
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(max(endGrace, r.cfg.Probe.Timeout+time.Second))
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	}
	r.stop()
	<-done
}

// finishSeries trims the series to the seconds the run lasted and gives
// the seconds the sampler did not reach the connections held at the end.
func (r *run) finishSeries(res *Result, filled int, stopped time.Time) {
	n := r.rec.index(stopped.Add(-time.Nanosecond)) + 1
	if stopped.After(r.end) || stopped.Equal(r.end) {
		n = r.rec.seconds
	}
	for len(res.Series) < n {
		res.Series = append(res.Series, Second{T: len(res.Series) + 1})
	}
	res.Series = res.Series[:n]
	for i := filled; i < n; i++ {
		res.Series[i].Open = res.HeldAtEnd
	}
}

// sample fills the series' open counts, tracks the tool's memory at the
// peak of open connections and reports progress, until done is closed;
// then it sends how many seconds it filled on exited.
func (r *run) sample(progress func(Progress), tool *Tool, done <-chan struct{}, exited chan<- int) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	filled := 0
	for {
		select {
		case <-done:
			exited <- filled
			return
		case now := <-t.C:
			if f := r.rec.sample(now, filled); f != filled {
				filled = f
				if open := r.rec.open.Load(); open > 0 && open >= tool.PeakOpen {
					tool.PeakOpen, tool.RSSAtPeakBytes = open, readRSS()
				}
			}
			if progress != nil {
				progress(r.rec.snapshot(now))
			}
		}
	}
}

// openAll starts this process's connections at the pacer's rate.
func (r *run) openAll() {
	defer r.wg.Done()
	for k := 0; k < r.local; k++ {
		if !r.pace() {
			return
		}
		g := k*r.cfg.Part.Of + r.cfg.Part.Index
		r.wg.Add(1)
		go r.connect(g, r.cfg.Scenarios[g%len(r.cfg.Scenarios)], false)
	}
}

// pace waits for the next opening the rate allows. It returns false when
// the run ends first.
func (r *run) pace() bool {
	at := r.pacer.reserve(time.Now())
	if !at.Before(r.end) {
		return false
	}
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.stopCh:
			return false
		}
	}
	return !r.over()
}

// pacer spaces openings interval apart, over all goroutines that open.
// It is safe for concurrent use.
type pacer struct {
	interval time.Duration // 0: no limit

	mu   sync.Mutex // guards next
	next time.Time
}

// reserve returns when the next opening may happen, now at the earliest.
// A pacer that fell behind does not catch up in a burst.
func (p *pacer) reserve(now time.Time) time.Time {
	if p.interval == 0 {
		return now
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = at.Add(p.interval)
	return at
}

// connect runs connection g of scenario sc to its end. paced says the
// opening still has to wait for the pacer (a reconnection).
func (r *run) connect(g int, sc Scenario, paced bool) {
	defer r.wg.Done()
	if paced && !r.pace() {
		return
	}
	switch sc {
	case Slowloris:
		r.slowloris(g)
		r.reconnect(g, sc)
		return
	case Churn:
		r.churn(g)
		return
	}
	c := r.open(g, sc)
	if c == nil {
		r.reconnect(g, sc)
		return
	}
	// The hold gets a goroutine of its own, so that its stack does not
	// keep what dialing and the handshake grew.
	r.wg.Add(1)
	go c.run()
}

// reconnect opens connection g again after it ended early, when
// Config.Reconnect asks for it.
func (r *run) reconnect(g int, sc Scenario) {
	if r.cfg.Reconnect && !r.over() {
		r.wg.Add(1)
		go r.connect(g, sc, true)
	}
}

// request returns the upgrade request of connection g: its bearer token,
// and a forged client address when Config.XFF says so.
func (r *run) request(g int) request {
	var token string
	if n := len(r.cfg.Tokens); n > 0 {
		token = r.cfg.Tokens[g%n]
	}
	return newRequest(token, r.cfg.XFF)
}

// dialFor dials the target from connection g's source address, within
// the handshake timeout and the run, and registers the connection so
// that stop can wake it.
func (r *run) dialFor(g int, sc Scenario) (net.Conn, time.Time, bool) {
	r.rec.attempted(sc)
	deadline := earliest(time.Now().Add(r.cfg.HandshakeTimeout), r.end)
	ctx, cancel := context.WithDeadline(r.ctx, deadline)
	nc, err := r.dial(ctx, r.cfg.Sources.At(g), r.ep.addr)
	cancel()
	if err != nil {
		r.attemptFailed(sc, "connect", err)
		return nil, deadline, false
	}
	if !r.live.add(nc) {
		nc.Close()
		r.rec.pendingAtEnd(sc)
		return nil, deadline, false
	}
	return nc, deadline, true
}

// open dials and upgrades connection g. It returns nil when the attempt
// was refused or failed, or the connection ended at once.
func (r *run) open(g int, sc Scenario) *conn {
	nc, deadline, ok := r.dialFor(g, sc)
	if !ok {
		return nil
	}
	nc.SetDeadline(deadline)
	rest, release, err := upgrade(nc, &r.ep, r.request(g))
	if err != nil {
		r.live.remove(nc)
		nc.Close()
		r.attemptFailed(sc, "handshake", err)
		return nil
	}
	nc.SetDeadline(time.Time{})
	r.rec.opened(sc)

	c := &conn{r: r, nc: nc, sc: sc, g: g}
	ended := false
	if sc != SlowReader {
		ended = c.consume(rest)
	}
	release()
	if ended {
		c.release()
		return nil
	}
	return c
}

// attemptFailed records an attempt that did not open: refused, failed,
// or cut short by the end of the run.
func (r *run) attemptFailed(sc Scenario, phase string, err error) {
	if re, ok := err.(*refusedError); ok {
		r.rec.refused(sc, re.status)
		return
	}
	if r.over() {
		r.rec.pendingAtEnd(sc)
		return
	}
	r.rec.failed(sc, classify(phase, err).kind)
}

// liveSet holds the connections in progress, so that stop can wake them.
// It is safe for concurrent use.
type liveSet struct {
	mu      sync.Mutex // guards conns and stopped
	conns   map[net.Conn]struct{}
	stopped bool
}

// add registers c; it returns false, registering nothing, once stopped.
func (s *liveSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *liveSet) remove(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// stopAll makes every blocked read and write of every connection return.
func (s *liveSet) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	past := time.Unix(1, 0)
	for c := range s.conns {
		c.SetDeadline(past)
	}
}
