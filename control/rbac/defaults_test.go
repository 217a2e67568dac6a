package rbac

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// defaultAuthorizer loads the bootstrap policy plus namespaced bindings of the
// admin, edit and view ClusterRoles, the way they are meant to be used.
func defaultAuthorizer() *Authorizer {
	var objs []runtime.Object
	for _, r := range DefaultClusterRoles() {
		objs = append(objs, r)
	}
	for _, b := range DefaultClusterRoleBindings() {
		objs = append(objs, b)
	}
	objs = append(objs,
		rb("app", "viewers", "ClusterRole", "view", userSubj("viewer")),
		rb("app", "editors", "ClusterRole", "edit", userSubj("editor")),
		rb("app", "admins", "ClusterRole", "admin", userSubj("admin")),
	)
	a := New()
	a.Reset(objs)
	return a
}

func TestDefaultPolicy(t *testing.T) {
	a := defaultAuthorizer()
	authed := []string{"system:authenticated"}
	master := append([]string{"system:masters"}, authed...)
	node := append([]string{"system:nodes"}, authed...)
	anon := []string{"system:unauthenticated"}
	with := func(at Attributes, user string, groups []string) Attributes { return as(at, user, groups...) }

	tests := []struct {
		name  string
		attrs Attributes
		want  bool
	}{
		// cluster-admin through system:masters: everything.
		{"admin deletes namespaces", with(res("delete", "", "namespaces", "", "", "kube-system"), "root", master), true},
		{"admin reads secrets anywhere", with(res("list", "", "secrets", "", "", ""), "root", master), true},
		{"admin odd verb and group", with(res("escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", "x"), "root", master), true},
		{"admin subresource", with(res("create", "", "pods", "exec", "app", "p"), "root", master), true},
		{"admin non-resource", with(nonRes("post", "/some/path"), "root", master), true},
		{"masters group is required", with(res("get", "", "pods", "", "app", "p"), "root", authed), false},

		// view.
		{"view gets pods", with(res("get", "", "pods", "", "app", "p"), "viewer", authed), true},
		{"view lists deployments", with(res("list", "apps", "deployments", "", "app", ""), "viewer", authed), true},
		{"view reads pod logs", with(res("get", "", "pods", "log", "app", "p"), "viewer", authed), true},
		{"view cannot get secrets", with(res("get", "", "secrets", "", "app", "s"), "viewer", authed), false},
		{"view cannot list secrets", with(res("list", "", "secrets", "", "app", ""), "viewer", authed), false},
		{"view cannot create pods", with(res("create", "", "pods", "", "app", ""), "viewer", authed), false},
		{"view cannot exec", with(res("create", "", "pods", "exec", "app", "p"), "viewer", authed), false},
		{"view cannot read roles", with(res("list", "rbac.authorization.k8s.io", "roles", "", "app", ""), "viewer", authed), false},
		{"view only in its namespace", with(res("get", "", "pods", "", "other", "p"), "viewer", authed), false},

		// edit.
		{"edit creates deployments", with(res("create", "apps", "deployments", "", "app", ""), "editor", authed), true},
		{"edit scales deployments", with(res("update", "apps", "deployments", "scale", "app", "d"), "editor", authed), true},
		{"edit reads secrets", with(res("get", "", "secrets", "", "app", "s"), "editor", authed), true},
		{"edit execs", with(res("create", "", "pods", "exec", "app", "p"), "editor", authed), true},
		{"edit still reads", with(res("watch", "batch", "jobs", "", "app", ""), "editor", authed), true},
		{"edit cannot write roles", with(res("create", "rbac.authorization.k8s.io", "rolebindings", "", "app", ""), "editor", authed), false},
		{"edit cannot write endpoints", with(res("update", "", "endpoints", "", "app", "e"), "editor", authed), false},
		{"edit not elsewhere", with(res("create", "apps", "deployments", "", "other", ""), "editor", authed), false},

		// admin.
		{"admin role creates rolebindings", with(res("create", "rbac.authorization.k8s.io", "rolebindings", "", "app", ""), "admin", authed), true},
		{"admin role creates deployments", with(res("create", "apps", "deployments", "", "app", ""), "admin", authed), true},
		{"admin role reads pods", with(res("get", "", "pods", "", "app", "p"), "admin", authed), true},
		{"admin role cannot delete its namespace", with(res("delete", "", "namespaces", "", "", "app"), "admin", authed), false},

		// system:node through system:nodes.
		{"node gets pods", with(res("get", "", "pods", "", "app", "p"), "system:node:n1", node), true},
		{"node watches all pods", with(res("watch", "", "pods", "", "", ""), "system:node:n1", node), true},
		{"node reads secrets", with(res("get", "", "secrets", "", "app", "s"), "system:node:n1", node), true},
		{"node reads configmaps", with(res("list", "", "configmaps", "", "", ""), "system:node:n1", node), true},
		{"node lists services", with(res("list", "", "services", "", "", ""), "system:node:n1", node), true},
		{"node lists endpoints", with(res("list", "", "endpoints", "", "", ""), "system:node:n1", node), true},
		{"node creates its node", with(res("create", "", "nodes", "", "", ""), "system:node:n1", node), true},
		{"node updates nodes/status", with(res("update", "", "nodes", "status", "", "n1"), "system:node:n1", node), true},
		{"node patches nodes/status", with(res("patch", "", "nodes", "status", "", "n1"), "system:node:n1", node), true},
		{"node updates pods/status", with(res("update", "", "pods", "status", "app", "p"), "system:node:n1", node), true},
		{"node creates events", with(res("create", "", "events", "", "app", ""), "system:node:n1", node), true},
		{"node creates lease", with(res("create", "coordination.k8s.io", "leases", "", "kube-node-lease", ""), "system:node:n1", node), true},
		{"node renews lease", with(res("update", "coordination.k8s.io", "leases", "", "kube-node-lease", "n1"), "system:node:n1", node), true},
		{"node gets lease", with(res("get", "coordination.k8s.io", "leases", "", "kube-node-lease", "n1"), "system:node:n1", node), true},
		{"node cannot delete namespaces", with(res("delete", "", "namespaces", "", "", "app"), "system:node:n1", node), false},
		{"node cannot bind pods", with(res("create", "", "pods", "binding", "app", "p"), "system:node:n1", node), false},
		{"node cannot update pod specs", with(res("update", "", "pods", "", "app", "p"), "system:node:n1", node), false},
		{"node cannot write secrets", with(res("update", "", "secrets", "", "app", "s"), "system:node:n1", node), false},
		{"nodes group is required", with(res("update", "", "nodes", "status", "", "n1"), "system:node:n1", authed), false},

		// discovery and public info.
		{"authenticated GET /api", with(nonRes("get", "/api"), "someone", authed), true},
		{"authenticated GET /api/v1", with(nonRes("get", "/api/v1"), "someone", authed), true},
		{"authenticated GET /apis/apps/v1", with(nonRes("get", "/apis/apps/v1"), "someone", authed), true},
		{"authenticated GET /openapi/v3", with(nonRes("get", "/openapi/v3"), "someone", authed), true},
		{"authenticated GET /version", with(nonRes("get", "/version"), "someone", authed), true},
		{"authenticated GET /readyz", with(nonRes("get", "/readyz"), "someone", authed), true},
		{"authenticated POST /api", with(nonRes("post", "/api"), "someone", authed), false},
		{"authenticated GET /metrics", with(nonRes("get", "/metrics"), "someone", authed), false},
		{"authenticated self review", with(res("create", "authorization.k8s.io", "selfsubjectaccessreviews", "", "", ""), "someone", authed), true},
		{"authenticated cannot list pods", with(res("list", "", "pods", "", "app", ""), "someone", authed), false},
		{"anonymous GET /version", with(nonRes("get", "/version"), "system:anonymous", anon), true},
		{"anonymous GET /healthz", with(nonRes("get", "/healthz"), "system:anonymous", anon), true},
		{"anonymous GET /api", with(nonRes("get", "/api"), "system:anonymous", anon), false},
		{"anonymous cannot list pods", with(res("list", "", "pods", "", "app", ""), "system:anonymous", anon), false},
		{"no groups at all", with(nonRes("get", "/version"), "x", nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.Authorize(tt.attrs); got.Allowed != tt.want {
				t.Errorf("Authorize(%+v) = %+v, want allowed=%v", tt.attrs, got, tt.want)
			}
		})
	}
}

func TestDefaultObjects(t *testing.T) {
	roles := map[string]*rbacv1.ClusterRole{}
	for _, r := range DefaultClusterRoles() {
		if r.Kind != "ClusterRole" || r.APIVersion != "rbac.authorization.k8s.io/v1" {
			t.Errorf("%s: TypeMeta %+v", r.Name, r.TypeMeta)
		}
		if r.Labels[BootstrappingLabel] != "rbac-defaults" || r.Annotations[AutoUpdateAnnotation] != "true" {
			t.Errorf("%s: labels %v annotations %v", r.Name, r.Labels, r.Annotations)
		}
		if r.AggregationRule != nil {
			t.Errorf("%s: aggregation rule set but aggregation is not implemented", r.Name)
		}
		if roles[r.Name] != nil {
			t.Errorf("duplicate ClusterRole %s", r.Name)
		}
		roles[r.Name] = r
	}
	for _, name := range []string{"cluster-admin", "admin", "edit", "view", "system:node", "system:discovery", "system:basic-user", "system:public-info-viewer"} {
		if roles[name] == nil {
			t.Errorf("missing ClusterRole %s", name)
		}
	}
	seen := map[string]bool{}
	for _, b := range DefaultClusterRoleBindings() {
		if b.Kind != "ClusterRoleBinding" || b.APIVersion != "rbac.authorization.k8s.io/v1" {
			t.Errorf("%s: TypeMeta %+v", b.Name, b.TypeMeta)
		}
		if b.Labels[BootstrappingLabel] != "rbac-defaults" || b.Annotations[AutoUpdateAnnotation] != "true" {
			t.Errorf("%s: labels %v annotations %v", b.Name, b.Labels, b.Annotations)
		}
		if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.APIGroup != rbacv1.GroupName || roles[b.RoleRef.Name] == nil {
			t.Errorf("%s: bad roleRef %+v", b.Name, b.RoleRef)
		}
		if len(b.Subjects) == 0 || seen[b.Name] {
			t.Errorf("%s: no subjects or duplicate", b.Name)
		}
		seen[b.Name] = true
	}
	// Each call returns fresh objects the caller may modify.
	DefaultClusterRoles()[0].Rules[0].Verbs[0] = "get"
	if DefaultClusterRoles()[0].Rules[0].Verbs[0] != "*" {
		t.Error("DefaultClusterRoles shares state between calls")
	}
}

func TestDefaultReasons(t *testing.T) {
	a := defaultAuthorizer()
	got := a.Authorize(as(nonRes("get", "/healthz"), "system:anonymous", "system:unauthenticated"))
	want := `RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer" to Group "system:unauthenticated"`
	if !got.Allowed || got.Reason != want {
		t.Errorf("got %+v, want %q", got, want)
	}
	got = a.Authorize(as(res("get", "", "pods", "", "app", "p"), "viewer", "system:authenticated"))
	want = `RBAC: allowed by RoleBinding "viewers/app" of ClusterRole "view" to User "viewer"`
	if !got.Allowed || got.Reason != want {
		t.Errorf("got %+v, want %q", got, want)
	}
}
