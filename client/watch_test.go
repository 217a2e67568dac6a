package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// watchServer streams the given chunks with a flush after each, then waits
// for the client to go away (hold) or ends the response.
func watchServer(t *testing.T, chunks []string, hold bool) (*Client, *http.Request) {
	t.Helper()
	var seen *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Clone(context.Background())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		for _, c := range chunks {
			_, _ = w.Write([]byte(c))
			w.(http.Flusher).Flush()
		}
		if hold {
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(&RESTConfig{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c, seen
}

var podsMapping = Mapping{Version: "v1", Resource: "pods", Kind: "Pod", Namespaced: true}

func TestWatchStreamDecoding(t *testing.T) {
	// Events split across chunks mid-object, several in one chunk, and each
	// event type, as a server writing into a chunked body may produce.
	chunks := []string{
		`{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":"5","generation":2}}}` + "\n" + `{"type":"MODI`,
		`FIED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":"6"}}}` + "\n",
		`{"type":"BOOKMARK","object":{"apiVersion":"v1","kind":"Pod","metadata":{"resourceVersion":"9"}}}` + "\n" +
			`{"type":"DELETED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","resourceVersion":"10"}}}` + "\n",
		`{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (10)","reason":"Expired","code":410}}` + "\n",
	}
	c, _ := watchServer(t, chunks, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := c.Resource(podsMapping).Namespace("ns").Watch(ctx, metav1.ListOptions{ResourceVersion: "4", LabelSelector: "app=x"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for ev := range w.Events() {
		switch ev.Type {
		case watch.Error:
			if !IsGone(ev.Err) || ev.Err.Status.Code != 410 {
				t.Errorf("ERROR event: %+v", ev.Err)
			}
			got = append(got, "ERROR")
		default:
			got = append(got, string(ev.Type)+" "+ev.Object.GetName()+"@"+ev.Object.GetResourceVersion())
		}
		if ev.Type == watch.Added {
			if g := ev.Object.GetGeneration(); g != 2 {
				t.Errorf("generation %d", g)
			}
		}
	}
	if err := w.Err(); err != nil {
		t.Errorf("clean end of stream: %v", err)
	}
	want := "ADDED a@5,MODIFIED a@6,BOOKMARK @9,DELETED a@10,ERROR"
	if strings.Join(got, ",") != want {
		t.Errorf("got %v\nwant %v", strings.Join(got, ","), want)
	}
}

func TestWatchRequest(t *testing.T) {
	var q map[string][]string
	var path, accept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, path, accept = r.URL.Query(), r.URL.Path, r.Header.Get("Accept")
		w.WriteHeader(200)
	}))
	defer srv.Close()
	c, _ := New(&RESTConfig{Host: srv.URL})
	w, err := c.Resource(podsMapping).Namespace("ns").WatchTable(context.Background(), metav1.ListOptions{ResourceVersion: "7", FieldSelector: "metadata.name=a"})
	if err != nil {
		t.Fatal(err)
	}
	for range w.Events() {
	}
	if path != "/api/v1/namespaces/ns/pods" || q["watch"][0] != "true" || q["allowWatchBookmarks"][0] != "true" ||
		q["resourceVersion"][0] != "7" || q["fieldSelector"][0] != "metadata.name=a" {
		t.Errorf("watch request %s %v", path, q)
	}
	if !strings.HasPrefix(accept, "application/json;as=Table;v=v1;g=meta.k8s.io") {
		t.Errorf("accept %q", accept)
	}
}

func TestWatchStopsOnCancel(t *testing.T) {
	c, _ := watchServer(t, []string{`{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}}` + "\n"}, true)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.Resource(podsMapping).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-w.Events(); ev.Object.GetName() != "a" {
		t.Fatalf("first event %+v", ev)
	}
	cancel()
	for range w.Events() {
	}
	if err := w.Err(); err != nil {
		t.Errorf("cancel is not an error: %v", err)
	}
}

func TestWatchBadStream(t *testing.T) {
	c, _ := watchServer(t, []string{`{"type":"ADDED","object":{"apiVersion":"v1"`, `,"kind":"Pod"}}` + "\n" + `{"type":"WHAT","object":{}}`}, false)
	w, err := c.Resource(podsMapping).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range w.Events() {
		n++
	}
	if n != 1 || w.Err() == nil || !strings.Contains(w.Err().Error(), `unknown event type "WHAT"`) {
		t.Errorf("%d events, err %v", n, w.Err())
	}
}

func TestWatchRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(410)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old","reason":"Expired","code":410}`))
	}))
	defer srv.Close()
	c, _ := New(&RESTConfig{Host: srv.URL})
	if _, err := c.Resource(podsMapping).Watch(context.Background(), metav1.ListOptions{ResourceVersion: "1"}); !IsGone(err) {
		t.Errorf("watch from a compacted revision: %v", err)
	}
}
