package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PodLogs streams a container's log (pods/log). The caller reads the body
// until EOF — with Follow, until the container's attempt ends — and closes
// it; once ctx ends, Read returns ctx.Err(). Only ctx bounds the request
// (RESTConfig.Timeout does not, so that following works). Errors are *StatusError, as
// elsewhere: e.g. NotFound for a missing pod, BadRequest for an unknown
// container or a missing previous attempt.
func (c *Client) PodLogs(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	if namespace == "" || pod == "" {
		return nil, errors.New("pod logs: a namespace and a pod name are required")
	}
	body, err := c.stream(ctx, request{
		method: http.MethodGet,
		path:   "/api/v1/namespaces/" + namespace + "/pods/" + pod + "/log",
		query:  podLogQuery(opts),
		accept: "text/plain, */*",
	})
	if err != nil {
		return nil, err
	}
	return ctxBody{body, ctx}, nil
}

// ctxBody reports a stream cut off by its context as ctx.Err(), never as
// the end of the log.
type ctxBody struct {
	io.ReadCloser
	ctx context.Context
}

func (b ctxBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.ctx.Err() != nil {
		return n, b.ctx.Err()
	}
	return n, err
}

func podLogQuery(o *corev1.PodLogOptions) url.Values {
	q := url.Values{}
	if o == nil {
		return q
	}
	if o.Container != "" {
		q.Set("container", o.Container)
	}
	if o.Follow {
		q.Set("follow", "true")
	}
	if o.Previous {
		q.Set("previous", "true")
	}
	if o.Timestamps {
		q.Set("timestamps", "true")
	}
	if o.SinceSeconds != nil {
		q.Set("sinceSeconds", strconv.FormatInt(*o.SinceSeconds, 10))
	}
	if o.SinceTime != nil {
		q.Set("sinceTime", o.SinceTime.UTC().Format(time.RFC3339))
	}
	if o.TailLines != nil {
		q.Set("tailLines", strconv.FormatInt(*o.TailLines, 10))
	}
	if o.LimitBytes != nil {
		q.Set("limitBytes", strconv.FormatInt(*o.LimitBytes, 10))
	}
	if o.InsecureSkipTLSVerifyBackend {
		q.Set("insecureSkipTLSVerifyBackend", "true")
	}
	return q
}
