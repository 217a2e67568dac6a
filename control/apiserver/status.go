package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/droverhq/drover/raftstore"
)

// toStatus maps any error to the Kubernetes Status the client gets. This
// is the one place store errors become HTTP: not leader or timeout -> 504
// or 503 with a retry hint, compacted -> 410 Gone, anything else -> 500.
func toStatus(err error) *metav1.Status {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		s := st.Status()
		return &s
	}
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		return &se.ErrStatus
	}
	var compacted *raftstore.CompactedError
	switch {
	case errors.As(err, &compacted) || errors.Is(err, raftstore.ErrCompacted):
		return &apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %v", err)).ErrStatus
	case errors.Is(err, raftstore.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return &apierrors.NewTimeoutError(fmt.Sprintf("the store did not answer in time: %v", err), 1).ErrStatus
	case errors.Is(err, raftstore.ErrNotLeader), errors.Is(err, raftstore.ErrShutdown):
		return &apierrors.NewServiceUnavailable(fmt.Sprintf("the store has no leader this master can reach: %v", err)).ErrStatus
	case errors.Is(err, raftstore.ErrTooLarge):
		return &apierrors.NewRequestEntityTooLargeError(err.Error()).ErrStatus
	case errors.Is(err, context.Canceled):
		return &apierrors.NewTimeoutError("the request was cancelled", 0).ErrStatus
	}
	return &apierrors.NewInternalError(err).ErrStatus
}

// writeStatus answers with a Status object; every error goes through here
// so every error has a body and a Content-Type.
func writeStatus(w http.ResponseWriter, err error) {
	st := toStatus(err)
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Status == "" {
		st.Status = metav1.StatusFailure
	}
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
		st.Code = int32(code)
	}
	if st.Details != nil && st.Details.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(st.Details.RetryAfterSeconds))
	}
	writeJSON(w, code, st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
	w.Write([]byte("\n"))
}
