package etcdapi

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/droverhq/drover/raftstore"
)

type leaseServer struct{ s *Server }

func (l *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	id, ttl, err := l.s.store.LeaseGrant(ctx, r.ID, r.TTL)
	if err != nil {
		var tl *raftstore.TooLargeError
		if errors.As(err, &tl) {
			return nil, toGRPCLeaseTTL()
		}
		return nil, toGRPC(err)
	}
	return &pb.LeaseGrantResponse{Header: l.s.header(0), ID: id, TTL: ttl}, nil
}

func (l *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	rev, err := l.s.store.LeaseRevoke(ctx, r.ID)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.LeaseRevokeResponse{Header: l.s.header(rev)}, nil
}

func (l *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		ttl, err := l.s.store.LeaseKeepAlive(stream.Context(), req.ID)
		if err != nil && !errors.Is(err, raftstore.ErrLeaseNotFound) {
			return toGRPC(err)
		}
		// An unknown or expired lease answers TTL 0, as in etcd; the client
		// then reports the lease gone.
		if err := stream.Send(&pb.LeaseKeepAliveResponse{Header: l.s.header(0), ID: req.ID, TTL: ttl}); err != nil {
			return err
		}
	}
}

func (l *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	st, err := l.s.store.LeaseTimeToLive(ctx, r.ID, r.Keys)
	if errors.Is(err, raftstore.ErrLeaseNotFound) {
		return &pb.LeaseTimeToLiveResponse{Header: l.s.header(0), ID: r.ID, TTL: -1}, nil
	}
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.LeaseTimeToLiveResponse{Header: l.s.header(0), ID: r.ID, TTL: st.Remaining, GrantedTTL: st.GrantedTTL, Keys: st.Keys}, nil
}

func (l *leaseServer) LeaseLeases(ctx context.Context, r *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	leases, err := l.s.store.Leases(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &pb.LeaseLeasesResponse{Header: l.s.header(0)}
	for _, le := range leases {
		out.Leases = append(out.Leases, &pb.LeaseStatus{ID: le.ID})
	}
	return out, nil
}
