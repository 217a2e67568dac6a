package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Mapping is what discovery says about one resource in one group version.
type Mapping struct {
	Group      string // "" for the core group
	Version    string
	Resource   string // plural, lower case: "deployments"
	Singular   string // "deployment"
	Kind       string // "Deployment"
	ShortNames []string
	Categories []string // "all" and the like
	Verbs      []string
	Namespaced bool
	// Subresources lists e.g. "status", "scale".
	Subresources []string
}

// GroupVersion is the mapping's group and version.
func (m Mapping) GroupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: m.Group, Version: m.Version}
}

// GVR is the mapping's group, version and resource.
func (m Mapping) GVR() schema.GroupVersionResource { return m.GroupVersion().WithResource(m.Resource) }

// GVK is the mapping's group, version and kind.
func (m Mapping) GVK() schema.GroupVersionKind { return m.GroupVersion().WithKind(m.Kind) }

// APIVersion is the apiVersion objects of this resource carry: "v1", "apps/v1".
func (m Mapping) APIVersion() string { return m.GroupVersion().String() }

// KindName is how kubectl names the kind in its messages: lower-case kind
// with the group, "pod", "deployment.apps".
func (m Mapping) KindName() string {
	if m.Group == "" {
		return strings.ToLower(m.Kind)
	}
	return strings.ToLower(m.Kind) + "." + m.Group
}

// GroupResource is the plural with the group, "pods", "deployments.apps",
// as the server names resources in its error messages.
func (m Mapping) GroupResource() string {
	if m.Group == "" {
		return m.Resource
	}
	return m.Resource + "." + m.Group
}

// HasSubresource reports whether discovery listed resource/sub.
func (m Mapping) HasSubresource(sub string) bool { return slices.Contains(m.Subresources, sub) }

// NoResourceError is returned when no served resource matches a name.
type NoResourceError struct{ Name string }

func (e *NoResourceError) Error() string {
	return fmt.Sprintf("the server doesn't have a resource type %q", e.Name)
}

// NoKindError is returned when no served resource has a kind.
type NoKindError struct{ APIVersion, Kind string }

func (e *NoKindError) Error() string {
	return fmt.Sprintf("no matches for kind %q in version %q", e.Kind, e.APIVersion)
}

// IsNoMatch reports a NoResourceError or NoKindError.
func IsNoMatch(err error) bool {
	var r *NoResourceError
	var k *NoKindError
	return errors.As(err, &r) || errors.As(err, &k)
}

// Mapper resolves what users type (plural, singular, short name, kind, each
// optionally qualified by group or version.group) to a Mapping. It is built
// from discovery and is read-only.
type Mapper struct {
	mappings []Mapping // core first, then groups in server order; preferred version first
}

// NewMapper builds a Mapper from a fixed list, in priority order.
func NewMapper(ms []Mapping) *Mapper { return &Mapper{mappings: slices.Clone(ms)} }

// Mappings returns every mapping, in priority order.
func (m *Mapper) Mappings() []Mapping { return slices.Clone(m.mappings) }

// ResourceFor resolves a resource argument: "pods", "pod", "po", "Pod",
// "deployments.apps", "deploy.v1.apps".
func (m *Mapper) ResourceFor(arg string) (Mapping, error) {
	name := strings.ToLower(strings.TrimSpace(arg))
	if name == "" {
		return Mapping{}, &NoResourceError{Name: arg}
	}
	type filter struct{ group, version string }
	filters := []filter{{}}
	anyGroup := true
	if r, rest, ok := strings.Cut(name, "."); ok {
		name, anyGroup = r, false
		filters = []filter{{group: rest}}
		// "deploy.v1.apps": a version followed by a group.
		if v, g, ok := strings.Cut(rest, "."); ok {
			filters = append([]filter{{group: g, version: v}}, filters...)
		}
	}
	matchers := []func(Mapping) bool{
		func(mp Mapping) bool { return mp.Resource == name },
		func(mp Mapping) bool { return mp.Singular == name },
		func(mp Mapping) bool { return slices.Contains(mp.ShortNames, name) },
		func(mp Mapping) bool { return strings.EqualFold(mp.Kind, name) },
	}
	for _, f := range filters {
		for _, match := range matchers {
			for _, mp := range m.mappings {
				if !anyGroup && (mp.Group != f.group || (f.version != "" && mp.Version != f.version)) {
					continue
				}
				if match(mp) {
					return mp, nil
				}
			}
		}
	}
	return Mapping{}, &NoResourceError{Name: arg}
}

// KindFor finds the resource serving apiVersion/kind, as in a manifest.
func (m *Mapper) KindFor(apiVersion, kind string) (Mapping, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return Mapping{}, err
	}
	for _, mp := range m.mappings {
		if mp.Group == gv.Group && mp.Version == gv.Version && mp.Kind == kind {
			return mp, nil
		}
	}
	return Mapping{}, &NoKindError{APIVersion: apiVersion, Kind: kind}
}

// Category returns the resources in a discovery category ("all"), in
// priority order, one version per resource.
func (m *Mapper) Category(name string) []Mapping {
	var out []Mapping
	seen := map[string]bool{}
	for _, mp := range m.mappings {
		if slices.Contains(mp.Categories, name) && !seen[mp.GroupResource()] {
			seen[mp.GroupResource()] = true
			out = append(out, mp)
		}
	}
	return out
}

// Mapper returns the client's discovery result, fetching it on first use.
func (c *Client) Mapper(ctx context.Context) (*Mapper, error) {
	c.mu.Lock()
	m := c.mapper
	c.mu.Unlock()
	if m != nil {
		return m, nil
	}
	m, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.mapper = m
	c.mu.Unlock()
	return m, nil
}

// ResetMapper drops the cached discovery result (after the server's set of
// resources changed).
func (c *Client) ResetMapper() {
	c.mu.Lock()
	c.mapper = nil
	c.mu.Unlock()
}

// ServerGroups reads /apis.
func (c *Client) ServerGroups(ctx context.Context) (*metav1.APIGroupList, error) {
	var groups metav1.APIGroupList
	return &groups, c.getJSON(ctx, "/apis", &groups)
}

// ServerResources reads the resource list of one group version.
func (c *Client) ServerResources(ctx context.Context, gv schema.GroupVersion) (*metav1.APIResourceList, error) {
	var list metav1.APIResourceList
	return &list, c.getJSON(ctx, groupVersionPath(gv.Group, gv.Version), &list)
}

func (c *Client) discover(ctx context.Context) (*Mapper, error) {
	var core metav1.APIVersions
	if err := c.getJSON(ctx, "/api", &core); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var gvs []schema.GroupVersion
	for _, v := range core.Versions {
		gvs = append(gvs, schema.GroupVersion{Version: v})
	}
	groups, err := c.ServerGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	for _, g := range groups.Groups {
		pref := g.PreferredVersion.Version
		if pref != "" {
			gvs = append(gvs, schema.GroupVersion{Group: g.Name, Version: pref})
		}
		for _, v := range g.Versions {
			if v.Version != pref {
				gvs = append(gvs, schema.GroupVersion{Group: g.Name, Version: v.Version})
			}
		}
	}

	// One request per group version, concurrently; results keep their order.
	lists := make([]*metav1.APIResourceList, len(gvs))
	errs := make([]error, len(gvs))
	var wg sync.WaitGroup
	for i, gv := range gvs {
		wg.Go(func() { lists[i], errs[i] = c.ServerResources(ctx, gv) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var ms []Mapping
	for i, gv := range gvs {
		ms = append(ms, mappingsFromList(gv, lists[i])...)
	}
	return &Mapper{mappings: ms}, nil
}

// mappingsFromList turns one APIResourceList into mappings, attaching
// "x/sub" entries to x as subresources.
func mappingsFromList(gv schema.GroupVersion, list *metav1.APIResourceList) []Mapping {
	var out []Mapping
	index := map[string]int{}
	for _, r := range list.APIResources {
		if !strings.Contains(r.Name, "/") {
			singular := r.SingularName
			if singular == "" {
				singular = strings.ToLower(r.Kind)
			}
			index[r.Name] = len(out)
			out = append(out, Mapping{
				Group: gv.Group, Version: gv.Version, Resource: r.Name, Singular: singular, Kind: r.Kind,
				ShortNames: r.ShortNames, Categories: r.Categories, Verbs: r.Verbs, Namespaced: r.Namespaced,
			})
		}
	}
	for _, r := range list.APIResources {
		if parent, sub, ok := strings.Cut(r.Name, "/"); ok {
			if i, ok := index[parent]; ok {
				out[i].Subresources = append(out[i].Subresources, sub)
			}
		}
	}
	return out
}

func (c *Client) getJSON(ctx context.Context, path string, into any) error {
	body, err := c.do(ctx, request{method: http.MethodGet, path: path})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s: decoding response: %w", path, err)
	}
	return nil
}

func groupVersionPath(group, version string) string {
	if group == "" {
		return "/api/" + version
	}
	return "/apis/" + group + "/" + version
}
