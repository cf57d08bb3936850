package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// The proxies run in process groups of their own (so nginx's workers stop
// with their master), where a terminal's Ctrl-C does not reach them. Every
// child the harness starts registers how to stop it here, and an
// interrupted harness stops them all before it exits.
var (
	stopMu   sync.Mutex
	stoppers = map[int]func(){} // guarded by stopMu
	nextStop int                // guarded by stopMu
)

// onInterrupt registers stop to run if the harness is interrupted and
// returns a function that unregisters it.
func onInterrupt(stop func()) (unregister func()) {
	stopMu.Lock()
	defer stopMu.Unlock()
	id := nextStop
	nextStop++
	stoppers[id] = stop
	return func() {
		stopMu.Lock()
		delete(stoppers, id)
		stopMu.Unlock()
	}
}

// handleInterrupts stops every registered child on SIGINT or SIGTERM and
// exits.
func handleInterrupts() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "compare: %v, stopping everything started\n", sig)
		stopMu.Lock()
		for _, stop := range stoppers {
			stop()
		}
		stopMu.Unlock()
		os.Exit(1)
	}()
}
