package etcdapi

import (
	"bytes"
	"context"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/command"
)

type kvServer struct{ s *Server }

func toMVCC(kv raftstore.KeyValue, keysOnly bool) *mvccpb.KeyValue {
	out := &mvccpb.KeyValue{Key: kv.Key, CreateRevision: kv.CreateRev, ModRevision: kv.ModRev, Version: kv.Version, Lease: kv.Lease}
	if !keysOnly {
		out.Value = kv.Value
	}
	return out
}

// checkRevision: drover keeps no old versions, so a read at a past
// revision is answered like one at a compacted revision; a future one as
// in etcd. A read at exactly the current revision is served.
func checkRevision(asked, read int64) error {
	switch {
	case asked == 0 || asked == read:
		return nil
	case asked > read:
		return rpctypes.ErrGRPCFutureRev
	}
	return rpctypes.ErrGRPCCompacted
}

func (k *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if len(r.Key) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	req := raftstore.RangeRequest{Key: r.Key, End: r.RangeEnd, Limit: r.Limit, CountOnly: r.CountOnly}
	if r.Serializable {
		req.Consistency = raftstore.Serializable
	}
	// Sorting other than by key ascending, and the revision filters, need
	// the whole range before the limit applies.
	filtered := r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
	resort := r.SortOrder != pb.RangeRequest_NONE && !(r.SortTarget == pb.RangeRequest_KEY && r.SortOrder == pb.RangeRequest_ASCEND)
	if filtered || resort {
		req.Limit, req.CountOnly = 0, false
	}
	res, err := k.s.store.Range(ctx, req)
	if err != nil {
		return nil, toGRPC(err)
	}
	if err := checkRevision(r.Revision, res.Revision); err != nil {
		return nil, err
	}
	resp := &pb.RangeResponse{Header: k.s.header(res.Revision), Count: res.Count, More: res.More}
	if !filtered && !resort {
		if !r.CountOnly {
			resp.Kvs = make([]*mvccpb.KeyValue, len(res.KVs))
			for i, kv := range res.KVs {
				resp.Kvs[i] = toMVCC(kv, r.KeysOnly)
			}
		}
		return resp, nil
	}
	kvs := res.KVs[:0:0]
	for _, kv := range res.KVs {
		if (r.MinModRevision != 0 && kv.ModRev < r.MinModRevision) || (r.MaxModRevision != 0 && kv.ModRev > r.MaxModRevision) ||
			(r.MinCreateRevision != 0 && kv.CreateRev < r.MinCreateRevision) || (r.MaxCreateRevision != 0 && kv.CreateRev > r.MaxCreateRevision) {
			continue
		}
		kvs = append(kvs, kv)
	}
	if resort {
		sortKVs(kvs, r.SortTarget, r.SortOrder == pb.RangeRequest_DESCEND)
	}
	resp.Count = int64(len(kvs))
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs, resp.More = kvs[:r.Limit], true
	} else {
		resp.More = false
	}
	if !r.CountOnly {
		for _, kv := range kvs {
			resp.Kvs = append(resp.Kvs, toMVCC(kv, r.KeysOnly))
		}
	}
	return resp, nil
}

func sortKVs(kvs []raftstore.KeyValue, target pb.RangeRequest_SortTarget, desc bool) {
	less := func(a, b raftstore.KeyValue) int {
		switch target {
		case pb.RangeRequest_VERSION:
			return cmpInt(a.Version, b.Version)
		case pb.RangeRequest_CREATE:
			return cmpInt(a.CreateRev, b.CreateRev)
		case pb.RangeRequest_MOD:
			return cmpInt(a.ModRev, b.ModRev)
		case pb.RangeRequest_VALUE:
			return bytes.Compare(a.Value, b.Value)
		}
		return bytes.Compare(a.Key, b.Key)
	}
	sort.SliceStable(kvs, func(i, j int) bool {
		c := less(kvs[i], kvs[j])
		if desc {
			return c > 0
		}
		return c < 0
	})
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (k *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if r.IgnoreValue || r.IgnoreLease {
		return nil, unsupported("put with ignore_value or ignore_lease")
	}
	op, err := putOp(r)
	if err != nil {
		return nil, err
	}
	resp, err := k.s.store.Txn(ctx, &command.Txn{Success: []command.Op{op}})
	if err != nil {
		return nil, toGRPC(err)
	}
	out := &pb.PutResponse{Header: k.s.header(resp.Revision)}
	if kvs := resp.Results[0].KVs; r.PrevKv && len(kvs) > 0 {
		out.PrevKv = toMVCC(kvs[0], false)
	}
	return out, nil
}

func putOp(r *pb.PutRequest) (command.Op, error) {
	if len(r.Key) == 0 {
		return command.Op{}, rpctypes.ErrGRPCEmptyKey
	}
	return command.Op{Type: command.OpPut, Key: r.Key, Value: r.Value, Lease: r.Lease, PrevKV: r.PrevKv}, nil
}

func deleteOp(r *pb.DeleteRangeRequest) (command.Op, error) {
	if len(r.Key) == 0 {
		return command.Op{}, rpctypes.ErrGRPCEmptyKey
	}
	return command.Op{Type: command.OpDelete, Key: r.Key, End: r.RangeEnd, PrevKV: r.PrevKv}, nil
}

func (k *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	op, err := deleteOp(r)
	if err != nil {
		return nil, err
	}
	resp, err := k.s.store.Txn(ctx, &command.Txn{Success: []command.Op{op}})
	if err != nil {
		return nil, toGRPC(err)
	}
	res := resp.Results[0]
	out := &pb.DeleteRangeResponse{Header: k.s.header(resp.Revision), Deleted: res.Deleted}
	if r.PrevKv {
		for _, kv := range res.KVs {
			out.PrevKvs = append(out.PrevKvs, toMVCC(kv, false))
		}
	}
	return out, nil
}

func (k *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	t := &command.Txn{}
	for _, c := range r.Compare {
		cc, err := convertCompare(c)
		if err != nil {
			return nil, err
		}
		t.Compares = append(t.Compares, cc)
	}
	var err error
	if t.Success, err = convertOps(r.Success); err != nil {
		return nil, err
	}
	if t.Failure, err = convertOps(r.Failure); err != nil {
		return nil, err
	}
	// A transaction of reads only is served from the log like any other,
	// which makes it linearizable at one revision.
	resp, err := k.s.store.Txn(ctx, t)
	if err != nil {
		return nil, toGRPC(err)
	}
	ops := r.Success
	if !resp.Succeeded {
		ops = r.Failure
	}
	out := &pb.TxnResponse{Header: k.s.header(resp.Revision), Succeeded: resp.Succeeded}
	for i, op := range ops {
		res := resp.Results[i]
		switch req := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			rr := &pb.RangeResponse{Header: k.s.header(resp.Revision), Count: res.Count, More: res.More}
			if !req.RequestRange.CountOnly {
				for _, kv := range res.KVs {
					rr.Kvs = append(rr.Kvs, toMVCC(kv, req.RequestRange.KeysOnly))
				}
			}
			out.Responses = append(out.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: rr}})
		case *pb.RequestOp_RequestPut:
			pr := &pb.PutResponse{Header: k.s.header(resp.Revision)}
			if req.RequestPut.PrevKv && len(res.KVs) > 0 {
				pr.PrevKv = toMVCC(res.KVs[0], false)
			}
			out.Responses = append(out.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: pr}})
		case *pb.RequestOp_RequestDeleteRange:
			dr := &pb.DeleteRangeResponse{Header: k.s.header(resp.Revision), Deleted: res.Deleted}
			if req.RequestDeleteRange.PrevKv {
				for _, kv := range res.KVs {
					dr.PrevKvs = append(dr.PrevKvs, toMVCC(kv, false))
				}
			}
			out.Responses = append(out.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}})
		}
	}
	return out, nil
}

func convertCompare(c *pb.Compare) (command.Compare, error) {
	if len(c.RangeEnd) > 0 {
		return command.Compare{}, unsupported("compare over a key range")
	}
	if len(c.Key) == 0 {
		return command.Compare{}, rpctypes.ErrGRPCEmptyKey
	}
	out := command.Compare{Key: c.Key}
	switch c.Result {
	case pb.Compare_EQUAL:
		out.Result = command.Equal
	case pb.Compare_NOT_EQUAL:
		out.Result = command.NotEqual
	case pb.Compare_LESS:
		out.Result = command.Less
	case pb.Compare_GREATER:
		out.Result = command.Greater
	default:
		return command.Compare{}, status.Errorf(codes.InvalidArgument, "unknown compare result %v", c.Result)
	}
	switch c.Target {
	case pb.Compare_VERSION:
		out.Target, out.Int = command.TargetVersion, c.GetVersion()
	case pb.Compare_CREATE:
		out.Target, out.Int = command.TargetCreateRev, c.GetCreateRevision()
	case pb.Compare_MOD:
		out.Target, out.Int = command.TargetModRev, c.GetModRevision()
	case pb.Compare_VALUE:
		out.Target, out.Value = command.TargetValue, c.GetValue()
	case pb.Compare_LEASE:
		out.Target, out.Int = command.TargetLease, c.GetLease()
	default:
		return command.Compare{}, status.Errorf(codes.InvalidArgument, "unknown compare target %v", c.Target)
	}
	return out, nil
}

func convertOps(ops []*pb.RequestOp) ([]command.Op, error) {
	var out []command.Op
	for _, op := range ops {
		switch req := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			r := req.RequestRange
			if len(r.Key) == 0 {
				return nil, rpctypes.ErrGRPCEmptyKey
			}
			if r.Revision != 0 || r.SortOrder != pb.RangeRequest_NONE || r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
				return nil, unsupported("revision, sort or revision filters in a range inside a transaction")
			}
			out = append(out, command.Op{Type: command.OpRange, Key: r.Key, End: r.RangeEnd, Limit: r.Limit, CountOnly: r.CountOnly})
		case *pb.RequestOp_RequestPut:
			if req.RequestPut.IgnoreValue || req.RequestPut.IgnoreLease {
				return nil, unsupported("put with ignore_value or ignore_lease")
			}
			p, err := putOp(req.RequestPut)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		case *pb.RequestOp_RequestDeleteRange:
			d, err := deleteOp(req.RequestDeleteRange)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		case *pb.RequestOp_RequestTxn:
			return nil, unsupported("nested transactions")
		default:
			return nil, status.Error(codes.InvalidArgument, "empty request op in transaction")
		}
	}
	return out, nil
}

// Compact is accepted for compatibility: drover keeps no old versions of
// values, and the watch history is bounded by its size setting.
func (k *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	// A revision a client saw elsewhere must not look like the future
	// here just because this member has not applied it yet.
	if err := k.s.store.Sync(ctx); err != nil {
		return nil, toGRPC(err)
	}
	if r.Revision > k.s.store.Revision() {
		return nil, rpctypes.ErrGRPCFutureRev
	}
	return &pb.CompactionResponse{Header: k.s.header(0)}, nil
}
