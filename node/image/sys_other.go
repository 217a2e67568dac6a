//go:build !linux

package image

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// The image store unpacks layers and mounts root filesystems only on
// Linux; elsewhere the package builds (so the CLI does) and these fail.

var errUnsupported = fmt.Errorf("image: %w on this OS (Linux only)", errors.ErrUnsupported)

const (
	modeChar = 0o020000
	modeBlk  = 0o060000
	modeFIFO = 0o010000
)

var errLocked = errors.New("locked")

func mknodAt(*os.File, string, uint32, uint32, uint32) error  { return errUnsupported }
func whiteoutAt(*os.File, string) error                       { return errUnsupported }
func setXattr(*os.File, string, []byte) error                 { return errUnsupported }
func getXattr(string, string) ([]byte, error)                 { return nil, errUnsupported }
func setTimesAt(*os.File, string, time.Time, time.Time) error { return errUnsupported }
func syncFS(*os.File) error                                   { return nil }
func flock(*os.File, bool, bool) error                        { return nil }
func mountOverlay([]string, string, string, string) error     { return errUnsupported }
func unmount(string) error                                    { return nil }
func isMountPoint(string) (bool, error)                       { return false, nil }
func processAlive(int) bool                                   { return true }
