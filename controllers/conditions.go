package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// conditions marks the conditions of one object in one pass: each carries
// the generation the pass judged and, on a transition, the injected clock's
// time (meta.SetStatusCondition would otherwise read the wall clock).
type conditions struct {
	list       *[]metav1.Condition
	generation int64
	now        time.Time
}

func conditionsOf(list *[]metav1.Condition, generation int64, now time.Time) conditions {
	return conditions{list: list, generation: generation, now: now}
}

// MaxConditionMessageLength is the API's limit on a condition's message
// (metav1.Condition). Messages quote people (a deactivation's reason, the
// approvers who decided); a longer one would make the API server refuse
// the whole status, on every retry, so it is cut, saying so.
const MaxConditionMessageLength = 32768

// mark sets conditionType to True when ok, else False.
func (c conditions) mark(conditionType string, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	message = policy.Truncate(message, MaxConditionMessageLength)
	meta.SetStatusCondition(c.list, metav1.Condition{Type: conditionType, Status: status, Reason: reason, Message: message,
		ObservedGeneration: c.generation, LastTransitionTime: metav1.NewTime(c.now)})
}

func (c conditions) markTrue(conditionType, reason, message string) {
	c.mark(conditionType, true, reason, message)
}

func (c conditions) markFalse(conditionType, reason, message string) {
	c.mark(conditionType, false, reason, message)
}

// stalled keeps kstatus's abnormal-true Stalled condition: True with reason
// and message while the object is stuck on something only a person can fix,
// absent otherwise. GitOps tools report such an object as Failed.
func (c conditions) stalled(stuck bool, reason, message string) {
	if !stuck {
		meta.RemoveStatusCondition(c.list, pimv1.ConditionStalled)
		return
	}
	c.markTrue(pimv1.ConditionStalled, reason, message)
}
