package admission

import (
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// podSpecRules is what differs between a bare pod and the templates of the
// controllers that make pods.
type podSpecRules struct {
	restartPolicies []corev1.RestartPolicy
	// noActiveDeadline: a long-running controller's pods must not time out.
	noActiveDeadline bool
}

// The rule sets, read-only: bare pods, the templates of Deployments,
// ReplicaSets and DaemonSets, and Job templates.
var (
	podRules = podSpecRules{restartPolicies: []corev1.RestartPolicy{
		corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}}
	longRunningTemplateRules = podSpecRules{
		restartPolicies:  []corev1.RestartPolicy{corev1.RestartPolicyAlways},
		noActiveDeadline: true,
	}
	jobTemplateRules = podSpecRules{restartPolicies: []corev1.RestartPolicy{
		corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}}
)

func validatePod(pod *corev1.Pod) field.ErrorList {
	errs := validateMeta(&pod.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validatePodSpec(&pod.Spec, podRules, specPath())...)
}

func validatePodTemplate(t *corev1.PodTemplateSpec, rules podSpecRules, p *field.Path) field.ErrorList {
	mp := p.Child("metadata")
	errs := metavalidation.ValidateLabels(t.Labels, mp.Child("labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(t.Annotations, mp.Child("annotations"))...)
	return append(errs, validatePodSpec(&t.Spec, rules, p.Child("spec"))...)
}

func validatePodSpec(spec *corev1.PodSpec, rules podSpecRules, p *field.Path) field.ErrorList {
	volumes, errs := validateVolumes(spec.Volumes, p.Child("volumes"))
	errs = append(errs, validateContainers(spec, volumes, p)...)

	if spec.RestartPolicy == "" {
		errs = append(errs, field.Required(p.Child("restartPolicy"), fmt.Sprintf("valid values: %q", rules.restartPolicies)))
	} else {
		errs = append(errs, oneOf(p.Child("restartPolicy"), spec.RestartPolicy, rules.restartPolicies...)...)
	}
	errs = append(errs, oneOf(p.Child("dnsPolicy"), spec.DNSPolicy,
		corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone)...)
	if spec.DNSPolicy == corev1.DNSNone && spec.DNSConfig == nil {
		errs = append(errs, field.Required(p.Child("dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
	}
	errs = append(errs, nonNegativePtr(p.Child("terminationGracePeriodSeconds"), spec.TerminationGracePeriodSeconds)...)
	if d := spec.ActiveDeadlineSeconds; d != nil {
		if rules.noActiveDeadline {
			errs = append(errs, field.Forbidden(p.Child("activeDeadlineSeconds"), "not allowed in the pod template of a long-running workload"))
		} else {
			errs = append(errs, atLeast(p.Child("activeDeadlineSeconds"), *d, 1)...)
		}
	}
	errs = append(errs, metavalidation.ValidateLabels(spec.NodeSelector, p.Child("nodeSelector"))...)
	errs = append(errs, optionalName(p.Child("nodeName"), spec.NodeName, validation.IsDNS1123Subdomain)...)
	errs = append(errs, optionalName(p.Child("serviceAccountName"), spec.ServiceAccountName, validation.IsDNS1123Subdomain)...)
	errs = append(errs, optionalName(p.Child("hostname"), spec.Hostname, validation.IsDNS1123Label)...)
	errs = append(errs, optionalName(p.Child("subdomain"), spec.Subdomain, validation.IsDNS1123Label)...)
	errs = append(errs, optionalName(p.Child("schedulerName"), spec.SchedulerName, validation.IsDNS1123Subdomain)...)
	errs = append(errs, optionalName(p.Child("priorityClassName"), spec.PriorityClassName, validation.IsDNS1123Subdomain)...)
	errs = append(errs, validateTolerations(spec.Tolerations, p.Child("tolerations"))...)
	if spec.Affinity != nil && spec.Affinity.NodeAffinity != nil {
		errs = append(errs, validateNodeAffinity(spec.Affinity.NodeAffinity, p.Child("affinity", "nodeAffinity"))...)
	}
	if sc := spec.SecurityContext; sc != nil {
		sp := p.Child("securityContext")
		errs = append(errs, validateIDs(sp, sc.RunAsUser, sc.RunAsGroup)...)
		if sc.FSGroup != nil {
			errs = append(errs, invalidEach(sp.Child("fsGroup"), *sc.FSGroup, validation.IsValidGroupID(*sc.FSGroup))...)
		}
	}
	for i, s := range spec.ImagePullSecrets {
		errs = append(errs, requiredName(p.Child("imagePullSecrets").Index(i).Child("name"), s.Name, validation.IsDNS1123Subdomain)...)
	}
	return errs
}

func validateIDs(p *field.Path, user, group *int64) field.ErrorList {
	var errs field.ErrorList
	if user != nil {
		errs = append(errs, invalidEach(p.Child("runAsUser"), *user, validation.IsValidUserID(*user))...)
	}
	if group != nil {
		errs = append(errs, invalidEach(p.Child("runAsGroup"), *group, validation.IsValidGroupID(*group))...)
	}
	return errs
}

// validateContainers validates containers and init containers; names are
// unique across both, because the node agent and logs address containers by
// name alone.
func validateContainers(spec *corev1.PodSpec, volumes map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), "must have at least one container"))
	}
	seen := map[string]bool{}
	each := func(cs []corev1.Container, cp *field.Path, init bool) {
		for i := range cs {
			c, ip := &cs[i], cp.Index(i)
			errs = append(errs, validateContainer(c, volumes, spec.HostNetwork, init, ip)...)
			if c.Name != "" {
				if seen[c.Name] {
					errs = append(errs, field.Duplicate(ip.Child("name"), c.Name))
				}
				seen[c.Name] = true
			}
		}
	}
	each(spec.InitContainers, p.Child("initContainers"), true)
	each(spec.Containers, p.Child("containers"), false)
	return errs
}

func validateContainer(c *corev1.Container, volumes map[string]bool, hostNetwork, init bool, p *field.Path) field.ErrorList {
	errs := requiredName(p.Child("name"), c.Name, validation.IsDNS1123Label)
	switch {
	case c.Image == "":
		errs = append(errs, field.Required(p.Child("image"), ""))
	case strings.TrimSpace(c.Image) != c.Image:
		errs = append(errs, field.Invalid(p.Child("image"), c.Image, "must not have leading or trailing whitespace"))
	}
	errs = append(errs, oneOf(p.Child("imagePullPolicy"), c.ImagePullPolicy,
		corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)...)
	errs = append(errs, oneOf(p.Child("terminationMessagePolicy"), c.TerminationMessagePolicy,
		corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError)...)
	errs = append(errs, validateContainerPorts(c.Ports, hostNetwork, p.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, p.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, p.Child("envFrom"))...)
	errs = append(errs, validateResources(&c.Resources, p.Child("resources"))...)
	errs = append(errs, validateVolumeMounts(c.VolumeMounts, volumes, p.Child("volumeMounts"))...)

	probes := []struct {
		name  string
		probe *corev1.Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}}
	for _, pr := range probes {
		switch {
		case pr.probe == nil:
		case init:
			// An init container runs to completion; there is nothing to probe.
			errs = append(errs, field.Forbidden(p.Child(pr.name), "may not be set for init containers"))
		default:
			errs = append(errs, validateProbe(pr.probe, pr.name != "readinessProbe", p.Child(pr.name))...)
		}
	}
	if sc := c.SecurityContext; sc != nil {
		errs = append(errs, validateIDs(p.Child("securityContext"), sc.RunAsUser, sc.RunAsGroup)...)
	}
	return errs
}

func validateContainerPorts(ports []corev1.ContainerPort, hostNetwork bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	type portKey struct {
		port     int32
		protocol corev1.Protocol
	}
	pairs := map[portKey]bool{}
	for i, port := range ports {
		ip := p.Index(i)
		if port.Name != "" {
			errs = append(errs, invalidEach(ip.Child("name"), port.Name, validation.IsValidPortName(port.Name))...)
			if names[port.Name] {
				errs = append(errs, field.Duplicate(ip.Child("name"), port.Name))
			}
			names[port.Name] = true
		}
		if port.ContainerPort == 0 {
			errs = append(errs, field.Required(ip.Child("containerPort"), ""))
		} else {
			errs = append(errs, validatePortNum(ip.Child("containerPort"), port.ContainerPort)...)
		}
		if port.HostPort != 0 {
			errs = append(errs, validatePortNum(ip.Child("hostPort"), port.HostPort)...)
		}
		if hostNetwork && port.HostPort != port.ContainerPort {
			errs = append(errs, field.Invalid(ip.Child("hostPort"), port.HostPort, "must match `containerPort` when `hostNetwork` is true"))
		}
		if port.HostIP != "" {
			errs = append(errs, validation.IsValidIP(ip.Child("hostIP"), port.HostIP)...)
		}
		errs = append(errs, oneOf(ip.Child("protocol"), port.Protocol, corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
		key := portKey{port.ContainerPort, port.Protocol}
		if pairs[key] {
			errs = append(errs, field.Duplicate(ip.Child("containerPort"), fmt.Sprintf("%d/%s", key.port, key.protocol)))
		}
		pairs[key] = true
	}
	return errs
}

// envFieldPaths are the pod fields an env var may be read from (the
// downward API); labels and annotations are handled separately.
var envFieldPaths = []string{
	"metadata.name", "metadata.namespace", "metadata.uid",
	"spec.nodeName", "spec.serviceAccountName",
	"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}

// subscriptedFieldPath matches metadata.labels['key'] and metadata.annotations['key'].
var subscriptedFieldPath = regexp.MustCompile(`^metadata\.(labels|annotations)\['(.*)'\]$`)

func validateEnv(env []corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		ip := p.Index(i)
		errs = append(errs, requiredName(ip.Child("name"), e.Name, validation.IsRelaxedEnvVarName)...)
		if e.ValueFrom != nil {
			errs = append(errs, validateEnvSource(e.ValueFrom, e.Value != "", ip.Child("valueFrom"))...)
		}
	}
	return errs
}

func validateEnvSource(src *corev1.EnvVarSource, hasValue bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if hasValue {
		errs = append(errs, field.Invalid(p, "", "may not be specified when `value` is not empty"))
	}
	switch n := countSet(*src); {
	case n == 0:
		return append(errs, field.Required(p, "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
	case n > 1:
		return append(errs, field.Invalid(p, "", "may not have more than one field specified at a time"))
	}
	if ref := src.FieldRef; ref != nil {
		fp := p.Child("fieldRef")
		if ref.APIVersion == "" {
			errs = append(errs, field.Required(fp.Child("apiVersion"), ""))
		} else if ref.APIVersion != "v1" {
			errs = append(errs, field.NotSupported(fp.Child("apiVersion"), ref.APIVersion, []string{"v1"}))
		}
		switch m := subscriptedFieldPath.FindStringSubmatch(ref.FieldPath); {
		case ref.FieldPath == "":
			errs = append(errs, field.Required(fp.Child("fieldPath"), ""))
		case m != nil && m[1] == "labels":
			errs = append(errs, metavalidation.ValidateLabelName(m[2], fp.Child("fieldPath"))...)
		case m != nil:
			errs = append(errs, invalidEach(fp.Child("fieldPath"), ref.FieldPath, validation.IsQualifiedName(strings.ToLower(m[2])))...)
		case !slices.Contains(envFieldPaths, ref.FieldPath):
			errs = append(errs, field.NotSupported(fp.Child("fieldPath"), ref.FieldPath,
				slices.Concat(envFieldPaths, []string{"metadata.labels['<KEY>']", "metadata.annotations['<KEY>']"})))
		}
	}
	if ref := src.ResourceFieldRef; ref != nil {
		allowed := []string{"limits.cpu", "limits.memory", "limits.ephemeral-storage",
			"requests.cpu", "requests.memory", "requests.ephemeral-storage"}
		errs = append(errs, oneOf(p.Child("resourceFieldRef", "resource"), ref.Resource, allowed...)...)
	}
	if ref := src.ConfigMapKeyRef; ref != nil {
		errs = append(errs, validateKeyRef(ref.Name, ref.Key, p.Child("configMapKeyRef"))...)
	}
	if ref := src.SecretKeyRef; ref != nil {
		errs = append(errs, validateKeyRef(ref.Name, ref.Key, p.Child("secretKeyRef"))...)
	}
	return errs
}

func validateKeyRef(name, key string, p *field.Path) field.ErrorList {
	errs := requiredName(p.Child("name"), name, validation.IsDNS1123Subdomain)
	return append(errs, requiredName(p.Child("key"), key, validation.IsConfigMapKey)...)
}

func validateEnvFrom(envFrom []corev1.EnvFromSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range envFrom {
		ip := p.Index(i)
		errs = append(errs, optionalName(ip.Child("prefix"), e.Prefix, validation.IsRelaxedEnvVarName)...)
		switch n := countSet(e); {
		case n == 0:
			errs = append(errs, field.Invalid(ip, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(ip, "", "may not have more than one field specified at a time"))
		}
		if e.ConfigMapRef != nil {
			errs = append(errs, requiredName(ip.Child("configMapRef", "name"), e.ConfigMapRef.Name, validation.IsDNS1123Subdomain)...)
		}
		if e.SecretRef != nil {
			errs = append(errs, requiredName(ip.Child("secretRef", "name"), e.SecretRef.Name, validation.IsDNS1123Subdomain)...)
		}
	}
	return errs
}

// validateResources checks resource names, that quantities are not negative,
// and that no request exceeds its limit (a container could never fit its own
// limit otherwise).
func validateResources(r *corev1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, part := range []struct {
		name string
		list corev1.ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for _, name := range sortedKeys(part.list) {
			q, kp := part.list[name], p.Child(part.name).Key(string(name))
			errs = append(errs, validateResourceName(name, kp)...)
			if q.Sign() < 0 {
				errs = append(errs, field.Invalid(kp, q.String(), "must be greater than or equal to 0"))
			}
		}
	}
	for _, name := range sortedKeys(r.Requests) {
		req := r.Requests[name]
		if limit, ok := r.Limits[name]; ok && req.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(p.Child("requests").Key(string(name)), req.String(),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
		}
	}
	return errs
}

// validateResourceName accepts the standard container resources and
// domain-qualified extended resources.
func validateResourceName(name corev1.ResourceName, p *field.Path) field.ErrorList {
	s := string(name)
	if !strings.Contains(s, "/") {
		switch {
		case name == corev1.ResourceCPU, name == corev1.ResourceMemory, name == corev1.ResourceEphemeralStorage,
			strings.HasPrefix(s, corev1.ResourceHugePagesPrefix):
			return nil
		}
		return field.ErrorList{field.Invalid(p, s, "must be a standard resource for containers (cpu, memory, ephemeral-storage) or a domain-qualified extended resource")}
	}
	return invalidEach(p, s, validation.IsQualifiedName(s))
}

func validateVolumeMounts(mounts []corev1.VolumeMount, volumes map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	for i, m := range mounts {
		ip := p.Index(i)
		switch {
		case m.Name == "":
			errs = append(errs, field.Required(ip.Child("name"), ""))
		case !volumes[m.Name]:
			errs = append(errs, field.NotFound(ip.Child("name"), m.Name))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(ip.Child("mountPath"), ""))
		case !path.IsAbs(m.MountPath):
			// drover runs Linux containers, whose mount targets are absolute.
			errs = append(errs, field.Invalid(ip.Child("mountPath"), m.MountPath, "must be an absolute path"))
		case paths[path.Clean(m.MountPath)]:
			errs = append(errs, field.Invalid(ip.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths[path.Clean(m.MountPath)] = true
		if m.SubPath != "" {
			errs = append(errs, validateRelativePath(ip.Child("subPath"), m.SubPath)...)
		}
	}
	return errs
}

// validateProbe checks a probe; liveness and startup probes decide alone
// whether to kill a container, so one success must be enough for them.
func validateProbe(pr *corev1.Probe, oneSuccess bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch n := countSet(pr.ProbeHandler); {
	case n == 0:
		errs = append(errs, field.Required(p, "must specify a handler type"))
	case n > 1:
		errs = append(errs, field.Forbidden(p, "may not specify more than 1 handler type"))
	}
	if h := pr.Exec; h != nil && len(h.Command) == 0 {
		errs = append(errs, field.Required(p.Child("exec", "command"), ""))
	}
	if h := pr.HTTPGet; h != nil {
		hp := p.Child("httpGet")
		errs = append(errs, validatePortNumOrName(hp.Child("port"), h.Port)...)
		errs = append(errs, oneOf(hp.Child("scheme"), h.Scheme, corev1.URISchemeHTTP, corev1.URISchemeHTTPS)...)
		for i, hdr := range h.HTTPHeaders {
			errs = append(errs, invalidEach(hp.Child("httpHeaders").Index(i).Child("name"), hdr.Name, validation.IsHTTPHeaderName(hdr.Name))...)
		}
	}
	if h := pr.TCPSocket; h != nil {
		errs = append(errs, validatePortNumOrName(p.Child("tcpSocket", "port"), h.Port)...)
	}
	if h := pr.GRPC; h != nil {
		errs = append(errs, validatePortNum(p.Child("grpc", "port"), h.Port)...)
	}
	errs = append(errs, nonNegative(p.Child("initialDelaySeconds"), pr.InitialDelaySeconds)...)
	errs = append(errs, atLeast(p.Child("timeoutSeconds"), pr.TimeoutSeconds, 1)...)
	errs = append(errs, atLeast(p.Child("periodSeconds"), pr.PeriodSeconds, 1)...)
	errs = append(errs, atLeast(p.Child("successThreshold"), pr.SuccessThreshold, 1)...)
	errs = append(errs, atLeast(p.Child("failureThreshold"), pr.FailureThreshold, 1)...)
	if oneSuccess && pr.SuccessThreshold > 1 {
		errs = append(errs, field.Invalid(p.Child("successThreshold"), pr.SuccessThreshold, "must be 1"))
	}
	if pr.TerminationGracePeriodSeconds != nil {
		errs = append(errs, atLeast(p.Child("terminationGracePeriodSeconds"), *pr.TerminationGracePeriodSeconds, 1)...)
	}
	return errs
}

// validateVolumes checks the pod's volumes and returns the set of their
// names, for the containers' volumeMounts to refer to.
func validateVolumes(volumes []corev1.Volume, p *field.Path) (map[string]bool, field.ErrorList) {
	var errs field.ErrorList
	names := map[string]bool{}
	for i := range volumes {
		v, ip := &volumes[i], p.Index(i)
		errs = append(errs, requiredName(ip.Child("name"), v.Name, validation.IsDNS1123Label)...)
		if v.Name != "" {
			if names[v.Name] {
				errs = append(errs, field.Duplicate(ip.Child("name"), v.Name))
			}
			names[v.Name] = true
		}
		errs = append(errs, validateVolumeSource(&v.VolumeSource, ip)...)
	}
	return names, errs
}

func validateVolumeSource(src *corev1.VolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	set := setFields(*src)
	switch {
	case len(set) == 0:
		return field.ErrorList{field.Required(p, "must specify a volume type")}
	case len(set) > 1:
		errs = append(errs, field.Forbidden(p.Child(set[1]), "may not specify more than 1 volume type"))
	}
	if s := src.EmptyDir; s != nil {
		errs = append(errs, optionalOneOf(p.Child("emptyDir", "medium"), s.Medium, corev1.StorageMediumMemory)...)
		if s.SizeLimit != nil && s.SizeLimit.Sign() < 0 {
			errs = append(errs, field.Invalid(p.Child("emptyDir", "sizeLimit"), s.SizeLimit.String(), "must be greater than or equal to 0"))
		}
	}
	if s := src.HostPath; s != nil {
		hp := p.Child("hostPath")
		if s.Path == "" {
			errs = append(errs, field.Required(hp.Child("path"), ""))
		} else if !path.IsAbs(s.Path) {
			errs = append(errs, field.Invalid(hp.Child("path"), s.Path, "must be an absolute path"))
		}
		if s.Type != nil && *s.Type != corev1.HostPathUnset {
			errs = append(errs, oneOf(hp.Child("type"), *s.Type, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
				corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev)...)
		}
	}
	if s := src.ConfigMap; s != nil {
		cp := p.Child("configMap")
		errs = append(errs, requiredName(cp.Child("name"), s.Name, validation.IsDNS1123Subdomain)...)
		errs = append(errs, validateKeyToPaths(s.Items, cp.Child("items"))...)
		errs = append(errs, validateMode(s.DefaultMode, cp.Child("defaultMode"))...)
	}
	if s := src.Secret; s != nil {
		sp := p.Child("secret")
		errs = append(errs, requiredName(sp.Child("secretName"), s.SecretName, validation.IsDNS1123Subdomain)...)
		errs = append(errs, validateKeyToPaths(s.Items, sp.Child("items"))...)
		errs = append(errs, validateMode(s.DefaultMode, sp.Child("defaultMode"))...)
	}
	return errs
}

func validateKeyToPaths(items []corev1.KeyToPath, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		errs = append(errs, requiredName(ip.Child("key"), it.Key, validation.IsConfigMapKey)...)
		if it.Path == "" {
			errs = append(errs, field.Required(ip.Child("path"), ""))
		} else {
			errs = append(errs, validateRelativePath(ip.Child("path"), it.Path)...)
		}
		errs = append(errs, validateMode(it.Mode, ip.Child("mode"))...)
	}
	return errs
}

func validateMode(mode *int32, p *field.Path) field.ErrorList {
	if mode != nil && (*mode < 0 || *mode > 0o777) {
		return field.ErrorList{field.Invalid(p, *mode, "must be a number between 0 and 0777 (octal), both inclusive")}
	}
	return nil
}

func validateTolerations(tolerations []corev1.Toleration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range tolerations {
		ip := p.Index(i)
		if t.Key != "" {
			errs = append(errs, metavalidation.ValidateLabelName(t.Key, ip.Child("key"))...)
		} else if t.Operator != corev1.TolerationOpExists {
			errs = append(errs, field.Invalid(ip.Child("operator"), t.Operator,
				"operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(ip.Child("effect"), t.Effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			errs = append(errs, invalidEach(ip.Child("value"), t.Value, validation.IsValidLabelValue(t.Value))...)
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(ip.Child("value"), t.Value, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(ip.Child("operator"), t.Operator,
				[]corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
		}
		errs = append(errs, optionalOneOf(ip.Child("effect"), t.Effect,
			corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute)...)
	}
	return errs
}

func validateNodeAffinity(na *corev1.NodeAffinity, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
		rp := p.Child("requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
		if len(req.NodeSelectorTerms) == 0 {
			errs = append(errs, field.Required(rp, "must have at least one node selector term"))
		}
		for i, term := range req.NodeSelectorTerms {
			errs = append(errs, validateNodeSelectorTerm(term, rp.Index(i))...)
		}
	}
	for i, pref := range na.PreferredDuringSchedulingIgnoredDuringExecution {
		ip := p.Child("preferredDuringSchedulingIgnoredDuringExecution").Index(i)
		if pref.Weight < 1 || pref.Weight > 100 {
			errs = append(errs, field.Invalid(ip.Child("weight"), pref.Weight, "must be in the range 1-100"))
		}
		errs = append(errs, validateNodeSelectorTerm(pref.Preference, ip.Child("preference"))...)
	}
	return errs
}

func validateNodeSelectorTerm(term corev1.NodeSelectorTerm, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, r := range term.MatchExpressions {
		ip := p.Child("matchExpressions").Index(i)
		errs = append(errs, metavalidation.ValidateLabelName(r.Key, ip.Child("key"))...)
		errs = append(errs, validateNodeSelectorValues(r, ip)...)
	}
	for i, r := range term.MatchFields {
		ip := p.Child("matchFields").Index(i)
		if r.Key != "metadata.name" {
			errs = append(errs, field.NotSupported(ip.Child("key"), r.Key, []string{"metadata.name"}))
		}
		if r.Operator != corev1.NodeSelectorOpIn && r.Operator != corev1.NodeSelectorOpNotIn {
			errs = append(errs, field.NotSupported(ip.Child("operator"), r.Operator,
				[]corev1.NodeSelectorOperator{corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn}))
		} else if len(r.Values) != 1 {
			errs = append(errs, field.Required(ip.Child("values"), "must have exactly one value for `metadata.name`"))
		}
	}
	return errs
}

func validateNodeSelectorValues(r corev1.NodeSelectorRequirement, p *field.Path) field.ErrorList {
	vp := p.Child("values")
	switch r.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		if len(r.Values) == 0 {
			return field.ErrorList{field.Required(vp, "must be specified when `operator` is 'In' or 'NotIn'")}
		}
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		if len(r.Values) > 0 {
			return field.ErrorList{field.Forbidden(vp, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")}
		}
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(r.Values) != 1 {
			return field.ErrorList{field.Required(vp, "must be specified single value when `operator` is 'Lt' or 'Gt'")}
		}
		if _, err := strconv.ParseInt(r.Values[0], 10, 64); err != nil {
			return field.ErrorList{field.Invalid(vp.Index(0), r.Values[0], "must be an integer when `operator` is 'Lt' or 'Gt'")}
		}
	default:
		return field.ErrorList{field.NotSupported(p.Child("operator"), r.Operator, []corev1.NodeSelectorOperator{
			corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists,
			corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt})}
	}
	if r.Operator == corev1.NodeSelectorOpIn || r.Operator == corev1.NodeSelectorOpNotIn {
		var errs field.ErrorList
		for i, v := range r.Values {
			errs = append(errs, invalidEach(vp.Index(i), v, validation.IsValidLabelValue(v))...)
		}
		return errs
	}
	return nil
}

// setFields names, by JSON field name, the non-nil pointer fields of a
// one-of struct (a volume source, a probe handler, an env source), so a new
// member of the union in k8s.io/api is counted without a code change here.
func setFields(v any) []string {
	rv := reflect.ValueOf(v)
	var names []string
	for i := range rv.NumField() {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			names = append(names, jsonName(rv.Type().Field(i)))
		}
	}
	return names
}

func countSet(v any) int { return len(setFields(v)) }
