package rbac

import "fmt"

// ForbiddenMessage returns the message of the 403 Status that Kubernetes' API
// server sends for a denied request, e.g.
//
//	pods "web" is forbidden: User "bob" cannot get resource "pods/log" in API group "" in the namespace "default"
//	deployments.apps is forbidden: User "bob" cannot list resource "deployments" in API group "apps" at the cluster scope
//	forbidden: User "bob" cannot get path "/metrics"
//
// The prefix names the group-qualified resource (without the subresource) and
// the object name, as apierrors.NewForbidden does. A non-empty reason is
// appended after ": ", except ReasonNoMatch, for which Kubernetes appends
// nothing.
func ForbiddenMessage(attrs Attributes, reason string) string {
	var msg string
	if !attrs.ResourceRequest {
		msg = fmt.Sprintf("User %q cannot %s path %q", attrs.User.Name, attrs.Verb, attrs.Path)
	} else {
		resource := attrs.Resource
		if attrs.Subresource != "" {
			resource += "/" + attrs.Subresource
		}
		if attrs.Namespace != "" {
			msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q in the namespace %q",
				attrs.User.Name, attrs.Verb, resource, attrs.APIGroup, attrs.Namespace)
		} else {
			msg = fmt.Sprintf("User %q cannot %s resource %q in API group %q at the cluster scope",
				attrs.User.Name, attrs.Verb, resource, attrs.APIGroup)
		}
	}
	if reason != "" && reason != ReasonNoMatch {
		msg += ": " + reason
	}

	// The qualified resource is "resource" or "resource.group"; non-resource
	// requests have neither, giving the bare "forbidden: " prefix.
	var qualified string
	if attrs.ResourceRequest {
		qualified = attrs.Resource
		if attrs.APIGroup != "" {
			qualified += "." + attrs.APIGroup
		}
	}
	switch {
	case qualified == "":
		return "forbidden: " + msg
	case attrs.Name == "":
		return qualified + " is forbidden: " + msg
	default:
		return fmt.Sprintf("%s %q is forbidden: %s", qualified, attrs.Name, msg)
	}
}
