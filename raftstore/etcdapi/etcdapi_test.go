package etcdapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/etcdapi"
	"github.com/droverhq/drover/raftstore/raftstoretest"
)

// serve puts the etcd API of every member of c on a loopback port and
// returns the endpoints.
func serve(t *testing.T, c *raftstoretest.Cluster) []string {
	t.Helper()
	var eps []string
	for i := range c.Members {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i+1))
		if err != nil {
			t.Fatal(err)
		}
		g := grpc.NewServer()
		etcdapi.New(etcdapi.Config{Store: c.Store(i)}).Register(g)
		go g.Serve(ln)
		t.Cleanup(g.Stop)
		eps = append(eps, ln.Addr().String())
	}
	return eps
}

func client(t *testing.T, eps ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func TestEtcdClientAgainstThreeMembers(t *testing.T) {
	c := raftstoretest.New(t, 3, raftstoretest.Options{TCP: true})
	c.Leader(10 * time.Second)
	eps := serve(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Each client talks to one member, so followers are exercised.
	clis := []*clientv3.Client{client(t, eps[0]), client(t, eps[1]), client(t, eps[2])}

	// put / get / prefix / range / limit
	for i := 0; i < 5; i++ {
		if _, err := clis[i%3].Put(ctx, fmt.Sprintf("/p/%d", i), fmt.Sprint(i)); err != nil {
			t.Fatalf("put: %v", err)
		}
	}
	r, err := clis[1].Get(ctx, "/p/", clientv3.WithPrefix())
	if err != nil || r.Count != 5 || len(r.Kvs) != 5 {
		t.Fatalf("prefix get: %+v %v", r, err)
	}
	r, err = clis[2].Get(ctx, "/p/1", clientv3.WithRange("/p/4"))
	if err != nil || len(r.Kvs) != 3 || string(r.Kvs[0].Key) != "/p/1" {
		t.Fatalf("range get: %+v %v", r, err)
	}
	r, err = clis[0].Get(ctx, "/p/", clientv3.WithPrefix(), clientv3.WithLimit(2))
	if err != nil || len(r.Kvs) != 2 || !r.More || r.Count != 5 {
		t.Fatalf("limit get: %+v %v", r, err)
	}
	r, err = clis[0].Get(ctx, "/p/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Key) != "/p/4" {
		t.Fatalf("sorted get: %+v %v", r, err)
	}
	r, err = clis[0].Get(ctx, "/p/0", clientv3.WithSerializable())
	if err != nil {
		t.Fatalf("serializable get: %v", err)
	}

	// txn: compare-and-swap on mod revision
	kv := r.Kvs[0]
	tr, err := clis[1].Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/p/0"), "=", kv.ModRevision)).
		Then(clientv3.OpPut("/p/0", "swapped")).Else(clientv3.OpGet("/p/0")).Commit()
	if err != nil || !tr.Succeeded {
		t.Fatalf("txn: %+v %v", tr, err)
	}
	tr, err = clis[2].Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/p/0"), "=", kv.ModRevision)).
		Then(clientv3.OpPut("/p/0", "again")).Else(clientv3.OpGet("/p/0")).Commit()
	if err != nil || tr.Succeeded || string(tr.Responses[0].GetResponseRange().Kvs[0].Value) != "swapped" {
		t.Fatalf("stale txn: %+v %v", tr, err)
	}

	// delete with prev kv
	d, err := clis[0].Delete(ctx, "/p/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil || d.Deleted != 5 || len(d.PrevKvs) != 5 {
		t.Fatalf("delete: %+v %v", d, err)
	}

	// errors clients understand
	if _, err := clis[0].Put(ctx, "", "x"); !errors.Is(err, rpctypes.ErrEmptyKey) {
		t.Fatalf("empty key: %v", err)
	}
	if _, err := clis[0].Get(ctx, "/p/0", clientv3.WithRev(1)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("old revision: %v", err)
	}

	// status and member list
	st, err := clis[1].Status(ctx, eps[1])
	if err != nil || st.Leader == 0 || st.Header.Revision == 0 {
		t.Fatalf("status: %+v %v", st, err)
	}
	ml, err := clis[2].MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list: %+v %v", ml, err)
	}
}

func TestEtcdWatchAndResume(t *testing.T) {
	c := raftstoretest.New(t, 3, raftstoretest.Options{TCP: true})
	c.Leader(10 * time.Second)
	eps := serve(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	writer, watcher := client(t, eps[0]), client(t, eps[2])

	wch := watcher.Watch(ctx, "/w/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	var revs []int64
	for i := 0; i < 10; i++ {
		pr, err := writer.Put(ctx, "/w/k", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, pr.Header.Revision)
	}
	got := 0
	for got < 10 {
		wr := <-wch
		if err := wr.Err(); err != nil {
			t.Fatal(err)
		}
		for _, ev := range wr.Events {
			if ev.Kv.ModRevision != revs[got] || string(ev.Kv.Value) != fmt.Sprint(got) {
				t.Fatalf("event %d: %+v", got, ev)
			}
			if got > 0 && (ev.PrevKv == nil || string(ev.PrevKv.Value) != fmt.Sprint(got-1)) {
				t.Fatalf("event %d prev kv: %+v", got, ev.PrevKv)
			}
			got++
		}
	}
	// Resume from a revision on another member replays exactly the rest.
	other := client(t, eps[1])
	wch2 := other.Watch(ctx, "/w/k", clientv3.WithRev(revs[5]))
	for i := 5; i < 10; {
		wr := <-wch2
		if err := wr.Err(); err != nil {
			t.Fatal(err)
		}
		for _, ev := range wr.Events {
			if ev.Kv.ModRevision != revs[i] {
				t.Fatalf("resumed event: rev %d want %d", ev.Kv.ModRevision, revs[i])
			}
			i++
		}
	}
	// Progress notifications on request.
	if err := other.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEtcdLeases(t *testing.T) {
	c := raftstoretest.New(t, 3, raftstoretest.Options{TCP: true, Configure: func(cfg *raftstore.Config) {
		cfg.LeaseCheckInterval = 50 * time.Millisecond
	}})
	c.Leader(10 * time.Second)
	eps := serve(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := client(t, eps[1])

	// A lease kept alive keeps its key; revoke deletes it.
	kept, err := cli.Grant(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/l/kept", "x", clientv3.WithLease(kept.ID)); err != nil {
		t.Fatal(err)
	}
	ka, err := cli.KeepAlive(ctx, kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A lease not kept alive expires: its key disappears.
	short, err := cli.Grant(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/l/short", "x", clientv3.WithLease(short.ID)); err != nil {
		t.Fatal(err)
	}
	ttl, err := cli.TimeToLive(ctx, short.ID, clientv3.WithAttachedKeys())
	if err != nil || len(ttl.Keys) != 1 || ttl.GrantedTTL < 1 {
		t.Fatalf("time to live: %+v %v", ttl, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := cli.Get(ctx, "/l/short")
		if err != nil {
			t.Fatal(err)
		}
		if r.Count == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leased key still there after its lease should have expired")
		}
		select {
		case <-ka:
		case <-time.After(50 * time.Millisecond):
		}
	}
	r, err := cli.Get(ctx, "/l/kept")
	if err != nil || r.Count != 1 {
		t.Fatalf("kept key: %+v %v", r, err)
	}
	ls, err := cli.Leases(ctx)
	if err != nil || len(ls.Leases) != 1 || ls.Leases[0].ID != kept.ID {
		t.Fatalf("leases: %+v %v", ls, err)
	}
	if _, err := cli.Revoke(ctx, kept.ID); err != nil {
		t.Fatal(err)
	}
	r, _ = cli.Get(ctx, "/l/kept")
	if r.Count != 0 {
		t.Fatalf("revoked lease kept its key")
	}
	if _, err := cli.Put(ctx, "/l/x", "x", clientv3.WithLease(kept.ID)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("put with revoked lease: %v", err)
	}
}

func TestEtcdSnapshot(t *testing.T) {
	c := raftstoretest.New(t, 1, raftstoretest.Options{TCP: true})
	c.Leader(10 * time.Second)
	eps := serve(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli := client(t, eps...)
	for i := 0; i < 100; i++ {
		cli.Put(ctx, fmt.Sprintf("/s/%03d", i), "v")
	}
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil {
		t.Fatal(err)
	}
	if buf.Len() < 100*10 || !bytes.HasPrefix(buf.Bytes(), []byte("DRVS")) {
		t.Fatalf("snapshot of %d bytes", buf.Len())
	}
}

// TestLeaseSurvivesLeaderFailover: the new leader restarts every lease's
// TTL, so a lease outlives the failover by its full TTL, then expires.
func TestLeaseSurvivesLeaderFailover(t *testing.T) {
	c := raftstoretest.New(t, 3, raftstoretest.Options{TCP: true, Configure: func(cfg *raftstore.Config) {
		cfg.LeaseCheckInterval = 50 * time.Millisecond
	}})
	leader := c.Leader(10 * time.Second)
	eps := serve(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var others []string
	for i, ep := range eps {
		if i != leader {
			others = append(others, ep)
		}
	}
	cli := client(t, others...)
	g, err := cli.Grant(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/lf/k", "v", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	c.Kill(leader)
	killed := time.Now()
	c.Leader(10 * time.Second)
	ttl, err := cli.TimeToLive(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TTL < 2 {
		t.Fatalf("after failover the lease has %ds left; the new leader should restart its %ds TTL", ttl.TTL, ttl.GrantedTTL)
	}
	// It then expires, about a TTL after the new leader took over.
	for {
		r, err := cli.Get(ctx, "/lf/k")
		if err == nil && r.Count == 0 {
			break
		}
		if time.Since(killed) > 20*time.Second {
			t.Fatalf("leased key outlived its lease: %v %v", r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(killed); d < 3*time.Second {
		t.Fatalf("lease expired %s after the failover, before its TTL", d)
	}
}
