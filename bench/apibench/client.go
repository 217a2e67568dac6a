package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// api is an in-process Kubernetes API client over HTTPS: one keep-alive
// transport per master, requests spread over the masters by the caller.
type api struct {
	token  string
	hosts  []string // host:port of each master's Kubernetes API
	trs    []*http.Transport
	hcs    []*http.Client
	protos sync.Map // negotiated protocol -> true
}

func newAPI(c *cluster) *api {
	a := &api{token: c.token}
	for _, m := range c.masters {
		tr := &http.Transport{
			TLSClientConfig:     c.tls.Clone(),
			ForceAttemptHTTP2:   true, // used if the server offers it (it does not: see the report)
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     5 * time.Minute,
			DisableCompression:  true,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
		}
		a.hosts = append(a.hosts, m.kubeAPI)
		a.trs = append(a.trs, tr)
		a.hcs = append(a.hcs, &http.Client{Transport: tr})
	}
	return a
}

func (a *api) close() {
	for _, tr := range a.trs {
		tr.CloseIdleConnections()
	}
}

// protocols lists the HTTP versions responses came back with.
func (a *api) protocols() []string {
	var out []string
	a.protos.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	return out
}

// do sends one request to master i and returns the status and body (read
// fully). Accept, if set, replaces application/json.
func (a *api) do(ctx context.Context, i int, method, path string, body []byte, accept string) (int, []byte, error) {
	resp, err := a.send(ctx, i, method, path, body, accept)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, b, nil
}

// discard is do without keeping the body: it returns its length.
func (a *api) discard(ctx context.Context, i int, method, path string, accept string) (int, int64, error) {
	resp, err := a.send(ctx, i, method, path, nil, accept)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, n, err
}

func (a *api) send(ctx context.Context, i int, method, path string, body []byte, accept string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	i %= len(a.hosts)
	req, err := http.NewRequestWithContext(ctx, method, "https://"+a.hosts[i]+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "apibench (drover)")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hcs[i].Do(req)
	if err != nil {
		return nil, err
	}
	if _, seen := a.protos.Load(resp.Proto); !seen {
		a.protos.Store(resp.Proto, true)
	}
	return resp, nil
}

// tableAccept is what kubectl get sends.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

// statusError describes an unexpected answer.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	b := e.body
	if len(b) > 300 {
		b = b[:300] + "..."
	}
	return fmt.Sprintf("HTTP %d: %s", e.code, strings.TrimSpace(b))
}

func httpErr(code int, body []byte) error { return &statusError{code: code, body: string(body)} }

// schedulerName is the benchmark pods' spec.schedulerName (-scheduler-name).
var schedulerName = "apibench-none"

// newPod is a realistic small pod, about what a Deployment's pod template
// gives: labels, one container with ports, resources, env and a readiness
// probe.
func newPod(ns, name string) *corev1.Pod {
	grace := int64(30)
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:      map[string]string{"app": "web", "tier": "frontend", "pod-template-hash": "7d4b9c8f6d", "bench": "apibench"},
			Annotations: map[string]string{"apibench/generation": "0"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "web",
				Image: "registry.example.com/team/web:1.27.3",
				Args:  []string{"--port=8080", "--log-level=info"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env: []corev1.EnvVar{
					{Name: "MODE", Value: "production"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
					PeriodSeconds: 10},
				ImagePullPolicy: corev1.PullIfNotPresent,
			}},
			SchedulerName:                 schedulerName,
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace,
			DNSPolicy:                     corev1.DNSClusterFirst,
		},
	}
}

// createPod POSTs a pod; it returns the created object.
func (a *api) createPod(ctx context.Context, i int, ns, name string) (*corev1.Pod, error) {
	body, _ := json.Marshal(newPod(ns, name))
	code, b, err := a.do(ctx, i, "POST", "/api/v1/namespaces/"+ns+"/pods", body, "")
	if err != nil {
		return nil, err
	}
	if code != http.StatusCreated {
		return nil, httpErr(code, b)
	}
	var p corev1.Pod
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode created pod: %w", err)
	}
	if p.Name != name || p.Namespace != ns || p.ResourceVersion == "" || p.UID == "" {
		return nil, fmt.Errorf("created pod came back as %s/%s rv=%q uid=%q, want %s/%s", p.Namespace, p.Name, p.ResourceVersion, p.UID, ns, name)
	}
	return &p, nil
}

func (a *api) createNamespace(ctx context.Context, name string) error {
	body, _ := json.Marshal(&corev1.Namespace{TypeMeta: metav1.TypeMeta{Kind: "Namespace", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name}})
	var last error
	for attempt := 0; attempt < 50; attempt++ {
		code, b, err := a.do(ctx, attempt, "POST", "/api/v1/namespaces", body, "")
		switch {
		case err != nil:
			last = err
		case code == http.StatusCreated || code == http.StatusConflict:
			return nil
		default:
			last = httpErr(code, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("create namespace %s: %w", name, last)
}

// listMeta is what the generator reads of a list or Table.
type listMeta struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
		Continue        string `json:"continue"`
	} `json:"metadata"`
}

// objMeta is what the generator reads of one object.
type objMeta struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name            string `json:"name"`
		Namespace       string `json:"namespace"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
}

type podListNames struct {
	listMeta
	Items []struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	} `json:"items"`
}

type tablePage struct {
	listMeta
	Kind              string `json:"kind"`
	ColumnDefinitions []struct {
		Name string `json:"name"`
	} `json:"columnDefinitions"`
	Rows []struct {
		Cells  []any `json:"cells"`
		Object struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"object"`
	} `json:"rows"`
}

// revision reads a namespace's pod list revision (limit=1).
func (a *api) revision(ctx context.Context, i int, ns string) (string, error) {
	code, b, err := a.do(ctx, i, "GET", "/api/v1/namespaces/"+ns+"/pods?limit=1", nil, "")
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", httpErr(code, b)
	}
	var l listMeta
	if err := json.Unmarshal(b, &l); err != nil || l.Metadata.ResourceVersion == "" {
		return "", fmt.Errorf("list has no resourceVersion: %v", err)
	}
	return l.Metadata.ResourceVersion, nil
}

// tlsProto reports whether the Kubernetes API offers HTTP/2 by ALPN.
func tlsProto(c *cluster) string {
	conf := c.tls.Clone()
	conf.NextProtos = []string{"h2", "http/1.1"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", c.masters[0].kubeAPI, conf)
	if err != nil {
		return "error: " + err.Error()
	}
	defer conn.Close()
	p := conn.ConnectionState().NegotiatedProtocol
	if p == "" {
		return "no ALPN (HTTP/1.1)"
	}
	return p
}
