package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TermSize is a terminal's size in character cells.
type TermSize struct{ Width, Height uint16 }

// ExecOptions describe a command run in a pod's container (pods/exec).
type ExecOptions struct {
	// Container is the container to run in; "" means the pod's only one.
	Container string
	// Command is the program and its arguments; it is not run by a shell.
	Command []string
	// Stdin, when set, is copied to the command until it returns EOF (or
	// an error), which then closes the command's input. Exec does not wait
	// for a blocked Read to return: a reader that never ends (a terminal)
	// is left to the process's exit.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output; nil ones are not
	// requested. With TTY, the command's stderr comes on Stdout (Stderr is
	// not requested).
	Stdout, Stderr io.Writer
	// TTY asks for a terminal for the command.
	TTY bool
	// Resize carries the terminal's size: send the initial size and every
	// change. Exec stops reading it when the command ends.
	Resize <-chan TermSize
}

// The channels of Kubernetes' exec protocol over WebSocket: every
// binary message starts with a channel byte.
const (
	execStdin  = 0
	execStdout = 1
	execStderr = 2
	execError  = 3 // a metav1.Status when the command ends
	execResize = 4 // {"Width":w,"Height":h}
	execClose  = 255

	execProtocolV5 = "v5.channel.k8s.io" // adds execClose: stdin EOF
	execProtocolV4 = "v4.channel.k8s.io"
)

// Exec runs a command in a pod's container over a WebSocket (v5 channel
// protocol, else v4) and returns its exit code once it has ended and its
// output is written: 0 for success, the code of a non-zero exit (err nil).
// Other failures return -1 and an error: a *StatusError for a refused
// upgrade (e.g. a missing pod, an unknown container) or a failure the
// server reported on the error channel, ctx.Err() if ctx ended first.
// The credentials and TLS settings are the client's; RESTConfig.Timeout
// bounds only the WebSocket handshake.
func (c *Client) Exec(ctx context.Context, namespace, pod string, opts ExecOptions) (int, error) {
	if namespace == "" || pod == "" {
		return -1, errors.New("exec: a namespace and a pod name are required")
	}
	if len(opts.Command) == 0 {
		return -1, errors.New("exec: a command is required")
	}
	conn, err := c.dialExec(ctx, namespace, pod, opts)
	if err != nil {
		return -1, err
	}
	return runExec(ctx, conn, opts)
}

func (c *Client) dialExec(ctx context.Context, namespace, pod string, opts ExecOptions) (*websocket.Conn, error) {
	q := url.Values{"command": opts.Command}
	if opts.Container != "" {
		q.Set("container", opts.Container)
	}
	if opts.Stdin != nil {
		q.Set("stdin", "true")
	}
	if opts.Stdout != nil {
		q.Set("stdout", "true")
	}
	if opts.Stderr != nil && !opts.TTY {
		q.Set("stderr", "true")
	}
	if opts.TTY {
		q.Set("tty", "true")
	}
	// The HTTP request carries the URL and the credential headers.
	req, err := c.newHTTPRequest(ctx, request{method: http.MethodGet, path: "/api/v1/namespaces/" + namespace + "/pods/" + pod + "/exec", query: q})
	if err != nil {
		return nil, err
	}
	u := *req.URL
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	}
	tc, err := c.cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	timeout := c.cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		NetDialContext:   (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:  tc,
		HandshakeTimeout: timeout,
		Subprotocols:     []string{execProtocolV5, execProtocolV4},
		ReadBufferSize:   32 << 10,
		WriteBufferSize:  32 << 10,
	}
	conn, resp, err := d.DialContext(ctx, u.String(), req.Header)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			// The server refused the upgrade and said why, as a Status.
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			return nil, errorFromResponse(resp.StatusCode, body)
		}
		return nil, fmt.Errorf("exec: %w", err)
	}
	if p := conn.Subprotocol(); p != execProtocolV5 && p != execProtocolV4 {
		conn.Close()
		return nil, fmt.Errorf("exec: the server speaks none of the streaming protocols %s, %s (it chose %q)", execProtocolV5, execProtocolV4, p)
	}
	return conn, nil
}

// runExec pumps stdin and resizes to the connection and its output to the
// writers until the error channel's Status arrives or the stream ends.
func runExec(ctx context.Context, conn *websocket.Conn, opts ExecOptions) (int, error) {
	v5 := conn.Subprotocol() == execProtocolV5
	done := make(chan struct{})
	var wmu sync.Mutex // one writer at a time
	send := func(msg []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		select {
		case <-done:
			return net.ErrClosed
		default:
		}
		return conn.WriteMessage(websocket.BinaryMessage, msg)
	}
	stopWatch := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stopWatch()
		wmu.Lock()
		close(done)
		wmu.Unlock()
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		conn.Close()
	}()

	if opts.Stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := opts.Stdin.Read(buf)
				if n > 0 {
					if send(append([]byte{execStdin}, buf[:n]...)) != nil {
						return
					}
				}
				if err != nil {
					// EOF (or input that cannot be read): v5 tells the
					// server; v4 has no way to.
					if v5 {
						send([]byte{execClose, execStdin})
					}
					return
				}
			}
		}()
	}
	if opts.Resize != nil {
		go func() {
			for {
				select {
				case <-done:
					return
				case sz, ok := <-opts.Resize:
					if !ok {
						return
					}
					b, _ := json.Marshal(sz)
					if send(append([]byte{execResize}, b...)) != nil {
						return
					}
				}
			}
		}()
	}

	var status []byte
	for {
		mt, msg, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			if status != nil || websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				// A stream closed without a Status is a success, as in
				// kubectl.
				return exitCode(status)
			}
			return -1, fmt.Errorf("exec: the stream broke before the command ended: %w", err)
		}
		if mt != websocket.BinaryMessage || len(msg) == 0 {
			continue
		}
		var w io.Writer
		switch msg[0] {
		case execStdout:
			w = opts.Stdout
		case execStderr:
			w = opts.Stderr
		case execError:
			status = append(status, msg[1:]...)
			if json.Valid(status) {
				return exitCode(status)
			}
		}
		if w != nil && len(msg) > 1 {
			if _, err := w.Write(msg[1:]); err != nil {
				return -1, fmt.Errorf("exec: write output: %w", err)
			}
		}
	}
}

// exitCode reads the error channel's Status.
func exitCode(raw []byte) (int, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return 0, nil
	}
	var st metav1.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return -1, fmt.Errorf("exec: error channel: %v in %q", err, raw)
	}
	switch st.Status {
	case metav1.StatusSuccess:
		return 0, nil
	case metav1.StatusFailure:
		if st.Reason == "NonZeroExitCode" && st.Details != nil {
			for _, c := range st.Details.Causes {
				if c.Type == "ExitCode" {
					n, err := strconv.Atoi(c.Message)
					if err != nil {
						return -1, fmt.Errorf("exec: exit code %q: %w", c.Message, err)
					}
					return n, nil
				}
			}
		}
		if st.Message == "" {
			st.Message = "the command failed (" + string(st.Reason) + ")"
		}
		return -1, &StatusError{Status: st}
	}
	return -1, fmt.Errorf("exec: error channel: unknown status %q", st.Status)
}
