package controllers

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/kubepim/kubepim/internal/policy"
)

// MaxEventNoteLength is the longest note an events.k8s.io/v1 Event may
// carry: the API server refuses a longer one, and the event recorder drops
// what the API server refuses without a word. kubepim's notes quote
// people's reasons and name bindings and users, any of which can be long,
// so every note is cut to fit, with "… (N bytes cut)" saying so; the full
// text is in the object's status or the audit trail.
const MaxEventNoteLength = 1024

// boundedRecorder cuts every note to MaxEventNoteLength.
type boundedRecorder struct {
	events.EventRecorder
}

// Eventf records the event with its formatted note cut to fit.
func (r boundedRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, action, "%s", policy.Truncate(fmt.Sprintf(note, args...), MaxEventNoteLength))
}

// eventRecorder is the manager's recorder for name, bounded.
func eventRecorder(mgr manager.Manager, name string) events.EventRecorder {
	return boundedRecorder{mgr.GetEventRecorder(name)}
}
