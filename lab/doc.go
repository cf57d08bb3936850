// Package lab proves a defence: it attacks a WebSocket backend directly
// and again behind wsguard, measures both, and writes a report.
//
// # Arms
//
// For each Scenario, Run starts the backend as a child process with a
// descriptor limit of its own (Options.BackendNofile, set with the shell's
// `ulimit -n` before the backend's command is exec'd), and runs two arms:
//
//   - unprotected: the flood and the probe go straight to the backend;
//   - protected: a wsguard process (`wsguard serve`, Options.WSGuardBin) with
//     Options.Config stands in front of a fresh backend, and the flood and
//     the probe go to wsguard.
//
// Each arm has three phases on one clock (t=0 is the start of the attack):
// a short baseline, the attack (a flood.Run in this process), and a
// recovery phase after the attack, until the probe succeeds again or
// Options.RecoveryTimeout passes.
//
// # What is measured
//
// Every second the backend's and wsguard's process groups are read from
// /proc: open descriptors, resident memory, CPU time and established TCP
// connections. A probe (flood.ProbeOnce, a well-behaved user) runs every
// Options.ProbeInterval for the whole arm. An arm's figures are the probe's
// success rate and latency during the attack, the peaks of the samples,
// and the recovery time: from the end of the attack until the first probe
// started after it got its echo.
//
// # Report
//
// WriteReport writes results.json, report.md, report.html and PNG charts
// (connections, descriptors, probe success, CPU and memory over time, both
// arms on each chart).
//
// # Processes
//
// Lab uses wsguard only as an outsider would: it starts the binary and
// talks to it over loopback. Every process it starts gets a process group
// of its own and is stopped (SIGTERM, then SIGKILL) by that group's id when
// the arm ends, fails or is cancelled. Floods target loopback only and end
// by themselves.
package lab
