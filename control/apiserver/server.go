package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/droverhq/drover/control/admission"
	"github.com/droverhq/drover/control/rbac"
	"github.com/droverhq/drover/control/registry"
	"github.com/droverhq/drover/raftstore"
)

// Store is what the API server needs of the replicated store.
type Store interface {
	registry.KV
	IsLeader() bool
}

// Config configures the API server.
type Config struct {
	Store Store
	// TokenKey returns the key bearer tokens are checked with (see
	// AdminToken); nil, or a nil key, accepts only client certificates.
	TokenKey func() []byte
	// ServiceCIDR and NodePortRange are where Services get addresses.
	ServiceCIDR, NodePortRange string
	// ClusterCIDR is split into one pod subnet per Node (NodeCIDRMaskSize
	// bits), given at registration.
	ClusterCIDR      string
	NodeCIDRMaskSize int
	// MaxBodyBytes caps request bodies (default 3 MiB, as Kubernetes).
	MaxBodyBytes int64
	// Version is drover's version, reported in /version.
	Version string
	// Addresses are the API addresses of every master, for the "kubernetes"
	// Service's endpoints; nil skips it.
	Addresses func() []string
	// NodeClientTLS is the TLS config for calling node agents (pods/log,
	// pods/exec): this master's client certificate; nil answers 503.
	NodeClientTLS func() *tls.Config
	// CACert returns the cluster CA certificate (PEM), served without
	// authentication at /cacerts so joining agents can fetch it and check
	// it against the hash in their join token.
	CACert func() []byte
	Logger *slog.Logger
}

// Server is the Kubernetes-compatible API server of one master.
type Server struct {
	cfg     Config
	log     *slog.Logger
	storage *registry.Storage
	alloc   *registry.ServiceAllocator
	authz   *rbac.Authorizer
	rbacOK  chan struct{} // closed once the RBAC index is loaded
	once    sync.Once
	now     func() time.Time
	decoded *decodeCache // objects of recent changes, shared by watch streams
}

// New returns a Server; Run starts its background work.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("apiserver: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 3 << 20
	}
	if cfg.ServiceCIDR == "" {
		cfg.ServiceCIDR = registry.DefaultServiceCIDR
	}
	if cfg.NodePortRange == "" {
		cfg.NodePortRange = registry.DefaultNodePortRange
	}
	alloc, err := registry.NewServiceAllocator(cfg.ServiceCIDR, cfg.NodePortRange)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, alloc: alloc, authz: rbac.New(), rbacOK: make(chan struct{}), now: time.Now}
	s.storage = registry.NewStorage(cfg.Store, s.admit, alloc)
	s.decoded = newDecodeCache(4096, func(key string, err error) { cfg.Logger.Warn("watch: undecodable object", "key", key, "err", err) })
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = registry.DefaultClusterCIDR
	}
	if cfg.NodeCIDRMaskSize == 0 {
		cfg.NodeCIDRMaskSize = registry.DefaultNodeCIDRMaskSize
	}
	podCIDRs, err := registry.NewPodCIDRAllocator(cfg.ClusterCIDR, cfg.NodeCIDRMaskSize)
	if err != nil {
		return nil, err
	}
	s.storage.SetPodCIDRs(podCIDRs)
	return s, nil
}

// Storage gives in-process components (controllers, tests) the registry.
func (s *Server) Storage() *registry.Storage { return s.storage }

// admit runs Kubernetes defaulting and validation on a write.
func (s *Server) admit(r *registry.Resource, obj, old runtime.Object, sub string) error {
	if sub == "status" || sub == "binding" || sub == "finalize" {
		return nil // system writes: the spec is unchanged
	}
	admission.Default(obj)
	var errs field.ErrorList
	if old == nil {
		errs = admission.ValidateCreate(obj)
	} else {
		errs = admission.ValidateUpdate(obj, old)
	}
	if len(errs) > 0 {
		m, _ := meta.Accessor(obj)
		return apierrors.NewInvalid(r.GVK().GroupKind(), m.GetName(), errs)
	}
	return nil
}

// Run keeps the RBAC index in step with the store, writes the defaults
// (namespaces, cluster roles, the kubernetes Service) once the store has a
// leader, and finalizes terminating namespaces while this master leads.
// It returns when ctx ends.
func (s *Server) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.runRBAC(ctx) }()
	go func() { defer wg.Done(); s.runBootstrap(ctx) }()
	go func() { defer wg.Done(); s.runNamespaceFinalizer(ctx) }()
	wg.Wait()
}

// ServeHTTP authenticates, authorizes and dispatches one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("API request panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
			writeStatus(w, apierrors.NewInternalError(fmt.Errorf("internal error while serving %s %s", r.Method, r.URL.Path)))
		}
	}()
	ri := parseRequest(r)
	if !ri.resourceRequest && isPublic(ri.path) {
		s.serveNonResource(w, r, ri)
		return
	}
	user, ok := s.authenticate(r.Context(), r)
	if !ok {
		writeStatus(w, apierrors.NewUnauthorized("Unauthorized"))
		return
	}
	attrs := rbac.Attributes{User: user, ResourceRequest: ri.resourceRequest, Verb: ri.verb, APIGroup: ri.group,
		APIVersion: ri.version, Resource: ri.resourceName, Subresource: ri.subresource, Namespace: ri.namespace, Name: ri.name, Path: ri.path}
	if !ri.resourceRequest {
		attrs.Verb = strings.ToLower(r.Method)
	}
	if d := s.authorize(r.Context(), attrs); !d.Allowed {
		msg := rbac.ForbiddenMessage(attrs, d.Reason)
		st := apierrors.NewForbidden(schema.GroupResource{Group: ri.group, Resource: ri.resourceName}, ri.name, errors.New(msg))
		st.ErrStatus.Message = msg
		writeStatus(w, st)
		return
	}
	if !ri.resourceRequest {
		s.serveNonResource(w, r, ri)
		return
	}
	s.serveResource(w, r, ri)
}

// authorize asks RBAC; system:masters may do anything (as in Kubernetes,
// where that group is not subject to RBAC), which also lets the admin in
// before the RBAC index is loaded.
func (s *Server) authorize(ctx context.Context, attrs rbac.Attributes) rbac.Decision {
	for _, g := range attrs.User.Groups {
		if g == groupMasters {
			return rbac.Decision{Allowed: true}
		}
	}
	select {
	case <-s.rbacOK:
	case <-ctx.Done():
		return rbac.Decision{Reason: "the RBAC index is not loaded yet"}
	case <-time.After(10 * time.Second):
		return rbac.Decision{Reason: "the RBAC index is not loaded yet"}
	}
	return s.authz.Authorize(attrs)
}

func isPublic(path string) bool {
	switch path {
	case "/healthz", "/livez", "/readyz", "/version", "/version/", "/cacerts":
		return true
	}
	return false
}

// Serve serves on ln (over TLS when tlsConf is set) until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConf *tls.Config) error {
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)} // TLS handshake noise from scanners and probes
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		srv.Close()
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func metaOf(obj runtime.Object) (metav1.Object, bool) {
	m, err := meta.Accessor(obj)
	return m, err == nil
}

var _ = raftstore.Linearizable
