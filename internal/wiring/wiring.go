// Package wiring builds the shared parts of a guard from a config: the
// store, the admission policy and the authenticator. The gateway (relay)
// and the in-process package (wsguard) both use it, so that one config
// means the same thing in both.
package wiring

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsguard/wsguard/admission"
	"github.com/wsguard/wsguard/auth"
	"github.com/wsguard/wsguard/config"
	"github.com/wsguard/wsguard/metrics"
	"github.com/wsguard/wsguard/store"
)

// CounterStore is what a guard needs of its store: decisions, and how
// many counters it holds.
type CounterStore interface {
	store.Store
	Len() int
}

// Store returns the store cfg.Store names. The Redis store registers its
// metrics on reg (nil: none) and is returned a second time, to be closed
// with its owner and asked about readiness; it is nil for the memory
// store.
func Store(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (CounterStore, *store.Redis, error) {
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
	}
	if reg != nil {
		opts.Observer = metrics.NewStore(reg, mode.String())
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

// Policy maps the limits section onto admission's policy. The instance
// limit applies with the memory store only when it is below
// max_connections, which is per process there already.
func Policy(cfg config.Config) admission.Policy {
	l := cfg.Limits
	var tiers []admission.Tier
	for _, t := range l.PrefixTiers {
		tiers = append(tiers, admission.Tier{IPv4Prefix: t.IPv4Prefix, IPv6Prefix: t.IPv6Prefix, Limit: t.Limit})
	}
	instance := l.InstanceMaxConnections
	if cfg.Store.Kind != "redis" && instance >= l.MaxConnections {
		instance = 0
	}
	return admission.Policy{
		MaxConnections: l.MaxConnections,
		PerIP:          l.PerIP,
		IPv4Prefix:     l.IPv4Prefix,
		IPv6Prefix:     l.IPv6Prefix,
		HandshakeRate:  l.HandshakeRate.PerSecond(),
		HandshakeBurst: l.HandshakeBurst,
		RetryAfter:     l.RetryAfter.Std(),
		PerUser:        l.PerUser,
		AnonymousShare: float64(l.AnonymousShare),
		Tiers:          tiers,

		InstanceMaxConnections: instance,
	}
}

// Authenticator builds the authenticator of the auth section, or nil
// when no key source is set (auth off).
func Authenticator(ctx context.Context, a config.Auth, log *slog.Logger) (*auth.Authenticator, error) {
	if !a.Enabled() {
		return nil, nil
	}
	opts := auth.Options{
		Required:      a.Required,
		SecretFile:    a.JWT.SecretFile,
		PublicKeyFile: a.JWT.PublicKeyFile,
		JWKSFile:      a.JWT.JWKSFile,
		JWKSURL:       a.JWT.JWKSURL,
		JWKSRefresh:   a.JWT.JWKSRefresh.Std(),
		Issuer:        a.JWT.Issuer,
		Audience:      a.JWT.Audience,
		Leeway:        a.JWT.Leeway.Std(),
		UserClaim:     a.JWT.UserClaim,
		MaxTokenSize:  int(a.JWT.MaxTokenSize),
		QueryParam:    a.QueryParam,
		Cookie:        a.Cookie,
		Logger:        log,
	}
	for _, s := range a.TokenSources {
		src, err := auth.ParseSource(s)
		if err != nil {
			return nil, err
		}
		opts.Sources = append(opts.Sources, src)
	}
	authn, err := auth.New(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return authn, nil
}
