package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestRecoverFromQuorumLoss loses two of three masters for good; the
// survivor cannot write, `drover raft recover` rebuilds a one-master cluster
// from its data, and every write it had is there.
func TestRecoverFromQuorumLoss(t *testing.T) {
	ms, dirs := threeMasters(t, 18780)
	tc := adminTLS(t, dirs[0])
	cli := etcdClient(t, tc, ms[0].api, ms[1].api, ms[2].api)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 50; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("/rec/%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	// Two masters are gone for good; the survivor has no quorum.
	ms[1].kill()
	ms[2].kill()
	survivor := etcdClient(t, tc, ms[0].api)
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	if _, err := survivor.Put(wctx, "/rec/lost", "x"); err == nil {
		t.Fatal("a lone master of three accepted a write")
	}
	wcancel()

	ms[0].kill()
	out, err := exec.Command(droverBin, "raft", "recover", "--data-dir", dirs[0], "--id", "m1",
		"--members", "m1="+ms[0].member, "--yes").CombinedOutput()
	if err != nil {
		t.Fatalf("drover raft recover: %v\n%s", err, out)
	}
	ms[0].start()
	putUntil(t, survivor, "/rec/after", "x", 30*time.Second)
	// The write that timed out without quorum had an unknown outcome: the
	// survivor's log held it, so recovery may commit it. Everything else
	// must be exactly there.
	r, err := survivor.Get(ctx, "/rec/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, kv := range r.Kvs {
		if string(kv.Key) != "/rec/lost" {
			n++
		}
	}
	if n != 51 {
		t.Fatalf("after recovery: %d keys (want 50 old + 1 new)", n)
	}
	if got := voters(t, survivor); len(got) != 1 || got[0] != "m1" {
		t.Fatalf("voters after recovery: %v", got)
	}
}
