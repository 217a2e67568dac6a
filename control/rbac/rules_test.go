package rbac

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

func res(verb, group, resource, sub, ns, name string) Attributes {
	return Attributes{ResourceRequest: true, Verb: verb, APIGroup: group, APIVersion: "v1",
		Resource: resource, Subresource: sub, Namespace: ns, Name: name}
}

func nonRes(verb, path string) Attributes {
	return Attributes{Verb: verb, Path: path}
}

func TestRuleAllows(t *testing.T) {
	pr := func(verbs, groups, resources, names []string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources, ResourceNames: names}
	}
	s := func(v ...string) []string { return v }
	core := s("")

	tests := []struct {
		name  string
		rule  rbacv1.PolicyRule
		attrs Attributes
		want  bool
	}{
		// verbs
		{"exact verb", pr(s("get"), core, s("pods"), nil), res("get", "", "pods", "", "ns", "p"), true},
		{"other verb", pr(s("get"), core, s("pods"), nil), res("list", "", "pods", "", "ns", ""), false},
		{"wildcard verb", pr(s("*"), core, s("pods"), nil), res("deletecollection", "", "pods", "", "ns", ""), true},
		{"no verbs", pr(nil, core, s("pods"), nil), res("get", "", "pods", "", "ns", "p"), false},
		{"verb is case sensitive", pr(s("GET"), core, s("pods"), nil), res("get", "", "pods", "", "ns", "p"), false},

		// API groups
		{"core group", pr(s("get"), core, s("deployments"), nil), res("get", "apps", "deployments", "", "ns", "d"), false},
		{"named group", pr(s("get"), s("apps"), s("deployments"), nil), res("get", "apps", "deployments", "", "ns", "d"), true},
		{"wildcard group", pr(s("get"), s("*"), s("deployments"), nil), res("get", "apps", "deployments", "", "ns", "d"), true},
		{"wildcard group matches core", pr(s("get"), s("*"), s("pods"), nil), res("get", "", "pods", "", "ns", "p"), true},
		{"no groups", pr(s("get"), nil, s("pods"), nil), res("get", "", "pods", "", "ns", "p"), false},

		// resources and subresources
		{"wildcard resource", pr(s("get"), core, s("*"), nil), res("get", "", "secrets", "", "ns", "s"), true},
		{"wildcard resource covers subresources", pr(s("get"), core, s("*"), nil), res("get", "", "pods", "log", "ns", "p"), true},
		{"resource does not cover subresource", pr(s("get"), core, s("pods"), nil), res("get", "", "pods", "log", "ns", "p"), false},
		{"exact subresource", pr(s("get"), core, s("pods/log"), nil), res("get", "", "pods", "log", "ns", "p"), true},
		{"subresource does not cover resource", pr(s("get"), core, s("pods/log"), nil), res("get", "", "pods", "", "ns", "p"), false},
		{"other subresource", pr(s("get"), core, s("pods/log"), nil), res("get", "", "pods", "exec", "ns", "p"), false},
		{"other resource same subresource", pr(s("get"), core, s("pods/status"), nil), res("get", "", "nodes", "status", "", "n"), false},
		{"star subresource", pr(s("update"), core, s("*/status"), nil), res("update", "", "nodes", "status", "", "n"), true},
		{"star subresource needs subresource", pr(s("get"), core, s("*/status"), nil), res("get", "", "nodes", "", "", "n"), false},
		{"star subresource other subresource", pr(s("get"), core, s("*/status"), nil), res("get", "", "pods", "log", "ns", "p"), false},
		{"star subresource is not a suffix match", pr(s("get"), core, s("*/us"), nil), res("get", "", "pods", "status", "ns", "p"), false},
		{"resource prefix is not a match", pr(s("get"), core, s("pod"), nil), res("get", "", "pods", "", "ns", "p"), false},
		{"resource with slash prefix", pr(s("get"), core, s("pod/slog"), nil), res("get", "", "pods", "log", "ns", "p"), false},
		{"second of several resources", pr(s("get"), core, s("services", "pods"), nil), res("get", "", "pods", "", "ns", "p"), true},

		// resourceNames
		{"name listed", pr(s("get"), core, s("configmaps"), s("a", "b")), res("get", "", "configmaps", "", "ns", "b"), true},
		{"name not listed", pr(s("get"), core, s("configmaps"), s("a")), res("get", "", "configmaps", "", "ns", "c"), false},
		{"names restrict list", pr(s("list"), core, s("configmaps"), s("a")), res("list", "", "configmaps", "", "ns", ""), false},
		{"names allow list with name (field selector)", pr(s("list"), core, s("configmaps"), s("a")), res("list", "", "configmaps", "", "ns", "a"), true},
		{"names restrict watch", pr(s("watch"), core, s("configmaps"), s("a")), res("watch", "", "configmaps", "", "ns", ""), false},
		{"names restrict create", pr(s("create"), core, s("configmaps"), s("a")), res("create", "", "configmaps", "", "ns", ""), false},
		{"names restrict deletecollection", pr(s("deletecollection"), core, s("configmaps"), s("a")), res("deletecollection", "", "configmaps", "", "ns", ""), false},
		{"names apply to subresource", pr(s("get"), core, s("pods/log"), s("web")), res("get", "", "pods", "log", "ns", "web"), true},
		{"names are not wildcards", pr(s("get"), core, s("configmaps"), s("*")), res("get", "", "configmaps", "", "ns", "x"), false},

		// resource rules versus non-resource requests
		{"resource rule, non-resource request", pr(s("*"), s("*"), s("*"), nil), nonRes("get", "/healthz"), false},
		{"url rule, resource request", rbacv1.PolicyRule{Verbs: s("*"), NonResourceURLs: s("*")}, res("get", "", "pods", "", "ns", "p"), false},

		// non-resource URLs
		{"exact url", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/healthz")}, nonRes("get", "/healthz"), true},
		{"exact url other verb", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/healthz")}, nonRes("post", "/healthz"), false},
		{"exact url is not a prefix", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/healthz")}, nonRes("get", "/healthz/etcd"), false},
		{"prefix url", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/healthz/*")}, nonRes("get", "/healthz/etcd"), true},
		{"prefix url without slash", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/api*")}, nonRes("get", "/apis/apps/v1"), true},
		{"prefix url needs its slash", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/healthz/*")}, nonRes("get", "/healthz"), false},
		{"wildcard url", rbacv1.PolicyRule{Verbs: s("*"), NonResourceURLs: s("*")}, nonRes("put", "/anything"), true},
		{"star in the middle is literal", rbacv1.PolicyRule{Verbs: s("get"), NonResourceURLs: s("/a/*/c")}, nonRes("get", "/a/b/c"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ruleAllows(&tt.attrs, &tt.rule); got != tt.want {
				t.Errorf("ruleAllows(%+v, %+v) = %v, want %v", tt.attrs, tt.rule, got, tt.want)
			}
		})
	}
}
