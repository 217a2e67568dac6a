package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// PullPolicy is a container's imagePullPolicy.
type PullPolicy string

const (
	PullAlways       PullPolicy = "Always"
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullNever        PullPolicy = "Never"
)

// DefaultPullPolicy is Kubernetes's default for ref: Always for the
// latest tag (or no tag), IfNotPresent otherwise.
func DefaultPullPolicy(ref string) PullPolicy {
	r, err := name.ParseReference(ref)
	if err != nil {
		return PullIfNotPresent
	}
	if t, ok := r.(name.Tag); ok && t.TagStr() == "latest" {
		return PullAlways
	}
	return PullIfNotPresent
}

// Ensure makes ref present as policy says and returns it:
//   - Never: the image must be in the store (ErrImageNeverPull if not);
//   - IfNotPresent: pulled only when absent;
//   - Always: resolved at the registry every time; layers already in the
//     store are not downloaded again, and an unchanged digest downloads
//     nothing;
//   - "": DefaultPullPolicy(ref).
//
// Pull failures wrap ErrPull; a bad reference is ErrInvalidName.
func (s *Store) Ensure(ctx context.Context, ref string, policy PullPolicy, creds []Credential) (*Image, error) {
	p, err := s.parseRef(ref)
	if err != nil {
		return nil, err
	}
	if policy == "" {
		policy = DefaultPullPolicy(ref)
	}
	switch policy {
	case PullNever, PullIfNotPresent:
		if img, err := s.Get(p.key); err == nil {
			// Last-used times only matter on GC's scale (hours): skip the
			// synced index rewrite when the image was used a moment ago, so
			// a burst of container starts does not queue on the index lock.
			if s.now().Sub(img.LastUsed) > touchEvery {
				s.touch(img.Ref)
			}
			return img, nil
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if policy == PullNever {
			return nil, fmt.Errorf("%w: container image %q is not present", ErrImageNeverPull, ref)
		}
	case PullAlways:
	default:
		return nil, fmt.Errorf("image: unknown pull policy %q", policy)
	}
	return s.Pull(ctx, ref, creds, nil)
}

// touch records that ref was just used.
// touchEvery is how stale an image's last-used time may get before Ensure
// records a new one.
const touchEvery = time.Minute

func (s *Store) touch(ref string) {
	err := s.update(func(idx map[string]*Image) error {
		if img, ok := idx[ref]; ok {
			img.LastUsed = s.now().UTC()
		}
		return nil
	})
	if err != nil {
		s.log.Warn("recording image use", "image", ref, "err", err)
	}
}

// Pull fetches ref from its registry (the configured platform's image
// when ref names an index) and stores it. Credentials that match the
// registry (see Credential) are tried in turn, most specific first; with
// none, the pull is anonymous. progress (may be nil) hears about each
// layer; calls to it do not overlap.
//
// Concurrent pulls of one name share one download: each caller gets the
// result and the progress; the download stops only when every caller has
// given up. The first caller's credentials are the ones used.
//
// Failures wrap ErrPull.
func (s *Store) Pull(ctx context.Context, ref string, creds []Credential, progress func(Progress)) (*Image, error) {
	p, err := s.parseRef(ref)
	if err != nil {
		return nil, err
	}
	v, err := s.pulls.do(ctx, p.key, progress, func(ctx context.Context, emit func(Progress)) (any, error) {
		return s.pull(ctx, p, creds, emit)
	})
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrPull, ref, err)
	}
	return v.(*Image).clone(), nil
}

func (s *Store) pull(ctx context.Context, p parsedRef, creds []Credential, emit func(Progress)) (*Image, error) {
	start := s.now()
	tr := &httpsOnly{base: s.transport, insecure: s.insecure}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithPlatform(s.platform),
		remote.WithUserAgent("drover"),
		remote.WithTransport(tr),
	}
	repo := p.ref.Context()
	matching := matchingCredentials(creds, repo.RegistryStr(), repo.RepositoryStr())
	auths := []authn.Authenticator{authn.Anonymous}
	if len(matching) > 0 {
		auths = auths[:0]
		for _, c := range matching {
			auths = append(auths, c.authenticator())
		}
	}
	var desc *remote.Descriptor
	var err error
	for i, a := range auths {
		desc, err = remote.Get(p.ref, append(opts, remote.WithAuth(a))...)
		if err == nil || !isAuthError(err) {
			break
		}
		if i < len(auths)-1 {
			s.log.Debug("registry refused a credential; trying the next", "image", p.key, "err", err)
		}
	}
	if err != nil {
		if tr.refused.Load() {
			err = fmt.Errorf("%w (the registry may speak only plain HTTP; list %s as an insecure registry to allow that)", err, registryKey(repo.RegistryStr()))
		}
		return nil, err
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	digest := desc.Digest.String()
	manifest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	if cur, err := s.Get(p.key); err == nil && cur.Digest == digest && cur.Manifest == manifest.String() {
		s.touch(cur.Ref)
		emit(Progress{Ref: p.key, Phase: PhaseDone, Count: len(cur.Layers), Digest: digest})
		s.log.Debug("image up to date", "image", p.key, "digest", digest)
		return cur, nil
	}
	rec, err := s.install(ctx, p.key, digest, manifest.String(), img, srcCompressed, emit)
	if err != nil {
		return nil, err
	}
	s.log.Info("pulled image", "image", p.key, "digest", digest, "size", rec.Size, "layers", len(rec.Layers), "took", s.now().Sub(start))
	return rec, nil
}

// isAuthError reports whether the registry refused the credentials.
func isAuthError(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden
	}
	return false
}

// httpsOnly refuses plain-HTTP requests to hosts not listed as insecure.
// go-containerregistry on its own also speaks HTTP to loopback,
// private-range and .local registries; the store does not.
type httpsOnly struct {
	base     http.RoundTripper
	insecure map[string]bool
	refused  atomic.Bool // a plain-HTTP request was refused
}

func (h *httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !h.insecure[registryKey(req.URL.Host)] {
		if req.Body != nil {
			req.Body.Close()
		}
		h.refused.Store(true)
		return nil, fmt.Errorf("refusing plain HTTP to %s: not one of the insecure registries", req.URL.Host)
	}
	return h.base.RoundTrip(req)
}
