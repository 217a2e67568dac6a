package admission

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// FuzzCheckSupported: any JSON object, of any shape, is checked without
// panicking, whatever types its values have.
func FuzzCheckSupported(f *testing.F) {
	for _, m := range []string{nginxDeployment, nginxService, piJob, podWithEverythingAllowed} {
		js, err := yaml.YAMLToJSON([]byte(m))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js)
	}
	f.Add([]byte(`{"spec":{"template":{"spec":{"containers":"x","volumes":[1,{"nfs":null}]}}}}`))
	f.Add([]byte(`{"spec":[],"metadata":{"labels":[1]},"status":7}`))
	gvks := []schema.GroupVersionKind{
		appsv1.SchemeGroupVersion.WithKind("Deployment"), batchv1.SchemeGroupVersion.WithKind("Job"),
		corev1.SchemeGroupVersion.WithKind("Pod"), corev1.SchemeGroupVersion.WithKind("Service"), corev1.SchemeGroupVersion.WithKind("Node"),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var raw map[string]any
		if json.Unmarshal(data, &raw) != nil {
			return
		}
		for _, gvk := range gvks {
			CheckSupported(gvk, raw)
		}
	})
}

// FuzzValidatePod: whatever decodes into a Pod is defaulted and validated
// without panicking, and defaulting twice changes nothing more.
func FuzzValidatePod(f *testing.F) {
	js, _ := json.Marshal(testPod())
	f.Add(js)
	f.Add([]byte(`{"spec":{"containers":[{"name":"c","ports":[{"containerPort":80},{"containerPort":80}]}],"volumes":[{"name":"v"}],"hostNetwork":true}}`))
	f.Add([]byte(`{"spec":{"containers":[{"livenessProbe":{},"env":[{"valueFrom":{}}],"resources":{"limits":{"cpu":"-1"}}}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var pod corev1.Pod
		if json.Unmarshal(data, &pod) != nil {
			return
		}
		Default(&pod)
		once := pod.DeepCopy()
		Default(&pod)
		expectSame(t, &pod, once)
		ValidateCreate(&pod)
		ValidateUpdate(&pod, once)
	})
}
