package registry

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

func TestCopyFieldReplacesWholeField(t *testing.T) {
	cur := &appsv1.Deployment{}
	next := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 7, ReadyReplicas: 3}}
	next.Labels = map[string]string{"x": "y"}
	if err := copyField(cur, next, "status"); err != nil {
		t.Fatal(err)
	}
	if next.Status.Replicas != 0 || next.Status.ReadyReplicas != 0 || next.Labels["x"] != "y" {
		t.Fatalf("copyField kept old values: %+v %v", next.Status, next.Labels)
	}
}

func TestWithResourceVersion(t *testing.T) {
	cases := map[string]string{
		`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"},"spec":{}}`: `{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"42","name":"a"},"spec":{}}`,
		`{"metadata":{}}`: `{"metadata":{"resourceVersion":"42"}}`,
		`{"kind":"X"}`:    `{"kind":"X"}`,
	}
	for in, want := range cases {
		if got := string(WithResourceVersion([]byte(in), 42)); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}
