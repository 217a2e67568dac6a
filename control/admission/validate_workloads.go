package admission

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	errs := validateMeta(&d.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateDeploymentSpec(&d.Spec)...)
}

// validateDeploymentUpdate: the selector is how a Deployment finds the
// ReplicaSets it owns; changing it would orphan them.
func validateDeploymentUpdate(d, old *appsv1.Deployment) field.ErrorList {
	errs := validateMetaUpdate(&d.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateDeploymentSpec(&d.Spec)...)
	return append(errs, apivalidation.ValidateImmutableField(d.Spec.Selector, old.Spec.Selector, specPath().Child("selector"))...)
}

func validateDeploymentSpec(spec *appsv1.DeploymentSpec) field.ErrorList {
	p := specPath()
	errs := nonNegativePtr(p.Child("replicas"), spec.Replicas)
	errs = append(errs, validateSelectorMatches(spec.Selector, spec.Template.Labels, p)...)
	errs = append(errs, validatePodTemplate(&spec.Template, longRunningTemplateRules, p.Child("template"))...)
	errs = append(errs, nonNegative(p.Child("minReadySeconds"), spec.MinReadySeconds)...)
	errs = append(errs, nonNegativePtr(p.Child("revisionHistoryLimit"), spec.RevisionHistoryLimit)...)
	if d := spec.ProgressDeadlineSeconds; d != nil && *d <= spec.MinReadySeconds {
		errs = append(errs, field.Invalid(p.Child("progressDeadlineSeconds"), *d, "must be greater than minReadySeconds"))
	}

	sp := p.Child("strategy")
	errs = append(errs, oneOf(sp.Child("type"), spec.Strategy.Type,
		appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType)...)
	ru := spec.Strategy.RollingUpdate
	switch spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if ru != nil {
			errs = append(errs, field.Forbidden(sp.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if ru == nil {
			errs = append(errs, field.Required(sp.Child("rollingUpdate"), "this should be defaulted and never be nil"))
		} else {
			errs = append(errs, validateRollingUpdate(ru.MaxUnavailable, ru.MaxSurge, sp.Child("rollingUpdate"))...)
		}
	}
	return errs
}

// validateRollingUpdate: with neither surge nor unavailability a rollout
// could never take a step.
func validateRollingUpdate(maxUnavailable, maxSurge *intstr.IntOrString, p *field.Path) field.ErrorList {
	errs := validateIntOrPercent(maxUnavailable, true, p.Child("maxUnavailable"))
	errs = append(errs, validateIntOrPercent(maxSurge, false, p.Child("maxSurge"))...)
	if isZeroIntOrPercent(maxUnavailable) && isZeroIntOrPercent(maxSurge) {
		errs = append(errs, field.Invalid(p.Child("maxUnavailable"), maxUnavailable.String(), "may not be 0 when `maxSurge` is 0"))
	}
	return errs
}

func validateIntOrPercent(v *intstr.IntOrString, atMost100 bool, p *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	if v.Type == intstr.Int {
		return nonNegative(p, v.IntVal)
	}
	if msgs := validation.IsValidPercent(v.StrVal); len(msgs) > 0 {
		return invalidEach(p, v.StrVal, msgs)
	}
	n, _ := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	if atMost100 && n > 100 {
		return field.ErrorList{field.Invalid(p, v.StrVal, "must not be greater than 100%")}
	}
	return nil
}

func isZeroIntOrPercent(v *intstr.IntOrString) bool {
	if v == nil {
		return true
	}
	if v.Type == intstr.Int {
		return v.IntVal == 0
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	return err == nil && n == 0
}

func validateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	errs := validateMeta(&rs.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateReplicaSetSpec(&rs.Spec)...)
}

func validateReplicaSetUpdate(rs, old *appsv1.ReplicaSet) field.ErrorList {
	errs := validateMetaUpdate(&rs.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateReplicaSetSpec(&rs.Spec)...)
	return append(errs, apivalidation.ValidateImmutableField(rs.Spec.Selector, old.Spec.Selector, specPath().Child("selector"))...)
}

func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec) field.ErrorList {
	p := specPath()
	errs := nonNegativePtr(p.Child("replicas"), spec.Replicas)
	errs = append(errs, nonNegative(p.Child("minReadySeconds"), spec.MinReadySeconds)...)
	errs = append(errs, validateSelectorMatches(spec.Selector, spec.Template.Labels, p)...)
	return append(errs, validatePodTemplate(&spec.Template, longRunningTemplateRules, p.Child("template"))...)
}

func validateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	errs := validateMeta(&ds.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateDaemonSetSpec(&ds.Spec)...)
}

func validateDaemonSetUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	errs := validateMetaUpdate(&ds.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateDaemonSetSpec(&ds.Spec)...)
	return append(errs, apivalidation.ValidateImmutableField(ds.Spec.Selector, old.Spec.Selector, specPath().Child("selector"))...)
}

func validateDaemonSetSpec(spec *appsv1.DaemonSetSpec) field.ErrorList {
	p := specPath()
	errs := validateSelectorMatches(spec.Selector, spec.Template.Labels, p)
	errs = append(errs, validatePodTemplate(&spec.Template, longRunningTemplateRules, p.Child("template"))...)
	errs = append(errs, nonNegative(p.Child("minReadySeconds"), spec.MinReadySeconds)...)
	errs = append(errs, nonNegativePtr(p.Child("revisionHistoryLimit"), spec.RevisionHistoryLimit)...)

	up := p.Child("updateStrategy")
	errs = append(errs, oneOf(up.Child("type"), spec.UpdateStrategy.Type,
		appsv1.RollingUpdateDaemonSetStrategyType, appsv1.OnDeleteDaemonSetStrategyType)...)
	ru := spec.UpdateStrategy.RollingUpdate
	switch spec.UpdateStrategy.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
		if ru != nil {
			errs = append(errs, field.Forbidden(up.Child("rollingUpdate"), "may not be specified when strategy `type` is 'OnDelete'"))
		}
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if ru == nil {
			errs = append(errs, field.Required(up.Child("rollingUpdate"), "this should be defaulted and never be nil"))
		} else {
			errs = append(errs, validateRollingUpdate(ru.MaxUnavailable, ru.MaxSurge, up.Child("rollingUpdate"))...)
		}
	}
	return errs
}

func validateJob(job *batchv1.Job) field.ErrorList {
	errs := validateMeta(&job.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateJobSpec(job)...)
}

// validateJobUpdate: a Job's pods are made from its template and found by
// its selector for its whole life, so neither may change once it exists.
func validateJobUpdate(job, old *batchv1.Job) field.ErrorList {
	errs := validateMetaUpdate(&job.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, validateJobSpec(job)...)
	p := specPath()
	errs = append(errs, apivalidation.ValidateImmutableField(job.Spec.Selector, old.Spec.Selector, p.Child("selector"))...)
	if !apiequality.Semantic.DeepEqual(job.Spec.Template, old.Spec.Template) {
		errs = append(errs, field.Forbidden(p.Child("template"), apivalidation.FieldImmutableErrorMsg))
	}
	errs = append(errs, apivalidation.ValidateImmutableField(job.Spec.CompletionMode, old.Spec.CompletionMode, p.Child("completionMode"))...)
	return errs
}

func validateJobSpec(job *batchv1.Job) field.ErrorList {
	spec, p := &job.Spec, specPath()
	errs := nonNegativePtr(p.Child("parallelism"), spec.Parallelism)
	errs = append(errs, nonNegativePtr(p.Child("completions"), spec.Completions)...)
	errs = append(errs, nonNegativePtr(p.Child("backoffLimit"), spec.BackoffLimit)...)
	errs = append(errs, nonNegativePtr(p.Child("ttlSecondsAfterFinished"), spec.TTLSecondsAfterFinished)...)
	if d := spec.ActiveDeadlineSeconds; d != nil {
		errs = append(errs, atLeast(p.Child("activeDeadlineSeconds"), *d, 1)...)
	}
	if spec.CompletionMode != nil {
		errs = append(errs, oneOf(p.Child("completionMode"), *spec.CompletionMode, batchv1.NonIndexedCompletion, batchv1.IndexedCompletion)...)
		if *spec.CompletionMode == batchv1.IndexedCompletion && spec.Completions == nil {
			errs = append(errs, field.Required(p.Child("completions"), "when completion mode is Indexed"))
		}
	}

	if spec.Selector == nil && !ptr.Deref(spec.ManualSelector, false) {
		errs = append(errs, field.Required(p.Child("selector"),
			"generated from metadata.uid by Default unless `manualSelector` is true; assign the uid first"))
	} else {
		errs = append(errs, validateSelectorMatches(spec.Selector, spec.Template.Labels, p)...)
	}
	// Without manualSelector the selector must be the generated one, so Jobs
	// never adopt each other's pods.
	if !ptr.Deref(spec.ManualSelector, false) && job.UID != "" && spec.Selector != nil &&
		spec.Selector.MatchLabels[jobControllerUIDLabel] != string(job.UID) {
		errs = append(errs, field.Invalid(p.Child("selector"), spec.Selector,
			fmt.Sprintf("`selector` not auto-generated: must match %s=%s unless `manualSelector` is true", jobControllerUIDLabel, job.UID)))
	}
	return append(errs, validatePodTemplate(&spec.Template, jobTemplateRules, p.Child("template"))...)
}

func validateScale(s *autoscalingv1.Scale) field.ErrorList {
	errs := validateMeta(&s.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	return append(errs, validateScaleBody(s)...)
}

func validateScaleBody(s *autoscalingv1.Scale) field.ErrorList {
	return nonNegative(specPath().Child("replicas"), s.Spec.Replicas)
}
