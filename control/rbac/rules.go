package rbac

import (
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// ruleAllows reports whether one PolicyRule grants the request. The matching
// follows Kubernetes' RBAC: every listed dimension must match, "*" matches
// anything in that dimension, and resource rules never match non-resource
// requests (or the other way round) because the unused fields are empty.
func ruleAllows(attrs *Attributes, rule *rbacv1.PolicyRule) bool {
	if !verbMatches(rule.Verbs, attrs.Verb) {
		return false
	}
	if !attrs.ResourceRequest {
		return nonResourceURLMatches(rule.NonResourceURLs, attrs.Path)
	}
	return apiGroupMatches(rule.APIGroups, attrs.APIGroup) &&
		resourceMatches(rule.Resources, attrs.Resource, attrs.Subresource) &&
		resourceNameMatches(rule.ResourceNames, attrs.Name)
}

func verbMatches(verbs []string, verb string) bool {
	for _, v := range verbs {
		if v == rbacv1.VerbAll || v == verb {
			return true
		}
	}
	return false
}

func apiGroupMatches(groups []string, group string) bool {
	for _, g := range groups {
		if g == rbacv1.APIGroupAll || g == group {
			return true
		}
	}
	return false
}

// resourceMatches accepts "*", the exact "resource" or "resource/subresource"
// string, and "*/subresource" for any resource's given subresource. A plain
// "pods" entry does not grant "pods/log": subresources must be named.
func resourceMatches(resources []string, resource, subresource string) bool {
	for _, r := range resources {
		if r == rbacv1.ResourceAll {
			return true
		}
		if subresource == "" {
			if r == resource {
				return true
			}
			continue
		}
		// Compare "resource/subresource" without allocating the joined string.
		if len(r) == len(resource)+1+len(subresource) &&
			strings.HasPrefix(r, resource) && r[len(resource)] == '/' &&
			strings.HasSuffix(r, subresource) {
			return true
		}
		if len(r) == len(subresource)+2 && strings.HasPrefix(r, "*/") && strings.HasSuffix(r, subresource) {
			return true
		}
	}
	return false
}

// resourceNameMatches: an empty list allows every name; otherwise the request
// must carry one of the names. Requests without a name (list, watch, create,
// deletecollection, unless the caller filled Name from a metadata.name field
// selector as Kubernetes does for list/watch) are therefore not allowed.
func resourceNameMatches(names []string, name string) bool {
	if len(names) == 0 {
		return true
	}
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// nonResourceURLMatches accepts "*", an exact path, or a prefix ending in "*".
func nonResourceURLMatches(urls []string, path string) bool {
	for _, u := range urls {
		if u == rbacv1.NonResourceAll || u == path {
			return true
		}
		if strings.HasSuffix(u, "*") && strings.HasPrefix(path, strings.TrimRight(u, "*")) {
			return true
		}
	}
	return false
}
