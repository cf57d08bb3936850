package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsguard/wsguard/internal/testsupport"
)

// TestServeTLSReloadOnSIGHUP runs the binary with TLS and the file watch
// off: SIGHUP alone reads the certificate again, a broken key is refused
// with the old certificate kept, and an open connection lives through
// both.
func TestServeTLSReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	tornado := testsupport.StartTornado(t)
	ca := testsupport.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	install := func(cert, key []byte) {
		t.Helper()
		for path, b := range map[string][]byte{certFile: cert, keyFile: key} {
			if err := os.WriteFile(path+".new", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(ca.Issue(t, "first", false))

	listen, adminAddr := loopbackAddr(t), loopbackAddr(t)
	cfgPath := filepath.Join(dir, "wsguard.yaml")
	cfg := fmt.Sprintf("listen: %s\nadmin_listen: %s\ntls:\n  cert_file: %s\n  key_file: %s\n  watch_interval: 0\n"+
		"routes:\n  - path: /\n    upstream: http://%s\n", listen, adminAddr, certFile, keyFile, tornado.Addr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, "--config", cfgPath)
	p.waitHealthy(t, adminAddr)

	clientTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	served := func() string {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", listen, clientTLS)
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}
	held, _, err := websocket.Dial(ctx, "wss://"+listen+"/ws", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer held.CloseNow()
	echo(t, held, "before")
	if got := served(); got != "first" {
		t.Fatalf("served %q, want first", got)
	}

	install(ca.Issue(t, "second", false))
	p.signal(t, syscall.SIGHUP)
	p.waitOutput(t, "config reloaded", 1, 30*time.Second)
	if got := served(); got != "second" {
		t.Fatalf("after SIGHUP served %q, want second", got)
	}
	echo(t, held, "after the reload")

	cert, _ := ca.Issue(t, "third", false)
	install(cert, []byte("not a key"))
	p.signal(t, syscall.SIGHUP)
	p.waitOutput(t, "reload refused", 1, 30*time.Second)
	if got := served(); got != "second" {
		t.Fatalf("after a refused reload served %q, want second", got)
	}
	echo(t, held, "after the refused reload")
}
