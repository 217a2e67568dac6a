package admission

import (
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// podUpdateMsg says what a pod update may change. A running pod's spec is
// what the node agent has already set up; only these can be applied in place.
const podUpdateMsg = "pod updates may not change fields other than `spec.containers[*].image`, " +
	"`spec.initContainers[*].image`, `spec.activeDeadlineSeconds` (only to set or lower it), " +
	"`spec.tolerations` (only additions) and `spec.nodeName` (only to bind an unbound pod)"

func validatePodUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := validateMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validatePodSpec(&pod.Spec, podRules, specPath())...)
	return append(errs, validatePodSpecUnchanged(&pod.Spec, &old.Spec, specPath())...)
}

// validatePodSpecUnchanged copies what may change from spec onto a copy of
// old; whatever still differs was changed when it may not be, and is
// reported at its own path.
func validatePodSpecUnchanged(spec, old *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	allowed := old.DeepCopy()

	copyImages := func(to, from []corev1.Container) {
		if len(to) == len(from) {
			for i := range to {
				to[i].Image = from[i].Image
			}
		}
	}
	copyImages(allowed.Containers, spec.Containers)
	copyImages(allowed.InitContainers, spec.InitContainers)

	// The deadline may be set or shortened, never lengthened or removed:
	// the pod may already be past a longer one's halfway point.
	adp := p.Child("activeDeadlineSeconds")
	switch newD, oldD := spec.ActiveDeadlineSeconds, old.ActiveDeadlineSeconds; {
	case newD == nil && oldD != nil:
		errs = append(errs, field.Invalid(adp, nil, "must not update from a positive integer to nil value"))
	case newD != nil && oldD != nil && *newD > *oldD:
		errs = append(errs, field.Invalid(adp, *newD, "must be less than or equal to previous value"))
	}
	allowed.ActiveDeadlineSeconds = spec.ActiveDeadlineSeconds // any illegal change is reported above

	// Tolerations may be added (to let a pod stay through a new taint), not
	// removed or changed.
	tolerationsKept := true
	for _, t := range old.Tolerations {
		if !containsToleration(spec.Tolerations, t) {
			tolerationsKept = false
		}
	}
	if tolerationsKept {
		allowed.Tolerations = spec.Tolerations
	}

	// drover binds a pod by setting nodeName; once bound it stays put.
	if old.NodeName == "" {
		allowed.NodeName = spec.NodeName
	}

	return append(errs, diffPodSpec(spec, allowed, p)...)
}

func containsToleration(list []corev1.Toleration, t corev1.Toleration) bool {
	for _, x := range list {
		if apiequality.Semantic.DeepEqual(x, t) {
			return true
		}
	}
	return false
}

// diffPodSpec reports each top-level field of spec that differs from want,
// and within containers each field of each container, so the error points at
// what was changed rather than at the whole spec.
func diffPodSpec(spec, want *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	sv, wv := reflect.ValueOf(spec).Elem(), reflect.ValueOf(want).Elem()
	for i := range sv.NumField() {
		name := jsonName(sv.Type().Field(i))
		a, b := sv.Field(i).Interface(), wv.Field(i).Interface()
		if apiequality.Semantic.DeepEqual(a, b) {
			continue
		}
		if cs, ok := a.([]corev1.Container); ok && len(cs) == len(b.([]corev1.Container)) {
			errs = append(errs, diffContainers(cs, b.([]corev1.Container), p.Child(name))...)
			continue
		}
		errs = append(errs, field.Forbidden(p.Child(name), podUpdateMsg))
	}
	return errs
}

func diffContainers(cs, want []corev1.Container, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i := range cs {
		cv, wv := reflect.ValueOf(cs[i]), reflect.ValueOf(want[i])
		for j := range cv.NumField() {
			if !apiequality.Semantic.DeepEqual(cv.Field(j).Interface(), wv.Field(j).Interface()) {
				errs = append(errs, field.Forbidden(p.Index(i).Child(jsonName(cv.Type().Field(j))), podUpdateMsg))
			}
		}
	}
	return errs
}
