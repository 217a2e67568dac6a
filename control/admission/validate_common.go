package admission

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func metaPath() *field.Path { return field.NewPath("metadata") }
func specPath() *field.Path { return field.NewPath("spec") }

// validateMeta validates metadata on create. A namespaced object without a
// namespace passes: the server fills it from the request path and checks it.
func validateMeta(m *metav1.ObjectMeta, namespaced bool, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	requiresNamespace := namespaced && m.Namespace != ""
	return apivalidation.ValidateObjectMeta(m, requiresNamespace, nameFn, metaPath())
}

// validateMetaUpdate validates metadata on update: name, namespace, uid and
// creation time are immutable, labels and annotations well-formed. An empty
// resourceVersion is not an error here: whether an update is unconditional is
// the store's decision, not a property of the object.
func validateMetaUpdate(m, old *metav1.ObjectMeta) field.ErrorList {
	if m.ResourceVersion == "" {
		c := *m
		c.ResourceVersion = cmp.Or(old.ResourceVersion, "0")
		m = &c
	}
	return apivalidation.ValidateObjectMetaUpdate(m, old, metaPath())
}

// invalidEach turns a validation helper's messages into Invalid errors.
func invalidEach(p *field.Path, value any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(p, value, msg))
	}
	return errs
}

// requiredName reports an empty name as Required and checks a present one.
func requiredName(p *field.Path, name string, check func(string) []string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return invalidEach(p, name, check(name))
}

// optionalName checks a name only if it is set.
func optionalName(p *field.Path, name string, check func(string) []string) field.ErrorList {
	if name == "" {
		return nil
	}
	return invalidEach(p, name, check(name))
}

// oneOf reports an empty value as Required and anything outside allowed as
// NotSupported.
func oneOf[T ~string](p *field.Path, v T, allowed ...T) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	if !slices.Contains(allowed, v) {
		return field.ErrorList{field.NotSupported(p, v, allowed)}
	}
	return nil
}

// optionalOneOf is oneOf for fields that may be left empty.
func optionalOneOf[T ~string](p *field.Path, v T, allowed ...T) field.ErrorList {
	if v == "" {
		return nil
	}
	return oneOf(p, v, allowed...)
}

func nonNegative[T ~int32 | ~int64](p *field.Path, v T) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(int64(v), p)
}

func nonNegativePtr[T ~int32 | ~int64](p *field.Path, v *T) field.ErrorList {
	if v == nil {
		return nil
	}
	return nonNegative(p, *v)
}

func atLeast[T ~int32 | ~int64](p *field.Path, v, minimum T) field.ErrorList {
	if v < minimum {
		return field.ErrorList{field.Invalid(p, v, fmt.Sprintf("must be greater than or equal to %d", minimum))}
	}
	return nil
}

func validatePortNum[T ~int32 | ~int](p *field.Path, port T) field.ErrorList {
	return invalidEach(p, port, validation.IsValidPortNum(int(port)))
}

// validatePortNumOrName checks a port that may name a container port.
func validatePortNumOrName(p *field.Path, port intstr.IntOrString) field.ErrorList {
	switch {
	case port.Type == intstr.Int:
		return validatePortNum(p, port.IntVal)
	case port.StrVal == "":
		return field.ErrorList{field.Required(p, "")}
	default:
		return invalidEach(p, port.StrVal, validation.IsValidPortName(port.StrVal))
	}
}

// validateSelectorMatches validates a workload's label selector and checks
// that it selects the pods its template makes; otherwise the controller
// would create pods forever without ever seeing them.
func validateSelectorMatches(sel *metav1.LabelSelector, templateLabels map[string]string, p *field.Path) field.ErrorList {
	selPath := p.Child("selector")
	if sel == nil {
		return field.ErrorList{field.Required(selPath, "")}
	}
	errs := metavalidation.ValidateLabelSelector(sel, metavalidation.LabelSelectorValidationOptions{}, selPath)
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		errs = append(errs, field.Invalid(selPath, sel, "empty selector is invalid for this resource"))
	}
	if len(errs) > 0 {
		return errs
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return append(errs, field.Invalid(selPath, sel, err.Error()))
	}
	if !selector.Matches(labels.Set(templateLabels)) {
		errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), templateLabels,
			"`selector` does not match template `labels`"))
	}
	return errs
}

// validateRelativePath checks a path that is joined under a directory the
// node agent controls: relative, and never climbing out with "..".
func validateRelativePath(p *field.Path, target string) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(target) {
		errs = append(errs, field.Invalid(p, target, "must be a relative path"))
	}
	if slices.Contains(strings.Split(target, "/"), "..") {
		errs = append(errs, field.Invalid(p, target, "must not contain '..'"))
	}
	return errs
}

// sortedKeys gives map keys in order, so error lists are deterministic.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}
