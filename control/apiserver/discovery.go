package apiserver

import (
	"encoding/json"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strings"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/droverhq/drover/control/printers"
	"github.com/droverhq/drover/control/registry"
)

// KubernetesVersion is the Kubernetes API version drover follows.
const KubernetesVersion = "v1.34.2"

// serveNonResource answers discovery, version, health and OpenAPI.
func (s *Server) serveNonResource(w http.ResponseWriter, r *http.Request, ri *requestInfo) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeStatus(w, methodNotAllowed(r, ri))
		return
	}
	parts := splitPath(ri.path)
	switch {
	case ri.path == "/healthz" || ri.path == "/livez" || ri.path == "/readyz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok"))
	case ri.path == "/cacerts":
		if s.cfg.CACert == nil || len(s.cfg.CACert()) == 0 {
			writeStatus(w, notFoundPath())
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(s.cfg.CACert())
	case ri.path == "/version" || ri.path == "/version/":
		writeJSON(w, http.StatusOK, s.versionInfo())
	case ri.path == "/api":
		writeJSON(w, http.StatusOK, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: hostOf(r)}}})
	case ri.path == "/apis":
		writeJSON(w, http.StatusOK, apiGroupList())
	case len(parts) == 2 && parts[0] == "apis":
		for _, g := range apiGroupList().Groups {
			if g.Name == parts[1] {
				g := g
				g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
				writeJSON(w, http.StatusOK, &g)
				return
			}
		}
		writeStatus(w, notFoundPath())
	case len(parts) == 2 && parts[0] == "api" && parts[1] == "v1":
		writeJSON(w, http.StatusOK, resourceList(schema.GroupVersion{Version: "v1"}))
	case len(parts) == 3 && parts[0] == "apis":
		gv := schema.GroupVersion{Group: parts[1], Version: parts[2]}
		l := resourceList(gv)
		if len(l.APIResources) == 0 {
			writeStatus(w, notFoundPath())
			return
		}
		writeJSON(w, http.StatusOK, l)
	case ri.path == "/openapi/v2":
		s.openAPI(w, r)
	default:
		writeStatus(w, notFoundPath())
	}
}

func hostOf(r *http.Request) string {
	if _, _, err := net.SplitHostPort(r.Host); err == nil {
		return r.Host
	}
	return r.Host + ":443"
}

func (s *Server) versionInfo() *version.Info {
	v := strings.TrimPrefix(KubernetesVersion, "v")
	major, minor, _ := strings.Cut(v, ".")
	minor, _, _ = strings.Cut(minor, ".")
	return &version.Info{Major: major, Minor: minor, GitVersion: KubernetesVersion + "+drover-" + s.cfg.Version,
		GoVersion: runtime.Version(), Compiler: runtime.Compiler, Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

func apiGroupList() *metav1.APIGroupList {
	out := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, gv := range registry.GroupVersions() {
		if gv.Group == "" {
			continue
		}
		v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
		out.Groups = append(out.Groups, metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v})
	}
	return out
}

// subresourceVerbs are what discovery says each subresource allows.
var subresourceVerbs = map[string][]string{
	"status":   {"get", "patch", "update"},
	"scale":    {"get", "patch", "update"},
	"binding":  {"create"},
	"log":      {"get"},
	"token":    {"create"},
	"exec":     {"create", "get"},
	"finalize": {"update"},
}

func resourceList(gv schema.GroupVersion) *metav1.APIResourceList {
	out := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
	for _, r := range registry.Resources {
		if r.GroupVersion() != gv {
			continue
		}
		out.APIResources = append(out.APIResources, metav1.APIResource{Name: r.Name, SingularName: r.Singular, Namespaced: r.Namespaced,
			Kind: r.Kind, Verbs: r.Verbs(), ShortNames: r.ShortNames, Categories: r.Categories})
		subs := append([]string(nil), r.Subresources...)
		sort.Strings(subs)
		for _, sub := range subs {
			ar := metav1.APIResource{Name: r.Name + "/" + sub, Namespaced: r.Namespaced, Kind: r.Kind, Verbs: subresourceVerbs[sub]}
			switch sub {
			case "scale":
				ar.Group, ar.Version, ar.Kind = "autoscaling", "v1", "Scale"
			case "binding":
				ar.Kind = "Binding"
			case "exec":
				ar.Kind = "PodExecOptions"
			case "token":
				ar.Group, ar.Version, ar.Kind = "authentication.k8s.io", "v1", "TokenRequest"
			}
			out.APIResources = append(out.APIResources, ar)
		}
	}
	return out
}

// openAPI answers /openapi/v2 so that kubectl's client-side validation
// (on by default in kubectl apply/create) has a document to load. It
// carries no schemas: kubectl then skips schema checks for every kind, and
// drover's admission does the checking, naming the offending field.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	doc := &openapi_v2.Document{Swagger: "2.0", Info: &openapi_v2.Info{Title: "drover", Version: KubernetesVersion},
		Paths: &openapi_v2.Paths{}, Definitions: &openapi_v2.Definitions{}}
	if strings.Contains(r.Header.Get("Accept"), "protobuf") {
		b, err := proto.Marshal(doc)
		if err != nil {
			writeStatus(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream") // kubectl 1.20 cannot parse the "@" media type
		w.Write(b)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"swagger": "2.0", "info": map[string]string{"title": "drover", "version": KubernetesVersion},
		"paths": map[string]any{}, "definitions": map[string]any{}})
}

// table renders objects as a meta.k8s.io/v1 Table with kubectl's columns,
// each row carrying the object's metadata (or the object, or nothing, as
// includeObject asks).
func (s *Server) table(res *registry.Resource, objs []kruntime.Object, include string) (*metav1.Table, error) {
	t, err := printers.Table(res.GVK().GroupKind(), objs, s.now())
	if err != nil {
		return nil, err
	}
	t.TypeMeta = metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"}
	for i := range t.Rows {
		if i >= len(objs) {
			break
		}
		switch include {
		case "None":
		case "Object":
			t.Rows[i].Object = rawExt(objs[i])
		default:
			m, err := meta.Accessor(objs[i])
			if err != nil {
				continue
			}
			pm := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"}}
			pm.ObjectMeta = metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(), ResourceVersion: m.GetResourceVersion(),
				Generation: m.GetGeneration(), CreationTimestamp: m.GetCreationTimestamp(), DeletionTimestamp: m.GetDeletionTimestamp(),
				Labels: m.GetLabels(), Annotations: m.GetAnnotations(), OwnerReferences: m.GetOwnerReferences(), Finalizers: m.GetFinalizers()}
			t.Rows[i].Object = rawExt(pm)
		}
	}
	return t, nil
}

// rawExt embeds an object in a Table row or watch event: RawExtension
// serializes only its Raw bytes.
func rawExt(obj kruntime.Object) kruntime.RawExtension {
	b, err := json.Marshal(obj)
	if err != nil {
		return kruntime.RawExtension{}
	}
	return kruntime.RawExtension{Raw: b}
}
