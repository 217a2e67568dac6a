// Package admission is the defaulting and validation the drover API server
// runs on every create and update, on typed k8s.io/api objects.
//
// The server calls it in this order, as kube-apiserver does:
//
//	CheckSupported(gvk, raw)   // on the request body, before decoding: refuse what drover cannot run
//	Default(obj)               // fill Kubernetes' defaults in place
//	ValidateCreate(obj)        // or ValidateUpdate(obj, old) with old as stored (already defaulted)
//
// Default follows kube-apiserver's per-type defaulting (pkg/apis/*/v1/defaults.go)
// plus the few defaults Kubernetes applies in its registry strategies or in
// conversion, because drover has neither: the namespace finalizer and phase,
// Secret.stringData folded into data, serviceAccount/serviceAccountName kept in
// step, Service clusterIPs/ipFamilies, the Job selector. It does not allocate
// anything (cluster IPs, node ports, UIDs): that is the server's job.
//
// Contract with the caller:
//   - assign metadata.uid before Default on create: the Job selector is
//     generated from it, as Kubernetes does;
//   - on an unconditional update (no resourceVersion), carry over what the
//     server allocated (Service clusterIP/clusterIPs/nodePorts) from the stored
//     object before ValidateUpdate, or the immutability checks will refuse it;
//   - namespace presence for namespaced kinds is checked by the server; Default
//     clears metadata.namespace on cluster-scoped kinds, as Kubernetes does.
//
// Validation errors are field.ErrorList values with full paths from the object
// root (metadata.name, spec.template.spec.containers[0].image, ...), ready to be
// turned into a 422 Invalid Status.
package admission
