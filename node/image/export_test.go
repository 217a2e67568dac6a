package image

import (
	"context"
	"io"
)

// Test hooks for the external tests.

// PullWaiters is how many callers wait on the shared pull of ref.
func (s *Store) PullWaiters(ref string) int {
	p, err := s.parseRef(ref)
	if err != nil {
		return 0
	}
	return s.pulls.waiting(p.key)
}

// UnpackLayer unpacks one layer stream as a pull would.
func (s *Store) UnpackLayer(ctx context.Context, diffID string, r io.Reader) error {
	_, err := s.unpackLayer(ctx, diffID, r)
	return err
}

// LayerDir is where layer diffID lives.
func (s *Store) LayerDir(diffID string) string { return s.layerDir(diffID) }
