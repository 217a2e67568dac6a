package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The worker's own status writes come back as pod updates; they must not
// wake it (that would replace ErrImagePull by ImagePullBackOff at once),
// while changes to the spec or metadata, and deletion, must.
func TestStatusOnlyUpdatesDoNotWakeTheWorker(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u1", ResourceVersion: "1"},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	w := newPodWorker(&Agent{}, p)
	woken := func() bool {
		select {
		case <-w.wake:
			return true
		default:
			return false
		}
	}
	w.update(p) // the first sight of the pod
	if !woken() {
		t.Fatal("a new pod did not wake the worker")
	}

	st := p.DeepCopy()
	st.ResourceVersion = "2"
	st.Status.Phase = corev1.PodPending
	st.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}
	st.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "drover-agent", Subresource: "status"}}
	w.update(st)
	if woken() {
		t.Fatal("a status-only update woke the worker")
	}
	if w.current() != st {
		t.Fatal("the worker does not keep the newest pod")
	}

	del := st.DeepCopy()
	del.ResourceVersion = "3"
	now := metav1.Now()
	grace := int64(30)
	del.DeletionTimestamp, del.DeletionGracePeriodSeconds = &now, &grace
	w.update(del)
	if !woken() {
		t.Fatal("a deletion did not wake the worker")
	}

	img := del.DeepCopy()
	img.ResourceVersion = "4"
	img.Spec.Containers[0].Image = "busybox:2"
	w.update(img)
	if !woken() {
		t.Fatal("a spec change did not wake the worker")
	}

	w.update(nil)
	if !woken() {
		t.Fatal("the pod's removal did not wake the worker")
	}
}
