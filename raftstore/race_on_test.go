//go:build race

package raftstore_test

// raceEnabled lets the fault tests shorten their histories under the race
// detector, which slows the store several times over.
const raceEnabled = true
