package client_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver/apiservertest"
)

func TestTypedOperations(t *testing.T) {
	srv := apiservertest.Start(t)
	c, _, err := client.NewFromKubeconfig(srv.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pods := c.Resource(client.Pods).Namespace("default")
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	created, err := client.CreateTyped(ctx, pods, p)
	if err != nil || created.UID == "" || created.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Fatalf("create: %+v %v", created, err)
	}
	created.Status.Message = "hello"
	if _, err := client.UpdateTyped(ctx, pods, created, "status"); err != nil {
		t.Fatal(err)
	}
	got, err := client.GetTyped[corev1.Pod](ctx, pods, "p")
	if err != nil || got.Status.Message != "hello" {
		t.Fatalf("get: %+v %v", got, err)
	}
	patched, err := client.PatchTyped[corev1.Pod](ctx, pods, "p", types.MergePatchType, []byte(`{"metadata":{"labels":{"a":"b"}}}`))
	if err != nil || patched.Labels["a"] != "b" {
		t.Fatalf("patch: %+v %v", patched, err)
	}
	list, rv, err := client.ListTyped[corev1.Pod](ctx, pods, metav1.ListOptions{})
	if err != nil || len(list) != 1 || rv == "" {
		t.Fatalf("list: %d %q %v", len(list), rv, err)
	}
	if _, err := client.GetTyped[corev1.Pod](ctx, pods, "nope"); !client.IsNotFound(err) {
		t.Fatalf("missing: %v", err)
	}
}
