package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/droverhq/drover/node/runtime"
	"github.com/droverhq/drover/node/runtime/crilog"
)

// The agent's daemon endpoint serves what the API server proxies to nodes:
// container logs (pods/log) and exec (pods/exec). Only clients with a
// certificate from the cluster CA in group drover:masters (the masters)
// may call it.

// MastersGroup is the certificate organization of masters.
const MastersGroup = "drover:masters"

// Serve serves the daemon endpoint on ln until ctx ends. clientCA is the
// PEM of the CA that signs masters' certificates.
func (a *Agent) Serve(ctx context.Context, ln net.Listener, clientCA []byte) error {
	cert, err := selfSignedCert(a.cfg.NodeName, a.cfg.Address)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(clientCA) {
		return errors.New("agent: no CA certificate to check the masters' certificates against")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", a.serveLogs)
	mux.HandleFunc("GET /exec/{ns}/{pod}/{container}", a.serveExec)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	srv := &http.Server{Handler: a.onlyMasters(mux), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err = srv.Serve(tls.NewListener(ln, tlsConf))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (a *Agent) onlyMasters(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || !slices.Contains(r.TLS.VerifiedChains[0][0].Subject.Organization, MastersGroup) {
			http.Error(w, "only masters may call the node agent", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// selfSignedCert is the daemon endpoint's serving certificate. The API
// server authenticates the node by its address, as kube-apiserver does
// with kubelets unless given a kubelet CA.
func selfSignedCert(node, addr string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "system:node:" + node},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{node, "localhost"}}
	if ip := net.ParseIP(addr); ip != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// findPod locates a pod on this node: its UID and the log directory of
// one of its containers. It reads no worker state (the workers own it).
func (a *Agent) findPod(ns, podName, container string) (string, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		p := w.current()
		if p == nil || p.Namespace != ns || p.Name != podName {
			continue
		}
		return string(p.UID), filepath.Join(a.logDir(string(p.UID)), container), nil
	}
	return "", "", fmt.Errorf("pod %s/%s is not on node %s", ns, podName, a.cfg.NodeName)
}

// runningContainer finds the running attempt of a pod's container.
func (a *Agent) runningContainer(ctx context.Context, uid, container string) (string, error) {
	cs, err := a.cfg.Runtime.List(ctx)
	if err != nil {
		return "", err
	}
	best, bestAttempt := "", -1
	for _, c := range cs {
		if c.Labels[labelPodUID] != uid || c.Labels[labelContainer] != container || c.State != runtime.StateRunning {
			continue
		}
		if n, _ := strconv.Atoi(c.Labels[labelAttempt]); n > bestAttempt {
			best, bestAttempt = c.ID, n
		}
	}
	if best == "" {
		return "", fmt.Errorf("container %s is not running", container)
	}
	return best, nil
}

// logAttempts lists the attempts with a log file, oldest first.
func logAttempts(dir string) []int {
	entries, _ := os.ReadDir(dir)
	var out []int
	for _, e := range entries {
		if n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".log")); err == nil && strings.HasSuffix(e.Name(), ".log") {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// serveLogs answers pods/log: follow, previous, tailLines, timestamps,
// sinceSeconds, sinceTime, limitBytes.
func (a *Agent) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, podName, container := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	uid, dir, err := a.findPod(ns, podName, container)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	attempts := logAttempts(dir)
	if len(attempts) == 0 {
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start", container, podName), http.StatusBadRequest)
		return
	}
	attempt := attempts[len(attempts)-1]
	if q.Get("previous") == "true" {
		if len(attempts) < 2 {
			http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", container, podName), http.StatusBadRequest)
			return
		}
		attempt = attempts[len(attempts)-2]
	}
	path := filepath.Join(dir, strconv.Itoa(attempt)+".log")
	opts := logOptions{timestamps: q.Get("timestamps") == "true", tail: -1, limit: -1}
	if v := q.Get("tailLines"); v != "" {
		opts.tail, _ = strconv.Atoi(v)
	}
	if v := q.Get("limitBytes"); v != "" {
		opts.limit, _ = strconv.ParseInt(v, 10, 64)
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, _ := strconv.Atoi(v)
		opts.since = a.cfg.Now().Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			opts.since = t
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	out := &limitWriter{w: w, left: opts.limit}
	offset, err := writeLog(out, path, opts)
	if err != nil || q.Get("follow") != "true" || q.Get("previous") == "true" {
		return
	}
	// Follow: keep reading while this attempt runs.
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	id := containerID(types.UID(uid), container, attempt)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		st, serr := a.cfg.Runtime.Status(r.Context(), id)
		n, err := followLog(out, path, &offset, opts)
		if err != nil || out.done() {
			return
		}
		if n > 0 && flusher != nil {
			flusher.Flush()
		}
		if serr != nil || st.State == runtime.StateExited {
			followLog(out, path, &offset, opts)
			return
		}
	}
}

type logOptions struct {
	timestamps bool
	tail       int
	limit      int64
	since      time.Time
}

type limitWriter struct {
	w    io.Writer
	left int64 // < 0: no limit
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left == 0 {
		return 0, io.EOF
	}
	if l.left > 0 && int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.w.Write(p)
	if l.left > 0 {
		l.left -= int64(n)
	}
	return n, err
}

func (l *limitWriter) done() bool { return l.left == 0 }

// writeLog writes a log file (after its rotated predecessor), honouring
// tail and since, and returns the offset reached in the current file.
func writeLog(w io.Writer, path string, opts logOptions) (int64, error) {
	var lines [][]byte
	for _, p := range []string{path + crilog.RotatedSuffix, path} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		lines = append(lines, bytes.SplitAfter(b, []byte{'\n'})...)
	}
	var keep [][]byte
	for _, l := range lines {
		if len(l) == 0 || l[len(l)-1] != '\n' {
			continue // a line still being written
		}
		e, err := crilog.ParseEntry(l)
		if err != nil || (!opts.since.IsZero() && e.Time.Before(opts.since)) {
			continue
		}
		keep = append(keep, render(e, opts.timestamps))
	}
	if opts.tail >= 0 && len(keep) > opts.tail {
		keep = keep[len(keep)-opts.tail:]
	}
	for _, l := range keep {
		if _, err := w.Write(l); err != nil {
			return 0, err
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, nil
	}
	// Only complete lines were written: resume at the last newline.
	b, _ := os.ReadFile(path)
	off := int64(bytes.LastIndexByte(b, '\n') + 1)
	if off > fi.Size() {
		off = fi.Size()
	}
	return off, nil
}

// followLog writes complete lines appended since *offset.
func followLog(w io.Writer, path string, offset *int64, opts logOptions) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() < *offset {
		*offset = 0 // rotated
	}
	if _, err := f.Seek(*offset, io.SeekStart); err != nil {
		return 0, err
	}
	br := bufio.NewReader(f)
	n := 0
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return n, nil // partial line: later
		}
		*offset += int64(len(line))
		e, perr := crilog.ParseEntry(line)
		if perr != nil {
			continue
		}
		if _, err := w.Write(render(e, opts.timestamps)); err != nil {
			return n, err
		}
		n++
	}
}

func render(e crilog.Entry, timestamps bool) []byte {
	var b []byte
	if timestamps {
		b = append(b, e.Time.UTC().Format(time.RFC3339Nano)...)
		b = append(b, ' ')
	}
	b = append(b, e.Content...)
	if !e.Partial {
		b = append(b, '\n')
	}
	return b
}

// Exec over WebSocket speaks Kubernetes' channel protocol: every binary
// message starts with a channel byte (0 stdin, 1 stdout, 2 stderr, 3 error
// — a Status when the process ends —, 4 resize as {"Width":..,"Height":..};
// v5 adds 255 to close a channel, used for stdin EOF).
const (
	chanStdin  = 0
	chanStdout = 1
	chanStderr = 2
	chanError  = 3
	chanResize = 4
	chanClose  = 255
)

// ExecProtocols are the WebSocket subprotocols served, newest first.
var ExecProtocols = []string{"v5.channel.k8s.io", "v4.channel.k8s.io"}

var upgrader = websocket.Upgrader{Subprotocols: ExecProtocols, CheckOrigin: func(*http.Request) bool { return true }}

// serveExec runs a command in a container for pods/exec.
func (a *Agent) serveExec(w http.ResponseWriter, r *http.Request) {
	ns, podName, container := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	uid, _, err := a.findPod(ns, podName, container)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	id, err := a.runningContainer(r.Context(), uid, container)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ex, ok := a.cfg.Runtime.(runtime.Execer)
	if !ok {
		http.Error(w, "this node's runtime cannot exec", http.StatusNotImplemented)
		return
	}
	q := r.URL.Query()
	cmd := q["command"]
	if len(cmd) == 0 {
		http.Error(w, "no command given", http.StatusBadRequest)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	v5 := conn.Subprotocol() == "v5.channel.k8s.io"
	tty := q.Get("tty") == "true" || q.Get("tty") == "1"
	useStdin := q.Get("stdin") == "true" || q.Get("stdin") == "1"

	var wmu sync.Mutex // one writer at a time on the WebSocket
	send := func(ch byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return conn.WriteMessage(websocket.BinaryMessage, append([]byte{ch}, p...))
	}
	stdinR, stdinW := io.Pipe()
	resize := make(chan runtime.TermSize, 4)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		defer stdinW.Close()
		defer close(resize)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				cancel()
				return
			}
			if len(msg) == 0 {
				continue
			}
			switch msg[0] {
			case chanStdin:
				if useStdin {
					stdinW.Write(msg[1:])
				}
			case chanResize:
				var sz runtime.TermSize
				if json.Unmarshal(msg[1:], &sz) == nil {
					select {
					case resize <- sz:
					default:
					}
				}
			case chanClose:
				if v5 && len(msg) > 1 && msg[1] == chanStdin {
					stdinW.Close()
				}
			}
		}
	}()
	opts := runtime.ExecOptions{Args: cmd, TTY: tty, Resize: resize,
		Stdout: chanWriter{send, chanStdout}, Stderr: chanWriter{send, chanStderr}}
	if useStdin {
		opts.Stdin = stdinR
	}
	code, err := ex.Exec(ctx, id, opts)
	status := metav1.Status{Status: metav1.StatusSuccess}
	switch {
	case err != nil:
		status = metav1.Status{Status: metav1.StatusFailure, Message: err.Error()}
	case code != 0:
		status = metav1.Status{Status: metav1.StatusFailure, Reason: "NonZeroExitCode",
			Message: fmt.Sprintf("command terminated with non-zero exit code: exit status %d", code),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: strconv.Itoa(code)}}}}
	}
	b, _ := json.Marshal(status)
	send(chanError, b)
	wmu.Lock()
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	wmu.Unlock()
}

type chanWriter struct {
	send func(byte, []byte) error
	ch   byte
}

func (c chanWriter) Write(p []byte) (int, error) {
	if err := c.send(c.ch, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
