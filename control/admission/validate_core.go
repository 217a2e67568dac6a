package admission

import (
	"encoding/json"
	"fmt"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxDataSize bounds a ConfigMap's or Secret's payload, as Kubernetes does,
// so one object cannot bloat every watcher and the replicated store.
const maxDataSize = 1 << 20

const immutableDataMsg = "field is immutable when `immutable` is set"

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	errs := validateMeta(&ns.ObjectMeta, false, apivalidation.ValidateNamespaceName)
	return append(errs, validateNamespaceBody(ns)...)
}

func validateNamespaceUpdate(ns, old *corev1.Namespace) field.ErrorList {
	errs := validateMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)
	return append(errs, validateNamespaceBody(ns)...)
}

func validateNamespaceBody(ns *corev1.Namespace) field.ErrorList {
	var errs field.ErrorList
	for i, f := range ns.Spec.Finalizers {
		fp := specPath().Child("finalizers").Index(i)
		errs = append(errs, invalidEach(fp, f, validation.IsQualifiedName(string(f)))...)
		if f != corev1.FinalizerKubernetes && !strings.Contains(string(f), "/") {
			errs = append(errs, field.Invalid(fp, f, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	errs = append(errs, optionalOneOf(field.NewPath("status", "phase"), ns.Status.Phase,
		corev1.NamespaceActive, corev1.NamespaceTerminating)...)
	return errs
}

func validateNode(node *corev1.Node) field.ErrorList {
	errs := validateMeta(&node.ObjectMeta, false, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateNodeBody(node)...)
}

// validateNodeUpdate: a node's pod CIDRs and provider ID, once set, are
// baked into its routes and its cloud identity.
func validateNodeUpdate(node, old *corev1.Node) field.ErrorList {
	errs := validateMetaUpdate(&node.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateNodeBody(node)...)
	p := specPath()
	if old.Spec.PodCIDR != "" {
		errs = append(errs, apivalidation.ValidateImmutableField(node.Spec.PodCIDR, old.Spec.PodCIDR, p.Child("podCIDR"))...)
	}
	if len(old.Spec.PodCIDRs) > 0 {
		errs = append(errs, apivalidation.ValidateImmutableField(node.Spec.PodCIDRs, old.Spec.PodCIDRs, p.Child("podCIDRs"))...)
	}
	if old.Spec.ProviderID != "" {
		errs = append(errs, apivalidation.ValidateImmutableField(node.Spec.ProviderID, old.Spec.ProviderID, p.Child("providerID"))...)
	}
	return errs
}

func validateNodeBody(node *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	p := specPath()
	if node.Spec.PodCIDR != "" {
		errs = append(errs, validation.IsValidCIDR(p.Child("podCIDR"), node.Spec.PodCIDR)...)
	}
	if len(node.Spec.PodCIDRs) > 2 {
		errs = append(errs, field.TooMany(p.Child("podCIDRs"), len(node.Spec.PodCIDRs), 2))
	}
	for i, cidr := range node.Spec.PodCIDRs {
		errs = append(errs, validation.IsValidCIDR(p.Child("podCIDRs").Index(i), cidr)...)
	}
	if len(node.Spec.PodCIDRs) > 0 && node.Spec.PodCIDR != "" && node.Spec.PodCIDRs[0] != node.Spec.PodCIDR {
		errs = append(errs, field.Invalid(p.Child("podCIDRs").Index(0), node.Spec.PodCIDRs[0], "must match `podCIDR`"))
	}
	type taintKey struct {
		key    string
		effect corev1.TaintEffect
	}
	seen := map[taintKey]bool{}
	for i, t := range node.Spec.Taints {
		ip := p.Child("taints").Index(i)
		if t.Key == "" {
			errs = append(errs, field.Required(ip.Child("key"), ""))
		} else {
			errs = append(errs, metavalidation.ValidateLabelName(t.Key, ip.Child("key"))...)
		}
		errs = append(errs, invalidEach(ip.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))...)
		errs = append(errs, oneOf(ip.Child("effect"), t.Effect,
			corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute)...)
		k := taintKey{t.Key, t.Effect}
		if seen[k] {
			errs = append(errs, field.Duplicate(ip, fmt.Sprintf("%s:%s", t.Key, t.Effect)))
		}
		seen[k] = true
	}
	sp := field.NewPath("status")
	for _, part := range []struct {
		name string
		list corev1.ResourceList
	}{{"capacity", node.Status.Capacity}, {"allocatable", node.Status.Allocatable}} {
		for _, name := range sortedKeys(part.list) {
			if q := part.list[name]; q.Sign() < 0 {
				errs = append(errs, field.Invalid(sp.Child(part.name).Key(string(name)), q.String(), "must be greater than or equal to 0"))
			}
		}
	}
	for i, a := range node.Status.Addresses {
		ip := sp.Child("addresses").Index(i)
		errs = append(errs, oneOf(ip.Child("type"), a.Type, corev1.NodeHostName, corev1.NodeInternalIP,
			corev1.NodeExternalIP, corev1.NodeInternalDNS, corev1.NodeExternalDNS)...)
		if a.Address == "" {
			errs = append(errs, field.Required(ip.Child("address"), ""))
		}
	}
	return errs
}

func validateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	errs := validateMeta(&ep.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateEndpointsBody(ep)...)
}

func validateEndpointsBody(ep *corev1.Endpoints) field.ErrorList {
	var errs field.ErrorList
	for i, ss := range ep.Subsets {
		ip := field.NewPath("subsets").Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(ip, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j, a := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(a, ip.Child("addresses").Index(j))...)
		}
		for j, a := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(a, ip.Child("notReadyAddresses").Index(j))...)
		}
		for j, port := range ss.Ports {
			pp := ip.Child("ports").Index(j)
			if len(ss.Ports) > 1 {
				errs = append(errs, requiredName(pp.Child("name"), port.Name, validation.IsDNS1123Label)...)
			} else {
				errs = append(errs, optionalName(pp.Child("name"), port.Name, validation.IsDNS1123Label)...)
			}
			errs = append(errs, validatePortNum(pp.Child("port"), port.Port)...)
			errs = append(errs, oneOf(pp.Child("protocol"), port.Protocol, corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
		}
	}
	return errs
}

func validateEndpointAddress(a corev1.EndpointAddress, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if a.IP == "" {
		errs = append(errs, field.Required(p.Child("ip"), ""))
	} else {
		errs = append(errs, validation.IsValidIP(p.Child("ip"), a.IP)...)
	}
	errs = append(errs, optionalName(p.Child("hostname"), a.Hostname, validation.IsDNS1123Label)...)
	if a.NodeName != nil {
		errs = append(errs, optionalName(p.Child("nodeName"), *a.NodeName, validation.IsDNS1123Subdomain)...)
	}
	return errs
}

func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs := validateMeta(&cm.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateConfigMapBody(cm)...)
}

func validateConfigMapUpdate(cm, old *corev1.ConfigMap) field.ErrorList {
	errs := validateMetaUpdate(&cm.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateConfigMapBody(cm)...)
	if isImmutable(old.Immutable) {
		errs = append(errs, validateImmutableData(cm.Immutable, map[string]any{"data": cm.Data, "binaryData": cm.BinaryData},
			map[string]any{"data": old.Data, "binaryData": old.BinaryData})...)
	}
	return errs
}

func validateConfigMapBody(cm *corev1.ConfigMap) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for _, k := range sortedKeys(cm.Data) {
		errs = append(errs, invalidEach(field.NewPath("data").Key(k), k, validation.IsConfigMapKey(k))...)
		size += len(k) + len(cm.Data[k])
	}
	for _, k := range sortedKeys(cm.BinaryData) {
		kp := field.NewPath("binaryData").Key(k)
		errs = append(errs, invalidEach(kp, k, validation.IsConfigMapKey(k))...)
		if _, ok := cm.Data[k]; ok {
			errs = append(errs, field.Invalid(kp, k, "duplicate of key present in data"))
		}
		size += len(k) + len(cm.BinaryData[k])
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(field.NewPath("data"), "", maxDataSize))
	}
	return errs
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	errs := validateMeta(&s.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateSecretBody(s)...)
}

func validateSecretUpdate(s, old *corev1.Secret) field.ErrorList {
	errs := validateMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateSecretBody(s)...)
	// Consumers decide how to read a secret by its type.
	errs = append(errs, apivalidation.ValidateImmutableField(s.Type, old.Type, field.NewPath("type"))...)
	if isImmutable(old.Immutable) {
		errs = append(errs, validateImmutableData(s.Immutable, map[string]any{"data": s.Data}, map[string]any{"data": old.Data})...)
	}
	return errs
}

func validateSecretBody(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	dp := field.NewPath("data")
	size := 0
	for _, k := range sortedKeys(s.Data) {
		errs = append(errs, invalidEach(dp.Key(k), k, validation.IsConfigMapKey(k))...)
		size += len(s.Data[k])
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(dp, "", maxDataSize))
	}
	requireKey := func(k string) {
		if _, ok := s.Data[k]; !ok {
			errs = append(errs, field.Required(dp.Key(k), ""))
		}
	}
	requireJSON := func(k string) {
		requireKey(k)
		if v, ok := s.Data[k]; ok && !json.Valid(v) {
			errs = append(errs, field.Invalid(dp.Key(k), "<secret contents redacted>", "must be valid JSON"))
		}
	}
	switch s.Type {
	case "":
		errs = append(errs, field.Required(field.NewPath("type"), ""))
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(metaPath().Child("annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		requireJSON(corev1.DockerConfigKey)
	case corev1.SecretTypeDockerConfigJson:
		requireJSON(corev1.DockerConfigJsonKey)
	case corev1.SecretTypeBasicAuth:
		_, user := s.Data[corev1.BasicAuthUsernameKey]
		_, pass := s.Data[corev1.BasicAuthPasswordKey]
		if !user && !pass {
			errs = append(errs, field.Required(dp.Key(corev1.BasicAuthUsernameKey), "or "+corev1.BasicAuthPasswordKey))
		}
	case corev1.SecretTypeSSHAuth:
		requireKey(corev1.SSHAuthPrivateKey)
	case corev1.SecretTypeTLS:
		requireKey(corev1.TLSCertKey)
		requireKey(corev1.TLSPrivateKeyKey)
	}
	return errs
}

func isImmutable(b *bool) bool { return b != nil && *b }

// validateImmutableData enforces immutable: true, which lets nodes stop
// watching the object: once set it stays set and the payload stays as is.
func validateImmutableData(immutable *bool, parts, oldParts map[string]any) field.ErrorList {
	var errs field.ErrorList
	if !isImmutable(immutable) {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), immutableDataMsg))
	}
	for _, name := range sortedKeys(parts) {
		if !apiequality.Semantic.DeepEqual(parts[name], oldParts[name]) {
			errs = append(errs, field.Forbidden(field.NewPath(name), immutableDataMsg))
		}
	}
	return errs
}

func validateEvent(ev *corev1.Event) field.ErrorList {
	errs := validateMeta(&ev.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateEventBody(ev)...)
}

func validateEventBody(ev *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	if ns := ev.InvolvedObject.Namespace; ns != "" && ev.Namespace != "" && ns != ev.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("involvedObject", "namespace"), ns, "does not match event.namespace"))
	}
	errs = append(errs, nonNegative(field.NewPath("count"), ev.Count)...)
	return errs
}

func validateServiceAccount(sa *corev1.ServiceAccount) field.ErrorList {
	errs := validateMeta(&sa.ObjectMeta, true, apivalidation.ValidateServiceAccountName)
	return append(errs, validateServiceAccountBody(sa)...)
}

func validateServiceAccountBody(sa *corev1.ServiceAccount) field.ErrorList {
	var errs field.ErrorList
	for i, s := range sa.ImagePullSecrets {
		errs = append(errs, requiredName(field.NewPath("imagePullSecrets").Index(i).Child("name"), s.Name, validation.IsDNS1123Subdomain)...)
	}
	return errs
}

func validateLease(l *coordinationv1.Lease) field.ErrorList {
	errs := validateMeta(&l.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateLeaseBody(l)...)
}

func validateLeaseBody(l *coordinationv1.Lease) field.ErrorList {
	var errs field.ErrorList
	p := specPath()
	if d := l.Spec.LeaseDurationSeconds; d != nil {
		errs = append(errs, atLeast(p.Child("leaseDurationSeconds"), *d, 1)...)
	}
	errs = append(errs, nonNegativePtr(p.Child("leaseTransitions"), l.Spec.LeaseTransitions)...)
	return errs
}
