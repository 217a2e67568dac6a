package etcdapi

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/url"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type maintenanceServer struct{ s *Server }

func (m *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	st := m.s.store.LocalStatus()
	resp := &pb.StatusResponse{
		Header:           m.s.header(st.Revision),
		Version:          m.s.version,
		DbSize:           m.s.store.LogSize(),
		DbSizeInUse:      m.s.store.LogSize(),
		RaftIndex:        st.CommitIndex,
		RaftTerm:         st.Term,
		RaftAppliedIndex: st.AppliedIndex,
	}
	if st.LeaderID != "" {
		resp.Leader = memberID(st.LeaderID)
	} else {
		resp.Errors = append(resp.Errors, "no leader")
	}
	return resp, nil
}

// Snapshot streams a backup of the whole key space in drover's snapshot
// format, zero-padded to a multiple of 512 bytes and followed by its SHA-256,
// the shape etcdctl checks for (etcd's bolt files are page-aligned); `drover
// store snapshot restore` reads it.
func (m *maintenanceServer) Snapshot(r *pb.SnapshotRequest, stream pb.Maintenance_SnapshotServer) error {
	pr, pw := io.Pipe()
	go func() {
		h := sha256.New()
		cw := &countingWriter{w: io.MultiWriter(pw, h)}
		_, err := m.s.store.WriteSnapshot(cw)
		if err == nil && cw.n%512 != 0 {
			_, err = cw.Write(make([]byte, 512-cw.n%512))
		}
		if err == nil {
			_, err = pw.Write(h.Sum(nil))
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	buf := make([]byte, 32<<10)
	total := 0
	for {
		n, err := io.ReadFull(pr, buf)
		if n > 0 {
			total += n
			chunk := make([]byte, n)
			copy(chunk, buf[:n])
			if serr := stream.Send(&pb.SnapshotResponse{Header: m.s.header(0), Blob: chunk, RemainingBytes: 1}); serr != nil {
				return serr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return stream.Send(&pb.SnapshotResponse{Header: m.s.header(0), RemainingBytes: 0})
		}
		if err != nil {
			return status.Error(codes.Internal, fmt.Sprintf("snapshot after %d bytes: %v", total, err))
		}
	}
}

func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	// drover raises no alarms (no space quota); listing returns none.
	return &pb.AlarmResponse{Header: m.s.header(0)}, nil
}

func (m *maintenanceServer) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	return nil, unsupported("defragment (the Raft log is compacted by snapshots)")
}

func (m *maintenanceServer) Hash(ctx context.Context, r *pb.HashRequest) (*pb.HashResponse, error) {
	return nil, unsupported("hash")
}

func (m *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	return nil, unsupported("hashkv")
}

func (m *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	conf, err := m.s.store.Configuration()
	if err != nil {
		return nil, toGRPC(err)
	}
	for _, srv := range conf {
		if memberID(srv.ID) == r.TargetID {
			if err := m.s.store.TransferLeadership(ctx, srv.ID); err != nil {
				return nil, toGRPC(err)
			}
			return &pb.MoveLeaderResponse{Header: m.s.header(0)}, nil
		}
	}
	return nil, rpctypes.ErrGRPCBadLeaderTransferee
}

func (m *maintenanceServer) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	return nil, unsupported("downgrade")
}

type clusterServer struct{ s *Server }

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	conf, err := c.s.store.Configuration()
	if err != nil {
		return nil, toGRPC(err)
	}
	resp := &pb.MemberListResponse{Header: c.s.header(0)}
	for _, srv := range conf {
		m := &pb.Member{ID: memberID(srv.ID), Name: srv.ID, PeerURLs: []string{(&url.URL{Scheme: "drover", Host: srv.Address}).String()}, IsLearner: !srv.Voter}
		if c.s.dir != nil {
			m.ClientURLs = c.s.dir.ClientURLs(srv.ID)
		}
		resp.Members = append(resp.Members, m)
	}
	return resp, nil
}

func (c *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	return nil, unsupported("member add (masters join through gossip: drover server --join)")
}

func (c *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	return nil, unsupported("member remove (stop the master with a graceful leave)")
}

func (c *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	return nil, unsupported("member update")
}

func (c *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	return nil, unsupported("member promote")
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
