package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// threeMasters starts a TLS cluster of three `drover server` processes on
// 127.0.0.11-13 and returns them with their data dirs.
func threeMasters(t *testing.T, base int) ([]*master, []string) {
	t.Helper()
	key := gossipKey(t)
	ms := make([]*master, 3)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	for i := range ms {
		args := []string{"--bootstrap-expect", "3", "--encrypt", key}
		if i > 0 {
			args = append(args, "--join", ms[0].gossip)
		}
		ms[i] = startMaster(t, fmt.Sprintf("m%d", i+1), 11+i, base, dirs[i], args...)
	}
	tc := adminTLS(t, dirs[0])
	putUntil(t, etcdClient(t, tc, ms[0].api, ms[1].api, ms[2].api), "/ready", "1", 60*time.Second)
	return ms, dirs
}

// TestEtcdctlAgainstDrover drives Debian's stock etcdctl 3.4 against a
// three-master drover cluster over TLS.
func TestEtcdctlAgainstDrover(t *testing.T) {
	etcdctl, err := exec.LookPath("etcdctl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("etcdctl is not installed (.ci/run installs etcd-client)")
		}
		t.Skip("etcdctl not installed (apt-get install etcd-client)")
	}
	ms, dirs := threeMasters(t, 18480)
	pki := filepath.Join(dirs[0], "pki")
	eps := ms[0].api + "," + ms[1].api + "," + ms[2].api
	runAt := func(endpoints, stdin string, args ...string) string {
		t.Helper()
		full := append([]string{"--endpoints", endpoints, "--cacert", filepath.Join(pki, "ca.crt"),
			"--cert", filepath.Join(pki, "admin.crt"), "--key", filepath.Join(pki, "admin.key"), "--command-timeout", "10s"}, args...)
		cmd := exec.Command(etcdctl, full...)
		cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run := func(stdin string, args ...string) string {
		t.Helper()
		return runAt(eps, stdin, args...)
	}
	expect := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Fatalf("etcdctl output lacks %q:\n%s", w, out)
			}
		}
	}

	expect(run("", "put", "/ctl/a", "1"), "OK")
	expect(run("", "put", "/ctl/b", "2"), "OK")
	expect(run("", "put", "/ctl/c", "3"), "OK")
	expect(run("", "get", "/ctl/", "--prefix"), "/ctl/a\n1\n/ctl/b\n2\n/ctl/c\n3")
	expect(run("", "get", "/ctl/a", "/ctl/c"), "/ctl/a\n1\n/ctl/b\n2")
	if out := run("", "get", "/ctl/", "--prefix", "--limit", "1"); strings.Contains(out, "/ctl/b") {
		t.Fatalf("limit 1 returned more:\n%s", out)
	}
	expect(run("", "get", "/ctl/", "--prefix", "--keys-only", "-w", "json"), `"count":3`)
	expect(run("", "del", "/ctl/c"), "1")
	expect(run("mod(\"/ctl/a\") > \"0\"\n\nput /ctl/a swapped\n\nput /ctl/a nope\n\n", "txn"), "SUCCESS")
	expect(run("", "get", "/ctl/a"), "swapped")
	expect(run("value(\"/ctl/a\") = \"other\"\n\nput /ctl/a wrong\n\nget /ctl/a\n\n", "txn"), "FAILURE", "swapped")

	// watch: resume from a revision replays what happened since.
	out := run("", "get", "/ctl/a", "-w", "json")
	var rev int64
	fmt.Sscanf(out[strings.Index(out, `"revision":`)+len(`"revision":`):], "%d", &rev)
	run("", "put", "/ctl/w", "x1")
	run("", "put", "/ctl/w", "x2")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	full := []string{"--endpoints", eps, "--cacert", filepath.Join(pki, "ca.crt"), "--cert", filepath.Join(pki, "admin.crt"),
		"--key", filepath.Join(pki, "admin.key"), "watch", "/ctl/w", "--rev", fmt.Sprint(rev)}
	w := exec.CommandContext(ctx, etcdctl, full...)
	w.Env = append(os.Environ(), "ETCDCTL_API=3")
	wout, _ := w.Output() // ends when the context does
	expect(string(wout), "PUT\n/ctl/w\nx1\nPUT\n/ctl/w\nx2")

	// leases
	out = run("", "lease", "grant", "60")
	var lease string
	fmt.Sscanf(out, "lease %s granted", &lease)
	expect(run("", "put", "/ctl/leased", "v", "--lease", lease), "OK")
	expect(run("", "lease", "keep-alive", "--once", lease), "keepalived with TTL(60)")
	expect(run("", "lease", "timetolive", lease, "--keys"), "/ctl/leased")
	expect(run("", "lease", "list"), lease)
	expect(run("", "lease", "revoke", lease), "revoked")
	if out := run("", "get", "/ctl/leased"); strings.Contains(out, "/ctl/leased") {
		t.Fatalf("revoked lease kept its key:\n%s", out)
	}

	// status, members, snapshot
	expect(run("", "endpoint", "status", "-w", "table"), ms[0].api, ms[1].api, ms[2].api, "true")
	expect(run("", "member", "list"), "m1", "m2", "m3", "started")
	snap := filepath.Join(t.TempDir(), "ctl.snap")
	expect(runAt(ms[1].api, "", "snapshot", "save", snap), "Snapshot saved")
}

// TestSnapshotSaveWipeRestore saves a snapshot of a live cluster, wipes
// every master, restores a new cluster from the file, and checks every key
// is back with its revisions.
func TestSnapshotSaveWipeRestore(t *testing.T) {
	ms, dirs := threeMasters(t, 18580)
	tc := adminTLS(t, dirs[0])
	cli := etcdClient(t, tc, ms[0].api, ms[1].api, ms[2].api)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 300; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("/snap/%03d", i%200), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx, "/snap/007"); err != nil {
		t.Fatal(err)
	}
	before, err := cli.Get(ctx, "/snap/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	out, err := exec.Command(droverBin, "store", "snapshot", "save", file, "--api", ms[1].api, "--data-dir", dirs[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("snapshot save: %v\n%s", err, out)
	}

	// Wipe: every master gone with its data.
	for i, m := range ms {
		m.kill()
		os.RemoveAll(dirs[i])
	}

	// Restore into a new first master, start it, and join two empty ones.
	newDir := t.TempDir()
	os.Remove(newDir)
	m1 := &master{ip: "127.0.0.11", member: "127.0.0.11:18680", api: "127.0.0.11:18681", gossip: "127.0.0.11:18682"}
	out, err = exec.Command(droverBin, "store", "snapshot", "restore", file, "--data-dir", newDir, "--id", "r1", "--listen", m1.member).CombinedOutput()
	if err != nil {
		t.Fatalf("snapshot restore: %v\n%s", err, out)
	}
	key := gossipKey(t)
	r1 := startMaster(t, "r1", 11, 18680, newDir, "--bootstrap-expect", "1", "--encrypt", key)
	r2 := startMaster(t, "r2", 12, 18680, t.TempDir(), "--join", r1.gossip, "--encrypt", key)
	r3 := startMaster(t, "r3", 13, 18680, t.TempDir(), "--join", r1.gossip, "--encrypt", key)
	tc2 := adminTLS(t, newDir)
	cli2 := etcdClient(t, tc2, r1.api, r2.api, r3.api)
	waitVoters(t, cli2, "r1", "r2", "r3")

	for _, ep := range []string{r1.api, r2.api, r3.api} {
		one := etcdClient(t, tc2, ep)
		after, err := one.Get(ctx, "/snap/", clientv3.WithPrefix())
		if err != nil {
			t.Fatalf("read from %s: %v", ep, err)
		}
		if len(after.Kvs) != len(before.Kvs) {
			t.Fatalf("%s: %d keys after restore, %d before", ep, len(after.Kvs), len(before.Kvs))
		}
		for i, kv := range after.Kvs {
			b := before.Kvs[i]
			if string(kv.Key) != string(b.Key) || string(kv.Value) != string(b.Value) || kv.ModRevision != b.ModRevision ||
				kv.CreateRevision != b.CreateRevision || kv.Version != b.Version {
				t.Fatalf("%s: key %s restored as %+v, was %+v", ep, kv.Key, kv, b)
			}
		}
	}
	// The revision counter continues from the snapshot's.
	pr, err := cli2.Put(ctx, "/snap/new", "x")
	if err != nil || pr.Header.Revision <= before.Header.Revision {
		t.Fatalf("put after restore: %+v %v (revision before: %d)", pr, err, before.Header.Revision)
	}
}
