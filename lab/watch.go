package lab

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/wsguard/wsguard/flood"
	"github.com/wsguard/wsguard/internal/procfs"
)

// sampleEvery is how often the process groups are read.
const sampleEvery = time.Second

// sampler reads process groups from /proc every second until stopped.
type sampler struct {
	t0     time.Time // the attack's start: T=0
	groups []int     // process group ids; 0 for none
	series [][]Sample

	stopCh chan struct{}
	done   chan struct{}
}

// startSampler starts sampling groups at once and every second after.
func startSampler(t0 time.Time, groups ...int) *sampler {
	s := &sampler{t0: t0, groups: groups, series: make([][]Sample, len(groups)),
		stopCh: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

// loop samples until stopCh is closed.
func (s *sampler) loop() {
	defer close(s.done)
	prev := make([]uint64, len(s.groups))
	var prevAt time.Time
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		now := time.Now()
		est := establishedInodes()
		for i, g := range s.groups {
			if g == 0 {
				continue
			}
			u := readGroup(g)
			smp := Sample{
				T: now.Sub(s.t0).Seconds(), Procs: u.procs, FDs: u.fds, FDLimit: u.fdLimit,
				RSSBytes: u.rss, Conns: countIn(u.sockets, est),
			}
			if !prevAt.IsZero() && u.ticks >= prev[i] {
				cpu := float64(u.ticks-prev[i]) / procfs.ClockTicks
				smp.CPUPercent = 100 * cpu / now.Sub(prevAt).Seconds()
			}
			prev[i] = u.ticks
			s.series[i] = append(s.series[i], smp)
		}
		prevAt = now
		select {
		case <-tick.C:
		case <-s.stopCh:
			return
		}
	}
}

// stop ends sampling and returns each group's series.
func (s *sampler) stop() [][]Sample {
	close(s.stopCh)
	<-s.done
	return s.series
}

// countIn counts the inodes of socks that are in set.
func countIn(socks []uint64, set map[uint64]bool) int {
	n := 0
	for _, ino := range socks {
		if set[ino] {
			n++
		}
	}
	return n
}

// prober runs a probe every interval, each on its own goroutine so that
// a slow one does not delay the next, until stopped.
type prober struct {
	t0  time.Time
	cfg flood.ProbeConfig

	mu      sync.Mutex // guards records
	records []probeRecord

	stopLoop context.CancelFunc
	wg       sync.WaitGroup // the probes in flight
	done     chan struct{}  // closed once the loop has exited
}

// probeSource is the probe's address: the attack's come from
// 127.0.0.2 up, so per-address limits aimed at it do not hit the probe.
var probeSource = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// startProber probes target every interval. Probes run under ctx: when
// it is cancelled they stop and are not recorded.
func startProber(ctx context.Context, t0 time.Time, target string, interval, timeout time.Duration) *prober {
	loopCtx, stopLoop := context.WithCancel(ctx)
	p := &prober{t0: t0, stopLoop: stopLoop, done: make(chan struct{}),
		cfg: flood.ProbeConfig{Target: target, Source: probeSource, Timeout: timeout}}
	go p.loop(ctx, loopCtx, interval)
	return p
}

// loop starts a probe under ctx every interval until loopCtx ends.
func (p *prober) loop(ctx, loopCtx context.Context, interval time.Duration) {
	defer close(p.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		p.wg.Add(1)
		go p.once(ctx)
		select {
		case <-tick.C:
		case <-loopCtx.Done():
			return
		}
	}
}

// once runs one probe and records it, unless ctx was cancelled meanwhile
// (a probe cut short says nothing about the server).
func (p *prober) once(ctx context.Context) {
	defer p.wg.Done()
	start := time.Now()
	lat, failure, err := flood.ProbeOnce(ctx, p.cfg, nil)
	if ctx.Err() != nil {
		return
	}
	rec := probeRecord{T: start.Sub(p.t0).Seconds(), OK: err == nil && failure == "",
		LatencyMS: float64(lat) / float64(time.Millisecond), Failure: failure}
	if err != nil {
		rec.Failure = "error"
	}
	p.mu.Lock()
	p.records = append(p.records, rec)
	p.mu.Unlock()
}

// snapshot returns the probes recorded so far.
func (p *prober) snapshot() []probeRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]probeRecord(nil), p.records...)
}

// stop starts no more probes, waits for those in flight (each ends within
// its timeout) and returns every record.
func (p *prober) stop() []probeRecord {
	p.stopLoop()
	<-p.done
	p.wg.Wait()
	return p.snapshot()
}
