package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// kubectlBin finds stock kubectl 1.20 (Debian's kubernetes-client, which
// .ci/run unpacks into /opt/kubernetes-client so that it does not clash
// with another kubectl on the machine).
func kubectlBin(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("DROVER_KUBECTL"), "/opt/kubernetes-client/usr/bin/kubectl"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("kubectl 1.20 is missing: .ci/run installs it into /opt/kubernetes-client")
	}
	t.Skip("kubectl 1.20 not installed (apt-get download kubernetes-client && dpkg -x kubernetes-client_*.deb /opt/kubernetes-client)")
	return ""
}

// waitKubeconfig waits until a master has written its admin kubeconfig.
func waitKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "admin.kubeconfig")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return path
		}
		if time.Now().After(deadline) {
			t.Fatalf("no kubeconfig at %s", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        command: ["httpd", "-f", "-p", "8080"]
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
`

// Stock kubectl 1.20 against a three-master drover cluster: get, apply
// (create and update), scale, get -w (on another master), delete, with the
// output kubectl users expect.
func TestKubectlAgainstDrover(t *testing.T) {
	kubectl := kubectlBin(t)
	_, dirs := threeMasters(t, 18780)
	kc1 := waitKubeconfig(t, dirs[0])
	kc2 := waitKubeconfig(t, dirs[1])
	run := func(kc string, stdin string, args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kc}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(kc, stdin string, args ...string) string {
		t.Helper()
		out, err := run(kc, stdin, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	expect := func(out string, patterns ...string) {
		t.Helper()
		for _, p := range patterns {
			if !regexp.MustCompile(p).MatchString(out) {
				t.Fatalf("output lacks %q:\n%s", p, out)
			}
		}
	}

	expect(must(kc1, "", "version"), `Server Version: .*GitVersion:"v1\.\d+\.\d+\+drover`)
	expect(must(kc1, "", "get", "namespaces"), `(?m)^NAME\s+STATUS\s+AGE$`, `(?m)^default\s+Active\s+\d+s$`, `(?m)^kube-system\s+Active`)

	// apply: create, then update, then nothing to do.
	expect(must(kc1, webManifest, "apply", "-f", "-"),
		`(?m)^deployment.apps/web created$`, `(?m)^service/web created$`, `(?m)^configmap/web-config created$`)
	changed := strings.Replace(strings.Replace(webManifest, "replicas: 2", "replicas: 3", 1), "greeting: hello", "greeting: hi", 1)
	expect(must(kc1, changed, "apply", "-f", "-"),
		`(?m)^deployment.apps/web configured$`, `(?m)^service/web unchanged$`, `(?m)^configmap/web-config configured$`)
	expect(must(kc1, changed, "apply", "-f", "-"), `(?m)^deployment.apps/web unchanged$`)
	expect(must(kc1, "", "get", "deployments"), `(?m)^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE$`, `(?m)^web\s+0/3\s+0\s+0\s+\d+s$`)
	expect(must(kc1, "", "get", "service", "web", "-o", "wide"), `(?m)^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\s+SELECTOR$`,
		`(?m)^web\s+ClusterIP\s+10\.\d+\.\d+\.\d+\s+<none>\s+80/TCP\s+\d+s\s+app=web$`)
	expect(must(kc1, "", "get", "configmap", "web-config", "-o", "jsonpath={.data.greeting}"), `^hi$`)
	expect(must(kc1, "", "describe", "deployment", "web"), `(?m)^Name:\s+web$`, `Replicas:\s+3 desired`)

	// get -w through the second master sees a scale done through the first.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := exec.CommandContext(ctx, kubectl, "--kubeconfig", kc2, "get", "deployment", "web", "-w")
	stdout, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Stderr = w.Stdout
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	waitLine := func(re string) {
		t.Helper()
		rx := regexp.MustCompile(re)
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			for _, l := range lines {
				if rx.MatchString(l) {
					mu.Unlock()
					return
				}
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("kubectl get -w never printed %q:\n%s", re, strings.Join(lines, "\n"))
	}
	waitLine(`^web\s+0/3\s`)
	expect(must(kc1, "", "scale", "deployment", "web", "--replicas=5"), `(?m)^deployment.apps/web scaled$`)
	waitLine(`^web\s+0/5\s`)
	cancel()
	w.Wait()
	expect(must(kc1, "", "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"), `^5$`)

	// Errors read like Kubernetes'.
	out, err := run(kc1, "", "get", "pod", "nope")
	if err == nil {
		t.Fatal("get of a missing pod succeeded")
	}
	expect(out, `Error from server \(NotFound\): pods "nope" not found`)
	out, err = run(kc1, "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - name: c\n    image: i\n    lifecycle: {}\n", "apply", "-f", "-")
	if err == nil {
		t.Fatalf("an unsupported field was accepted:\n%s", out)
	}
	expect(out, `spec.containers\[0\].lifecycle`)

	// delete
	expect(must(kc1, webManifest, "delete", "-f", "-"),
		`(?m)^deployment.apps "web" deleted$`, `(?m)^service "web" deleted$`, `(?m)^configmap "web-config" deleted$`)
	expect(must(kc2, "", "get", "deployments"), `No resources found in default namespace`)
}
