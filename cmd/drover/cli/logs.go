package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
)

type logsOptions struct {
	kube       kubeOptions
	container  string
	follow     bool
	previous   bool
	timestamps bool
	tail       int64
	since      time.Duration
	sinceTime  string
	limitBytes int64
	args       []string
	cmdPath    string
	streams    Streams
}

const logsUsage = "expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command"

func newLogsCmd(s Streams) *cobra.Command {
	o := &logsOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]",
		Short: "Print the logs for a container in a pod",
		Long: `Print the logs of a container in a pod; with a pod of several containers,
the one named by -c (default: the kubectl.kubernetes.io/default-container
annotation, else the first).

Examples:
  drover logs web
  drover logs pod/web -c sidecar --tail 20
  drover logs -f web --since 10m
  drover logs -p web --timestamps`,
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			o.args, o.cmdPath = args, cmd.CommandPath()
			return logsRun(cmd.Context(), o)
		}),
	}
	o.kube.addFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.container, "container", "c", "", "the container to print the logs of")
	f.BoolVarP(&o.follow, "follow", "f", false, "stream the logs as they are written")
	f.BoolVarP(&o.previous, "previous", "p", false, "print the logs of the previous instance of the container, if it restarted")
	f.Int64Var(&o.tail, "tail", -1, "lines of the end of the log to print (-1: all)")
	f.BoolVar(&o.timestamps, "timestamps", false, "start each line with its RFC3339 timestamp")
	f.DurationVar(&o.since, "since", 0, "only lines newer than this, e.g. 5s, 2m, 3h (0: all)")
	f.StringVar(&o.sinceTime, "since-time", "", "only lines after this RFC3339 time")
	f.Int64Var(&o.limitBytes, "limit-bytes", 0, "at most this many bytes of log (0: no limit)")
	return cmd
}

// usageError is kubectl's UsageErrorf.
func usageError(cmdPath, msg string) error {
	return fmt.Errorf("%s\nSee '%s -h' for help and examples", msg, cmdPath)
}

// podLogOptions checks the arguments and flags as kubectl does, before
// anything is sent.
func (o *logsOptions) podLogOptions() (*corev1.PodLogOptions, error) {
	switch len(o.args) {
	case 1:
	case 2:
		if o.container != "" {
			return nil, errors.New("only one of -c or an inline [CONTAINER] arg is allowed")
		}
		o.container = o.args[1]
	default:
		return nil, usageError(o.cmdPath, logsUsage)
	}
	opts := &corev1.PodLogOptions{Container: o.container, Follow: o.follow, Previous: o.previous, Timestamps: o.timestamps}
	if o.sinceTime != "" {
		if o.since != 0 {
			return nil, errors.New("at most one of `sinceTime` or `sinceSeconds` may be specified")
		}
		t, err := time.Parse(time.RFC3339Nano, o.sinceTime)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, o.sinceTime); err != nil {
				return nil, err
			}
		}
		mt := metav1.NewTime(t)
		opts.SinceTime = &mt
	}
	switch {
	case o.since < 0:
		return nil, errors.New("--since must be greater than 0")
	case o.since > 0:
		// Whole seconds, rounded up.
		sec := int64(math.Ceil(float64(o.since) / float64(time.Second)))
		opts.SinceSeconds = &sec
	}
	switch {
	case o.tail < -1:
		return nil, errors.New("--tail must be greater than or equal to -1")
	case o.tail >= 0:
		opts.TailLines = &o.tail
	}
	switch {
	case o.limitBytes < 0:
		return nil, errors.New("--limit-bytes must be greater than 0")
	case o.limitBytes > 0:
		opts.LimitBytes = &o.limitBytes
	}
	return opts, nil
}

func logsRun(ctx context.Context, o *logsOptions) error {
	opts, err := o.podLogOptions()
	if err != nil {
		return err
	}
	k, err := o.kube.connect(ctx)
	if err != nil {
		return err
	}
	pod, err := k.getPod(ctx, o.args[0])
	if err != nil {
		return err
	}
	if opts.Container == "" {
		opts.Container = defaultContainer(pod, false, o.streams.Err)
	} else if !hasContainer(pod, opts.Container) {
		return fmt.Errorf("container %s is not valid for pod %s", opts.Container, pod.Name)
	}
	body, err := k.c.PodLogs(ctx, pod.Namespace, pod.Name, opts)
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := io.Copy(o.streams.Out, body); err != nil && ctx.Err() == nil {
		return err
	}
	// Interrupted (a follow ends so): not an error.
	return nil
}

// getPod reads the pod that POD or TYPE/NAME names in k's namespace; the
// type must be pods.
func (k *kube) getPod(ctx context.Context, arg string) (*corev1.Pod, error) {
	name := arg
	if typ, n, ok := strings.Cut(arg, "/"); ok {
		if typ == "" || n == "" || strings.Contains(n, "/") {
			return nil, errors.New("arguments in resource/name form must have a single resource and name")
		}
		m, err := k.mapper.ResourceFor(typ)
		if err != nil {
			return nil, err
		}
		if m.GVR() != client.Pods.GVR() {
			return nil, fmt.Errorf("only pods are supported, not %s %q", m.KindName(), n)
		}
		name = n
	}
	return client.GetTyped[corev1.Pod](ctx, k.c.Resource(client.Pods).Namespace(k.namespace), name)
}

// defaultContainerAnnotation names the container kubectl logs and exec
// pick when none is given.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// defaultContainer picks the container as kubectl does: the annotated
// default, else the first, telling w (unless quiet) when it chose one out
// of several.
func defaultContainer(pod *corev1.Pod, quiet bool, w io.Writer) string {
	if name := pod.Annotations[defaultContainerAnnotation]; name != "" {
		if hasContainer(pod, name) {
			return name
		}
		if !quiet {
			fmt.Fprintf(w, "Default container name %q not found in pod %s\n", name, pod.Name)
		}
	}
	if len(pod.Spec.Containers) == 0 {
		return ""
	}
	name := pod.Spec.Containers[0].Name
	if !quiet && (len(pod.Spec.Containers) > 1 || len(pod.Spec.InitContainers) > 0 || len(pod.Spec.EphemeralContainers) > 0) {
		fmt.Fprintf(w, "Defaulted container %q out of: %s\n", name, allContainerNames(pod))
	}
	return name
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

func allContainerNames(pod *corev1.Pod) string {
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name+" (ephem)")
	}
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name+" (init)")
	}
	return strings.Join(names, ", ")
}
