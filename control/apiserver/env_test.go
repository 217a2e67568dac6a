package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/raftstore"
	"github.com/droverhq/drover/raftstore/raftstoretest"
)

// env is n real store members, each with its own API server behind a real
// HTTP listener.
type env struct {
	t      *testing.T
	c      *raftstoretest.Cluster
	srvs   []*Server
	https  []*httptest.Server
	urls   []string
	key    []byte
	token  string
	cancel context.CancelFunc
}

func newEnv(t *testing.T, n int, configure func(*raftstore.Config)) *env {
	t.Helper()
	c := raftstoretest.New(t, n, raftstoretest.Options{Configure: configure})
	e := &env{t: t, c: c, key: []byte("test token key")}
	e.token = AdminToken(e.key)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		srv, err := New(Config{Store: c.Store(i), TokenKey: func() []byte { return e.key }, Version: "test", MaxBodyBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); srv.Run(ctx) }()
		hs := httptest.NewServer(srv)
		e.srvs = append(e.srvs, srv)
		e.https = append(e.https, hs)
		e.urls = append(e.urls, hs.URL)
	}
	t.Cleanup(func() {
		cancel()
		for _, hs := range e.https {
			hs.CloseClientConnections()
			hs.Close()
		}
		wg.Wait()
	})
	// The defaults (namespaces, roles) are written once the store has a
	// leader.
	e.eventually(20*time.Second, func() error {
		for i := range e.urls {
			if code, body := e.doOn(i, "GET", "/api/v1/namespaces/default/serviceaccounts/default", nil); code != 200 {
				return fmt.Errorf("master %d: %d %s", i, code, body)
			}
		}
		return nil
	})
	return e
}

// eventually polls cond until it returns nil or the deadline passes.
func (e *env) eventually(d time.Duration, cond func() error) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("condition not met within %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type req struct {
	token, ct, accept string
	body              []byte
}

func (e *env) raw(i int, method, path string, r req) (int, []byte, http.Header) {
	e.t.Helper()
	hr, err := http.NewRequest(method, e.urls[i]+path, bytes.NewReader(r.body))
	if err != nil {
		e.t.Fatal(err)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.ct != "" {
		hr.Header.Set("Content-Type", r.ct)
	}
	if r.accept != "" {
		hr.Header.Set("Accept", r.accept)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func mustJSON(v any) []byte {
	if b, ok := v.([]byte); ok {
		return b
	}
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// doOn sends a JSON request as the admin to master i.
func (e *env) doOn(i int, method, path string, body any) (int, []byte) {
	e.t.Helper()
	r := req{token: e.token}
	if body != nil {
		r.body, r.ct = mustJSON(body), "application/json"
	}
	code, b, _ := e.raw(i, method, path, r)
	return code, b
}

func (e *env) do(method, path string, body any) (int, []byte) {
	e.t.Helper()
	return e.doOn(0, method, path, body)
}

// must sends a request and fails the test unless it answers want.
func (e *env) must(want int, method, path string, body any) []byte {
	e.t.Helper()
	code, b := e.do(method, path, body)
	if code != want {
		e.t.Fatalf("%s %s: got %d, want %d: %s", method, path, code, want, b)
	}
	return b
}

// status decodes an error answer and checks it is a Kubernetes Status.
func status(t *testing.T, b []byte) *metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(b, &st); err != nil || st.Kind != "Status" {
		t.Fatalf("not a Status: %s (%v)", b, err)
	}
	return &st
}

// decodeInto decodes into a zeroed v (decoding into a used struct would
// keep fields the JSON omits).
func decodeInto(t *testing.T, b []byte, v any) {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	rv.Set(reflect.Zero(rv.Type()))
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, b)
	}
}

// watchStream is an open watch.
type watchStream struct {
	events chan watchEvent
	cancel context.CancelFunc
}

func (e *env) watch(i int, path string) *watchStream {
	e.t.Helper()
	return e.watchAccept(i, path, "")
}

func (e *env) watchAccept(i int, path, accept string) *watchStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hr, _ := http.NewRequestWithContext(ctx, "GET", e.urls[i]+path, nil)
	hr.Header.Set("Authorization", "Bearer "+e.token)
	if accept != "" {
		hr.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		cancel()
		e.t.Fatalf("watch %s: %v", path, err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		e.t.Fatalf("watch %s: %d %s", path, resp.StatusCode, b)
	}
	ws := &watchStream{events: make(chan watchEvent, 10000), cancel: cancel}
	go func() {
		defer close(ws.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var ev watchEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				ws.events <- ev
			}
		}
	}()
	e.t.Cleanup(cancel)
	return ws
}

// next waits for the next event.
func (ws *watchStream) next(t *testing.T, d time.Duration) (watchEvent, bool) {
	t.Helper()
	select {
	case ev, ok := <-ws.events:
		return ev, ok
	case <-time.After(d):
		t.Fatalf("no watch event within %v", d)
	}
	return watchEvent{}, false
}

func objMeta(t *testing.T, raw []byte) metav1.ObjectMeta {
	t.Helper()
	var o struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	decodeInto(t, raw, &o)
	return o.Metadata
}

func contains(b []byte, subs ...string) error {
	for _, s := range subs {
		if !strings.Contains(string(b), s) {
			return fmt.Errorf("%q not in %s", s, b)
		}
	}
	return nil
}
