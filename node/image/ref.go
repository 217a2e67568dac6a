package image

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHub is how the store writes Docker Hub in image names, as
// Kubernetes shows them ("docker.io/library/busybox:latest").
const dockerHub = "docker.io"

// parsedRef is an image reference resolved against the store's settings.
type parsedRef struct {
	ref name.Reference
	key string // the canonical name the index uses
}

// parseRef resolves ref the way Docker and Kubernetes do ("busybox" is
// docker.io/library/busybox:latest). Registries listed as insecure are
// reached over plain HTTP.
func (s *Store) parseRef(ref string) (parsedRef, error) {
	r, err := name.ParseReference(ref)
	if err != nil || strings.TrimSpace(ref) != ref {
		return parsedRef{}, fmt.Errorf("%w: %q", ErrInvalidName, ref)
	}
	if s.insecure[registryKey(r.Context().RegistryStr())] {
		if r, err = name.ParseReference(ref, name.Insecure); err != nil {
			return parsedRef{}, fmt.Errorf("%w: %q", ErrInvalidName, ref)
		}
	}
	return parsedRef{ref: r, key: canonicalName(r)}, nil
}

// CanonicalName is ref written out in full ("nginx" is
// "docker.io/library/nginx:latest"), the name the store files an image
// under; ok is false when ref is not a valid image reference.
func CanonicalName(ref string) (string, bool) {
	r, err := name.ParseReference(ref)
	if err != nil || strings.TrimSpace(ref) != ref {
		return "", false
	}
	return canonicalName(r), true
}

func canonicalName(r name.Reference) string {
	repo := registryKey(r.Context().RegistryStr()) + "/" + r.Context().RepositoryStr()
	switch r := r.(type) {
	case name.Digest:
		return repo + "@" + r.DigestStr()
	case name.Tag:
		return repo + ":" + r.TagStr()
	}
	return r.Name()
}

// registryKey normalizes a registry host: Docker Hub's several names
// become docker.io; a scheme and trailing slash are dropped.
func registryKey(host string) string {
	host = strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	host = strings.TrimSuffix(host, "/")
	switch host {
	case name.DefaultRegistry, "registry-1.docker.io", dockerHub:
		return dockerHub
	}
	return host
}
