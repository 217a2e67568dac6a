package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/command"
)

// KV is the part of the store the registry uses.
type KV interface {
	Range(ctx context.Context, req raftstore.RangeRequest) (*raftstore.RangeResponse, error)
	Txn(ctx context.Context, t *raftstore.Txn) (*raftstore.Response, error)
	Watch(ctx context.Context, key, end []byte, fromRev int64) (*raftstore.Watcher, error)
}

// Admitter defaults and validates an object about to be written; old is
// nil on create, sub the subresource written ("" for the object itself).
// It returns an apierrors Invalid (or other Status) error.
type Admitter func(r *Resource, obj, old runtime.Object, sub string) error

// Storage reads and writes API objects in the store.
type Storage struct {
	kv       KV
	admit    Admitter
	services *ServiceAllocator
	podCIDRs *PodCIDRAllocator
	now      func() time.Time
}

// NewStorage returns a Storage. admit may be nil (no admission).
func NewStorage(kv KV, admit Admitter, services *ServiceAllocator) *Storage {
	if admit == nil {
		admit = func(*Resource, runtime.Object, runtime.Object, string) error { return nil }
	}
	return &Storage{kv: kv, admit: admit, services: services, now: time.Now}
}

// SetPodCIDRs makes Node creates allocate pod subnets from a.
func (s *Storage) SetPodCIDRs(a *PodCIDRAllocator) { s.podCIDRs = a }

// maxRetries bounds optimistic-concurrency retries of one request.
const maxRetries = 20

// Decode turns a stored key-value into its typed object with
// resourceVersion set from the key's mod revision.
func Decode(r *Resource, kv *raftstore.KeyValue) (runtime.Object, error) {
	obj := r.New()
	if err := json.Unmarshal(kv.Value, obj); err != nil {
		return nil, fmt.Errorf("decode %s at %s: %w", r.Kind, kv.Key, err)
	}
	setTypeMeta(r, obj)
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(strconv.FormatInt(kv.ModRev, 10))
	return obj, nil
}

func setTypeMeta(r *Resource, obj runtime.Object) {
	obj.GetObjectKind().SetGroupVersionKind(r.GVK())
}

func encode(r *Resource, obj runtime.Object) ([]byte, error) {
	setTypeMeta(r, obj)
	m, _ := meta.Accessor(obj)
	rv := m.GetResourceVersion()
	m.SetResourceVersion("") // the key's mod revision is the truth
	b, err := json.Marshal(obj)
	m.SetResourceVersion(rv)
	return b, err
}

// ErrStore wraps a failure of the store itself (not of the request).
type ErrStore struct{ Err error }

func (e *ErrStore) Error() string { return e.Err.Error() }
func (e *ErrStore) Unwrap() error { return e.Err }

func storeErr(err error) error {
	if err == nil {
		return nil
	}
	var se *ErrStore
	var st apierrors.APIStatus
	if errors.As(err, &se) || errors.As(err, &st) {
		return err
	}
	return &ErrStore{Err: err}
}

// Get reads one object. serializable allows a possibly stale local read.
func (s *Storage) Get(ctx context.Context, r *Resource, ns, name string, serializable bool) (runtime.Object, error) {
	kv, err := s.getKV(ctx, r.Key(ns, name), serializable)
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return nil, apierrors.NewNotFound(r.GroupResource(), name)
	}
	return Decode(r, kv)
}

func (s *Storage) getKV(ctx context.Context, key string, serializable bool) (*raftstore.KeyValue, error) {
	c := raftstore.Linearizable
	if serializable {
		c = raftstore.Serializable
	}
	resp, err := s.kv.Range(ctx, raftstore.RangeRequest{Key: []byte(key), Consistency: c})
	if err != nil {
		return nil, storeErr(err)
	}
	if len(resp.KVs) == 0 {
		return nil, nil
	}
	return &resp.KVs[0], nil
}

// ListOptions selects a page of a collection.
type ListOptions struct {
	Labels       labels.Selector
	Fields       fields.Selector
	Limit        int64
	Continue     string
	Serializable bool
	// Raw, when set, receives each stored object undecoded (with its
	// resourceVersion injected) instead of Items: for lists without
	// selectors, which then cost no decoding. It must not keep kv.
	Raw func(obj []byte) error
}

// ListResult is one page of a collection.
type ListResult struct {
	Items     []runtime.Object
	Revision  int64
	Continue  string
	Remaining *int64
	count     int64 // items taken (Items, or handed to Raw)
}

type continueToken struct {
	Rev   int64  `json:"rv"`
	Start string `json:"start"`
}

// List reads a collection (one namespace, or all when ns is empty),
// filtered by the selectors. With a limit, pages continue from where the
// last one stopped; unlike Kubernetes, a continued page reads the current
// state (the store keeps no old versions), so it may show changes made
// after the first page.
func (s *Storage) List(ctx context.Context, r *Resource, ns string, opts ListOptions) (*ListResult, error) {
	prefix := r.Prefix(ns)
	start := []byte(prefix)
	end := []byte(command.PrefixEnd([]byte(prefix)))
	if opts.Continue != "" {
		raw, err := base64.RawURLEncoding.DecodeString(opts.Continue)
		var tok continueToken
		if err == nil {
			err = json.Unmarshal(raw, &tok)
		}
		if err != nil || !bytes.HasPrefix([]byte(tok.Start), start) {
			return nil, apierrors.NewBadRequest("invalid continue token")
		}
		start = []byte(tok.Start)
	}
	c := raftstore.Linearizable
	if opts.Serializable {
		c = raftstore.Serializable
	}
	res := &ListResult{}
	filtered := opts.Labels != nil && !opts.Labels.Empty() || opts.Fields != nil && !opts.Fields.Empty()
	page := opts.Limit
	if filtered && page > 0 && page < 500 {
		page = 500 // read ahead: selectors drop some of every page
	}
	for {
		resp, err := s.kv.Range(ctx, raftstore.RangeRequest{Key: start, End: end, Limit: page, Consistency: c})
		if err != nil {
			return nil, storeErr(err)
		}
		c = raftstore.Serializable // later chunks continue the same read
		if res.Revision == 0 {
			res.Revision = resp.Revision
		}
		for i := range resp.KVs {
			kv := &resp.KVs[i]
			if opts.Raw != nil && !filtered {
				if err := opts.Raw(WithResourceVersion(kv.Value, kv.ModRev)); err != nil {
					return nil, err
				}
				res.count++
			} else {
				obj, err := Decode(r, kv)
				if err != nil {
					return nil, err
				}
				if !matches(obj, opts.Labels, opts.Fields) {
					continue
				}
				res.Items = append(res.Items, obj)
				res.count++
			}
			if opts.Limit > 0 && res.count == opts.Limit {
				next := append([]byte(string(kv.Key)), 0)
				if i < len(resp.KVs)-1 || resp.More {
					tok, _ := json.Marshal(continueToken{Rev: res.Revision, Start: string(next)})
					res.Continue = base64.RawURLEncoding.EncodeToString(tok)
					if !filtered {
						left := resp.Count - int64(i) - 1
						res.Remaining = &left
					}
				}
				return res, nil
			}
		}
		if !resp.More {
			return res, nil
		}
		start = resp.NextKey
	}
}

// WithResourceVersion returns a stored object's JSON with its
// metadata.resourceVersion set, without decoding it: objects are stored
// with kind and apiVersion first, then metadata, and without a
// resourceVersion (see encode).
func WithResourceVersion(value []byte, rev int64) []byte {
	const marker = `"metadata":{`
	i := bytes.Index(value, []byte(marker))
	if i < 0 {
		return value
	}
	at := i + len(marker)
	field := `"resourceVersion":"` + strconv.FormatInt(rev, 10) + `"`
	out := make([]byte, 0, len(value)+len(field)+1)
	out = append(out, value[:at]...)
	out = append(out, field...)
	if at < len(value) && value[at] != '}' {
		out = append(out, ',')
	}
	return append(out, value[at:]...)
}

func matches(obj runtime.Object, ls labels.Selector, fs fields.Selector) bool {
	if ls != nil && !ls.Empty() {
		m, _ := meta.Accessor(obj)
		if !ls.Matches(labels.Set(m.GetLabels())) {
			return false
		}
	}
	if fs != nil && !fs.Empty() && !fs.Matches(Fields(obj)) {
		return false
	}
	return true
}

// Matches reports whether obj passes both selectors.
func Matches(obj runtime.Object, ls labels.Selector, fs fields.Selector) bool {
	return matches(obj, ls, fs)
}

// nameSuffix is what Kubernetes appends to generateName: 5 characters
// without vowels or look-alikes.
func nameSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func newUID() types.UID {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]))
}

// CreateOptions modify a create.
type CreateOptions struct{ DryRun bool }

// Create stores a new object. Its namespace (for namespaced kinds) must
// exist and not be terminating; generateName gets a random suffix; uid,
// creationTimestamp and generation are set; status is the system's.
func (s *Storage) Create(ctx context.Context, r *Resource, obj runtime.Object, opts CreateOptions) (runtime.Object, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if m.GetResourceVersion() != "" {
		return nil, apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	if m.GetName() == "" && m.GetGenerateName() == "" {
		return nil, apierrors.NewInvalid(r.GVK().GroupKind(), "", field.ErrorList{field.Required(field.NewPath("metadata", "name"), "name or generateName is required")})
	}
	if r.ResetStatusCreate {
		if obj, err = resetStatus(r, obj); err != nil {
			return nil, err
		}
		m, _ = meta.Accessor(obj)
	}
	initStatus(obj)
	m.SetUID(newUID())
	m.SetCreationTimestamp(metav1.NewTime(s.now().Truncate(time.Second)))
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetManagedFields(nil)
	m.SetSelfLink("")
	if r.HasGeneration {
		m.SetGeneration(1)
	} else {
		m.SetGeneration(0)
	}
	if !r.Namespaced {
		m.SetNamespace("")
	}
	generated := m.GetName() == ""
	// Each attempt starts from the object as given: a lost race must not
	// leave a generated name or an allocated address behind in it.
	orig := obj.DeepCopyObject()
	for attempt := 0; attempt < maxRetries; attempt++ {
		obj = orig.DeepCopyObject()
		m, _ = meta.Accessor(obj)
		if generated {
			m.SetName(m.GetGenerateName() + nameSuffix())
		}
		if err := s.admit(r, obj, nil, ""); err != nil {
			return nil, err
		}
		out, retry, err := s.tryCreate(ctx, r, obj, m, opts)
		if retry && (generated || errors.Is(err, errAllocRace)) {
			continue
		}
		return out, err
	}
	return nil, apierrors.NewServerTimeout(r.GroupResource(), "create", 1)
}

var errAllocRace = errors.New("an allocated address was taken concurrently")

func (s *Storage) tryCreate(ctx context.Context, r *Resource, obj runtime.Object, m metav1.Object, opts CreateOptions) (runtime.Object, bool, error) {
	key := r.Key(m.GetNamespace(), m.GetName())
	t := &raftstore.Txn{
		Compares: []raftstore.Compare{{Key: []byte(key), Target: command.TargetVersion, Result: command.Equal, Int: 0}},
		Failure:  []raftstore.Op{{Type: command.OpRange, Key: []byte(key)}},
	}
	if r.Namespaced {
		nsKey := Lookup("", "v1", "namespaces").Key("", m.GetNamespace())
		kv, err := s.getKV(ctx, nsKey, false)
		if err != nil {
			return nil, false, err
		}
		if kv == nil {
			return nil, false, apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, m.GetNamespace())
		}
		var ns corev1.Namespace
		if json.Unmarshal(kv.Value, &ns) == nil && ns.DeletionTimestamp != nil {
			return nil, false, apierrors.NewForbidden(r.GroupResource(), m.GetName(),
				fmt.Errorf("unable to create new content in namespace %s because it is being terminated", m.GetNamespace()))
		}
		t.Compares = append(t.Compares, raftstore.Compare{Key: []byte(nsKey), Target: command.TargetModRev, Result: command.Equal, Int: kv.ModRev})
	}
	var alloc *allocation
	if svc, ok := obj.(*corev1.Service); ok && s.services != nil {
		var err error
		if alloc, err = s.services.allocate(ctx, s, svc, nil); err != nil {
			return nil, false, err
		}
		alloc.addTo(t)
	}
	if node, ok := obj.(*corev1.Node); ok && s.podCIDRs != nil {
		var err error
		if alloc, err = s.podCIDRs.allocate(ctx, s, node); err != nil {
			return nil, false, err
		}
		alloc.addTo(t)
	}
	if opts.DryRun {
		setTypeMeta(r, obj)
		return obj, false, nil
	}
	resp, err := s.putIn(ctx, r, key, obj, t)
	if err != nil {
		return nil, false, err
	}
	if !resp.Succeeded {
		if len(resp.Results[0].KVs) > 0 {
			return nil, true, apierrors.NewAlreadyExists(r.GroupResource(), m.GetName())
		}
		if alloc != nil {
			return nil, true, errAllocRace
		}
		return nil, true, apierrors.NewConflict(r.GroupResource(), m.GetName(), errors.New("the namespace changed while creating; try again"))
	}
	m.SetResourceVersion(strconv.FormatInt(resp.Revision, 10))
	setTypeMeta(r, obj)
	return obj, false, nil
}

// resetStatus drops whatever status a client sent with a create.
func resetStatus(r *Resource, obj runtime.Object) (runtime.Object, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	delete(raw, "status")
	b, _ = json.Marshal(raw)
	out := r.New()
	if err := json.Unmarshal(b, out); err != nil {
		return nil, err
	}
	return out, nil
}

// initStatus sets the status a new object starts with.
func initStatus(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		if o.Status.Phase == "" {
			o.Status.Phase = corev1.PodPending
		}
		if o.Status.QOSClass == "" {
			o.Status.QOSClass = qosClass(&o.Spec)
		}
	case *corev1.Namespace:
		// Deleting a namespace empties it first: the finalizer holds it
		// until its contents are gone.
		o.Status.Phase = corev1.NamespaceActive
		o.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
	}
}

// UpdateFunc computes the new object from the current one. It may return
// an apierrors error (e.g. a Conflict for a stale resourceVersion).
type UpdateFunc func(current runtime.Object) (runtime.Object, error)

// UpdateOptions modify an update.
type UpdateOptions struct {
	Subresource string // "", "status", "binding" (spec and status), "finalize" (namespace spec.finalizers)
	DryRun      bool
}

// Update replaces an object with what fn makes of the current one,
// retrying on concurrent changes (fn runs again on the new current object;
// a caller that wants a precondition checks it in fn). The main resource
// keeps the old status; the status subresource changes only the status.
func (s *Storage) Update(ctx context.Context, r *Resource, ns, name string, opts UpdateOptions, fn UpdateFunc) (runtime.Object, error) {
	key := r.Key(ns, name)
	for attempt := 0; attempt < maxRetries; attempt++ {
		kv, err := s.getKV(ctx, key, false)
		if err != nil {
			return nil, err
		}
		if kv == nil {
			return nil, apierrors.NewNotFound(r.GroupResource(), name)
		}
		cur, err := Decode(r, kv)
		if err != nil {
			return nil, err
		}
		next, err := fn(cur.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		next, err = s.prepareUpdate(r, next, cur, opts.Subresource)
		if err != nil {
			return nil, err
		}
		if err := s.admit(r, next, cur, opts.Subresource); err != nil {
			return nil, err
		}
		out, retry, err := s.tryUpdate(ctx, r, key, kv.ModRev, next, cur, opts)
		if retry {
			continue
		}
		return out, err
	}
	return nil, apierrors.NewConflict(r.GroupResource(), name, errors.New("too many concurrent changes; try again"))
}

// prepareUpdate carries over what a client may not change through this
// endpoint: identity and system metadata, and status or spec.
func (s *Storage) prepareUpdate(r *Resource, next, cur runtime.Object, sub string) (runtime.Object, error) {
	nm, err := meta.Accessor(next)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	cm, _ := meta.Accessor(cur)
	if nm.GetName() != cm.GetName() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", nm.GetName(), cm.GetName()))
	}
	if uid := nm.GetUID(); uid != "" && uid != cm.GetUID() {
		return nil, apierrors.NewConflict(r.GroupResource(), cm.GetName(),
			fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", uid, cm.GetUID()))
	}
	if sub == "finalize" {
		out := cur.DeepCopyObject()
		out.(*corev1.Namespace).Spec.Finalizers = next.(*corev1.Namespace).Spec.Finalizers
		om, _ := meta.Accessor(out)
		om.SetResourceVersion(nm.GetResourceVersion())
		return out, nil
	}
	if sub == "status" {
		// Only the status changes: start from the current object.
		out := cur.DeepCopyObject()
		if err := copyField(next, out, "status"); err != nil {
			return nil, err
		}
		om, _ := meta.Accessor(out)
		om.SetResourceVersion(nm.GetResourceVersion())
		return out, nil
	}
	nm.SetUID(cm.GetUID())
	nm.SetNamespace(cm.GetNamespace())
	nm.SetCreationTimestamp(cm.GetCreationTimestamp())
	nm.SetDeletionTimestamp(cm.GetDeletionTimestamp())
	nm.SetDeletionGracePeriodSeconds(cm.GetDeletionGracePeriodSeconds())
	nm.SetGeneration(cm.GetGeneration())
	nm.SetManagedFields(nil)
	nm.SetSelfLink("")
	if svc, ok := next.(*corev1.Service); ok {
		keepServiceAddresses(svc, cur.(*corev1.Service))
	}
	if r.ResetStatusCreate && sub != "binding" {
		if err := copyField(cur, next, "status"); err != nil {
			return nil, err
		}
	}
	if r.HasGeneration {
		if changed, err := fieldChanged(next, cur, "spec"); err != nil {
			return nil, err
		} else if changed {
			nm.SetGeneration(cm.GetGeneration() + 1)
		}
	}
	return next, nil
}

// copyField copies one top-level JSON field from src into dst.
func copyField(src, dst runtime.Object, name string) error {
	sb, err := json.Marshal(src)
	if err != nil {
		return err
	}
	var sm map[string]json.RawMessage
	if err := json.Unmarshal(sb, &sm); err != nil {
		return err
	}
	db, err := json.Marshal(dst)
	if err != nil {
		return err
	}
	var dm map[string]json.RawMessage
	if err := json.Unmarshal(db, &dm); err != nil {
		return err
	}
	if v, ok := sm[name]; ok {
		dm[name] = v
	} else {
		delete(dm, name)
	}
	out, _ := json.Marshal(dm)
	// Decode into a zero value, then swap it in: decoding into dst itself
	// would keep fields that out leaves absent.
	fresh := reflect.New(reflect.TypeOf(dst).Elem())
	if err := json.Unmarshal(out, fresh.Interface()); err != nil {
		return err
	}
	reflect.ValueOf(dst).Elem().Set(fresh.Elem())
	return nil
}

func fieldChanged(a, b runtime.Object, name string) (bool, error) {
	get := func(o runtime.Object) (json.RawMessage, error) {
		bs, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(bs, &m); err != nil {
			return nil, err
		}
		return m[name], nil
	}
	x, err := get(a)
	if err != nil {
		return false, err
	}
	y, err := get(b)
	if err != nil {
		return false, err
	}
	return !bytes.Equal(x, y), nil
}

func (s *Storage) tryUpdate(ctx context.Context, r *Resource, key string, modRev int64, next, cur runtime.Object, opts UpdateOptions) (runtime.Object, bool, error) {
	nm, _ := meta.Accessor(next)
	// A terminating object whose last finalizer is gone is deleted.
	if nm.GetDeletionTimestamp() != nil && len(nm.GetFinalizers()) == 0 && !namespaceHolds(next) {
		out, retry, err := s.tryDelete(ctx, r, key, modRev, cur, opts.DryRun)
		if err == nil {
			// Answer with the object as the client last saw it.
			setTypeMeta(r, next)
			_ = out
			return next, false, nil
		}
		return nil, retry, err
	}
	t := &raftstore.Txn{
		Compares: []raftstore.Compare{{Key: []byte(key), Target: command.TargetModRev, Result: command.Equal, Int: modRev}},
	}
	if svc, ok := next.(*corev1.Service); ok && s.services != nil {
		alloc, err := s.services.allocate(ctx, s, svc, cur.(*corev1.Service))
		if err != nil {
			return nil, false, err
		}
		alloc.addTo(t)
	}
	if opts.DryRun {
		return next, false, nil
	}
	resp, err := s.putIn(ctx, r, key, next, t)
	if err != nil {
		return nil, false, err
	}
	if !resp.Succeeded {
		return nil, true, nil
	}
	nm.SetResourceVersion(strconv.FormatInt(resp.Revision, 10))
	setTypeMeta(r, next)
	return next, false, nil
}

// putIn runs t with a put of obj at key as its first success op (the
// compares and the other ops are the caller's).
func (s *Storage) putIn(ctx context.Context, r *Resource, key string, obj runtime.Object, t *raftstore.Txn) (*raftstore.Response, error) {
	val, err := encode(r, obj)
	if err != nil {
		return nil, err
	}
	t.Success = append([]raftstore.Op{{Type: command.OpPut, Key: []byte(key), Value: val}}, t.Success...)
	resp, err := s.kv.Txn(ctx, t)
	if err != nil {
		return nil, storeErr(err)
	}
	return resp, nil
}

// namespaceHolds: a terminating namespace waits for its spec finalizers.
func namespaceHolds(obj runtime.Object) bool {
	ns, ok := obj.(*corev1.Namespace)
	return ok && len(ns.Spec.Finalizers) > 0
}

// DeleteResult says what a delete did.
type DeleteResult struct {
	Object runtime.Object
	// Deleted is false when the object only got a deletionTimestamp
	// (finalizers or a graceful pod termination pending).
	Deleted bool
}

// Delete removes an object, honouring preconditions, finalizers (the
// object is marked and stays until they are gone) and graceful pod
// termination (a pod on a node is marked; the node's agent deletes it when
// its containers have stopped).
func (s *Storage) Delete(ctx context.Context, r *Resource, ns, name string, opts *metav1.DeleteOptions) (*DeleteResult, error) {
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	dry := len(opts.DryRun) > 0
	key := r.Key(ns, name)
	for attempt := 0; attempt < maxRetries; attempt++ {
		kv, err := s.getKV(ctx, key, false)
		if err != nil {
			return nil, err
		}
		if kv == nil {
			return nil, apierrors.NewNotFound(r.GroupResource(), name)
		}
		cur, err := Decode(r, kv)
		if err != nil {
			return nil, err
		}
		cm, _ := meta.Accessor(cur)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != cm.GetUID() {
				return nil, apierrors.NewConflict(r.GroupResource(), name,
					fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, cm.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != cm.GetResourceVersion() {
				return nil, apierrors.NewConflict(r.GroupResource(), name,
					fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, cm.GetResourceVersion()))
			}
		}
		mark, grace := s.deferDelete(ctx, cur, opts)
		if mark {
			next := cur.DeepCopyObject()
			nm, _ := meta.Accessor(next)
			if nm.GetDeletionTimestamp() == nil {
				ts := metav1.NewTime(s.now().Add(time.Duration(grace) * time.Second).Truncate(time.Second))
				nm.SetDeletionTimestamp(&ts)
				nm.SetDeletionGracePeriodSeconds(&grace)
			} else if g := nm.GetDeletionGracePeriodSeconds(); g != nil && grace < *g {
				// A shorter grace period shortens a pending one.
				ts := metav1.NewTime(s.now().Add(time.Duration(grace) * time.Second).Truncate(time.Second))
				nm.SetDeletionTimestamp(&ts)
				nm.SetDeletionGracePeriodSeconds(&grace)
			} else {
				return &DeleteResult{Object: cur}, nil
			}
			if nsObj, ok := next.(*corev1.Namespace); ok {
				nsObj.Status.Phase = corev1.NamespaceTerminating
			}
			if dry {
				return &DeleteResult{Object: next}, nil
			}
			resp, err := s.putIn(ctx, r, key, next, &raftstore.Txn{
				Compares: []raftstore.Compare{{Key: []byte(key), Target: command.TargetModRev, Result: command.Equal, Int: kv.ModRev}},
			})
			if err != nil {
				return nil, err
			}
			if !resp.Succeeded {
				continue
			}
			nm.SetResourceVersion(strconv.FormatInt(resp.Revision, 10))
			setTypeMeta(r, next)
			return &DeleteResult{Object: next}, nil
		}
		out, retry, err := s.tryDelete(ctx, r, key, kv.ModRev, cur, dry)
		if retry {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &DeleteResult{Object: out, Deleted: true}, nil
	}
	return nil, apierrors.NewConflict(r.GroupResource(), name, errors.New("too many concurrent changes; try again"))
}

// deferDelete decides whether a delete only marks the object, and with
// which grace period.
func (s *Storage) deferDelete(ctx context.Context, cur runtime.Object, opts *metav1.DeleteOptions) (bool, int64) {
	cm, _ := meta.Accessor(cur)
	if len(cm.GetFinalizers()) > 0 || namespaceHolds(cur) {
		return true, 0
	}
	pod, ok := cur.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return false, 0
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if opts.GracePeriodSeconds != nil {
		grace = *opts.GracePeriodSeconds
	}
	if grace <= 0 || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false, 0
	}
	// Only a node that exists has an agent to finish the termination.
	nodeKV, err := s.getKV(ctx, Lookup("", "v1", "nodes").Key("", pod.Spec.NodeName), true)
	if err != nil || nodeKV == nil {
		return false, 0
	}
	return true, grace
}

func (s *Storage) tryDelete(ctx context.Context, r *Resource, key string, modRev int64, cur runtime.Object, dry bool) (runtime.Object, bool, error) {
	t := &raftstore.Txn{
		Compares: []raftstore.Compare{{Key: []byte(key), Target: command.TargetModRev, Result: command.Equal, Int: modRev}},
		Success:  []raftstore.Op{{Type: command.OpDelete, Key: []byte(key)}},
	}
	if svc, ok := cur.(*corev1.Service); ok && s.services != nil {
		s.services.release(svc).addTo(t)
	}
	if node, ok := cur.(*corev1.Node); ok && s.podCIDRs != nil {
		s.podCIDRs.release(node).addTo(t)
	}
	if dry {
		return cur, false, nil
	}
	resp, err := s.kv.Txn(ctx, t)
	if err != nil {
		return nil, false, storeErr(err)
	}
	if !resp.Succeeded {
		return nil, true, nil
	}
	return cur, false, nil
}

// Watch watches a collection's keys from a revision (see raftstore.Watch).
func (s *Storage) Watch(ctx context.Context, r *Resource, ns string, fromRev int64) (*raftstore.Watcher, error) {
	prefix := []byte(r.Prefix(ns))
	w, err := s.kv.Watch(ctx, prefix, command.PrefixEnd(prefix), fromRev)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Revision reads the store's current revision linearizably.
func (s *Storage) Revision(ctx context.Context) (int64, error) {
	resp, err := s.kv.Range(ctx, raftstore.RangeRequest{Key: []byte("/registry/"), Prefix: true, CountOnly: true})
	if err != nil {
		return 0, storeErr(err)
	}
	return resp.Revision, nil
}

// keepServiceAddresses carries a Service's allocated addresses into an
// update that leaves them out, as kube-apiserver does: a client replacing
// the object from its manifest does not know them.
func keepServiceAddresses(next, cur *corev1.Service) {
	if next.Spec.ClusterIP == "" {
		next.Spec.ClusterIP = cur.Spec.ClusterIP
		if len(next.Spec.ClusterIPs) == 0 {
			next.Spec.ClusterIPs = cur.Spec.ClusterIPs
		}
	}
	if next.Spec.Type != corev1.ServiceTypeNodePort && next.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return
	}
	for i := range next.Spec.Ports {
		p := &next.Spec.Ports[i]
		if p.NodePort != 0 {
			continue
		}
		for _, op := range cur.Spec.Ports {
			if op.Port == p.Port && op.Protocol == p.Protocol {
				p.NodePort = op.NodePort
			}
		}
	}
}
