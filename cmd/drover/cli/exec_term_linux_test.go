package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"github.com/droverhq/drover/control/apiserver/apiservertest"
)

// openPty opens a pseudo-terminal pair; the test is skipped where there
// is none.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	var n int
	err = withFd(m, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return err
		}
		var err error
		n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		return err
	})
	if err != nil {
		m.Close()
		t.Skipf("no pseudo-terminals: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() {
		m.Close() // hangs up the slave: a reader still on it gets EIO
		s.Close()
	})
	return m, s
}

func termios(t *testing.T, f *os.File) unix.Termios {
	t.Helper()
	var tio unix.Termios
	if err := withFd(f, func(fd int) error {
		got, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err == nil {
			tio = *got
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return tio
}

func setSize(t *testing.T, f *os.File, cols, rows uint16) {
	t.Helper()
	if err := withFd(f, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows})
	}); err != nil {
		t.Fatal(err)
	}
}

// execRelay stands between the CLI and the API server: it passes every
// request on, and relays pods/exec WebSockets itself, recording the
// queries and the messages the CLI sends.
type execRelay struct {
	mu      sync.Mutex
	queries []url.Values
	sent    [][]byte
}

func (r *execRelay) messages(channel byte) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.sent {
		if len(m) > 0 && m[0] == channel {
			out = append(out, string(m[1:]))
		}
	}
	return out
}

func (r *execRelay) lastQuery() url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queries) == 0 {
		return nil
	}
	return r.queries[len(r.queries)-1]
}

// startExecRelay returns the relay and a kubeconfig that goes through it.
func startExecRelay(t *testing.T, srv *apiservertest.Server) (*execRelay, string) {
	t.Helper()
	rel := &execRelay{}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/exec") || !websocket.IsWebSocketUpgrade(r) {
			srv.API.ServeHTTP(w, r)
			return
		}
		rel.mu.Lock()
		rel.queries = append(rel.queries, r.URL.Query())
		rel.mu.Unlock()
		d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: srv.CA.Pool()}, Subprotocols: websocket.Subprotocols(r)}
		back, _, err := d.Dial("wss://"+strings.TrimPrefix(srv.URL, "https://")+r.URL.RequestURI(), http.Header{"Authorization": r.Header["Authorization"]})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer back.Close()
		up := websocket.Upgrader{Subprotocols: []string{back.Subprotocol()}}
		front, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer front.Close()
		done := make(chan struct{}, 2)
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				mt, msg, err := front.ReadMessage()
				if err != nil {
					return
				}
				rel.mu.Lock()
				rel.sent = append(rel.sent, msg)
				rel.mu.Unlock()
				if back.WriteMessage(mt, msg) != nil {
					return
				}
			}
		}()
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				mt, msg, err := back.ReadMessage()
				if err != nil {
					front.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
					return
				}
				if front.WriteMessage(mt, msg) != nil {
					return
				}
			}
		}()
		<-done
	}))
	cert, _, _, err := srv.CA.Issue("relay", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	kc, err := os.ReadFile(srv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "relay.kubeconfig")
	if err := os.WriteFile(path, bytes.ReplaceAll(kc, []byte(srv.URL), []byte(hs.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	return rel, path
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExecTTY runs exec -it on a pseudo-terminal: raw mode while the
// command runs and the old settings after (on success, on a non-zero
// exit, and when interrupted), tty=true in the request, the size at the
// start and after SIGWINCH.
func TestExecTTY(t *testing.T) {
	master, slave := openPty(t)
	e := newPodEnv(t)
	rel, kubeconfig := startExecRelay(t, e.srv)
	setSize(t, slave, 80, 24)
	before := termios(t, slave)
	if before.Lflag&unix.ICANON == 0 || before.Lflag&unix.ECHO == 0 {
		t.Fatalf("a new terminal is in cooked mode: lflag %#x", before.Lflag)
	}
	restored := func(what string) {
		t.Helper()
		after := termios(t, slave)
		if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag || after.Cflag != before.Cflag {
			t.Errorf("%s: terminal settings not restored: %+v, was %+v", what, after, before)
		}
	}

	// An interactive cat: raw input goes through as typed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := newLockedBuffer(), newLockedBuffer()
	done := make(chan error, 1)
	go func() { done <- execIn(ctx, kubeconfig, slave, out, errOut, "-it", "web", "--", "cat") }()
	waitUntil(t, "raw mode", func() bool { return termios(t, slave).Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == 0 })
	waitUntil(t, "the initial size", func() bool { return strings.Join(rel.messages(4), " ") == `{"Width":80,"Height":24}` })
	q := rel.lastQuery()
	if q.Get("tty") != "true" || q.Get("stdin") != "true" || q.Get("stdout") != "true" || q.Has("stderr") {
		t.Errorf("exec -it query: %v", q)
	}
	setSize(t, master, 120, 40)
	if err := unix.Kill(unix.Getpid(), unix.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new size", func() bool {
		return strings.Join(rel.messages(4), " ") == `{"Width":80,"Height":24} {"Width":120,"Height":40}`
	})
	// No line discipline: no need for a newline, and ^C is a byte.
	if _, err := master.WriteString("typed\x03"); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "typed\x03")
	cancel() // as main does on SIGINT or SIGTERM
	select {
	case err := <-done:
		if err == nil {
			t.Error("an interrupted exec succeeded")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("exec -it does not end with its context")
	}
	restored("after an interrupt")
	if errOut.String() != "" {
		t.Errorf("stderr %q", errOut.String())
	}

	// A command that ends on its own, with a non-zero code.
	err := execIn(context.Background(), kubeconfig, slave, out, errOut, "-it", "web", "--", "exit", "4")
	if ExitCode(err) != 4 || ErrorText(err) != "command terminated with exit code 4" {
		t.Errorf("exec -it exit 4: %v", err)
	}
	restored("after exit 4")
	if q := rel.lastQuery(); q.Get("tty") != "true" || q["command"][0] != "exit" {
		t.Errorf("exec -it query: %v", q)
	}
	if err := execIn(context.Background(), kubeconfig, slave, out, errOut, "-it", "web", "--", "echo", "ok"); err != nil {
		t.Errorf("exec -it echo: %v", err)
	}
	restored("after success")
	out.waitFor(t, "ok\n")
}
