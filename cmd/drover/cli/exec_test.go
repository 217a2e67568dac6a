package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
)

// execIn runs `drover exec ARGS` with stdin in and the kubeconfig flag
// first (flags after "--" belong to the command), and returns stdout,
// stderr and the error.
func execIn(ctx context.Context, kubeconfig string, in io.Reader, out, errOut io.Writer, args ...string) error {
	root := NewRoot(Streams{Out: out, Err: errOut})
	root.SetIn(in)
	root.SetArgs(append([]string{"exec", "--kubeconfig", kubeconfig}, args...))
	return root.ExecuteContext(ctx)
}

func (e *env) exec(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := execIn(ctx, e.kubeconfig, strings.NewReader(stdin), &out, &errOut, args...)
	return out.String(), errOut.String(), err
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return ErrorText(err)
}

func TestExec(t *testing.T) {
	e := newPodEnv(t)
	for _, tc := range []struct {
		stdin            string
		args             []string
		out, stderr, err string
		code             int
	}{
		{args: []string{"web", "--", "echo", "hello", "world"}, out: "hello world\n"},
		{args: []string{"pod/web", "-c", "main", "--", "echo", "hi"}, out: "hi\n"},
		{args: []string{"-n", "default", "po/web", "--", "exit", "0"}},
		// The remote exit code is drover's, with kubectl's words.
		{args: []string{"web", "--", "exit", "3"}, err: "command terminated with exit code 3", code: 3},
		{args: []string{"web", "--", "echo out; exit 42"}, out: "out\n", err: "command terminated with exit code 42", code: 42},
		// -i passes stdin; its end ends cat. Without -i, cat reads nothing.
		{stdin: "line one\nline two\n", args: []string{"-i", "web", "--", "cat"}, out: "line one\nline two\n"},
		{stdin: "ignored\n", args: []string{"web", "--", "cat"}},
		// -t without -i is no TTY (as kubectl); with -i it needs a terminal.
		{args: []string{"-t", "web", "--", "echo", "x"}, out: "x\n"},
		{stdin: "in\n", args: []string{"-it", "web", "--", "cat"}, out: "in\n", stderr: "Unable to use a TTY - input is not a terminal or the right kind of file\n"},
		{stdin: "in\n", args: []string{"-i", "-t", "-q", "web", "--", "cat"}, out: "in\n"},
		// Several containers: the first, said on stderr unless -q.
		{args: []string{"duo", "--", "echo", "x"}, out: "x\n", stderr: "Defaulted container \"a\" out of: a, b\n"},
		{args: []string{"duo", "-q", "--", "echo", "x"}, out: "x\n"},
		{args: []string{"duo", "-c", "b", "--", "echo", "x"}, out: "x\n"},

		// The server refuses the upgrade: its Status, worded as kubectl.
		{args: []string{"web", "-c", "nope", "--", "echo"}, err: "Error from server (BadRequest): container nope is not valid for pod web", code: 1},
		{args: []string{"nope", "--", "echo"}, err: `Error from server (NotFound): pods "nope" not found`, code: 1},
		{args: []string{"svc/web", "--", "echo"}, err: `error: only pods are supported, not service "web"`, code: 1},
		{args: []string{"web", "echo"}, err: "error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead\nSee 'drover exec -h' for help and examples", code: 1},
		{args: []string{"web", "extra", "--", "echo"}, err: "error: expected 'exec (POD | TYPE/NAME) [-c CONTAINER] [flags] -- COMMAND [args...]'.\nSee 'drover exec -h' for help and examples", code: 1},
		{args: []string{"web"}, err: "error: you must specify at least one command for the container", code: 1},
		{args: []string{"web", "--"}, err: "error: you must specify at least one command for the container", code: 1},
		{args: nil, err: "error: pod or type/name must be specified", code: 1},
		{args: []string{"--", "echo"}, err: "error: pod or type/name must be specified", code: 1},
	} {
		out, stderr, err := e.exec(t, tc.stdin, tc.args...)
		if out != tc.out || stderr != tc.stderr || errText(err) != tc.err {
			t.Errorf("exec %q:\n out %q\n stderr %q\n err %q\nwant\n out %q\n stderr %q\n err %q", tc.args, out, stderr, errText(err), tc.out, tc.stderr, tc.err)
		}
		if err != nil && ExitCode(err) != tc.code {
			t.Errorf("exec %q: exit code %d, want %d", tc.args, ExitCode(err), tc.code)
		}
	}
	_, _, err := e.exec(t, "", "web", "--", "exit", "7")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Errorf("a remote exit code is an ExitError: %#v", err)
	}
}

func TestExecCompletedPod(t *testing.T) {
	e := newPodEnv(t)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "done", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: e.node.Name, RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"exit", "0"}}}}}
	pods := e.c.Resource(client.Pods).Namespace("default")
	if _, err := client.CreateTyped(context.Background(), pods, p); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := client.GetTyped[corev1.Pod](context.Background(), pods, "done")
		if err == nil && got.Status.Phase == corev1.PodSucceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod not Succeeded: %v %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, _, err := e.exec(t, "", "done", "--", "echo"); errText(err) != "error: cannot exec into a container in a completed pod; current phase is Succeeded" {
		t.Errorf("exec in a completed pod: %v", errText(err))
	}
}
