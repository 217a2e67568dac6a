package cli

// The kubectl-style verbs (get, describe, apply, create, delete, scale,
// config) share this file: kubeconfig flags, the connection, and how
// errors read.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
)

// devKubeconfig is where `drover server --dev` (default data dir) writes the
// admin kubeconfig; the verbs fall back to it when kubectl's own locations
// hold nothing, so a fresh checkout works without setup.
var devKubeconfig = filepath.Join("drover-data", "admin.kubeconfig")

// kubeOptions are kubectl's connection flags.
type kubeOptions struct {
	kubeconfig     string
	context        string
	namespace      string
	requestTimeout time.Duration
}

func (o *kubeOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default $KUBECONFIG, else ~/.kube/config, else "+devKubeconfig+")")
	f.StringVar(&o.context, "context", "", "the kubeconfig context to use (default its current-context)")
	f.StringVarP(&o.namespace, "namespace", "n", "", "the namespace (default the context's, else \"default\")")
	f.DurationVar(&o.requestTimeout, "request-timeout", 0, "how long to wait for each request (0: no limit)")
}

// loadKubeconfig finds the kubeconfig as kubectl does, then tries the dev
// server's.
func (o *kubeOptions) loadKubeconfig() (*client.LoadedKubeconfig, error) {
	kc, err := client.LoadKubeconfig(o.kubeconfig)
	if errors.Is(err, client.ErrNoKubeconfig) && o.kubeconfig == "" && os.Getenv("KUBECONFIG") == "" {
		if _, statErr := os.Stat(devKubeconfig); statErr == nil {
			return client.LoadKubeconfig(devKubeconfig)
		}
		return nil, fmt.Errorf("%w; pass --kubeconfig, set KUBECONFIG, or start a development server here with: drover server --dev", err)
	}
	return kc, err
}

// kube is a connected client with the namespace the verbs default to.
type kube struct {
	c         *client.Client
	mapper    *client.Mapper
	namespace string
	// explicitNS is true when -n was given: manifests naming another
	// namespace are then an error, as in kubectl.
	explicitNS bool
}

func (o *kubeOptions) connect(ctx context.Context) (*kube, error) {
	kc, err := o.loadKubeconfig()
	if err != nil {
		return nil, err
	}
	rc, ns, err := kc.RESTConfig(o.context)
	if err != nil {
		return nil, err
	}
	rc.Timeout = o.requestTimeout
	c, err := client.New(rc)
	if err != nil {
		return nil, err
	}
	k := &kube{c: c, namespace: ns}
	if o.namespace != "" {
		k.namespace, k.explicitNS = o.namespace, true
	}
	if k.namespace == "" {
		k.namespace = "default"
	}
	if k.mapper, err = c.Mapper(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// serverError is a StatusError worded as kubectl words it.
type serverError struct{ err *client.StatusError }

func (e *serverError) Error() string {
	st := e.err.Status
	if st.Reason == metav1.StatusReasonInvalid && st.Details != nil {
		// kubectl names the object and lists the failed fields.
		msg := "The request is invalid"
		if d := st.Details; d.Kind != "" || d.Name != "" {
			msg = fmt.Sprintf("The %s %q is invalid", d.Kind, d.Name)
		}
		var causes []string
		for _, c := range st.Details.Causes {
			if c.Field != "" {
				causes = append(causes, c.Field+": "+c.Message)
			} else {
				causes = append(causes, c.Message)
			}
		}
		switch len(causes) {
		case 0:
			return msg
		case 1:
			return msg + ": " + causes[0]
		}
		return msg + ": \n* " + strings.Join(causes, "\n* ")
	}
	if r := e.err.Status.Reason; r != "" {
		return fmt.Sprintf("Error from server (%s): %s", r, e.err.Status.Message)
	}
	return "Error from server: " + e.err.Status.Message
}

func (e *serverError) Unwrap() error { return e.err }

// kubeErr rewords errors the way kubectl prints them. Item context (e.g.
// `error when creating "f.yaml"`) is put inside the server's message.
func kubeErr(err error) error {
	if err == nil {
		return nil
	}
	var se *serverError
	if errors.As(err, &se) {
		return err
	}
	var st *client.StatusError
	if errors.As(err, &st) {
		if outer := strings.TrimSuffix(err.Error(), st.Error()); outer != "" && outer != err.Error() {
			cp := *st
			cp.Status.Message = outer + st.Status.Message
			st = &cp
		}
		return &serverError{err: st}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(err, syscall.ECONNREFUSED) {
			host := ue.URL
			if u, perr := url.Parse(ue.URL); perr == nil {
				host = u.Host
			}
			return &connError{fmt.Sprintf("The connection to the server %s was refused - did you specify the right host or port?", host), err}
		}
		return &connError{"Unable to connect to the server: " + ue.Err.Error(), err}
	}
	// Only network operations: a bare errno (a missing file, say) also
	// satisfies net.Error and must not read as a connection failure.
	var ne *net.OpError
	if errors.As(err, &ne) {
		return &connError{"Unable to connect to the server: " + ne.Error(), err}
	}
	return err
}

// connError is a failure to reach the server, worded as kubectl words it;
// kubectl prints it without the "error: " prefix.
type connError struct {
	msg string
	err error
}

func (e *connError) Error() string { return e.msg }
func (e *connError) Unwrap() error { return e.err }

// itemErrors are failures of some of the objects a verb worked on; the
// verb carries on with the rest and exits non-zero at the end.
type itemErrors []error

func (e itemErrors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

func (e itemErrors) orNil() error {
	switch len(e) {
	case 0:
		return nil
	case 1:
		return e[0]
	}
	return e
}

// ErrorText is how kubectl would print err: server errors as
// "Error from server (Reason): message", anything else as "error: message";
// one line per failed object. main should print this rather than its own
// "error: " prefix, so the output matches kubectl.
func ErrorText(err error) string {
	var items itemErrors
	if errors.As(err, &items) {
		lines := make([]string, len(items))
		for i, e := range items {
			lines[i] = ErrorText(e)
		}
		return strings.Join(lines, "\n")
	}
	err = kubeErr(err)
	var se *serverError
	var ce *connError
	if errors.As(err, &se) || errors.As(err, &ce) {
		return err.Error()
	}
	return "error: " + err.Error()
}

// runKube wraps a verb so its errors read as kubectl's do.
func runKube(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		var items itemErrors
		if errors.As(err, &items) {
			for i := range items {
				items[i] = kubeErr(items[i])
			}
			return items
		}
		return kubeErr(err)
	}
}
