package controllers_test

import (
	"context"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/controllers"
	"github.com/kubepim/kubepim/internal/notify"
)

// staleReader answers every Get with the object as it was when the reader
// was made: a manager's cache that has not seen the latest write yet.
type staleReader struct {
	client.Client
	snapshot *pimv1.Notification
}

func (s staleReader) Get(_ context.Context, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	s.snapshot.DeepCopyInto(obj.(*pimv1.Notification))
	return nil
}

var _ = Describe("Notification delivery with a cache a write behind", func() {
	It("does not send a delivered notification again when the cache still shows it pending", func() {
		ctx := context.Background()
		n := &pimv1.Notification{
			ObjectMeta: metav1.ObjectMeta{Name: uniq("stale"), Namespace: kubepimNamespace},
			Spec: pimv1.NotificationSpec{Event: pimv1.EventExpired, Audience: pimv1.AudienceAdmins, Channel: uniq("nowhere"),
				Source: pimv1.AuditObjectReference{Kind: "ActivationRequest", Name: "x", UID: "uid-x"}, OccurredAt: metav1.NewTime(fakeClock.Now()),
				Title: "Expired: x"},
		}
		// The channel does not exist: the manager's own attempts fail and
		// back off; this test calls Reconcile itself.
		create(n)
		attempted := metav1.NewTime(fakeClock.Now().Add(-time.Minute))
		pendingStatus := pimv1.NotificationStatus{Phase: pimv1.NotificationPending, Attempts: 1, FirstAttemptTime: &attempted,
			LastAttemptTime: &attempted, NextAttemptTime: &attempted}
		stale := setNotificationStatus(n, pendingStatus)
		deliveredStatus := *pendingStatus.DeepCopy()
		deliveredStatus.Phase, deliveredStatus.Attempts, deliveredStatus.DeliveryTime, deliveredStatus.NextAttemptTime =
			pimv1.NotificationDelivered, 2, &attempted, nil
		setNotificationStatus(n, deliveredStatus)

		var sends atomic.Int32
		r := &controllers.NotificationReconciler{
			Client: staleReader{Client: k8s, snapshot: stale}, APIReader: k8s, Recorder: &events.FakeRecorder{},
			Retention: time.Hour, GiveUp: time.Hour, Clock: fakeClock, Namespace: kubepimNamespace,
			Deliver: func(context.Context, notify.Target, *pimv1.Notification, time.Time) notify.Result {
				sends.Add(1)
				return notify.Result{}
			},
		}
		_, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(n)})
		Expect(err).NotTo(HaveOccurred())
		Expect(sends.Load()).To(BeZero(), "the stored notification is delivered; the cache's pending copy is a write behind")
		got := &pimv1.Notification{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(n), got)).To(Succeed())
		Expect(got.Status.Phase).To(Equal(pimv1.NotificationDelivered))
		Expect(got.Status.Attempts).To(Equal(int32(2)))
	})
})

// setNotificationStatus stores status on n, retrying on conflicts with the
// manager's own attempts, and returns the object as stored.
func setNotificationStatus(n *pimv1.Notification, status pimv1.NotificationStatus) *pimv1.Notification {
	GinkgoHelper()
	got := &pimv1.Notification{}
	Eventually(func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(n), got); err != nil {
			return err
		}
		got.Status = status
		return k8s.Status().Update(context.Background(), got)
	}).Should(Succeed())
	return got
}
