package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Every proxy gets the same job: WebSocket proxying to one backend, a
// per-IP limit answering 429, room for maxConns connections, idle
// tunnels kept for an hour, no per-message limits, no request logging.
const (
	perIPLimit = 64    // open connections per client address
	maxConns   = 9900  // client connections per proxy
	nofile     = 20000 // descriptor limit of every proxy process
)

// settings are what a proxy configuration is generated from.
type settings struct {
	listen  string // host:port the proxy listens on
	backend string // host:port of the echo backend
	admin   string // host:port of wsguard's admin listener
	dir     string // the proxy's own temporary directory
}

// proxy is one of the systems compared.
type proxy struct {
	name   string
	config func(s settings) string
	// command returns the command line that runs the proxy in the
	// foreground on the configuration file cfg.
	command func(bin, cfg string, s settings) []string
	bin     string // resolved path of the executable
}

// nginxConfig is nginx with two workers (the machine's cores) and
// limit_conn answering 429 instead of its default 503.
func nginxConfig(s settings) string {
	return fmt.Sprintf(`worker_processes 2;
worker_rlimit_nofile %[1]d;
pid %[4]s/nginx.pid;
error_log %[4]s/error.log error;
events {
	worker_connections %[2]d;
}
http {
	access_log off;
	client_body_temp_path %[4]s/client_body_temp;
	proxy_temp_path %[4]s/proxy_temp;
	fastcgi_temp_path %[4]s/fastcgi_temp;
	uwsgi_temp_path %[4]s/uwsgi_temp;
	scgi_temp_path %[4]s/scgi_temp;
	limit_conn_zone $binary_remote_addr zone=perip:10m;
	limit_conn_log_level info;
	map $http_upgrade $connection_upgrade {
		default upgrade;
		'' close;
	}
	server {
		listen %[3]s;
		location / {
			limit_conn perip %[5]d;
			limit_conn_status 429;
			proxy_pass http://%[6]s;
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_read_timeout 1h;
			proxy_send_timeout 1h;
		}
	}
}
`, nofile, nofile-100, s.listen, s.dir, perIPLimit, s.backend)
}

// haproxyConfig is HAProxy with its default threads (one per core), a
// stick table counting current connections per source, and a 429 deny.
func haproxyConfig(s settings) string {
	return fmt.Sprintf(`global
	maxconn %[1]d
	ulimit-n %[2]d
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
	timeout http-request 5s
	timeout tunnel 1h
frontend fe
	bind %[3]s
	maxconn %[1]d
	stick-table type ip size 100k expire 1h store conn_cur
	tcp-request connection track-sc0 src
	http-request deny deny_status 429 if { sc_conn_cur(0) gt %[4]d }
	default_backend be
backend be
	server echo %[5]s maxconn %[1]d
`, maxConns, nofile, s.listen, perIPLimit, s.backend)
}

// wsguardConfig is wsguard with only the per-IP limit on: no handshake
// rate, no pings, no message rate, which nginx and HAProxy do not have
// either. Fair admission stays on but never engages below maxConns.
func wsguardConfig(s settings) string {
	return fmt.Sprintf(`listen: %q
admin_listen: %q
routes:
  - path: /
    upstream: http://%s
limits:
  max_connections: %d
  instance_max_connections: 0
  per_ip: %d
  handshake_rate: "0"
  pressure: 99%%
timeouts:
  idle: 1h
  ping_interval: 0s
messages:
  rate: "0"
log:
  level: warn
`, s.listen, s.admin, s.backend, maxConns, perIPLimit)
}

// proxies returns the three systems, wsguard running the binary wsguardBin.
func proxies(wsguardBin string) []*proxy {
	return []*proxy{
		{name: "wsguard", bin: wsguardBin, config: wsguardConfig,
			command: func(bin, cfg string, _ settings) []string {
				return []string{bin, "serve", "--config", cfg}
			}},
		{name: "nginx", bin: "nginx", config: nginxConfig,
			command: func(bin, cfg string, s settings) []string {
				return []string{bin, "-p", s.dir + "/", "-c", cfg, "-e", s.dir + "/error.log", "-g", "daemon off;"}
			}},
		{name: "haproxy", bin: "haproxy", config: haproxyConfig,
			command: func(bin, cfg string, _ settings) []string {
				return []string{bin, "-db", "-f", cfg}
			}},
	}
}

// lookPaths resolves the proxies' executables, or says which are missing
// and how to install them. It installs nothing.
func lookPaths(ps []*proxy) error {
	var missing []string
	for _, p := range ps {
		path, err := exec.LookPath(p.bin)
		if err != nil {
			for _, d := range []string{"/usr/sbin", "/sbin"} {
				if _, err2 := os.Stat(filepath.Join(d, p.bin)); err2 == nil {
					path, err = filepath.Join(d, p.bin), nil
				}
			}
		}
		if err != nil {
			missing = append(missing, p.bin)
			continue
		}
		p.bin = path
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: install the Debian packages (apt-get install %s)",
			strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	return nil
}

// running is a started proxy.
type running struct {
	*proxy
	addr       string
	cmd        *exec.Cmd
	log        string // file with its stdout and stderr
	unregister func()
}

// start writes p's configuration into a fresh directory under parent and
// runs p on it (with the descriptor limit setNofile gave this process),
// returning once it
// accepts connections.
func start(p *proxy, parent, backend string) (*running, error) {
	dir, err := os.MkdirTemp(parent, p.name)
	if err != nil {
		return nil, err
	}
	s := settings{listen: freeAddr(), backend: backend, admin: freeAddr(), dir: dir}
	cfg := filepath.Join(dir, p.name+".conf")
	if err := os.WriteFile(cfg, []byte(p.config(s)), 0o644); err != nil {
		return nil, err
	}
	args := p.command(p.bin, cfg, s)
	logFile, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", p.name, err)
	}
	r := &running{proxy: p, addr: s.listen, cmd: cmd, log: logFile.Name()}
	r.unregister = onInterrupt(r.kill)
	if err := waitTCP(s.listen, 15*time.Second); err != nil {
		r.stop()
		out, _ := os.ReadFile(r.log)
		return nil, fmt.Errorf("%s: %w\n%s", p.name, err, out)
	}
	return r, nil
}

// setNofile sets this process's descriptor limit to nofile, soft and
// hard, so every proxy inherits it (Go restores the limit it found for
// children only when the program never set one itself).
func setNofile() error {
	lim := &syscall.Rlimit{Cur: nofile, Max: nofile}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, lim); err != nil {
		return fmt.Errorf("setting the descriptor limit to %d: %w", nofile, err)
	}
	return nil
}

// stop ends the proxy (SIGTERM to its process group, SIGKILL after 5 s)
// and waits for it.
func (r *running) stop() {
	defer r.unregister()
	pid := r.cmd.Process.Pid
	syscall.Kill(-pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
}

// kill ends the proxy's process group at once, when the harness is
// interrupted.
func (r *running) kill() { syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL) }

// usage samples the proxy's whole process tree.
func (r *running) usage() usage { return sampleTree(r.cmd.Process.Pid) }
