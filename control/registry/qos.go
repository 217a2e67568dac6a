package registry

import (
	corev1 "k8s.io/api/core/v1"
)

// qosClass is the pod's quality of service class, as Kubernetes computes
// it: Guaranteed when every container limits CPU and memory with requests
// equal to limits, BestEffort when none requests or limits anything,
// Burstable otherwise.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	all := append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...)
	any, guaranteed := false, true
	for _, c := range all {
		if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
			any = true
		}
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			lim, ok := c.Resources.Limits[name]
			if !ok {
				guaranteed = false
				continue
			}
			if req, ok := c.Resources.Requests[name]; ok && req.Cmp(lim) != 0 {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}
