package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StatusError is a failure the server reported, with the metav1.Status it
// sent (or one made up from the HTTP status when the body was not a Status).
type StatusError struct {
	Status metav1.Status
}

func (e *StatusError) Error() string { return e.Status.Message }

// Reason returns the Status reason of err if it is (or wraps) a StatusError.
func Reason(err error) metav1.StatusReason {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status.Reason
	}
	return metav1.StatusReasonUnknown
}

func code(err error) int32 {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status.Code
	}
	return 0
}

// The helpers check the reason first and fall back to the HTTP code, since a
// server may send a bare status code without a Status body.

// IsNotFound reports a 404 NotFound.
func IsNotFound(err error) bool {
	r := Reason(err)
	return r == metav1.StatusReasonNotFound || (r == metav1.StatusReasonUnknown && code(err) == http.StatusNotFound)
}

// IsConflict reports a 409 Conflict (a stale resourceVersion), not an
// AlreadyExists, which shares the code.
func IsConflict(err error) bool {
	r := Reason(err)
	return r == metav1.StatusReasonConflict || (r == metav1.StatusReasonUnknown && code(err) == http.StatusConflict)
}

// IsAlreadyExists reports a create of a name that is taken.
func IsAlreadyExists(err error) bool { return Reason(err) == metav1.StatusReasonAlreadyExists }

// IsGone reports a 410: the requested resourceVersion is compacted away and
// the caller must relist.
func IsGone(err error) bool {
	r := Reason(err)
	return r == metav1.StatusReasonGone || r == metav1.StatusReasonExpired || code(err) == http.StatusGone
}

// IsForbidden reports a 403.
func IsForbidden(err error) bool {
	return Reason(err) == metav1.StatusReasonForbidden || code(err) == http.StatusForbidden
}

// IsUnauthorized reports a 401.
func IsUnauthorized(err error) bool {
	return Reason(err) == metav1.StatusReasonUnauthorized || code(err) == http.StatusUnauthorized
}

// errorFromResponse turns a failed response into a StatusError.
func errorFromResponse(statusCode int, body []byte) error {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		if st.Code == 0 {
			st.Code = int32(statusCode)
		}
		return &StatusError{Status: st}
	}
	st = metav1.Status{Status: metav1.StatusFailure, Code: int32(statusCode), Reason: reasonForCode(statusCode)}
	msg := strings.TrimSpace(string(body))
	switch {
	case statusCode == http.StatusNotFound && (msg == "" || strings.HasPrefix(msg, "404 page not found")):
		st.Message = "the server could not find the requested resource"
	case msg != "" && len(msg) < 1024:
		st.Message = msg
	default:
		st.Message = "the server responded with the status code " + http.StatusText(statusCode)
	}
	return &StatusError{Status: st}
}

func reasonForCode(c int) metav1.StatusReason {
	switch c {
	case http.StatusBadRequest:
		return metav1.StatusReasonBadRequest
	case http.StatusUnauthorized:
		return metav1.StatusReasonUnauthorized
	case http.StatusForbidden:
		return metav1.StatusReasonForbidden
	case http.StatusNotFound:
		return metav1.StatusReasonNotFound
	case http.StatusMethodNotAllowed:
		return metav1.StatusReasonMethodNotAllowed
	case http.StatusConflict:
		return metav1.StatusReasonConflict
	case http.StatusGone:
		return metav1.StatusReasonGone
	case http.StatusUnsupportedMediaType:
		return metav1.StatusReasonUnsupportedMediaType
	case http.StatusUnprocessableEntity:
		return metav1.StatusReasonInvalid
	case http.StatusTooManyRequests:
		return metav1.StatusReasonTooManyRequests
	case http.StatusServiceUnavailable:
		return metav1.StatusReasonServiceUnavailable
	case http.StatusGatewayTimeout:
		return metav1.StatusReasonTimeout
	}
	if c >= 500 {
		return metav1.StatusReasonInternalError
	}
	return metav1.StatusReasonUnknown
}
