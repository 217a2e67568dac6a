//go:build !linux

package network

import "os"

func createNetNS(string) error             { return ErrUnsupported }
func isNetNS(string) bool                  { return false }
func withNetNS(string, func() error) error { return ErrUnsupported }
func removeNetNS(string) error             { return nil }
func lockFile(string) (*os.File, error)    { return nil, ErrUnsupported }
