package testsupport

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartHAProxyWithTestCert(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello through haproxy\n")
	}))
	t.Cleanup(backend.Close)
	cert := NewTestCert(t)

	// TLS ends at HAProxy, which passes the stream on in TCP mode.
	p := StartHAProxy(t, func(port int) string {
		return fmt.Sprintf(`defaults
	mode tcp
	timeout connect 5s
	timeout client 10s
	timeout server 10s
frontend f
	bind 127.0.0.1:%d ssl crt %s
	default_backend b
backend b
	server s %s
`, port, cert.CombinedFile, backend.Listener.Addr())
	})

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cert.ClientConfig()}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + p.Addr + "/")
	if err != nil {
		t.Fatalf("GET through haproxy: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello through haproxy\n" {
		t.Fatalf("haproxy answered %s %q", resp.Status, body)
	}

	// A client that does not trust the test's certificate is refused.
	c, err := tls.Dial("tcp", p.Addr, &tls.Config{ServerName: "localhost"})
	if err == nil {
		c.Close()
		t.Fatal("a client without the test's certificate in its roots completed a handshake")
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func TestHAProxyCheckRejectsBadConfig(t *testing.T) {
	t.Parallel()
	bin := LookPath(t, "haproxy")
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	conf := "defaults\n\tmode tcp\nfrontend f\n\tbind 127.0.0.1:1\n\tno_such_keyword on\n"
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := HAProxyCheck(bin, file)
	if err == nil || !strings.Contains(out, "no_such_keyword") {
		t.Fatalf("haproxy -c: %v, output %q; want a failure naming the keyword", err, out)
	}
}

func TestStartWSGuard(t *testing.T) {
	t.Parallel()
	backend := DeadAddr(t) // never dialled: no client connects
	g := StartWSGuard(t, func(listen, admin string) string {
		return fmt.Sprintf("listen: %s\nadmin_listen: %s\nroutes:\n  - path: /\n    upstream: http://%s\n",
			listen, admin, backend)
	})
	resp, err := http.Get(g.AdminURL("/healthz"))
	if err != nil {
		t.Fatalf("admin healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin healthz: %s", resp.Status)
	}
	if c, err := net.Dial("tcp", g.Addr); err != nil {
		t.Fatalf("public listener: %v", err)
	} else {
		c.Close()
	}
	// SIGTERM is a drain, which ends with status 0.
	if err := g.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
}
