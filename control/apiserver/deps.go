// Package apiserver serves the Kubernetes-compatible REST API over the store.
package apiserver
import (
	_ "k8s.io/api/core/v1"
	_ "k8s.io/api/apps/v1"
	_ "k8s.io/api/batch/v1"
	_ "k8s.io/api/rbac/v1"
	_ "k8s.io/api/coordination/v1"
	_ "k8s.io/api/autoscaling/v1"
	_ "k8s.io/apimachinery/pkg/util/strategicpatch"
	_ "k8s.io/apimachinery/pkg/runtime/serializer/json"
	_ "gopkg.in/evanphx/json-patch.v4"
	_ "github.com/google/gnostic-models/openapiv2"
	_ "sigs.k8s.io/yaml"
)
