package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// FailureMode says what a shared store decides while Redis cannot answer.
type FailureMode uint8

// Failure modes.
const (
	// FailLocal decides on this instance alone, each fleet-wide limit
	// divided by the fleet size and rounded up.
	FailLocal FailureMode = iota
	// FailOpen admits without shared limits; instance limits still apply.
	FailOpen
	// FailClosed refuses: Acquire returns an error wrapping ErrUnavailable.
	FailClosed
)

// String returns the mode's name as written in the config.
func (m FailureMode) String() string {
	switch m {
	case FailLocal:
		return "local"
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	}
	return fmt.Sprintf("FailureMode(%d)", uint8(m))
}

// ParseFailureMode reads "local", "open" or "closed".
func ParseFailureMode(s string) (FailureMode, error) {
	for m := FailLocal; m <= FailClosed; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown failure mode %q (use local, open or closed)", s)
}

// Observer is told about a Redis store's health and round trips, for
// metrics; metrics.Store is one. Its methods must be safe for concurrent
// use and must not block.
type Observer interface {
	// StoreUp reports whether the store now decides with Redis.
	StoreUp(up bool)
	// StoreError counts a failed operation: "acquire", "release" or "sync".
	StoreError(op string)
	// StoreLatency records how long a successful operation took.
	StoreLatency(op string, d time.Duration)
}

// quietClient silences go-redis's own logger, once per process: the
// store logs its changes of state, and a line per failed dial during an
// outage would be the flood the logs must not carry.
var quietClient sync.Once

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) StoreUp(bool)                       {}
func (nopObserver) StoreError(string)                  {}
func (nopObserver) StoreLatency(string, time.Duration) {}
