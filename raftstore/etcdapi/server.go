// Package etcdapi serves the store over etcd's v3 gRPC API, so etcdctl and
// go.etcd.io/etcd/client/v3 work against drover unchanged: KV, Watch, Lease,
// Maintenance and Cluster. Any member serves it; the store forwards writes
// to the leader and answers linearizable reads through a read index.
//
// What etcd has and drover does not (reads at a past revision, auth,
// membership changes through the API) gets a clear gRPC error.
package etcdapi

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/droverhq/drover/raftstore"
)

// Directory tells the API how to reach other masters' client APIs; the
// server wiring backs it with gossip.
type Directory interface {
	// ClientURLs returns the client URLs of the member with this ID.
	ClientURLs(id string) []string
}

// Server implements etcd's v3 services over a store.
type Server struct {
	store   *raftstore.Store
	dir     Directory
	log     *slog.Logger
	version string
	cluster uint64
	member  uint64
}

// Config configures the API server.
type Config struct {
	Store     *raftstore.Store
	Directory Directory
	// Version is reported by Maintenance.Status; etcd clients read it.
	Version string
	Logger  *slog.Logger
}

// New returns a Server; Register puts it on a gRPC server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Version == "" {
		cfg.Version = "3.5.0"
	}
	return &Server{
		store:   cfg.Store,
		dir:     cfg.Directory,
		log:     cfg.Logger,
		version: cfg.Version,
		cluster: memberID("drover"),
		member:  memberID(cfg.Store.LocalID()),
	}
}

// Register registers every service on g.
func (s *Server) Register(g *grpc.Server) {
	pb.RegisterKVServer(g, &kvServer{s})
	pb.RegisterWatchServer(g, &watchServer{s})
	pb.RegisterMaintenanceServer(g, &maintenanceServer{s})
	pb.RegisterClusterServer(g, &clusterServer{s})
	pb.RegisterLeaseServer(g, &leaseServer{s})
}

// memberID maps a drover member ID to etcd's uint64 member IDs.
func memberID(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

func (s *Server) header(rev int64) *pb.ResponseHeader {
	if rev == 0 {
		rev = s.store.Revision()
	}
	return &pb.ResponseHeader{ClusterId: s.cluster, MemberId: s.member, Revision: rev, RaftTerm: s.store.Term()}
}

// toGRPC maps store errors to the gRPC errors etcd clients understand.
// Writes that surely were not proposed map to "no leader", which clients
// may retry; writes with an unknown outcome map to a timeout, which they
// must not blindly retry.
func toGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var tl *raftstore.TooLargeError
	var to *raftstore.TimeoutError
	switch {
	case errors.Is(err, context.Canceled):
		return rpctypes.ErrGRPCCanceled
	case errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &to):
		return rpctypes.ErrGRPCDeadlineExceeded
	case errors.Is(err, raftstore.ErrEmptyKey):
		return rpctypes.ErrGRPCEmptyKey
	case errors.As(err, &tl) && tl.What == "transaction ops":
		return rpctypes.ErrGRPCTooManyOps
	case errors.Is(err, raftstore.ErrTooLarge):
		return status.Error(codes.InvalidArgument, "etcdserver: request is too large: "+err.Error())
	case errors.Is(err, raftstore.ErrCompacted):
		return rpctypes.ErrGRPCCompacted
	case errors.Is(err, raftstore.ErrInvalidRange), errors.Is(err, raftstore.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, raftstore.ErrShutdown):
		return rpctypes.ErrGRPCStopped
	case errors.As(err, &to):
		var nl *raftstore.NotLeaderError
		if !to.Indeterminate && errors.As(err, &nl) {
			return rpctypes.ErrGRPCNoLeader
		}
		if to.Indeterminate {
			return rpctypes.ErrGRPCTimeout
		}
		return rpctypes.ErrGRPCNoLeader
	case errors.Is(err, raftstore.ErrNotLeader):
		return rpctypes.ErrGRPCNoLeader
	case errors.Is(err, raftstore.ErrLeaseNotFound):
		return rpctypes.ErrGRPCLeaseNotFound
	case errors.Is(err, raftstore.ErrLeaseExists):
		return rpctypes.ErrGRPCLeaseExist
	}
	return status.Error(codes.Unknown, err.Error())
}

func unsupported(what string) error {
	return status.Error(codes.Unimplemented, "drover: "+what+" is not supported")
}

func toGRPCLeaseTTL() error { return rpctypes.ErrGRPCLeaseTTLTooLarge }
