package cli

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func nodeObj(name string, labels map[string]any) map[string]any {
	return obj("v1", "Node", "", name, labels, nil)
}

func TestCordon(t *testing.T) {
	e := newEnv(t)
	e.create(t, nodeObj("n1", map[string]any{"rack": "r7"}), nodeObj("n2", map[string]any{"rack": "r7"}), nodeObj("n3", nil))
	unschedulable := func(name string) bool {
		t.Helper()
		v, _, _ := unstructured.NestedBool(e.object(t, "v1", "Node", "", name), "spec", "unschedulable")
		return v
	}
	steps := []struct {
		args    []string
		out     string
		msg     string
		cordons map[string]bool
	}{
		{args: []string{"cordon", "n1"}, out: "node/n1 cordoned\n", cordons: map[string]bool{"n1": true}},
		{args: []string{"cordon", "n1"}, out: "node/n1 already cordoned\n", cordons: map[string]bool{"n1": true}},
		{args: []string{"cordon", "n1", "n9", "n3"}, out: "node/n1 already cordoned\nnode/n3 cordoned\n",
			msg: `Error from server (NotFound): nodes "n9" not found`, cordons: map[string]bool{"n1": true, "n3": true}},
		{args: []string{"uncordon", "n3"}, out: "node/n3 uncordoned\n", cordons: map[string]bool{"n1": true}},
		{args: []string{"uncordon", "n3"}, out: "node/n3 already uncordoned\n", cordons: map[string]bool{"n1": true}},
		{args: []string{"cordon", "-l", "rack=r7"}, out: "node/n1 already cordoned\nnode/n2 cordoned\n", cordons: map[string]bool{"n1": true, "n2": true}},
		{args: []string{"uncordon", "n2", "--dry-run=client"}, out: "node/n2 uncordoned (dry run)\n", cordons: map[string]bool{"n1": true, "n2": true}},
		{args: []string{"uncordon", "n2", "--dry-run=server"}, out: "node/n2 uncordoned (server dry run)\n", cordons: map[string]bool{"n1": true, "n2": true}},
		{args: []string{"uncordon", "-l", "rack=r7"}, out: "node/n1 uncordoned\nnode/n2 uncordoned\n", cordons: map[string]bool{}},
	}
	for _, s := range steps {
		out, _, msg := e.run(t, "", s.args...)
		if out != s.out || msg != s.msg {
			t.Errorf("%v: out %q msg %q; want %q %q", s.args, out, msg, s.out, s.msg)
		}
		for _, n := range []string{"n1", "n2", "n3"} {
			if got := unschedulable(n); got != s.cordons[n] {
				t.Errorf("after %v: %s unschedulable = %v", s.args, n, got)
			}
		}
	}
	if _, _, msg := e.run(t, "", "cordon"); !strings.HasPrefix(msg, "error: USAGE: cordon NODE [flags]") {
		t.Errorf("no node: %q", msg)
	}
	if _, _, msg := e.run(t, "", "cordon", "n1", "-l", "rack=r7"); msg != "error: name cannot be provided when a selector is specified" {
		t.Errorf("name and selector: %q", msg)
	}
	if _, _, msg := e.run(t, "", "cordon", "n1", "--dry-run=maybe"); !strings.Contains(msg, "Invalid dry-run value (maybe)") {
		t.Errorf("bad dry-run: %q", msg)
	}
}
