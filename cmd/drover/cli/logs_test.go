package cli

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/node/agent/agenttest"
)

// podEnv is env plus a hollow node running pod "web" (container "main",
// two log lines) and pod "duo" (containers "a" and "b").
type podEnv struct {
	*env
	node *agenttest.Node
	web  *corev1.Pod
	duo  *corev1.Pod
}

func sleeperPod(name string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "busybox", Command: []string{"sleep", "1d"}})
	}
	return p
}

func newPodEnv(t *testing.T) *podEnv {
	t.Helper()
	e := &podEnv{env: newEnv(t)}
	e.node = agenttest.Start(t, e.srv)
	e.web = e.node.RunPod(t, sleeperPod("web", "main"))
	e.duo = e.node.RunPod(t, sleeperPod("duo", "a", "b"))
	e.node.WriteLog(t, e.web, "main", 0,
		"2026-01-02T15:04:05.000000001Z stdout F first line",
		"2026-01-02T15:04:06.000000001Z stderr F second line")
	e.node.WriteLog(t, e.duo, "a", 0, "2026-01-02T15:04:05Z stdout F from a")
	e.node.WriteLog(t, e.duo, "b", 0, "2026-01-02T15:04:05Z stdout F from b")
	return e
}

func TestLogs(t *testing.T) {
	e := newPodEnv(t)
	for _, tc := range []struct {
		args             []string
		out, stderr, err string
	}{
		{args: []string{"web"}, out: "first line\nsecond line\n"},
		{args: []string{"pod/web", "--tail", "1", "--timestamps"}, out: "2026-01-02T15:04:06.000000001Z second line\n"},
		{args: []string{"po/web", "main"}, out: "first line\nsecond line\n"},
		{args: []string{"pods/web", "-c", "main", "--since-time", "2026-01-02T15:04:06Z"}, out: "second line\n"},
		{args: []string{"web", "--limit-bytes", "5"}, out: "first"},
		{args: []string{"web", "--tail=0"}, out: ""},
		{args: []string{"-n", "default", "web", "-c", "main", "--tail", "-1"}, out: "first line\nsecond line\n"},
		// Several containers: the first, said on stderr; or the one named.
		{args: []string{"duo"}, out: "from a\n", stderr: "Defaulted container \"a\" out of: a, b\n"},
		{args: []string{"duo", "-c", "b"}, out: "from b\n"},
		{args: []string{"duo", "b"}, out: "from b\n"},

		{args: []string{"web", "-p"}, err: `Error from server (BadRequest): previous terminated container "main" in pod "web" not found`},
		{args: []string{"web", "--previous", "-c", "main"}, err: `Error from server (BadRequest): previous terminated container "main" in pod "web" not found`},
		{args: []string{"web", "-c", "nope"}, err: "error: container nope is not valid for pod web"},
		{args: []string{"nope"}, err: `Error from server (NotFound): pods "nope" not found`},
		{args: []string{"-n", "elsewhere", "web"}, err: `Error from server (NotFound): pods "web" not found`},
		{args: []string{"svc/web"}, err: `error: only pods are supported, not service "web"`},
		{args: []string{"foo/web"}, err: `error: the server doesn't have a resource type "foo"`},
		{args: nil, err: "error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command\nSee 'drover logs -h' for help and examples"},
		{args: []string{"web", "main", "extra"}, err: "error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command\nSee 'drover logs -h' for help and examples"},
		{args: []string{"web", "main", "-c", "main"}, err: "error: only one of -c or an inline [CONTAINER] arg is allowed"},
		{args: []string{"web", "--since", "1h", "--since-time", "2026-01-02T15:04:06Z"}, err: "error: at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{args: []string{"web", "--since-time", "yesterday"}, err: `error: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`},
		{args: []string{"web", "--since", "-1s"}, err: "error: --since must be greater than 0"},
		{args: []string{"web", "--tail", "-2"}, err: "error: --tail must be greater than or equal to -1"},
		{args: []string{"web", "--limit-bytes", "-1"}, err: "error: --limit-bytes must be greater than 0"},
	} {
		out, stderr, err := e.run(t, "", append([]string{"logs"}, tc.args...)...)
		if out != tc.out || stderr != tc.stderr || err != tc.err {
			t.Errorf("logs %q:\n out %q\n stderr %q\n err %q\nwant\n out %q\n stderr %q\n err %q", tc.args, out, stderr, err, tc.out, tc.stderr, tc.err)
		}
	}

	// --since counts back from now.
	e.node.WriteLog(t, e.web, "main", 0, time.Now().UTC().Format(time.RFC3339Nano)+" stdout F just now")
	if out, _, err := e.run(t, "", "logs", "web", "--since", "1h"); out != "just now\n" || err != "" {
		t.Errorf("--since 1h: %q %s", out, err)
	}

	// -p reads the attempt before the current one.
	e.node.WriteLog(t, e.web, "main", 1, "2026-01-02T15:05:00Z stdout F restarted")
	if out, _, err := e.run(t, "", "logs", "web", "-p"); out != "first line\nsecond line\njust now\n" || err != "" {
		t.Errorf("-p: %q %s", out, err)
	}
	if out, _, err := e.run(t, "", "logs", "web"); out != "restarted\n" || err != "" {
		t.Errorf("after a restart: %q %s", out, err)
	}
}

func TestLogsDefaultContainerAnnotation(t *testing.T) {
	e := newPodEnv(t)
	p := sleeperPod("annotated", "a", "b")
	p.Annotations = map[string]string{"kubectl.kubernetes.io/default-container": "b"}
	p = e.node.RunPod(t, p)
	e.node.WriteLog(t, p, "b", 0, "2026-01-02T15:04:05Z stdout F from b")
	if out, stderr, err := e.run(t, "", "logs", "annotated"); out != "from b\n" || stderr != "" || err != "" {
		t.Errorf("annotated default: %q %q %s", out, stderr, err)
	}
}

func TestLogsFollow(t *testing.T) {
	e := newPodEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newLockedBuffer()
	done := e.start(ctx, out, "logs", "-f", "web")
	out.waitFor(t, "first line\nsecond line\n")
	e.node.WriteLog(t, e.web, "main", 0, "2026-01-02T15:04:07Z stdout F third line")
	out.waitFor(t, "second line\nthird line\n")
	// Interrupting a follow (Ctrl-C cancels the context) is no error.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("logs -f ended with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("logs -f does not end when its context does")
	}
	if got := out.String(); got != "first line\nsecond line\nthird line\n" {
		t.Errorf("logs -f wrote %q", got)
	}
}
