package rbac

import "testing"

func TestForbiddenMessage(t *testing.T) {
	bob := func(a Attributes) Attributes { return as(a, "bob", "system:authenticated") }
	tests := []struct {
		name   string
		attrs  Attributes
		reason string
		want   string
	}{
		{"list namespaced", bob(res("list", "", "pods", "", "default", "")), "",
			`pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"`},
		{"get named", bob(res("get", "", "pods", "", "default", "web")), "",
			`pods "web" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default"`},
		{"subresource", bob(res("get", "", "pods", "log", "default", "web")), "",
			`pods "web" is forbidden: User "bob" cannot get resource "pods/log" in API group "" in the namespace "default"`},
		{"cluster scope", bob(res("list", "", "nodes", "", "", "")), "",
			`nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope`},
		{"cluster scope subresource", bob(res("update", "", "nodes", "status", "", "n1")), "",
			`nodes "n1" is forbidden: User "bob" cannot update resource "nodes/status" in API group "" at the cluster scope`},
		{"named group", bob(res("create", "apps", "deployments", "", "default", "")), "",
			`deployments.apps is forbidden: User "bob" cannot create resource "deployments" in API group "apps" in the namespace "default"`},
		{"named group, name, subresource", bob(res("patch", "apps", "deployments", "scale", "default", "web")), "",
			`deployments.apps "web" is forbidden: User "bob" cannot patch resource "deployments/scale" in API group "apps" in the namespace "default"`},
		{"all namespaces", bob(res("watch", "", "secrets", "", "", "")), "",
			`secrets is forbidden: User "bob" cannot watch resource "secrets" in API group "" at the cluster scope`},
		{"namespace itself", bob(res("delete", "", "namespaces", "", "", "kube-system")), "",
			`namespaces "kube-system" is forbidden: User "bob" cannot delete resource "namespaces" in API group "" at the cluster scope`},
		{"non-resource", bob(nonRes("get", "/metrics")), "",
			`forbidden: User "bob" cannot get path "/metrics"`},
		{"non-resource post", bob(nonRes("post", "/api")), "",
			`forbidden: User "bob" cannot post path "/api"`},
		{"anonymous", as(nonRes("get", "/"), "system:anonymous", "system:unauthenticated"), "",
			`forbidden: User "system:anonymous" cannot get path "/"`},
		{"no-match reason omitted", bob(res("list", "", "pods", "", "default", "")), ReasonNoMatch,
			`pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default"`},
		{"error reason appended", bob(res("list", "", "pods", "", "default", "")), `RBAC: role.rbac.authorization.k8s.io "x" not found`,
			`pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default": RBAC: role.rbac.authorization.k8s.io "x" not found`},
		{"reason on non-resource", bob(nonRes("get", "/metrics")), "some reason",
			`forbidden: User "bob" cannot get path "/metrics": some reason`},
		{"quotes are escaped", as(res("get", "", "pods", "", "default", `a"b`), `we"ird`), "",
			`pods "a\"b" is forbidden: User "we\"ird" cannot get resource "pods" in API group "" in the namespace "default"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ForbiddenMessage(tt.attrs, tt.reason); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestForbiddenMessageFromDecision is the API server's path: the Reason of a
// plain denial leaves the Kubernetes message untouched.
func TestForbiddenMessageFromDecision(t *testing.T) {
	a := New()
	attrs := as(res("get", "", "pods", "log", "default", "web"), "bob")
	d := a.Authorize(attrs)
	want := `pods "web" is forbidden: User "bob" cannot get resource "pods/log" in API group "" in the namespace "default"`
	if d.Allowed || ForbiddenMessage(attrs, d.Reason) != want {
		t.Fatalf("decision %+v, message %q", d, ForbiddenMessage(attrs, d.Reason))
	}
}
