package rbac

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
)

// BenchmarkAuthorize measures the hot path against the default policy plus
// many unrelated bindings, which the subject index should make irrelevant.
func BenchmarkAuthorize(b *testing.B) {
	a := defaultAuthorizer()
	var objs []runtime.Object
	for i := 0; i < 1000; i++ {
		objs = append(objs, rb(fmt.Sprintf("ns%d", i%50), fmt.Sprintf("b%d", i), "ClusterRole", "edit", userSubj(fmt.Sprintf("u%d", i))))
		objs = append(objs, crb(fmt.Sprintf("c%d", i), "view", userSubj(fmt.Sprintf("u%d", i))))
	}
	for _, o := range objs {
		a.Upsert(o)
	}
	cases := map[string]Attributes{
		"allow-rb":   as(res("get", "", "pods", "", "app", "p"), "viewer", "system:authenticated"),
		"allow-url":  as(nonRes("get", "/api"), "someone", "system:authenticated"),
		"deny":       as(res("get", "", "secrets", "", "app", "s"), "viewer", "system:authenticated"),
		"allow-node": as(res("update", "", "nodes", "status", "", "n1"), "system:node:n1", "system:nodes", "system:authenticated"),
	}
	for name, attrs := range cases {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a.Authorize(attrs)
			}
		})
	}
}
