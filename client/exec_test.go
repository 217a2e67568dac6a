package client_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/client"
	"github.com/droverhq/drover/control/apiserver/apiservertest"
)

func execCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestExec(t *testing.T) {
	e := newPodEnv(t)
	ctx := execCtx(t)
	var stdout, stderr bytes.Buffer
	code, err := e.c.Exec(ctx, "default", "web", client.ExecOptions{Command: []string{"echo", "hello", "world"}, Stdout: &stdout, Stderr: &stderr})
	if err != nil || code != 0 || stdout.String() != "hello world\n" || stderr.Len() != 0 {
		t.Errorf("echo: code %d err %v stdout %q stderr %q", code, err, stdout.String(), stderr.String())
	}

	// Non-zero exits are exit codes, not errors.
	for _, tc := range []struct {
		cmd  []string
		code int
		out  string
	}{
		{[]string{"exit", "3"}, 3, ""},
		{[]string{"echo hi; exit 7"}, 7, "hi\n"},
		{[]string{"exit", "0"}, 0, ""},
		{[]string{"true"}, 0, ""},
	} {
		stdout.Reset()
		code, err := e.c.Exec(ctx, "default", "web", client.ExecOptions{Container: "main", Command: tc.cmd, Stdout: &stdout})
		if err != nil || code != tc.code || stdout.String() != tc.out {
			t.Errorf("%q: code %d err %v stdout %q; want %d %q", tc.cmd, code, err, stdout.String(), tc.code, tc.out)
		}
	}

	// stdin: the end of the input (v5's close of channel 0) ends cat.
	stdout.Reset()
	input := strings.Repeat("some input\n", 10000) // more than one message
	code, err = e.c.Exec(ctx, "default", "web", client.ExecOptions{Command: []string{"cat"}, Stdin: strings.NewReader(input), Stdout: &stdout})
	if err != nil || code != 0 || stdout.String() != input {
		t.Errorf("cat: code %d err %v, %d bytes out of %d", code, err, stdout.Len(), len(input))
	}
	// Empty input too.
	stdout.Reset()
	if code, err := e.c.Exec(ctx, "default", "web", client.ExecOptions{Command: []string{"cat"}, Stdin: strings.NewReader(""), Stdout: &stdout}); err != nil || code != 0 || stdout.Len() != 0 {
		t.Errorf("cat of nothing: code %d err %v stdout %q", code, err, stdout.String())
	}

	// A refused upgrade is the server's Status.
	for _, tc := range []struct {
		pod, container string
		reason         metav1.StatusReason
		msg            string
	}{
		{"web", "nope", metav1.StatusReasonBadRequest, "container nope is not valid for pod web"},
		{"nope", "", metav1.StatusReasonNotFound, `pods "nope" not found`},
	} {
		code, err := e.c.Exec(ctx, "default", tc.pod, client.ExecOptions{Container: tc.container, Command: []string{"echo"}, Stdout: &stdout})
		var se *client.StatusError
		if !errors.As(err, &se) || se.Status.Reason != tc.reason || se.Error() != tc.msg || code != -1 {
			t.Errorf("%s/%s: %d %v, want %s %q", tc.pod, tc.container, code, err, tc.reason, tc.msg)
		}
	}
	if _, err := e.c.Exec(ctx, "default", "web", client.ExecOptions{}); err == nil {
		t.Error("exec without a command")
	}

	// Without credentials the server answers 401.
	anon, err := client.New(&client.RESTConfig{Host: e.srv.URL, CAData: e.srv.CA.CertPEM})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Exec(ctx, "default", "web", client.ExecOptions{Command: []string{"echo"}, Stdout: &stdout}); !client.IsUnauthorized(err) {
		t.Errorf("anonymous exec: %v", err)
	}
	// A client certificate is a credential as for other requests.
	_, certPEM, keyPEM, err := e.srv.CA.Issue("alice", nil, "drover:admins")
	if err != nil {
		t.Fatal(err)
	}
	withCert, err := client.New(&client.RESTConfig{Host: e.srv.URL, CAData: e.srv.CA.CertPEM, CertData: certPEM, KeyData: keyPEM})
	if err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if code, err := withCert.Exec(ctx, "default", "web", client.ExecOptions{Command: []string{"echo", "cert"}, Stdout: &stdout}); err != nil || code != 0 || stdout.String() != "cert\n" {
		t.Errorf("exec with a client certificate: %d %v %q", code, err, stdout.String())
	}

	// ctx bounds a command: cat on a stdin that never ends.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	pr, pw := io.Pipe()
	defer pw.Close()
	if _, err := e.c.Exec(short, "default", "web", client.ExecOptions{Command: []string{"cat"}, Stdin: pr, Stdout: &stdout}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("exec past its deadline: %v", err)
	}
}

// recorder serves the API server's handler on its own HTTPS listener and
// records the pods/exec requests.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) last() *http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		return nil
	}
	return r.reqs[len(r.reqs)-1]
}

func startRecorder(t *testing.T, srv *apiservertest.Server) (*recorder, *client.RESTConfig) {
	t.Helper()
	rec := &recorder{}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/exec") {
			rec.mu.Lock()
			rec.reqs = append(rec.reqs, r.Clone(context.Background()))
			rec.mu.Unlock()
		}
		srv.API.ServeHTTP(w, r)
	}))
	cert, _, _, err := srv.CA.Issue("apiserver", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	rc := restConfig(srv)
	rc.Host = hs.URL
	return rec, rc
}

func TestExecRequest(t *testing.T) {
	e := newPodEnv(t)
	rec, rc := startRecorder(t, e.srv)
	c, err := client.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := execCtx(t)
	var stdout, stderr bytes.Buffer
	resize := make(chan client.TermSize, 1)
	resize <- client.TermSize{Width: 80, Height: 24}
	code, err := c.Exec(ctx, "default", "web", client.ExecOptions{Command: []string{"echo", "a b", "c"}, TTY: true, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Resize: resize})
	if err != nil || code != 0 || stdout.String() != "a b c\n" {
		t.Fatalf("exec with a TTY: %d %v %q", code, err, stdout.String())
	}
	r := rec.last()
	q := r.URL.Query()
	// With a TTY, stderr is merged into stdout by the terminal.
	want := url.Values{"command": {"echo", "a b", "c"}, "stdin": {"true"}, "stdout": {"true"}, "tty": {"true"}}
	if q.Encode() != want.Encode() {
		t.Errorf("query %s, want %s", q.Encode(), want.Encode())
	}
	if got := websocket.Subprotocols(r); strings.Join(got, ",") != "v5.channel.k8s.io,v4.channel.k8s.io" {
		t.Errorf("subprotocols offered: %v", got)
	}
	if r.Header.Get("Authorization") != "Bearer "+e.srv.Token || r.Header.Get("User-Agent") != "drover" {
		t.Errorf("headers %v", r.Header)
	}

	if _, err := c.Exec(ctx, "default", "web", client.ExecOptions{Container: "main", Command: []string{"true"}, Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	want = url.Values{"command": {"true"}, "container": {"main"}, "stderr": {"true"}}
	if q := rec.last().URL.Query(); q.Encode() != want.Encode() {
		t.Errorf("query %s, want %s", q.Encode(), want.Encode())
	}
}

// fakeExec is a pods/exec endpoint speaking only the given subprotocols;
// serve runs the stream.
func fakeExec(t *testing.T, protocols []string, serve func(conn *websocket.Conn)) *client.Client {
	t.Helper()
	up := websocket.Upgrader{Subprotocols: protocols}
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		serve(conn)
	}))
	t.Cleanup(hs.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
	c, err := client.New(&client.RESTConfig{Host: hs.URL, CAData: ca, BearerToken: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sendStatus(conn *websocket.Conn, st metav1.Status) {
	b, _ := json.Marshal(st)
	conn.WriteMessage(websocket.BinaryMessage, append([]byte{3}, b...))
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
}

func exitStatus(code string) metav1.Status {
	return metav1.Status{Status: metav1.StatusFailure, Reason: "NonZeroExitCode", Message: "command terminated with non-zero exit code",
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: code}}}}
}

// TestExecProtocols checks both channel protocol versions against servers
// that speak one: resizes, stdin, its close (v5 only), output channels and
// the error channel.
func TestExecProtocols(t *testing.T) {
	ctx := execCtx(t)
	for _, proto := range []string{"v5.channel.k8s.io", "v4.channel.k8s.io"} {
		var mu sync.Mutex
		var got [][]byte
		c := fakeExec(t, []string{proto}, func(conn *websocket.Conn) {
			// Read until the input and a resize arrived (and, in v5, the
			// close of stdin), then answer.
			var stdin []byte
			resized, closed := false, proto == "v4.channel.k8s.io"
			for string(stdin) != "input" || !resized || !closed {
				_, msg, err := conn.ReadMessage()
				if err != nil {
					return
				}
				mu.Lock()
				got = append(got, msg)
				mu.Unlock()
				switch msg[0] {
				case 0:
					stdin = append(stdin, msg[1:]...)
				case 4:
					resized = true
				case 255:
					closed = true
				}
			}
			conn.WriteMessage(websocket.BinaryMessage, append([]byte{1}, stdin...))
			conn.WriteMessage(websocket.BinaryMessage, []byte("\x02err"))
			sendStatus(conn, exitStatus("42"))
		})
		resize := make(chan client.TermSize, 1)
		resize <- client.TermSize{Width: 100, Height: 40}
		var stdout, stderr bytes.Buffer
		code, err := c.Exec(ctx, "ns", "p", client.ExecOptions{Command: []string{"x"}, Stdin: strings.NewReader("input"), Stdout: &stdout, Stderr: &stderr, Resize: resize})
		if err != nil || code != 42 || stdout.String() != "input" || stderr.String() != "err" {
			t.Errorf("%s: code %d err %v stdout %q stderr %q", proto, code, err, stdout.String(), stderr.String())
		}
		var resizeMsg, closeMsg string
		mu.Lock()
		defer mu.Unlock()
		for _, m := range got {
			switch m[0] {
			case 4:
				resizeMsg = string(m[1:])
			case 255:
				closeMsg = string(m)
			}
		}
		if resizeMsg != `{"Width":100,"Height":40}` {
			t.Errorf("%s: resize message %q", proto, resizeMsg)
		}
		if proto == "v5.channel.k8s.io" && closeMsg != "\xff\x00" {
			t.Errorf("v5: stdin close %q", closeMsg)
		}
		if proto == "v4.channel.k8s.io" && closeMsg != "" {
			t.Errorf("v4 has no close message, sent %q", closeMsg)
		}
	}
}

func TestExecFailures(t *testing.T) {
	ctx := execCtx(t)
	run := func(protocols []string, serve func(*websocket.Conn)) (int, error) {
		return fakeExec(t, protocols, serve).Exec(ctx, "ns", "p", client.ExecOptions{Command: []string{"x"}, Stdout: io.Discard})
	}
	v5 := []string{"v5.channel.k8s.io"}

	// A failure other than an exit code is an error with its Status.
	code, err := run(v5, func(conn *websocket.Conn) {
		sendStatus(conn, metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError, Message: "container main is not running"})
	})
	var se *client.StatusError
	if !errors.As(err, &se) || se.Error() != "container main is not running" || code != -1 {
		t.Errorf("failure status: %d %v", code, err)
	}
	// Success and a stream closed without a Status are exit code 0.
	if code, err := run(v5, func(conn *websocket.Conn) { sendStatus(conn, metav1.Status{Status: metav1.StatusSuccess}) }); code != 0 || err != nil {
		t.Errorf("success: %d %v", code, err)
	}
	if code, err := run(v5, func(conn *websocket.Conn) {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	}); code != 0 || err != nil {
		t.Errorf("closed without a status: %d %v", code, err)
	}
	// A connection dropped before the end is an error.
	if code, err := run(v5, func(conn *websocket.Conn) { conn.Close() }); err == nil || code != -1 {
		t.Errorf("dropped stream: %d %v", code, err)
	}
	// A server agreeing on no protocol is refused.
	if _, err := run(nil, func(conn *websocket.Conn) {}); err == nil || !strings.Contains(err.Error(), "none of the streaming protocols") {
		t.Errorf("no protocol: %v", err)
	}
	// A refused upgrade without a Status body still reads well.
	c := fakeExec(t, v5, nil)
	bad, err := client.New(&client.RESTConfig{Host: strings.TrimPrefix(c.Host(), "https://"), Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Exec(ctx, "ns", "p", client.ExecOptions{Command: []string{"x"}}); !client.IsUnauthorized(err) || err.Error() != "no" {
		t.Errorf("plain-text refusal: %v", err)
	}
}
