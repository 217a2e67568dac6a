package admission

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Service names are RFC 1035 labels because they become DNS names and
// environment variable prefixes, which may not start with a digit.
func validateService(svc *corev1.Service) field.ErrorList {
	errs := validateMeta(&svc.ObjectMeta, true, apivalidation.NameIsDNS1035Label)
	return append(errs, validateServiceSpec(&svc.Spec)...)
}

func validateServiceUpdate(svc, old *corev1.Service) field.ErrorList {
	errs := validateMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateServiceSpec(&svc.Spec)...)
	// A cluster IP, once allocated, is what clients and proxies already use.
	p := specPath()
	if old.Spec.ClusterIP != "" {
		errs = append(errs, apivalidation.ValidateImmutableField(svc.Spec.ClusterIP, old.Spec.ClusterIP, p.Child("clusterIP"))...)
	}
	if len(old.Spec.ClusterIPs) > 0 && len(svc.Spec.ClusterIPs) > 0 {
		errs = append(errs, apivalidation.ValidateImmutableField(svc.Spec.ClusterIPs[0], old.Spec.ClusterIPs[0], p.Child("clusterIPs").Index(0))...)
	}
	return errs
}

func validateServiceSpec(spec *corev1.ServiceSpec) field.ErrorList {
	p := specPath()
	errs := oneOf(p.Child("type"), spec.Type, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)
	headless := spec.ClusterIP == corev1.ClusterIPNone
	if len(spec.Ports) == 0 && !headless && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(p.Child("ports"), ""))
	}
	errs = append(errs, validateServicePorts(spec, p.Child("ports"))...)
	errs = append(errs, metavalidation.ValidateLabels(spec.Selector, p.Child("selector"))...)
	errs = append(errs, validateClusterIPs(spec, p)...)

	errs = append(errs, oneOf(p.Child("sessionAffinity"), spec.SessionAffinity,
		corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP)...)
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		cp := p.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds")
		if c := spec.SessionAffinityConfig; c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			errs = append(errs, field.Required(cp, "when `sessionAffinity` is ClientIP"))
		} else if t := *c.ClientIP.TimeoutSeconds; t < 1 || t > 86400 {
			errs = append(errs, field.Invalid(cp, t, "must be in the range 1-86400"))
		}
	} else if spec.SessionAffinityConfig != nil {
		errs = append(errs, field.Forbidden(p.Child("sessionAffinityConfig"), "may only be set when `sessionAffinity` is ClientIP"))
	}

	external := spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer
	switch {
	case spec.ExternalTrafficPolicy == "":
	case !external && len(spec.ExternalIPs) == 0:
		errs = append(errs, field.Invalid(p.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy,
			"may only be set for externally-accessible services"))
	default:
		errs = append(errs, oneOf(p.Child("externalTrafficPolicy"), spec.ExternalTrafficPolicy,
			corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)...)
	}
	if spec.InternalTrafficPolicy != nil {
		errs = append(errs, oneOf(p.Child("internalTrafficPolicy"), *spec.InternalTrafficPolicy,
			corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal)...)
	}
	return errs
}

func validateServicePorts(spec *corev1.ServiceSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	type portKey struct {
		port     int32
		protocol corev1.Protocol
	}
	seen := map[portKey]bool{}
	nodePorts := spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer
	for i, port := range spec.Ports {
		ip := p.Index(i)
		// With several ports, names are how endpoints and clients tell them apart.
		if len(spec.Ports) > 1 && port.Name == "" {
			errs = append(errs, field.Required(ip.Child("name"), "when multiple ports are specified"))
		}
		if port.Name != "" {
			errs = append(errs, invalidEach(ip.Child("name"), port.Name, validation.IsDNS1123Label(port.Name))...)
			if names[port.Name] {
				errs = append(errs, field.Duplicate(ip.Child("name"), port.Name))
			}
			names[port.Name] = true
		}
		if port.Port == 0 {
			errs = append(errs, field.Required(ip.Child("port"), ""))
		} else {
			errs = append(errs, validatePortNum(ip.Child("port"), port.Port)...)
		}
		errs = append(errs, oneOf(ip.Child("protocol"), port.Protocol, corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
		errs = append(errs, validatePortNumOrName(ip.Child("targetPort"), port.TargetPort)...)
		if port.NodePort != 0 {
			if !nodePorts {
				errs = append(errs, field.Forbidden(ip.Child("nodePort"), fmt.Sprintf("may not be used when `type` is '%s'", spec.Type)))
			} else {
				errs = append(errs, validatePortNum(ip.Child("nodePort"), port.NodePort)...)
			}
		}
		key := portKey{port.Port, port.Protocol}
		if seen[key] {
			errs = append(errs, field.Duplicate(ip, fmt.Sprintf("%d/%s", key.port, key.protocol)))
		}
		seen[key] = true
	}
	return errs
}

func validateClusterIPs(spec *corev1.ServiceSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.Type == corev1.ServiceTypeExternalName {
		if spec.ClusterIP != "" {
			errs = append(errs, field.Forbidden(p.Child("clusterIP"), "may not be set for ExternalName services"))
		}
		return append(errs, requiredName(p.Child("externalName"), spec.ExternalName, validation.IsDNS1123Subdomain)...)
	}
	if spec.ClusterIP != "" && spec.ClusterIP != corev1.ClusterIPNone {
		errs = append(errs, validation.IsValidIP(p.Child("clusterIP"), spec.ClusterIP)...)
	}
	if len(spec.ClusterIPs) > 0 && spec.ClusterIPs[0] != spec.ClusterIP {
		errs = append(errs, field.Invalid(p.Child("clusterIPs").Index(0), spec.ClusterIPs[0],
			"must match `clusterIP` when present"))
	}
	if len(spec.ClusterIPs) > 2 {
		errs = append(errs, field.TooMany(p.Child("clusterIPs"), len(spec.ClusterIPs), 2))
	}
	for i, ip := range spec.ClusterIPs {
		if ip != corev1.ClusterIPNone {
			errs = append(errs, validation.IsValidIP(p.Child("clusterIPs").Index(i), ip)...)
			// The proxy programs each IP in the family ipFamilies says it is.
			if addr, err := netip.ParseAddr(ip); err == nil && i < len(spec.IPFamilies) && ipFamilyOf(addr) != spec.IPFamilies[i] {
				errs = append(errs, field.Invalid(p.Child("clusterIPs").Index(i), ip,
					fmt.Sprintf("must be an %s address, as `ipFamilies[%d]` says", spec.IPFamilies[i], i)))
			}
		} else if i > 0 {
			errs = append(errs, field.Invalid(p.Child("clusterIPs").Index(i), ip, "only the first entry may be 'None'"))
		}
	}
	if spec.ClusterIP == corev1.ClusterIPNone && spec.Type != corev1.ServiceTypeClusterIP {
		errs = append(errs, field.Invalid(p.Child("clusterIP"), spec.ClusterIP, "may only be 'None' for ClusterIP services"))
	}

	fp := p.Child("ipFamilies")
	if len(spec.IPFamilies) > 2 {
		errs = append(errs, field.TooMany(fp, len(spec.IPFamilies), 2))
	}
	seen := map[corev1.IPFamily]bool{}
	for i, f := range spec.IPFamilies {
		errs = append(errs, oneOf(fp.Index(i), f, corev1.IPv4Protocol, corev1.IPv6Protocol)...)
		if seen[f] {
			errs = append(errs, field.Duplicate(fp.Index(i), f))
		}
		seen[f] = true
	}
	if pol := spec.IPFamilyPolicy; pol != nil {
		errs = append(errs, oneOf(p.Child("ipFamilyPolicy"), *pol, corev1.IPFamilyPolicySingleStack,
			corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack)...)
		if *pol == corev1.IPFamilyPolicySingleStack && len(spec.IPFamilies) > 1 {
			errs = append(errs, field.Invalid(fp, spec.IPFamilies, "must have exactly one family when `ipFamilyPolicy` is SingleStack"))
		}
	}
	return errs
}
