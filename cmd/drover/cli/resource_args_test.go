package cli

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
)

func describeReqs(reqs []resourceRequest) string {
	parts := make([]string, len(reqs))
	for i, r := range reqs {
		parts[i] = r.mapping.GroupResource()
		if len(r.names) > 0 {
			parts[i] += "=" + strings.Join(r.names, "+")
		}
	}
	return strings.Join(parts, " ")
}

func TestParseResourceArgs(t *testing.T) {
	mapper := servedMapper(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pods"}, "pods"},
		{[]string{"po,svc"}, "pods services"},
		{[]string{"po,svc,pods"}, "pods services"},
		{[]string{"deploy", "web", "api"}, "deployments.apps=web+api"},
		{[]string{"deploy/web"}, "deployments.apps=web"},
		{[]string{"deployments.apps/web"}, "deployments.apps=web"},
		{[]string{"pod/a", "pod/b", "svc/c", "pod/d"}, "pods=a+b services=c pods=d"},
		{[]string{"Deployment"}, "deployments.apps"},
		{[]string{"ns,no,rs,ds,cm,sa,ev"}, "namespaces nodes replicasets.apps daemonsets.apps configmaps serviceaccounts events"},
		{[]string{"all"}, "pods services deployments.apps replicasets.apps daemonsets.apps jobs.batch"},
		{[]string{"po,all"}, "pods services deployments.apps replicasets.apps daemonsets.apps jobs.batch"},
		{[]string{"all", "x"}, "pods=x services=x deployments.apps=x replicasets.apps=x daemonsets.apps=x jobs.batch=x"},
	} {
		reqs, err := parseResourceArgs(mapper, tc.args)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if got := describeReqs(reqs); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.args, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"foo"}, `the server doesn't have a resource type "foo"`},
		{[]string{"po,foo"}, `the server doesn't have a resource type "foo"`},
		{[]string{"pod/a", "b"}, "there is no need to specify a resource type"},
		{[]string{"pods", "pod/a"}, "there is no need to specify a resource type"},
		{[]string{"pod/"}, "must have a single resource and name"},
		{[]string{"/a"}, "must have a single resource and name"},
		{[]string{"pod/a/b"}, "must have a single resource and name"},
		{[]string{"po,svc/a"}, "must have a single resource and name"},
		{[]string{"foo/a"}, `the server doesn't have a resource type "foo"`},
		{nil, "you must specify the type of resource"},
	} {
		_, err := parseResourceArgs(mapper, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

func ExampleErrorText() {
	exists := &client.StatusError{Status: metav1.Status{Reason: metav1.StatusReasonAlreadyExists, Message: `pods "web" already exists`}}
	fmt.Println(ErrorText(fmt.Errorf("error when creating %q: %w", "web.yaml", exists)))
	fmt.Println(ErrorText(itemErrors{&client.StatusError{Status: metav1.Status{Reason: metav1.StatusReasonNotFound, Message: `pods "a" not found`}}, &client.NoResourceError{Name: "foo"}}))
	fmt.Println(ErrorText(&client.NoResourceError{Name: "foo"}))
	// Output:
	// Error from server (AlreadyExists): error when creating "web.yaml": pods "web" already exists
	// Error from server (NotFound): pods "a" not found
	// error: the server doesn't have a resource type "foo"
	// error: the server doesn't have a resource type "foo"
}

func TestErrorTextInvalid(t *testing.T) {
	st := metav1.Status{Reason: metav1.StatusReasonInvalid, Message: "ignored when there are details", Details: &metav1.StatusDetails{
		Kind: "Pod", Name: "bad",
		Causes: []metav1.StatusCause{{Field: "spec.containers[0].image", Message: "Required value"}, {Field: "spec.containers[1].name", Message: `Duplicate value: "c"`}},
	}}
	got := ErrorText(fmt.Errorf("error when creating %q: %w", "p.yaml", &client.StatusError{Status: st}))
	want := "The Pod \"bad\" is invalid: \n* spec.containers[0].image: Required value\n* spec.containers[1].name: Duplicate value: \"c\""
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	st.Details.Causes = st.Details.Causes[:1]
	if got := ErrorText(&client.StatusError{Status: st}); got != `The Pod "bad" is invalid: spec.containers[0].image: Required value` {
		t.Errorf("one cause: %q", got)
	}
}
