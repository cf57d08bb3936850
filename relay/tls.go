package relay

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsguard/wsguard/config"
)

// TLS and the epoll relay
//
// The relay reads raw descriptors when epoll says they are readable, so
// TLS cannot simply wrap the socket. Over TLS the relay still waits on
// the TCP socket's descriptor with the same poller, but a pump reads
// through crypto/tls (one record per wake-up) and writes through it, so
// every relay rule holds unchanged and a TLS connection costs no extra
// descriptor and no goroutine while idle. What makes the wait on the
// descriptor sound is recordConn: crypto/tls is never handed bytes past
// the end of the record it is reading, so once a Read has returned a
// record's plaintext (a pump buffer holds the largest), no later record
// hides in crypto/tls's buffers where epoll cannot see it.
//
// The price, measured with bench/idlemem -tls, is crypto/tls's own state
// per connection (keys, buffers kept at their high-water mark) and two
// read calls per record. One case keeps a goroutine: a record that
// carries no application data (a late TLS 1.3 KeyUpdate or session
// ticket), or half a record, leaves the pump waiting inside crypto/tls
// with its buffer until the next record completes or the connection's
// own timers (pong timeout, idle) end it.

// tlsRecordHeader is the size of a TLS record header: type, version,
// length (RFC 8446 section 5.1).
const tlsRecordHeader = 5

// recordConn is the net.Conn crypto/tls reads through. It delivers bytes
// up to the end of the current record and no further, so that the
// record after it stays in the kernel where epoll can see it. Writes,
// deadlines and Close go to the socket itself.
type recordConn struct {
	net.Conn           // the TCP socket
	r        io.Reader // where bytes come from: a PROXY leftover, then the socket
	hdr      [tlsRecordHeader]byte
	nhdr     int // header bytes of the next record read so far
	left     int // bytes of the current record's body still to deliver
}

// Read delivers at most the rest of the current record's header or body.
func (rc *recordConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if rc.left == 0 {
		p = p[:min(len(p), tlsRecordHeader-rc.nhdr)]
		n, err := rc.r.Read(p)
		copy(rc.hdr[rc.nhdr:], p[:n])
		if rc.nhdr += n; rc.nhdr == tlsRecordHeader {
			rc.nhdr, rc.left = 0, int(binary.BigEndian.Uint16(rc.hdr[3:]))
		}
		return n, err
	}
	n, err := rc.r.Read(p[:min(len(p), rc.left)])
	rc.left -= n
	return n, err
}

// tlsVersion maps the config's min_version to crypto/tls's constant.
func tlsVersion(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// serverTLS is the public listener's TLS: the settings in force and a
// tls.Config built from the files, swapped whole when they are read
// again. Handshakes take the config current when their ClientHello
// arrives; open connections are not touched by a reload.
type serverTLS struct {
	log     *slog.Logger
	base    *tls.Config // hands out cur to every handshake
	cur     atomic.Pointer[tls.Config]
	timeout atomic.Int64 // handshake timeout, nanoseconds

	mu       sync.Mutex // serialises loads; guards settings and stamps
	settings config.TLS
	stamps   [3]fileStamp // cert, key and client CA files at the last load attempt
}

// fileStamp identifies a version of a file: a change of any part means
// the file was rewritten or replaced (an atomic rename or a symlink swap
// changes the inode).
type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
	err  bool
}

func stampOf(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{err: true}
	}
	st := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// newServerTLS reads the listener's certificate (and client CAs) as c
// says.
func newServerTLS(c config.TLS, log *slog.Logger) (*serverTLS, error) {
	st := &serverTLS{log: log}
	st.base = &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return st.cur.Load(), nil
		},
	}
	if err := st.load(c); err != nil {
		return nil, err
	}
	return st, nil
}

// load reads the files c names and, if they make a usable config, puts
// it in force. On error the config in force stays.
func (st *serverTLS) load(c config.TLS) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	// Stamps first: a file rewritten while it is read is read again at
	// the next check.
	st.settings = c
	st.stamps = stampsOf(c)
	cfg, err := buildServerTLS(c)
	if err != nil {
		return err
	}
	st.cur.Store(cfg)
	st.timeout.Store(int64(c.HandshakeTimeout.Std()))
	return nil
}

func stampsOf(c config.TLS) [3]fileStamp {
	return [3]fileStamp{stampOf(c.CertFile), stampOf(c.KeyFile), stampOf(c.ClientCAFile)}
}

// buildServerTLS reads the files of c into a tls.Config.
func buildServerTLS(c config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: loading cert_file and key_file: %w", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tlsVersion(c.MinVersion),
		// WebSockets over HTTP/2 (RFC 8441) are not relayed: offer
		// HTTP/1.1 only, so that ALPN clients settle on it.
		NextProtos: []string{"http/1.1"},
	}
	if c.ClientCAFile != "" {
		pool, err := loadCAs(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// loadCAs reads a PEM file of CA certificates.
func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// handshakeTimeout returns the TLS handshake deadline in force.
func (st *serverTLS) handshakeTimeout() time.Duration {
	return time.Duration(st.timeout.Load())
}

// changed reports whether any file differs from its last load attempt.
func (st *serverTLS) changed() (config.TLS, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.settings, stampsOf(st.settings) != st.stamps
}

// watch reads the files again when they change, checking every
// interval, until stop is closed. Polling needs no dependency, costs
// three stat calls per interval, and sees the symlink swaps that
// Kubernetes secret volumes make, which an inotify watch on the files
// would miss. A failed read keeps the certificate in force and logs one
// line per change of the files, not per check.
func (st *serverTLS) watch(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		c, changed := st.changed()
		if !changed {
			continue
		}
		if err := st.load(c); err != nil {
			st.log.Error("tls certificate reload failed; the previous certificate stays in force",
				slog.String("error", err.Error()))
			continue
		}
		st.log.Info("tls certificate reloaded", slog.String("cert_file", c.CertFile))
	}
}

// CheckTLS reads every certificate, key and CA file cfg names, as the
// server would at start, and reports the first problem. wsguard check
// uses it so that a config whose files cannot be read does not pass.
func CheckTLS(cfg config.Config) error {
	if cfg.TLS.Enabled() {
		if _, err := buildServerTLS(cfg.TLS); err != nil {
			return err
		}
	}
	for _, r := range cfg.Routes {
		if _, err := upstreamTLS(r); err != nil {
			return fmt.Errorf("route %s: %w", r.Path, err)
		}
	}
	return nil
}

// upstreamTLS builds the tls.Config a route dials its upstream with, or
// nil for http and ws upstreams.
func upstreamTLS(r config.Route) (*tls.Config, error) {
	scheme, host, ok := upstreamScheme(r.Upstream)
	if !ok || (scheme != "https" && scheme != "wss") {
		return nil, nil
	}
	u := r.UpstreamTLS
	cfg := &tls.Config{
		ServerName:         host,
		InsecureSkipVerify: u.InsecureSkipVerify,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	if u.ServerName != "" {
		cfg.ServerName = u.ServerName
	}
	if u.CAFile != "" {
		pool, err := loadCAs(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream_tls.ca_file: %w", err)
		}
		cfg.RootCAs = pool
	}
	if u.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(u.CertFile, u.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("upstream_tls: loading cert_file and key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
