package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// maxJWKSSize bounds a fetched JWKS document. Real sets are a few KiB;
// the bound keeps a broken or hostile key server from filling memory.
const maxJWKSSize = 1 << 20

// remoteSet is a JWKS fetched from a URL and refreshed in the background
// and on demand. Readers never block on a fetch unless they ask to: the
// current keys sit behind an atomic pointer and are replaced whole, only
// by a fetch that succeeded, so a failing key server leaves the last good
// keys in place.
type remoteSet struct {
	url     string
	client  *http.Client
	log     *slog.Logger
	now     func() time.Time
	minGap  time.Duration // between fetches for unknown key IDs; negative: none
	timeout time.Duration // per fetch, when client has no timeout of its own

	keys atomic.Pointer[[]key]

	mu          sync.Mutex    // guards the fields below
	running     chan struct{} // closed when the fetch in progress ends; nil when none is
	lastUnknown time.Time     // when an unknown key ID last started a fetch
}

// newRemoteSet fetches rawURL once and returns the set, or an error
// naming rawURL if that first fetch fails.
func newRemoteSet(
	ctx context.Context, rawURL string, opts *Options, now func() time.Time,
) (*remoteSet, error) {
	r := &remoteSet{
		url:     rawURL,
		client:  opts.HTTPClient,
		log:     opts.Logger,
		now:     now,
		minGap:  opts.UnknownKIDRefresh,
		timeout: defaultHTTPTimeout,
	}
	if u, err := url.Parse(rawURL); err == nil && u.Scheme == "http" {
		// Whoever can change the set in transit can mint any token.
		r.log.Warn("jwks url is not https", slog.String("url", rawURL))
	}
	keys, err := r.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS URL %s: %w", rawURL, err)
	}
	r.keys.Store(&keys)
	return r, nil
}

// current returns the keys of the last successful fetch. The slice is
// shared: read it, never modify it.
func (r *remoteSet) current() []key {
	return *r.keys.Load()
}

// run refreshes the set every interval until ctx is done.
func (r *remoteSet) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.refresh(ctx, false)
		}
	}
}

// refreshUnknown is called when a token names a key ID the set lacks. It
// waits for a fetch already in progress, or starts one if the last fetch
// for an unknown key ID is at least minGap old, and reports whether the
// set may have changed. Otherwise it returns false at once: a flood of
// made-up key IDs never queues behind the rate limit.
func (r *remoteSet) refreshUnknown(ctx context.Context) bool {
	return r.refresh(ctx, true)
}

// refresh fetches the set and replaces the keys if the fetch succeeds.
// Concurrent callers share one fetch. With unknown set, a new fetch
// starts only if the unknown-key-ID rate limit allows it. It reports
// whether a fetch ran (or was joined) to its end.
func (r *remoteSet) refresh(ctx context.Context, unknown bool) bool {
	r.mu.Lock()
	if done := r.running; done != nil {
		r.mu.Unlock()
		select {
		case <-done:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if unknown {
		now := r.now()
		if r.minGap < 0 || (!r.lastUnknown.IsZero() && now.Sub(r.lastUnknown) < r.minGap) {
			r.mu.Unlock()
			return false
		}
		r.lastUnknown = now
	}
	done := make(chan struct{})
	r.running = done
	r.mu.Unlock()

	r.update(ctx)

	r.mu.Lock()
	r.running = nil
	r.mu.Unlock()
	close(done)
	return true
}

// update fetches the set and stores its keys, or logs why it could not
// and keeps the old ones.
func (r *remoteSet) update(ctx context.Context) {
	keys, err := r.fetch(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("jwks refresh failed, keeping previous keys",
				slog.String("url", r.url), slog.String("error", err.Error()),
				slog.Int("keys", len(r.current())))
		}
		return
	}
	r.keys.Store(&keys)
	r.log.Debug("jwks refreshed", slog.String("url", r.url), slog.Int("keys", len(keys)))
}

// fetch gets and parses the set. A set with no usable key is an error,
// so an outage that serves an empty set does not lock every user out.
func (r *remoteSet) fetch(ctx context.Context) ([]key, error) {
	if r.client.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")

	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if len(body) > maxJWKSSize {
		return nil, errors.New("body larger than 1 MiB")
	}
	return parseJWKS(body, r.url, r.log)
}
