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
