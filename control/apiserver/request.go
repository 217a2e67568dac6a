package apiserver

import (
	"net/http"
	"strings"

	"github.com/droverhq/drover/control/registry"
)

// requestInfo is what a URL and method ask for.
type requestInfo struct {
	resourceRequest bool
	path            string
	verb            string // get list watch create update patch delete deletecollection, or the lower-case method
	group, version  string
	resource        *registry.Resource
	resourceName    string // the plural as written, even when not served
	namespace       string
	name            string
	subresource     string
}

// parseRequest splits /api/v1/... and /apis/<group>/<version>/... paths the
// way kube-apiserver does. Paths that name no resource are non-resource
// requests (discovery, /version, /healthz, /openapi/v2).
func parseRequest(r *http.Request) *requestInfo {
	ri := &requestInfo{path: r.URL.Path, verb: strings.ToLower(r.Method)}
	parts := splitPath(r.URL.Path)
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		ri.version, parts = parts[1], parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		ri.group, ri.version, parts = parts[1], parts[2], parts[3:]
	default:
		return ri
	}
	ri.resourceRequest = true
	// namespaces/<ns>/<resource>/... unless it is the namespace itself
	// (namespaces/<name>[/status|/finalize]).
	if len(parts) >= 3 && parts[0] == "namespaces" && parts[2] != "status" && parts[2] != "finalize" {
		ri.namespace, parts = parts[1], parts[2:]
	}
	ri.resourceName = parts[0]
	ri.resource = registry.Lookup(ri.group, ri.version, parts[0])
	if len(parts) >= 2 {
		ri.name = parts[1]
	}
	if len(parts) >= 3 {
		ri.subresource = strings.Join(parts[2:], "/")
	}
	if ri.resource != nil && ri.resource.Name == "namespaces" && ri.name != "" {
		ri.namespace = ri.name
	}
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case ri.name == "" && (q.Get("watch") == "true" || q.Get("watch") == "1"):
			ri.verb = "watch"
		case ri.name == "":
			ri.verb = "list"
		default:
			ri.verb = "get"
		}
	case http.MethodPost:
		ri.verb = "create"
	case http.MethodPut:
		ri.verb = "update"
	case http.MethodPatch:
		ri.verb = "patch"
	case http.MethodDelete:
		if ri.name == "" {
			ri.verb = "deletecollection"
		} else {
			ri.verb = "delete"
		}
	}
	return ri
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
