package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func hostPortPod(name string, port int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %[1]s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: e2e.local/busybox:v1
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir -p /www; echo hello-from-%[1]s > /www/index.html; exec httpd -f -p 80 -h /www"]
    ports: [{containerPort: 80, hostPort: %[2]d}]
`, name, port)
}

// hostPort publishes a container port on the node: reachable from the host
// at the agent's --address and the hostPort, forwarded to the pod's port
// 80; deleting the pod removes the forward (nothing answers, no nat rule
// names the pod) and frees the port for the next pod.
func TestAgentHostPort(t *testing.T) {
	c := lifecycleCluster(t, slotHostPort)
	port := slotPort(slotHostPort, 0)
	addr := net.JoinHostPort(lcAgentIP, fmt.Sprint(port))

	c.apply(hostPortPod("hp", port))
	p := c.waitPod("hp", 30*time.Second, "running", running)
	if body := waitHTTP(t, "http://"+addr+"/"); body != "hello-from-hp\n" {
		t.Fatalf("GET %s: %q", addr, body)
	}
	if nat := natRules(t); !strings.Contains(nat, string(p.UID)) {
		t.Fatalf("no nat rule names the pod %s:\n%s", p.UID, nat)
	}

	c.must("delete", "pod", "hp")
	c.waitGone("hp", 30*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections after the pod was deleted", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if nat := natRules(t); strings.Contains(nat, string(p.UID)) || strings.Contains(nat, fmt.Sprintf("--dport %d", port)) {
		t.Fatalf("nat rules of the deleted pod are left:\n%s", nat)
	}

	// The port is free again for another pod.
	c.apply(hostPortPod("hp2", port))
	c.waitPod("hp2", 30*time.Second, "running", running)
	if body := waitHTTP(t, "http://"+addr+"/"); body != "hello-from-hp2\n" {
		t.Fatalf("GET %s after the first pod went: %q", addr, body)
	}
}

// natRules is iptables-save's nat table.
func natRules(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v\n%s", err, out)
	}
	return string(out)
}
