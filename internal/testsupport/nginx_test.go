package testsupport

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartNginx(t *testing.T) {
	t.Parallel()
	p := StartNginx(t, func(port int) string {
		return NginxHTTP(fmt.Sprintf(`server {
	listen 127.0.0.1:%d;
	location / {
		return 200 "hello from nginx\n";
	}
}`, port))
	})

	resp, err := http.Get("http://" + p.Addr + "/")
	if err != nil {
		t.Fatalf("GET from nginx: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello from nginx\n" {
		t.Fatalf("nginx answered %s %q", resp.Status, body)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func TestNginxCheckRejectsBadConfig(t *testing.T) {
	t.Parallel()
	bin := LookPath(t, "nginx")
	dir := t.TempDir()
	file := filepath.Join(dir, "nginx.conf")
	conf := NginxHTTP("server {\n\tlisten 127.0.0.1:1;\n\tno_such_directive on;\n}")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := nginxCheck(bin, []string{"-p", dir + "/", "-c", file, "-e", "stderr", "-g", nginxGlobals})
	if err == nil || !strings.Contains(out, "no_such_directive") {
		t.Fatalf("nginx -t: %v, output %q; want a failure naming the directive", err, out)
	}
}
