// Package rbac is the authorizer of the drover API server. It evaluates
// rbac.authorization.k8s.io/v1 Roles, ClusterRoles, RoleBindings and
// ClusterRoleBindings with the same semantics as Kubernetes' RBAC authorizer:
// access is only ever granted (there are no deny rules), ClusterRoleBindings
// apply everywhere, RoleBindings only in their own namespace, and a request is
// allowed as soon as one rule of one bound role matches it.
package rbac

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"sync"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// User is the authenticated identity of a request. Groups must already include
// the implicit groups (system:authenticated, system:unauthenticated,
// system:serviceaccounts, ...): the authorizer adds none.
type User struct {
	Name, UID string
	Groups    []string
}

// Attributes describes one request, like Kubernetes' authorizer.Attributes.
type Attributes struct {
	User User
	// ResourceRequest is false for non-resource URLs such as /version, /healthz, /api.
	ResourceRequest bool
	// Verb is the resource verb (get list watch create update patch delete
	// deletecollection, or others like impersonate) or, for non-resource
	// requests, the lower-case HTTP method.
	Verb string
	// Request details; Name is empty for list, watch, create and deletecollection
	// unless the caller filled it from a metadata.name field selector.
	APIGroup, APIVersion, Resource, Subresource, Namespace, Name string
	// Path is the URL path of a non-resource request.
	Path string
}

// Decision is the outcome of Authorize.
type Decision struct {
	Allowed bool
	// Reason names the granting binding and role on an allow. On a denial it is
	// ReasonNoMatch, or "RBAC: <errors>" when some binding that applied to the
	// user referenced a role that does not exist (Kubernetes reports those).
	Reason string
}

// ReasonNoMatch is the denial reason when no rule of any binding applying to
// the user matched. Kubernetes adds nothing to the 403 message in that case, so
// ForbiddenMessage leaves it out.
const ReasonNoMatch = "RBAC: no rule matched the request"

// binding is the part of a RoleBinding or ClusterRoleBinding the authorizer needs.
type binding struct {
	cluster   bool   // ClusterRoleBinding rather than RoleBinding
	name      string // object name
	namespace string // "" for ClusterRoleBindings
	roleRef   rbacv1.RoleRef
	subjects  []rbacv1.Subject
}

// subjectRef points at the subject of a binding that an index key came from.
type subjectRef struct {
	b    *binding
	subj int // index into b.subjects
}

// subjectIndex finds the bindings that apply to a user without scanning them
// all. ServiceAccount subjects are stored under the user name they stand for
// (system:serviceaccount:<ns>:<name>), so a request needs one user lookup and
// one lookup per group.
type subjectIndex struct {
	users  map[string][]subjectRef
	groups map[string][]subjectRef
}

func newSubjectIndex() *subjectIndex {
	return &subjectIndex{users: map[string][]subjectRef{}, groups: map[string][]subjectRef{}}
}

func (ix *subjectIndex) empty() bool { return len(ix.users) == 0 && len(ix.groups) == 0 }

// subjectKey returns the index map and key a subject is filed under, or nil
// when the subject can never match a user (unknown kind, or a ServiceAccount
// without a namespace in a ClusterRoleBinding).
func (ix *subjectIndex) subjectKey(s *rbacv1.Subject, bindingNamespace string) (map[string][]subjectRef, string) {
	switch s.Kind {
	case rbacv1.UserKind:
		return ix.users, s.Name
	case rbacv1.GroupKind:
		return ix.groups, s.Name
	case rbacv1.ServiceAccountKind:
		ns := s.Namespace
		if ns == "" {
			ns = bindingNamespace
		}
		if ns == "" {
			return nil, ""
		}
		return ix.users, serviceAccountUsernamePrefix + ns + ":" + s.Name
	}
	return nil, ""
}

const serviceAccountUsernamePrefix = "system:serviceaccount:"

func (ix *subjectIndex) add(b *binding) {
	for i := range b.subjects {
		m, key := ix.subjectKey(&b.subjects[i], b.namespace)
		if m == nil {
			continue
		}
		refs := m[key]
		// Kubernetes uses the first matching subject of a binding; subjects of
		// one binding are added consecutively, so a duplicate is the last entry.
		if n := len(refs); n > 0 && refs[n-1].b == b {
			continue
		}
		m[key] = append(refs, subjectRef{b: b, subj: i})
	}
}

func (ix *subjectIndex) remove(b *binding) {
	for i := range b.subjects {
		m, key := ix.subjectKey(&b.subjects[i], b.namespace)
		if m == nil {
			continue
		}
		// Writers hold the lock, so filtering in place is safe; DeleteFunc
		// also clears the tail so removed bindings are not kept alive.
		refs := slices.DeleteFunc(m[key], func(r subjectRef) bool { return r.b == b })
		if len(refs) == 0 {
			delete(m, key)
		} else {
			m[key] = refs
		}
	}
}

// Authorizer holds an in-memory copy of the RBAC objects, indexed for
// Authorize. It is safe for concurrent use; Authorize takes only a read lock.
type Authorizer struct {
	mu           sync.RWMutex
	roles        map[string]map[string][]rbacv1.PolicyRule // namespace -> name -> rules
	clusterRoles map[string][]rbacv1.PolicyRule
	crbs         map[string]*binding            // name -> binding
	rbs          map[string]map[string]*binding // namespace -> name -> binding
	crbIndex     *subjectIndex
	rbIndex      map[string]*subjectIndex // namespace -> index of that namespace's RoleBindings
}

// New returns an empty Authorizer, which denies everything.
func New() *Authorizer {
	a := &Authorizer{}
	a.init()
	return a
}

func (a *Authorizer) init() {
	a.roles = map[string]map[string][]rbacv1.PolicyRule{}
	a.clusterRoles = map[string][]rbacv1.PolicyRule{}
	a.crbs = map[string]*binding{}
	a.rbs = map[string]map[string]*binding{}
	a.crbIndex = newSubjectIndex()
	a.rbIndex = map[string]*subjectIndex{}
}

// Upsert adds or replaces a *rbacv1.Role, *rbacv1.ClusterRole,
// *rbacv1.RoleBinding or *rbacv1.ClusterRoleBinding; other objects are ignored.
// The object is copied, so the caller may reuse it.
func (a *Authorizer) Upsert(obj runtime.Object) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.upsertLocked(obj)
}

func (a *Authorizer) upsertLocked(obj runtime.Object) {
	switch o := obj.(type) {
	case *rbacv1.Role:
		if o == nil {
			return
		}
		m := a.roles[o.Namespace]
		if m == nil {
			m = map[string][]rbacv1.PolicyRule{}
			a.roles[o.Namespace] = m
		}
		m[o.Name] = copyRules(o.Rules)
	case *rbacv1.ClusterRole:
		if o == nil {
			return
		}
		a.clusterRoles[o.Name] = copyRules(o.Rules)
	case *rbacv1.RoleBinding:
		if o == nil {
			return
		}
		b := &binding{name: o.Name, namespace: o.Namespace, roleRef: o.RoleRef, subjects: slices.Clone(o.Subjects)}
		m := a.rbs[o.Namespace]
		if m == nil {
			m = map[string]*binding{}
			a.rbs[o.Namespace] = m
		}
		ix := a.rbIndex[o.Namespace]
		if ix == nil {
			ix = newSubjectIndex()
			a.rbIndex[o.Namespace] = ix
		}
		if old := m[o.Name]; old != nil {
			ix.remove(old)
		}
		m[o.Name] = b
		ix.add(b)
	case *rbacv1.ClusterRoleBinding:
		if o == nil {
			return
		}
		b := &binding{cluster: true, name: o.Name, roleRef: o.RoleRef, subjects: slices.Clone(o.Subjects)}
		if old := a.crbs[o.Name]; old != nil {
			a.crbIndex.remove(old)
		}
		a.crbs[o.Name] = b
		a.crbIndex.add(b)
	}
}

// Remove deletes the object with the same kind, namespace and name as obj.
func (a *Authorizer) Remove(obj runtime.Object) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch o := obj.(type) {
	case *rbacv1.Role:
		if o == nil {
			return
		}
		if m := a.roles[o.Namespace]; m != nil {
			delete(m, o.Name)
			if len(m) == 0 {
				delete(a.roles, o.Namespace)
			}
		}
	case *rbacv1.ClusterRole:
		if o == nil {
			return
		}
		delete(a.clusterRoles, o.Name)
	case *rbacv1.RoleBinding:
		if o == nil {
			return
		}
		m := a.rbs[o.Namespace]
		old := m[o.Name]
		if old == nil {
			return
		}
		delete(m, o.Name)
		if len(m) == 0 {
			delete(a.rbs, o.Namespace)
		}
		if ix := a.rbIndex[o.Namespace]; ix != nil {
			ix.remove(old)
			if ix.empty() {
				delete(a.rbIndex, o.Namespace)
			}
		}
	case *rbacv1.ClusterRoleBinding:
		if o == nil {
			return
		}
		if old := a.crbs[o.Name]; old != nil {
			delete(a.crbs, o.Name)
			a.crbIndex.remove(old)
		}
	}
}

// Reset replaces the whole state with objs, e.g. after a relist. The new state
// is built before the lock is taken, so readers see either the old or the new
// state and are blocked only for the swap.
func (a *Authorizer) Reset(objs []runtime.Object) {
	fresh := New()
	for _, o := range objs {
		fresh.upsertLocked(o)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roles = fresh.roles
	a.clusterRoles = fresh.clusterRoles
	a.crbs = fresh.crbs
	a.rbs = fresh.rbs
	a.crbIndex = fresh.crbIndex
	a.rbIndex = fresh.rbIndex
}

func copyRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	out := make([]rbacv1.PolicyRule, len(rules))
	for i := range rules {
		rules[i].DeepCopyInto(&out[i])
	}
	return out
}

// Authorize decides a request. Like Kubernetes, it looks at ClusterRoleBindings
// first and then, for namespaced requests, the RoleBindings of the request's
// namespace; bindings are visited in name order so the reported binding is
// deterministic.
func (a *Authorizer) Authorize(attrs Attributes) Decision {
	a.mu.RLock()
	defer a.mu.RUnlock()

	var buf [16]subjectRef
	var errs []string

	cands := gather(buf[:0], a.crbIndex, &attrs.User)
	if d, ok := a.evaluate(cands, &attrs, &errs); ok {
		return d
	}
	if attrs.Namespace != "" {
		if ix := a.rbIndex[attrs.Namespace]; ix != nil {
			cands = gather(cands[:0], ix, &attrs.User)
			if d, ok := a.evaluate(cands, &attrs, &errs); ok {
				return d
			}
		}
	}
	if len(errs) > 0 {
		return Decision{Reason: "RBAC: " + aggregate(errs)}
	}
	return Decision{Reason: ReasonNoMatch}
}

// gather collects the bindings of ix that apply to u, each once with its first
// matching subject, sorted by binding name.
func gather(out []subjectRef, ix *subjectIndex, u *User) []subjectRef {
	out = appendRefs(out, ix.users[u.Name])
	for _, g := range u.Groups {
		out = appendRefs(out, ix.groups[g])
	}
	slices.SortFunc(out, func(x, y subjectRef) int { return cmp.Compare(x.b.name, y.b.name) })
	return out
}

// appendRefs merges refs into out, keeping for each binding the lowest subject
// index (a binding can be reached through several of the user's keys).
func appendRefs(out, refs []subjectRef) []subjectRef {
next:
	for _, r := range refs {
		for i := range out {
			if out[i].b == r.b {
				if r.subj < out[i].subj {
					out[i].subj = r.subj
				}
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// evaluate checks the rules of the roles bound by cands. Missing roles are
// recorded in errs, which Kubernetes reports in the denial reason.
func (a *Authorizer) evaluate(cands []subjectRef, attrs *Attributes, errs *[]string) (Decision, bool) {
	for _, c := range cands {
		rules, err := a.roleRules(c.b)
		if err != "" {
			*errs = append(*errs, err)
			continue
		}
		for i := range rules {
			if ruleAllows(attrs, &rules[i]) {
				return Decision{Allowed: true, Reason: "RBAC: allowed by " + describe(c)}, true
			}
		}
	}
	return Decision{}, false
}

// roleRules resolves a binding's roleRef. A RoleBinding may reference a Role in
// its own namespace or a ClusterRole (whose rules then apply only in that
// namespace, because RoleBindings are only consulted there).
func (a *Authorizer) roleRules(b *binding) ([]rbacv1.PolicyRule, string) {
	switch b.roleRef.Kind {
	case "ClusterRole":
		if rules, ok := a.clusterRoles[b.roleRef.Name]; ok {
			return rules, ""
		}
		return nil, fmt.Sprintf("clusterrole.rbac.authorization.k8s.io %q not found", b.roleRef.Name)
	case "Role":
		// A ClusterRoleBinding has no namespace, so a Role reference from it
		// never resolves, as in Kubernetes.
		if rules, ok := a.roles[b.namespace][b.roleRef.Name]; ok && !b.cluster {
			return rules, ""
		}
		return nil, fmt.Sprintf("role.rbac.authorization.k8s.io %q not found", b.roleRef.Name)
	}
	return nil, fmt.Sprintf("unsupported role reference kind: %q", b.roleRef.Kind)
}

// describe renders the allow reason the way Kubernetes does, including its
// "name/namespace" order for RoleBindings and ServiceAccounts. strconv.Quote
// is what %q does for strings, without fmt's allocations on the hot path.
func describe(c subjectRef) string {
	b := c.b
	s := &b.subjects[c.subj]
	subj := s.Name
	if s.Kind == rbacv1.ServiceAccountKind {
		ns := s.Namespace
		if ns == "" {
			ns = b.namespace
		}
		subj += "/" + ns
	}
	kind, name := "RoleBinding ", b.name+"/"+b.namespace
	if b.cluster {
		kind, name = "ClusterRoleBinding ", b.name
	}
	return kind + strconv.Quote(name) + " of " + b.roleRef.Kind + " " + strconv.Quote(b.roleRef.Name) +
		" to " + s.Kind + " " + strconv.Quote(subj)
}

// aggregate formats errors like apimachinery's utilerrors aggregate: one error
// as is, several de-duplicated inside brackets.
func aggregate(errs []string) string {
	if len(errs) == 1 {
		return errs[0]
	}
	var uniq []string
	for _, e := range errs {
		if !slices.Contains(uniq, e) {
			uniq = append(uniq, e)
		}
	}
	if len(uniq) == 1 {
		return uniq[0]
	}
	s := "["
	for i, e := range uniq {
		if i > 0 {
			s += ", "
		}
		s += e
	}
	return s + "]"
}
