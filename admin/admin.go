// Package admin serves the operator's side of wsguard on its own
// listener: liveness and readiness, Prometheus metrics, and a JSON view
// of the gateway's counts. It is never mounted on the public listener.
package admin

import (
	"encoding/json"
	"net/http"
	"os"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsguard/wsguard/relay"
)

// Source is what the admin handler reports on; *relay.Server is one.
type Source interface {
	Stats() relay.Stats
	Draining() bool
}

// Options configure Handler.
type Options struct {
	// Gatherer serves /metrics. Nil: prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// FDReadyShare marks the gateway not ready when open descriptors
	// exceed this share of the limit. Zero: 0.95.
	FDReadyShare float64
}

// Handler returns the admin HTTP handler:
//
//	GET /healthz          200 while the process runs
//	GET /readyz           200 when it should get traffic; 503 while draining
//	                      or near the descriptor limit
//	GET /metrics          Prometheus metrics
//	GET /admin/api/stats  JSON counts (relay.Stats)
func Handler(src Source, opts Options) http.Handler {
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.DefaultGatherer
	}
	if opts.FDReadyShare == 0 {
		opts.FDReadyShare = 0.95
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case src.Draining():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case fdShare() > opts.FDReadyShare:
			http.Error(w, "near the file descriptor limit", http.StatusServiceUnavailable)
		default:
			w.Write([]byte("ready\n"))
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /admin/api/stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(src.Stats())
	})
	return mux
}

// fdShare returns open descriptors over the soft limit, or 0 if unknown.
func fdShare() float64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == 0 {
		return 0
	}
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0
	}
	return float64(len(names)) / float64(lim.Cur)
}
