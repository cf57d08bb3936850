//go:build !unix

package config

// nofileLimit returns fallbackNofile where descriptor limits cannot be
// read.
func nofileLimit() uint64 { return fallbackNofile }
