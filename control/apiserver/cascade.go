package apiserver

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/droverhq/drover/control/registry"
)

// Deleting an object with dependents (objects whose ownerReferences name
// it: a Deployment's ReplicaSets, a ReplicaSet's Pods) follows the
// request's propagationPolicy, as Kubernetes' garbage collector does:
//
//	Orphan      dependents lose the owner reference and stay;
//	Foreground  dependents are deleted (recursively) before the owner;
//	Background  the owner goes at once, dependents right after (the default).
//
// Owners and dependents share a namespace (cluster-scoped owners are not
// followed). Background deletion runs in the API server that took the
// request; one interrupted by a restart leaves the dependents in place.

// dependent is one object that names an owner.
type dependent struct {
	res *registry.Resource
	obj runtime.Object
}

// dependents lists the objects in ns owned by uid.
func (s *Server) dependents(ctx context.Context, ns string, uid types.UID) ([]dependent, error) {
	var out []dependent
	for _, res := range registry.Resources {
		if !res.Namespaced {
			continue
		}
		lr, err := s.storage.List(ctx, res, ns, registry.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, obj := range lr.Items {
			m, _ := meta.Accessor(obj)
			for _, ref := range m.GetOwnerReferences() {
				if ref.UID == uid {
					out = append(out, dependent{res, obj})
					break
				}
			}
		}
	}
	return out, nil
}

// cascade deletes (or orphans) the dependents of an object about to be,
// or just, deleted.
func (s *Server) cascade(ctx context.Context, ns string, uid types.UID, policy metav1.DeletionPropagation, depth int) error {
	if depth > 8 {
		return nil // owner chains are short; stop at cycles
	}
	deps, err := s.dependents(ctx, ns, uid)
	if err != nil {
		return err
	}
	for _, d := range deps {
		m, _ := meta.Accessor(d.obj)
		if policy == metav1.DeletePropagationOrphan {
			_, err := s.storage.Update(ctx, d.res, ns, m.GetName(), registry.UpdateOptions{}, func(cur runtime.Object) (runtime.Object, error) {
				cm, _ := meta.Accessor(cur)
				var keep []metav1.OwnerReference
				for _, ref := range cm.GetOwnerReferences() {
					if ref.UID != uid {
						keep = append(keep, ref)
					}
				}
				cm.SetOwnerReferences(keep)
				return cur, nil
			})
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			continue
		}
		if err := s.cascade(ctx, ns, m.GetUID(), policy, depth+1); err != nil {
			return err
		}
		if _, err := s.storage.Delete(ctx, d.res, ns, m.GetName(), &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// deletePolicy is the request's propagation policy, Background by default.
func deletePolicy(opts *metav1.DeleteOptions) metav1.DeletionPropagation {
	if opts.PropagationPolicy != nil {
		return *opts.PropagationPolicy
	}
	if opts.OrphanDependents != nil && *opts.OrphanDependents {
		return metav1.DeletePropagationOrphan
	}
	return metav1.DeletePropagationBackground
}

// cascadeInBackground deletes an owner's dependents after the owner, on
// the server's own time.
func (s *Server) cascadeInBackground(ns string, uid types.UID) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := s.cascade(ctx, ns, uid, metav1.DeletePropagationBackground, 0); err != nil {
			s.log.Warn("deleting dependents in the background failed", "namespace", ns, "owner", uid, "err", err)
		}
	}()
}
