package apiserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/droverhq/drover/control/registry"
)

// pods/log and pods/exec are answered by the pod's node agent; the API
// server authorizes the request, finds the node, and relays it over mutual
// TLS (this master's certificate; the agent checks it against the cluster
// CA). The agent's own certificate is self-signed: like kube-apiserver
// without a kubelet CA, the node is trusted by its registered address.

// execProtocols are the WebSocket subprotocols of Kubernetes' exec
// streams, newest first.
var execProtocols = []string{"v5.channel.k8s.io", "v4.channel.k8s.io"}

// nodeEndpoint is the agent address of the node a pod runs on.
func (s *Server) nodeEndpoint(r *http.Request, pod *corev1.Pod) (string, error) {
	if pod.Spec.NodeName == "" {
		return "", apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	obj, err := s.storage.Get(r.Context(), registry.Lookup("", "v1", "nodes"), "", pod.Spec.NodeName, true)
	if err != nil {
		return "", err
	}
	node := obj.(*corev1.Node)
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	host := ""
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			host = a.Address
		}
	}
	if host == "" || port == 0 {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %s reports no agent endpoint", node.Name))
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), nil
}

// podContainer picks the container a log or exec request means: the one
// named, or the pod's only one.
func podContainer(pod *corev1.Pod, name string) (string, error) {
	var names []string
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Name == name {
			return name, nil
		}
		names = append(names, c.Name)
	}
	if name != "" {
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
	}
	if len(pod.Spec.Containers) == 1 {
		return pod.Spec.Containers[0].Name, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", pod.Name, names))
}

func (s *Server) nodeTLS() *tls.Config {
	if s.cfg.NodeClientTLS == nil {
		return nil
	}
	return s.cfg.NodeClientTLS()
}

// proxyLogs relays pods/log to the agent, streaming (follow) as it comes.
func (s *Server) proxyLogs(w http.ResponseWriter, r *http.Request, pod *corev1.Pod) {
	tc := s.nodeTLS()
	if tc == nil {
		writeStatus(w, apierrors.NewServiceUnavailable("this master cannot reach node agents"))
		return
	}
	q := r.URL.Query()
	container, err := podContainer(pod, q.Get("container"))
	if err != nil {
		writeStatus(w, err)
		return
	}
	addr, err := s.nodeEndpoint(r, pod)
	if err != nil {
		writeStatus(w, err)
		return
	}
	fwd := url.Values{}
	for _, k := range []string{"follow", "previous", "tailLines", "timestamps", "sinceSeconds", "sinceTime", "limitBytes"} {
		if v := q.Get(k); v != "" {
			fwd.Set(k, v)
		}
	}
	u := "https://" + addr + "/containerLogs/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name) + "/" + url.PathEscape(container) + "?" + fwd.Encode()
	req, err := http.NewRequestWithContext(r.Context(), "GET", u, nil)
	if err != nil {
		writeStatus(w, err)
		return
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}}
	resp, err := c.Do(req)
	if err != nil {
		writeStatus(w, apierrors.NewServiceUnavailable(fmt.Sprintf("the agent of node %s did not answer: %v", pod.Spec.NodeName, err)))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg := strings.TrimSpace(string(b))
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadRequest {
			writeStatus(w, apierrors.NewBadRequest(msg))
		} else {
			writeStatus(w, apierrors.NewInternalError(fmt.Errorf("node %s: %s", pod.Spec.NodeName, msg)))
		}
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

var execUpgrader = websocket.Upgrader{Subprotocols: execProtocols, CheckOrigin: func(*http.Request) bool { return true }}

// proxyExec relays a pods/exec WebSocket stream to the agent. Clients
// speaking SPDY (kubectl before 1.30) are refused with a clear message.
func (s *Server) proxyExec(w http.ResponseWriter, r *http.Request, pod *corev1.Pod) {
	if !websocket.IsWebSocketUpgrade(r) {
		writeStatus(w, apierrors.NewBadRequest("pods/exec needs a WebSocket client (drover exec, or kubectl 1.30 and later); SPDY is not supported"))
		return
	}
	tc := s.nodeTLS()
	if tc == nil {
		writeStatus(w, apierrors.NewServiceUnavailable("this master cannot reach node agents"))
		return
	}
	q := r.URL.Query()
	container, err := podContainer(pod, q.Get("container"))
	if err != nil {
		writeStatus(w, err)
		return
	}
	if len(q["command"]) == 0 {
		writeStatus(w, apierrors.NewBadRequest("you must specify at least 1 command"))
		return
	}
	addr, err := s.nodeEndpoint(r, pod)
	if err != nil {
		writeStatus(w, err)
		return
	}
	fwd := url.Values{"command": q["command"]}
	for _, k := range []string{"stdin", "stdout", "stderr", "tty"} {
		if v := q.Get(k); v != "" {
			fwd.Set(k, v)
		}
	}
	u := "wss://" + addr + "/exec/" + url.PathEscape(pod.Namespace) + "/" + url.PathEscape(pod.Name) + "/" + url.PathEscape(container) + "?" + fwd.Encode()
	d := websocket.Dialer{TLSClientConfig: tc, HandshakeTimeout: 5 * time.Second, Subprotocols: websocket.Subprotocols(r)}
	if len(d.Subprotocols) == 0 {
		d.Subprotocols = execProtocols
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	back, resp, err := d.DialContext(ctx, u, nil)
	cancel()
	if err != nil {
		msg := err.Error()
		if resp != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			msg = strings.TrimSpace(string(b))
		}
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("exec on node %s: %s", pod.Spec.NodeName, msg)))
		return
	}
	defer back.Close()
	hdr := http.Header{}
	if p := back.Subprotocol(); p != "" {
		hdr.Set("Sec-WebSocket-Protocol", p)
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	front, err := up.Upgrade(w, r, hdr)
	if err != nil {
		return
	}
	defer front.Close()
	// pump copies src to dst; it reports whether it stopped because src
	// went away (rather than dst).
	pump := func(dst, src *websocket.Conn) (srcGone bool) {
		for {
			mt, msg, err := src.ReadMessage()
			if err != nil {
				if ce, ok := err.(*websocket.CloseError); ok {
					dst.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(ce.Code, ce.Text), time.Now().Add(time.Second))
				}
				return true
			}
			if err := dst.WriteMessage(mt, msg); err != nil {
				return false
			}
		}
	}
	// The stream ends when the agent's side has been relayed to the end:
	// the process's status comes last, possibly after the agent stopped
	// reading (a late stdin message then fails, and must not cut the
	// status off). A client that goes away closes the agent's side, which
	// ends the command.
	toClient := make(chan struct{})
	go func() {
		defer close(toClient)
		pump(front, back)
	}()
	go func() {
		if pump(back, front) {
			back.Close()
		}
	}()
	<-toClient
}
