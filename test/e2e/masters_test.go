package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func etcdClient(t *testing.T, tc *tls.Config, eps ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// leaderOf asks every listed master for its status and returns the index
// of the one that says it leads, waiting up to within.
func leaderOf(t *testing.T, tc *tls.Config, ms []*master, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for i, m := range ms {
			if m == nil || m.cmd == nil {
				continue
			}
			cli := etcdClient(t, tc, m.api)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, m.api)
			cancel()
			cli.Close()
			if err == nil && st.Leader == st.Header.MemberId {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no leader among the masters within %s", within)
	return -1
}

// putUntil retries a put until it succeeds (through any endpoint).
func putUntil(t *testing.T, cli *clientv3.Client, key, val string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Put(ctx, key, val)
		cancel()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("put %s: still failing after %s: %v", key, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// voters lists the voter names in the cluster's member list.
func voters(t *testing.T, cli *clientv3.Client) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ml, err := cli.MemberList(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range ml.Members {
		if !m.IsLearner {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out
}

func waitVoters(t *testing.T, cli *clientv3.Client, want ...string) {
	t.Helper()
	sort.Strings(want)
	deadline := time.Now().Add(60 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		if got = voters(t, cli); strings.Join(got, ",") == strings.Join(want, ",") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("voters %v, want %v", got, want)
}

// TestMastersFormClusterFailOverAndChange runs real `drover server`
// processes on 127.0.0.1-5: three bootstrap through --join and
// --bootstrap-expect 3 with gossip encryption and TLS; the leader is killed
// with SIGKILL, a new one takes over and writes go on; the old one restarts
// with its data and catches up; a 4th and 5th master join as voters; one
// leaves gracefully and is removed at once.
func TestMastersFormClusterFailOverAndChange(t *testing.T) {
	key := gossipKey(t)
	ms := make([]*master, 5)
	dirs := make([]string, 5)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	start := func(i int, extra ...string) {
		args := append([]string{"--bootstrap-expect", "3", "--encrypt", key}, extra...)
		if i > 0 {
			args = append(args, "--join", ms[0].gossip)
		}
		ms[i] = startMaster(t, fmt.Sprintf("m%d", i+1), i+1, 18380, dirs[i], args...)
	}
	for i := 0; i < 3; i++ {
		start(i)
	}
	tc := adminTLS(t, dirs[0])
	all := etcdClient(t, tc, ms[0].api, ms[1].api, ms[2].api)
	putUntil(t, all, "/e2e/first", "1", 60*time.Second)
	waitVoters(t, all, "m1", "m2", "m3")

	// kill -9 the leader: another is elected and writes succeed again.
	leader := leaderOf(t, tc, ms[:3], 10*time.Second)
	ms[leader].kill()
	var others []string
	for i := 0; i < 3; i++ {
		if i != leader {
			others = append(others, ms[i].api)
		}
	}
	rest := etcdClient(t, tc, others...)
	took := putUntil(t, rest, "/e2e/after-kill", "1", 30*time.Second)
	t.Logf("write succeeded %s after the leader was killed", took.Round(time.Millisecond))
	for i := 0; i < 20; i++ {
		putUntil(t, rest, fmt.Sprintf("/e2e/while-down/%d", i), "x", 10*time.Second)
	}

	// Restart it: it rejoins and catches up, and serves linearizable reads.
	ms[leader].start()
	back := etcdClient(t, tc, ms[leader].api)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := back.Get(ctx, "/e2e/while-down/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err == nil && r.Count == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted master did not catch up: %v %v", r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A 4th and 5th master join as voters.
	start(3)
	start(4, "--leave-on-terminate")
	waitVoters(t, all, "m1", "m2", "m3", "m4", "m5")
	putUntil(t, etcdClient(t, tc, ms[4].api), "/e2e/via-m5", "1", 30*time.Second)

	// m5 leaves gracefully (SIGTERM with --leave-on-terminate): removed at once.
	ms[4].cmd.Process.Signal(syscall.SIGTERM)
	ms[4].cmd.Wait()
	ms[4].cmd = nil
	waitVoters(t, all, "m1", "m2", "m3", "m4")
	putUntil(t, all, "/e2e/last", "1", 30*time.Second)

	// cluster members shows the gossip view with Raft roles.
	out, err := exec.Command(droverBin, "cluster", "members", "--endpoint", ms[0].member, "--data-dir", dirs[0]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "m4") || !strings.Contains(string(out), "left") {
		t.Fatalf("drover cluster members: %v\n%s", err, out)
	}
	out, err = exec.Command(droverBin, "raft", "status", "--endpoint", ms[1].member, "--data-dir", dirs[0]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Leader") {
		t.Fatalf("drover raft status: %v\n%s", err, out)
	}
}
