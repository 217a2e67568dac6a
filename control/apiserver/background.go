package apiserver

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/droverhq/drover/control/rbac"
	"github.com/droverhq/drover/control/registry"
	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/kv"
)

// pause waits d or until ctx ends; false when ctx ended.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runBootstrap writes what every cluster starts with, creating only what
// is missing so that every master may run it at any time: the default
// namespaces, the default cluster roles and bindings, a "default" service
// account per default namespace, and the "kubernetes" Service.
func (s *Server) runBootstrap(ctx context.Context) {
	for {
		err := s.bootstrap(ctx)
		if err == nil {
			return
		}
		s.log.Debug("writing API defaults; will retry", "err", err)
		if !pause(ctx, time.Second) {
			return
		}
	}
}

func (s *Server) bootstrap(ctx context.Context) error {
	create := func(res *registry.Resource, obj runtime.Object) error {
		_, err := s.storage.Create(ctx, res, obj, registry.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	}
	nsRes := registry.Lookup("", "v1", "namespaces")
	saRes := registry.Lookup("", "v1", "serviceaccounts")
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		if err := create(nsRes, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
		if err := create(saRes, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}); err != nil {
			return err
		}
	}
	crRes := registry.Lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
	for _, cr := range rbac.DefaultClusterRoles() {
		if err := create(crRes, cr); err != nil {
			return err
		}
	}
	crbRes := registry.Lookup("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
	for _, crb := range rbac.DefaultClusterRoleBindings() {
		if err := create(crbRes, crb); err != nil {
			return err
		}
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
		Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{ClusterIP: s.alloc.APIServerIP(), Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(6443)}}}}
	return create(registry.Lookup("", "v1", "services"), svc)
}

// rbacResources are the kinds the authorizer indexes.
var rbacResources = []string{"roles", "rolebindings", "clusterroles", "clusterrolebindings"}

// runRBAC keeps the authorizer's index equal to the store: list all four
// kinds, then watch them from the list's revision; relist on any watch
// failure (e.g. fell out of the history).
func (s *Server) runRBAC(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.syncRBAC(ctx); err != nil && ctx.Err() == nil {
			s.log.Debug("RBAC index sync restarts", "err", err)
			if !pause(ctx, 500*time.Millisecond) {
				return
			}
		}
	}
}

func (s *Server) syncRBAC(ctx context.Context) error {
	var all []runtime.Object
	var rev int64
	for _, name := range rbacResources {
		res := registry.Lookup("rbac.authorization.k8s.io", "v1", name)
		lr, err := s.storage.List(ctx, res, "", registry.ListOptions{})
		if err != nil {
			return err
		}
		all = append(all, lr.Items...)
		if rev == 0 || lr.Revision < rev {
			rev = lr.Revision
		}
	}
	s.authz.Reset(all)
	s.once.Do(func() { close(s.rbacOK) })
	// One watch over the whole RBAC key range would also see other kinds;
	// four watches from the oldest list revision replay at most a little.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(rbacResources))
	for _, name := range rbacResources {
		res := registry.Lookup("rbac.authorization.k8s.io", "v1", name)
		w, err := s.storage.Watch(ctx, res, "", rev+1)
		if err != nil {
			return err
		}
		go func() {
			for resp := range w.C() {
				for i := range resp.Events {
					ev := &resp.Events[i]
					if ev.Type == kv.EventPut {
						if obj, err := registry.Decode(res, &ev.KV); err == nil {
							s.authz.Upsert(obj)
						}
					} else if ev.PrevKV != nil {
						if obj, err := registry.Decode(res, ev.PrevKV); err == nil {
							s.authz.Remove(obj)
						}
					}
				}
			}
			errc <- w.Err()
		}()
	}
	err := <-errc
	if err == nil {
		err = errors.New("RBAC watch ended")
	}
	return err
}

// runNamespaceFinalizer empties and removes terminating namespaces while
// this master is the Raft leader (one master does it; a new leader picks
// up where a failed one stopped).
func (s *Server) runNamespaceFinalizer(ctx context.Context) {
	nsRes := registry.Lookup("", "v1", "namespaces")
	for pause(ctx, time.Second) {
		if !s.cfg.Store.IsLeader() {
			continue
		}
		lr, err := s.storage.List(ctx, nsRes, "", registry.ListOptions{})
		if err != nil {
			continue
		}
		for _, obj := range lr.Items {
			ns := obj.(*corev1.Namespace)
			if ns.DeletionTimestamp == nil {
				continue
			}
			if err := s.finalizeNamespace(ctx, ns); err != nil && ctx.Err() == nil {
				s.log.Warn("finalizing namespace", "namespace", ns.Name, "err", err)
			}
		}
	}
}

// finalizeNamespace deletes everything in a terminating namespace, then
// drops the "kubernetes" finalizer, which deletes the namespace.
func (s *Server) finalizeNamespace(ctx context.Context, ns *corev1.Namespace) error {
	zero := int64(0)
	for _, res := range registry.Resources {
		if !res.Namespaced {
			continue
		}
		lr, err := s.storage.List(ctx, res, ns.Name, registry.ListOptions{})
		if err != nil {
			return err
		}
		for _, obj := range lr.Items {
			m, _ := meta.Accessor(obj)
			if len(m.GetFinalizers()) > 0 {
				// Nothing else removes finalizers in a dying namespace yet.
				if _, err := s.storage.Update(ctx, res, ns.Name, m.GetName(), registry.UpdateOptions{}, func(cur runtime.Object) (runtime.Object, error) {
					cm, _ := meta.Accessor(cur)
					cm.SetFinalizers(nil)
					return cur, nil
				}); err != nil && !apierrors.IsNotFound(err) {
					return err
				}
				continue
			}
			if _, err := s.storage.Delete(ctx, res, ns.Name, m.GetName(), &metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	_, err := s.storage.Update(ctx, registry.Lookup("", "v1", "namespaces"), "", ns.Name, registry.UpdateOptions{Subresource: "finalize"},
		func(cur runtime.Object) (runtime.Object, error) {
			n := cur.(*corev1.Namespace)
			var keep []corev1.FinalizerName
			for _, f := range n.Spec.Finalizers {
				if f != corev1.FinalizerKubernetes {
					keep = append(keep, f)
				}
			}
			n.Spec.Finalizers = keep
			return n, nil
		})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

var _ = raftstore.Linearizable
