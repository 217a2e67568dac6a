package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/droverhq/drover/client"
)

type execOptions struct {
	kube      kubeOptions
	container string
	stdin     bool
	tty       bool
	quiet     bool
	args      []string
	dash      int // cobra's ArgsLenAtDash: where COMMAND starts, -1 without "--"
	cmdPath   string
	in        io.Reader
	streams   Streams
}

const execUsage = "expected 'exec (POD | TYPE/NAME) [-c CONTAINER] [flags] -- COMMAND [args...]'."

func newExecCmd(s Streams) *cobra.Command {
	o := &execOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "exec (POD | TYPE/NAME) [-c CONTAINER] [flags] -- COMMAND [args...]",
		Short: "Execute a command in a container",
		Long: `Run a command in a running container of a pod and exit with its exit code.
-i passes this terminal's input to it; -t with -i gives it a terminal
(this one, in raw mode, when stdin is a terminal).

Examples:
  drover exec web -- date
  drover exec web -c sidecar -- cat /etc/hosts
  drover exec -it pod/web -- sh
  echo hello | drover exec -i web -- cat`,
		RunE: runKube(func(cmd *cobra.Command, args []string) error {
			o.args, o.dash, o.cmdPath, o.in = args, cmd.ArgsLenAtDash(), cmd.CommandPath(), cmd.InOrStdin()
			return execRun(cmd.Context(), o)
		}),
	}
	o.kube.addFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.container, "container", "c", "", "the container to run in (default the kubectl.kubernetes.io/default-container annotation, else the first)")
	f.BoolVarP(&o.stdin, "stdin", "i", false, "pass stdin to the command")
	f.BoolVarP(&o.tty, "tty", "t", false, "stdin is a TTY: give the command a terminal")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only the command's output")
	return cmd
}

// ExitError ends drover with Code, the exit code of a remote command (see
// ExitCode).
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.Code)
}

// ExitCode is the status drover exits with after err: a remote command's
// exit code (ExitError), else 1.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}

// exitError is an ExitError as ErrorText prints it: kubectl prints
// "command terminated with exit code N" without "error: ", as it does
// connection failures.
func exitError(code int) error {
	ee := &ExitError{Code: code}
	return &connError{msg: ee.Error(), err: ee}
}

func execRun(ctx context.Context, o *execOptions) error {
	switch {
	case len(o.args) == 0 || o.dash == 0:
		return errors.New("pod or type/name must be specified")
	case o.dash < 0 && len(o.args) > 1:
		return usageError(o.cmdPath, "exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead")
	case o.dash > 1:
		return usageError(o.cmdPath, execUsage)
	case o.dash < 0 || len(o.args) == o.dash:
		return errors.New("you must specify at least one command for the container")
	}
	command := o.args[o.dash:]
	k, err := o.kube.connect(ctx)
	if err != nil {
		return err
	}
	pod, err := k.getPod(ctx, o.args[0])
	if err != nil {
		return err
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return fmt.Errorf("cannot exec into a container in a completed pod; current phase is %s", pod.Status.Phase)
	}
	container := o.container
	if container == "" {
		container = defaultContainer(pod, o.quiet, o.streams.Err)
	}

	opts := client.ExecOptions{Container: container, Command: command, Stdout: o.streams.Out, Stderr: o.streams.Err}
	if o.stdin {
		opts.Stdin = o.in
	}
	if o.stdin && o.tty {
		// A terminal only when stdin is one, as kubectl: it goes raw, and
		// its size follows the local one.
		in, ok := o.in.(*os.File)
		if !ok || !isTerminal(in) {
			if !o.quiet {
				fmt.Fprintln(o.streams.Err, "Unable to use a TTY - input is not a terminal or the right kind of file")
			}
		} else {
			restore, err := makeRaw(in)
			if err != nil {
				return fmt.Errorf("put the terminal in raw mode: %w", err)
			}
			defer restore()
			opts.TTY = true
			sizes, stop := watchSize(in, o.streams.Out)
			defer stop()
			opts.Resize = sizes
		}
	}
	code, err := k.c.Exec(ctx, pod.Namespace, pod.Name, opts)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError(code)
	}
	return nil
}

// watchSize reports the terminal's size now and after every change
// (SIGWINCH), read from out when it is a terminal (as kubectl), else from
// in. stop ends the watch.
func watchSize(in *os.File, out io.Writer) (<-chan client.TermSize, func()) {
	term := in
	if f, ok := out.(*os.File); ok && isTerminal(f) {
		term = f
	}
	sizes := make(chan client.TermSize, 1)
	winch := make(chan os.Signal, 1)
	done := make(chan struct{})
	finished := make(chan struct{})
	notifyResize(winch)
	if sz, ok := terminalSize(term); ok {
		sizes <- sz
	}
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-winch:
			}
			sz, ok := terminalSize(term)
			if !ok {
				continue
			}
			select {
			case sizes <- sz:
			case <-done:
				return
			}
		}
	}()
	return sizes, func() {
		signal.Stop(winch)
		close(done)
		<-finished
	}
}
