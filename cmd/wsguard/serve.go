package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/admin"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/metrics"
	"github.com/wsguard/wsguard/relay"
)

// serveFlags are the command-line settings of serve; a flag given on the
// command line overrides the config file.
type serveFlags struct {
	fs          *flag.FlagSet
	configFile  string
	listen      string
	adminListen string
	upstream    string
	logFormat   string
	logLevel    string
	demo        bool
}

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	f := &serveFlags{fs: flag.NewFlagSet("serve", flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.configFile, "config", "", "YAML config `file` (optional)")
	f.fs.StringVar(&f.listen, "listen", ":8080", "public listen `address`")
	f.fs.StringVar(&f.adminListen, "admin-listen", "127.0.0.1:9090", "admin listen `address` (health, metrics); empty turns it off")
	f.fs.StringVar(&f.upstream, "upstream", "", "upstream `URL` for every path (replaces the file's routes)")
	f.fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	f.fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.fs.BoolVar(&f.demo, "demo-backend", false, "start a built-in echo backend on loopback and proxy to it")
	if err := f.fs.Parse(args); err != nil {
		return nil, err
	}
	if f.fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", f.fs.Arg(0))
	}
	return f, nil
}

// load reads the config file (if any) and applies the flags given on the
// command line over it.
func (f *serveFlags) load() (config.Config, error) {
	cfg := config.Default()
	if f.configFile != "" {
		var err error
		if cfg, err = config.Load(f.configFile); err != nil {
			return cfg, err
		}
	}
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "listen":
			cfg.Listen = f.listen
		case "admin-listen":
			cfg.AdminListen = f.adminListen
		case "log-format":
			cfg.Log.Format = f.logFormat
		case "log-level":
			cfg.Log.Level = f.logLevel
		}
	})
	if f.upstream != "" {
		cfg.Routes = []config.Route{cfg.NewRoute("/", f.upstream)}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func serve(args []string, stderr io.Writer) int {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "wsguard serve:", err)
		return 2
	}
	if f.demo && f.upstream == "" {
		addr, stop, err := startDemoBackend()
		if err != nil {
			fmt.Fprintln(stderr, "wsguard serve: starting demo backend:", err)
			return 1
		}
		defer stop()
		f.upstream = "http://" + addr
	}
	cfg, err := f.load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	level := new(slog.LevelVar)
	log := newLogger(stderr, cfg.Log, level)
	if f.demo {
		log.Info("demo echo backend started", slog.String("upstream", f.upstream))
	}
	if err := runServer(f, cfg, log, level); err != nil {
		log.Error("wsguard stopped", slog.String("error", err.Error()))
		return 1
	}
	return 0
}

// runServer serves until SIGTERM or SIGINT, reloading on SIGHUP.
func runServer(f *serveFlags, cfg config.Config, log *slog.Logger, level *slog.LevelVar) error {
	// Catch signals before anything listens: once the admin listener
	// answers, a SIGTERM must drain and a SIGHUP reload, not kill.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	reg := prometheus.NewRegistry()
	metrics.RegisterProcess(reg)
	srv, err := relay.New(cfg, relay.Options{Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	// No TCP keepalive on accepted sockets: the guard's pings, pong
	// deadline and idle timeout find dead peers, and during a handshake
	// flood the setsockopt calls were 4% of the CPU spent per refusal.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()

	var adminSrv *http.Server
	if cfg.AdminListen != "" {
		opts, err := adminOptions(cfg, reg, sigs)
		if err != nil {
			ln.Close()
			return err
		}
		opts.Ready = srv.StoreReady
		aln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening for admin: %w", err)
		}
		adminSrv = &http.Server{
			Handler:           admin.Handler(srv, opts),
			ReadHeaderTimeout: 5 * time.Second,
		}
		go adminSrv.Serve(aln)
		log.Info("admin listening", slog.String("addr", aln.Addr().String()))
	}
	log.Info("wsguard listening", slog.String("addr", ln.Addr().String()), slog.Bool("tls", cfg.TLS.Enabled()),
		slog.Int("routes", len(cfg.Routes)), slog.Int("max_connections", cfg.Limits.MaxConnections),
		slog.String("version", buildVersion()))

	for {
		select {
		case err := <-serveErr:
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				cfg = reload(f, cfg, srv, log, level)
				continue
			}
			log.Info("draining", slog.String("signal", sig.String()),
				slog.Int("open", srv.Stats().Open), slog.Duration("drain", cfg.Timeouts.Drain.Std()))
			ctx, cancel := context.WithTimeout(context.Background(),
				cfg.Timeouts.Drain.Std()+cfg.Timeouts.Close.Std()+time.Second)
			err := srv.Shutdown(ctx)
			cancel()
			if adminSrv != nil {
				adminSrv.Close()
			}
			if err != nil {
				log.Warn("drain cut short", slog.String("error", err.Error()))
			}
			log.Info("stopped")
			return nil
		}
	}
}

// adminOptions builds the admin API's options. A drain asked for through
// the API takes the same path as SIGTERM.
func adminOptions(cfg config.Config, reg *prometheus.Registry, sigs chan os.Signal) (admin.Options, error) {
	opts := admin.Options{
		Gatherer:     reg,
		FDReadyShare: float64(cfg.Admin.ReadyFDShare),
		Drain: func() {
			select {
			case sigs <- syscall.SIGTERM:
			default:
			}
		},
	}
	if cfg.Admin.TokenFile != "" {
		b, err := os.ReadFile(cfg.Admin.TokenFile)
		if err != nil {
			return opts, fmt.Errorf("admin.token_file: %w", err)
		}
		opts.Token = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if opts.Token == "" {
			return opts, fmt.Errorf("admin.token_file %s is empty", cfg.Admin.TokenFile)
		}
	}
	opts.Open = opts.Token == "" && admin.IsLoopback(cfg.AdminListen)
	return opts, nil
}

// reload re-reads the config on SIGHUP. A bad file is logged and the old
// config stays in force.
func reload(f *serveFlags, old config.Config, srv *relay.Server, log *slog.Logger, level *slog.LevelVar) config.Config {
	cfg, err := f.load()
	if err == nil {
		err = srv.Reload(cfg)
	}
	if err != nil {
		log.Error("reload refused; the previous config stays in force",
			slog.String("error", strings.ReplaceAll(err.Error(), "\n", "; ")))
		return old
	}
	if cfg.Listen != old.Listen || cfg.AdminListen != old.AdminListen {
		log.Warn("listen addresses change only on restart")
	}
	if !reflect.DeepEqual(cfg.Store, old.Store) {
		log.Warn("store settings change only on restart")
	}
	level.Set(parseLevel(cfg.Log.Level))
	log.Info("config reloaded", slog.Int("routes", len(cfg.Routes)),
		slog.Int("max_connections", cfg.Limits.MaxConnections))
	return cfg
}

func newLogger(w io.Writer, c config.Log, level *slog.LevelVar) *slog.Logger {
	level.Set(parseLevel(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
