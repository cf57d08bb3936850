package relay

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/metrics"
	"github.com/wsguard/wsguard/store"
)

// counterStore is what the server needs of its store: decisions, and how
// many counters it holds for Stats.
type counterStore interface {
	store.Store
	Len() int
}

// newStore returns the store cfg.Store names. The Redis store comes with
// its own metrics on reg and is returned a second time, to be closed
// with the server and asked about readiness; it is nil for the memory
// store.
func newStore(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (counterStore, *store.Redis, error) {
	s := cfg.Store
	if s.Kind != "redis" {
		return store.NewMemory(), nil, nil
	}
	mode, err := store.ParseFailureMode(s.OnFailure)
	if err != nil {
		return nil, nil, fmt.Errorf("store.on_failure: %w", err)
	}
	var password string
	if f := s.Redis.PasswordFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("store.redis.password_file: %w", err)
		}
		password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	opts := store.RedisOptions{
		Addrs:     s.Redis.Addrs,
		Addr:      s.Redis.Addr,
		Username:  s.Redis.Username,
		Password:  password,
		DB:        s.Redis.DB,
		KeyPrefix: s.Redis.KeyPrefix,
		LeaseTTL:  s.Redis.LeaseTTL.Std(),
		Timeout:   s.Timeout.Std(),
		OnFailure: mode,
		FleetSize: s.FleetSize,
		Logger:    log,
		Observer:  metrics.NewStore(reg, mode.String()),
	}
	if s.Redis.TLS {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	r, err := store.NewRedis(opts)
	if err != nil {
		return nil, nil, err
	}
	return r, r, nil
}

// instanceLimit returns the per-process limit admission enforces. With
// the memory store max_connections is per process already, so a looser
// instance limit would only cost a counter.
func instanceLimit(cfg config.Config) int {
	l := cfg.Limits
	if cfg.Store.Kind != "redis" && l.InstanceMaxConnections >= l.MaxConnections {
		return 0
	}
	return l.InstanceMaxConnections
}

// StoreReady returns "" when the store can admit handshakes, or why it
// cannot (Redis unreachable with store.on_failure: closed), for /readyz.
func (s *Server) StoreReady() string {
	if s.shared == nil {
		return ""
	}
	return s.shared.Ready()
}
