package rbac

import (
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func role(ns, name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
	return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
}

func crole(name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
}

func rb(ns, name, kind, roleName string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: roleName}, Subjects: subjects}
}

func crb(name, roleName string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName}, Subjects: subjects}
}

func userSubj(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func groupSubj(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

func saSubj(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

func as(a Attributes, name string, groups ...string) Attributes {
	a.User = User{Name: name, Groups: groups}
	return a
}

func saUser(ns, name string) string { return "system:serviceaccount:" + ns + ":" + name }

var (
	readPods    = rbacv1.PolicyRule{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	readSecrets = rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}}
	readNodes   = rbacv1.PolicyRule{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"nodes"}}
	getMetrics  = rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/metrics"}}
)

// fixture is a small policy covering every kind of binding and subject.
func fixture() []runtime.Object {
	return []runtime.Object{
		crole("pod-reader", readPods, readNodes, getMetrics),
		role("team", "secret-reader", readSecrets),
		role("other", "secret-reader", readSecrets),
		// ClusterRole bound by a RoleBinding: valid only in "team".
		rb("team", "alice-pods", "ClusterRole", "pod-reader", userSubj("alice")),
		rb("team", "alice-secrets", "Role", "secret-reader", userSubj("alice")),
		// ServiceAccount subject without a namespace: defaults to "team".
		rb("team", "sa-secrets", "Role", "secret-reader", saSubj("", "builder")),
		// ServiceAccount from another namespace.
		rb("team", "ci-secrets", "Role", "secret-reader", saSubj("ci", "runner")),
		crb("ops-pods", "pod-reader", groupSubj("ops")),
		crb("monitor", "pod-reader", saSubj("monitoring", "prometheus")),
		// ServiceAccount without namespace in a ClusterRoleBinding never matches.
		crb("nowhere", "pod-reader", saSubj("", "builder")),
		// Subjects of unknown kind never match.
		crb("odd", "pod-reader", rbacv1.Subject{Kind: "user", Name: "eve"}),
	}
}

func TestAuthorize(t *testing.T) {
	a := New()
	a.Reset(fixture())

	tests := []struct {
		name   string
		attrs  Attributes
		want   bool
		reason string
	}{
		{"nobody", as(res("get", "", "pods", "", "team", "p"), "mallory"), false, ReasonNoMatch},

		// RoleBinding -> ClusterRole is scoped to the binding's namespace.
		{"rb clusterrole in its namespace", as(res("list", "", "pods", "", "team", ""), "alice"), true,
			`RBAC: allowed by RoleBinding "alice-pods/team" of ClusterRole "pod-reader" to User "alice"`},
		{"rb clusterrole other namespace", as(res("list", "", "pods", "", "other", ""), "alice"), false, ReasonNoMatch},
		{"rb clusterrole all namespaces", as(res("list", "", "pods", "", "", ""), "alice"), false, ReasonNoMatch},
		{"rb clusterrole cluster-scoped resource", as(res("list", "", "nodes", "", "", ""), "alice"), false, ReasonNoMatch},
		{"rb clusterrole non-resource url", as(nonRes("get", "/metrics"), "alice"), false, ReasonNoMatch},
		{"rb clusterrole verb not granted", as(res("delete", "", "pods", "", "team", "p"), "alice"), false, ReasonNoMatch},
		{"rb role", as(res("get", "", "secrets", "", "team", "s"), "alice"), true,
			`RBAC: allowed by RoleBinding "alice-secrets/team" of Role "secret-reader" to User "alice"`},
		{"rb role other namespace", as(res("get", "", "secrets", "", "other", "s"), "alice"), false, ReasonNoMatch},

		// Group subjects through a ClusterRoleBinding apply everywhere.
		{"crb group namespaced", as(res("watch", "", "pods", "", "any", ""), "bob", "ops"), true,
			`RBAC: allowed by ClusterRoleBinding "ops-pods" of ClusterRole "pod-reader" to Group "ops"`},
		{"crb group all namespaces", as(res("list", "", "pods", "", "", ""), "bob", "ops"), true,
			`RBAC: allowed by ClusterRoleBinding "ops-pods" of ClusterRole "pod-reader" to Group "ops"`},
		{"crb group cluster scoped", as(res("get", "", "nodes", "", "", "n1"), "bob", "ops"), true,
			`RBAC: allowed by ClusterRoleBinding "ops-pods" of ClusterRole "pod-reader" to Group "ops"`},
		{"crb group non-resource", as(nonRes("get", "/metrics"), "bob", "ops"), true,
			`RBAC: allowed by ClusterRoleBinding "ops-pods" of ClusterRole "pod-reader" to Group "ops"`},
		{"crb group non-resource other path", as(nonRes("get", "/metrics/x"), "bob", "ops"), false, ReasonNoMatch},
		{"group name is not a user name", as(res("get", "", "pods", "", "team", "p"), "ops"), false, ReasonNoMatch},
		{"user name is not a group name", as(res("get", "", "secrets", "", "team", "s"), "bob", "alice"), false, ReasonNoMatch},
		{"unknown subject kind", as(res("get", "", "pods", "", "team", "p"), "eve"), false, ReasonNoMatch},

		// ServiceAccount subjects.
		{"sa defaulted namespace", as(res("get", "", "secrets", "", "team", "s"), saUser("team", "builder")), true,
			`RBAC: allowed by RoleBinding "sa-secrets/team" of Role "secret-reader" to ServiceAccount "builder/team"`},
		{"sa same name other namespace", as(res("get", "", "secrets", "", "team", "s"), saUser("other", "builder")), false, ReasonNoMatch},
		{"sa explicit namespace", as(res("get", "", "secrets", "", "team", "s"), saUser("ci", "runner")), true,
			`RBAC: allowed by RoleBinding "ci-secrets/team" of Role "secret-reader" to ServiceAccount "runner/ci"`},
		{"sa crb", as(res("list", "", "nodes", "", "", ""), saUser("monitoring", "prometheus")), true,
			`RBAC: allowed by ClusterRoleBinding "monitor" of ClusterRole "pod-reader" to ServiceAccount "prometheus/monitoring"`},
		{"sa crb without namespace", as(res("list", "", "pods", "", "", ""), saUser("", "builder")), false, ReasonNoMatch},
		{"sa name as plain user", as(res("get", "", "secrets", "", "team", "s"), "builder"), false, ReasonNoMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := a.Authorize(tt.attrs)
			if got.Allowed != tt.want || got.Reason != tt.reason {
				t.Errorf("Authorize = %+v, want {Allowed:%v Reason:%q}", got, tt.want, tt.reason)
			}
		})
	}
}

func TestAuthorizeBindingOrder(t *testing.T) {
	a := New()
	a.Reset([]runtime.Object{
		crole("r", readPods),
		// Both bindings grant; ClusterRoleBindings are visited first, then by name.
		rb("ns", "a-rb", "ClusterRole", "r", userSubj("u")),
		crb("z-crb", "r", userSubj("u")),
		crb("b-crb", "r", groupSubj("g"), userSubj("u")),
	})
	got := a.Authorize(as(res("get", "", "pods", "", "ns", "p"), "u", "g"))
	want := `RBAC: allowed by ClusterRoleBinding "b-crb" of ClusterRole "r" to Group "g"`
	if !got.Allowed || got.Reason != want {
		t.Fatalf("got %+v, want reason %q", got, want)
	}
	// The first matching subject of a binding is the one reported.
	a.Upsert(crb("b-crb", "r", userSubj("u"), groupSubj("g")))
	got = a.Authorize(as(res("get", "", "pods", "", "ns", "p"), "u", "g"))
	want = `RBAC: allowed by ClusterRoleBinding "b-crb" of ClusterRole "r" to User "u"`
	if got.Reason != want {
		t.Fatalf("got %q, want %q", got.Reason, want)
	}
	a.Remove(crb("b-crb", "", nil...))
	a.Remove(crb("z-crb", "", nil...))
	got = a.Authorize(as(res("get", "", "pods", "", "ns", "p"), "u", "g"))
	want = `RBAC: allowed by RoleBinding "a-rb/ns" of ClusterRole "r" to User "u"`
	if got.Reason != want {
		t.Fatalf("got %q, want %q", got.Reason, want)
	}
}

func TestAuthorizeMissingRoles(t *testing.T) {
	a := New()
	a.Reset([]runtime.Object{
		crole("present", readNodes),
		crb("c1", "absent", userSubj("u")),
		crb("c2", "absent", userSubj("u")),
		crb("c3", "present", userSubj("u")),
		rb("ns", "r1", "Role", "gone", userSubj("u")),
		// A ClusterRoleBinding cannot reference a Role.
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "c4"},
			RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "gone"}, Subjects: []rbacv1.Subject{userSubj("v")}},
		rb("ns", "r2", "Secret", "x", userSubj("w")),
	})
	tests := []struct {
		name  string
		attrs Attributes
		want  Decision
	}{
		{"missing roles do not hide a grant", as(res("get", "", "nodes", "", "", "n"), "u"),
			Decision{Allowed: true, Reason: `RBAC: allowed by ClusterRoleBinding "c3" of ClusterRole "present" to User "u"`}},
		{"errors are reported, deduplicated", as(res("get", "", "pods", "", "ns", "p"), "u"),
			Decision{Reason: `RBAC: [clusterrole.rbac.authorization.k8s.io "absent" not found, role.rbac.authorization.k8s.io "gone" not found]`}},
		{"only cluster bindings at cluster scope", as(res("get", "", "pods", "", "", "p"), "u"),
			Decision{Reason: `RBAC: clusterrole.rbac.authorization.k8s.io "absent" not found`}},
		{"crb to role", as(res("get", "", "pods", "", "", "p"), "v"),
			Decision{Reason: `RBAC: role.rbac.authorization.k8s.io "gone" not found`}},
		{"bad kind", as(res("get", "", "pods", "", "ns", "p"), "w"),
			Decision{Reason: `RBAC: unsupported role reference kind: "Secret"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.Authorize(tt.attrs); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUpsertRemoveReset(t *testing.T) {
	a := New()
	getSecret := as(res("get", "", "secrets", "", "team", "s"), "alice")
	check := func(step string, want bool) {
		t.Helper()
		if got := a.Authorize(getSecret); got.Allowed != want {
			t.Fatalf("%s: allowed = %v, want %v (%s)", step, got.Allowed, want, got.Reason)
		}
	}

	check("empty", false)
	a.Upsert(rb("team", "b", "Role", "r", userSubj("alice")))
	check("binding without role", false)
	a.Upsert(role("team", "r", readPods))
	check("role without the rule", false)
	a.Upsert(role("team", "r", readPods, readSecrets))
	check("role updated", true)
	a.Upsert(rb("team", "b", "Role", "r", userSubj("bob")))
	check("binding moved to bob", false)
	a.Upsert(rb("team", "b", "Role", "r", userSubj("bob"), userSubj("alice")))
	check("alice added back", true)
	a.Remove(role("team", "r"))
	check("role removed", false)
	a.Upsert(role("team", "r", readSecrets))
	check("role recreated", true)
	a.Remove(rb("team", "b", "", ""))
	check("binding removed", false)
	a.Remove(rb("team", "b", "", "")) // removing twice is harmless

	// Reset replaces everything, including what Upsert added.
	a.Upsert(crb("all", "everything", userSubj("alice")))
	a.Upsert(crole("everything", rbacv1.PolicyRule{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}))
	check("cluster binding", true)
	a.Reset([]runtime.Object{role("team", "r", readSecrets), rb("team", "b2", "Role", "r", groupSubj("devs"))})
	check("after reset", false)
	if got := a.Authorize(as(res("get", "", "secrets", "", "team", "s"), "carol", "devs")); !got.Allowed {
		t.Fatalf("reset state not applied: %+v", got)
	}
	a.Remove(crole("everything"))
	a.Remove(crb("all", ""))

	// Other objects are ignored, as are typed nils.
	a.Upsert(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}})
	a.Remove(&corev1.Pod{})
	a.Upsert((*rbacv1.Role)(nil))
	a.Remove((*rbacv1.ClusterRoleBinding)(nil))
	a.Reset(nil)
	check("reset to nothing", false)
}

func TestUpsertCopies(t *testing.T) {
	a := New()
	r := crole("r", readPods)
	b := crb("b", "r", userSubj("u"))
	a.Upsert(r)
	a.Upsert(b)
	// Mutating the caller's objects must not change decisions.
	r.Rules[0].Verbs[0] = "delete"
	b.Subjects[0].Name = "other"
	if got := a.Authorize(as(res("get", "", "pods", "", "ns", "p"), "u")); !got.Allowed {
		t.Fatalf("decision changed by caller mutation: %+v", got)
	}
}

func TestSubjectIndexCleanup(t *testing.T) {
	a := New()
	a.Upsert(rb("ns", "b", "Role", "r", userSubj("u"), userSubj("u"), groupSubj("g"), saSubj("", "s")))
	a.Upsert(crb("c", "r", userSubj("u"), groupSubj("g")))
	a.Remove(rb("ns", "b", "", ""))
	a.Remove(crb("c", ""))
	if len(a.rbIndex) != 0 || !a.crbIndex.empty() || len(a.rbs) != 0 || len(a.crbs) != 0 {
		t.Fatalf("index not emptied: rbIndex=%v crbIndex=%+v", a.rbIndex, a.crbIndex)
	}
}

// TestConcurrent runs Authorize from many goroutines while bindings and roles
// change; run with -race.
func TestConcurrent(t *testing.T) {
	a := New()
	a.Reset(fixture())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				// alice's pod access through her RoleBinding never changes.
				if d := a.Authorize(as(res("list", "", "pods", "", "team", ""), "alice")); !d.Allowed {
					t.Errorf("stable grant denied: %+v", d)
					return
				}
				a.Authorize(as(res("get", "", "secrets", "", fmt.Sprintf("ns%d", n%4), "s"), fmt.Sprintf("u%d", i), "ops"))
				a.Authorize(as(nonRes("get", "/metrics"), "x", "ops"))
			}
		}(i)
	}
	for n := 0; n < 2000; n++ {
		ns := fmt.Sprintf("ns%d", n%4)
		u := fmt.Sprintf("u%d", n%8)
		a.Upsert(role(ns, "r", readSecrets))
		a.Upsert(rb(ns, "b", "Role", "r", userSubj(u), groupSubj("ops")))
		a.Upsert(crb(fmt.Sprintf("c%d", n%5), "pod-reader", userSubj(u)))
		if n%3 == 0 {
			a.Remove(rb(ns, "b", "", ""))
			a.Remove(crole("nothing"))
		}
		if n%500 == 0 {
			a.Reset(fixture())
		}
	}
	close(stop)
	wg.Wait()
}
