// Command idlemem measures what an idle proxied WebSocket connection costs
// wsguard in resident memory: it starts an echo backend and a wsguard
// process, opens N WebSocket connections through the guard from
// 127.0.0.2-127.0.0.254, holds them idle, and divides the growth of the
// guard's RSS by N.
//
//	go run ./bench/idlemem -n 9000
//	go run ./bench/idlemem -n 9000 -tls   # clients speak TLS to the guard
//
// With -tls the guard terminates TLS with a certificate made at start
// (ECDSA P-256), and the figure is the cost of an idle proxied
// connection whose client side is TLS.
//
// Everything runs on loopback, is bounded by -n and -hold, and stops by
// itself.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/internal/procfs"
)

func main() {
	n := flag.Int("n", 9000, "idle connections to hold")
	hold := flag.Duration("hold", 10*time.Second, "how long to hold them before measuring")
	bin := flag.String("wsguard", "", "wsguard binary (default: build it)")
	backendMode := flag.Bool("backend", false, "internal: run as the echo backend on -addr")
	addr := flag.String("addr", "", "internal: backend address")
	useTLS := flag.Bool("tls", false, "clients connect over TLS (the guard terminates it)")
	flag.Parse()
	if *backendMode {
		runBackend(*addr)
		return
	}
	if err := measure(*n, *hold, *bin, *useTLS); err != nil {
		fmt.Fprintln(os.Stderr, "idlemem:", err)
		os.Exit(1)
	}
}

// runBackend serves a coder/websocket echo endpoint until killed.
func runBackend(addr string) {
	http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			c.Write(r.Context(), typ, msg)
		}
	}))
}

func measure(n int, hold time.Duration, bin string, useTLS bool) error {
	dir, err := os.MkdirTemp("", "idlemem")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "wsguard")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/wsguard").CombinedOutput(); err != nil {
			return fmt.Errorf("building wsguard: %v\n%s", err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	backendAddr, guardAddr, adminAddr := freeAddr(), freeAddr(), freeAddr()
	backend := exec.Command(self, "-backend", "-addr", backendAddr)
	if err := backend.Start(); err != nil {
		return err
	}
	defer stop(backend)

	var tlsSection string
	var clientTLS *tls.Config
	if useTLS {
		var err error
		if tlsSection, clientTLS, err = makeCert(dir); err != nil {
			return err
		}
	}
	cfg := filepath.Join(dir, "wsguard.yaml")
	os.WriteFile(cfg, []byte(tlsSection+fmt.Sprintf(`listen: %q
admin_listen: %q
routes:
  - path: /
    upstream: http://%s
limits:
  max_connections: %d
  instance_max_connections: 0
  per_ip: 0
  handshake_rate: "0"
`, guardAddr, adminAddr, backendAddr, n+10)), 0o644)
	guard := exec.Command(bin, "serve", "--config", cfg, "--log-level", "warn")
	guard.Stderr = os.Stderr
	if err := guard.Start(); err != nil {
		return err
	}
	defer stop(guard)
	if err := waitHTTP("http://"+adminAddr+"/healthz", 10*time.Second); err != nil {
		return err
	}
	if err := waitTCP(backendAddr, 10*time.Second); err != nil {
		return err
	}

	before := rss(guard.Process.Pid)
	heapBefore := metricValue(adminAddr, "go_memstats_heap_inuse_bytes")
	conns, err := openAll(guardAddr, n, clientTLS)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return err
	}
	if err := waitOpen(adminAddr, n, 60*time.Second); err != nil {
		return err
	}
	time.Sleep(hold) // let the guard settle: this is a measurement, not a test
	after := rss(guard.Process.Pid)
	fds := countFDs(guard.Process.Pid)
	heapAfter := metricValue(adminAddr, "go_memstats_heap_inuse_bytes")
	goroutines := metricValue(adminAddr, "go_goroutines")
	mode := "plain"
	if useTLS {
		mode = "tls"
	}
	fmt.Printf("mode: %s\nconnections: %d\nguard fds: %d\nguard goroutines: %.0f\nguard RSS before: %d KiB\nguard RSS after: %d KiB\nbytes per idle proxied connection: %d\nGo heap in use per connection: %.0f\n",
		mode, n, fds, goroutines, before/1024, after/1024, (after-before)/int64(n), (heapAfter-heapBefore)/float64(n))
	return nil
}

// openAll opens n upgraded connections, spreading source addresses over
// 127.0.0.2-127.0.0.254.
func openAll(addr string, n int, clientTLS *tls.Config) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			src := net.IPv4(127, 0, 0, byte(2+i%253))
			c, err := upgrade(addr, src, clientTLS)
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return compact(conns), err
	default:
	}
	return conns, nil
}

func compact(cs []net.Conn) []net.Conn {
	out := cs[:0]
	for _, c := range cs {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

func upgrade(addr string, src net.IP, clientTLS *tls.Config) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if clientTLS != nil {
		tc := tls.Client(c, clientTLS)
		tc.SetDeadline(time.Now().Add(20 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, err
	}
	if !strings.Contains(status, " 101 ") {
		c.Close()
		return nil, fmt.Errorf("upgrade refused: %s", strings.TrimSpace(status))
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func waitOpen(adminAddr string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + adminAddr + "/admin/api/stats")
		if err == nil {
			var st struct{ Open int }
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if st.Open >= n {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("guard did not reach %d open connections", n)
}

func waitHTTP(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer", url)
}

func waitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not accept", addr)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// rss returns a process's resident set size in bytes, 0 if it is gone.
func rss(pid int) int64 {
	n, _ := procfs.ReadRSS(pid)
	return n
}

// countFDs returns how many descriptors a process holds open.
func countFDs(pid int) int {
	n, _ := procfs.CountFDs(pid)
	return n
}

func stop(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// makeCert writes a self-signed ECDSA certificate for 127.0.0.1 into dir
// and returns the guard's tls section and a client config trusting it.
func makeCert(dir string) (string, *tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "idlemem"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", nil, err
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	section := fmt.Sprintf("tls:\n  cert_file: %q\n  key_file: %q\n", certFile, keyFile)
	return section, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, nil
}

// metricValue reads one unlabelled metric from the guard's /metrics, or
// returns 0.
func metricValue(adminAddr, name string) float64 {
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}
