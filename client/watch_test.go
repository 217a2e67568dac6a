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

// A server (or a proxy in front of one) may fail without a Status body;
// the error is then made up from the HTTP code.
func TestErrorWithoutStatusBody(t *testing.T) {
	for _, tc := range []struct {
		code      int
		body, msg string
		check     func(error) bool
	}{
		{404, "404 page not found\n", "the server could not find the requested resource", IsNotFound},
		{410, "", "the server responded with the status code Gone", IsGone},
		{401, "Unauthorized", "Unauthorized", IsUnauthorized},
		{409, "conflict", "conflict", IsConflict},
	} {
		err := errorFromResponse(tc.code, []byte(tc.body))
		if !tc.check(err) || err.Error() != tc.msg {
			t.Errorf("%d %q: %v", tc.code, tc.body, err)
		}
	}
}
