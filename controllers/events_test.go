package controllers

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
)

// TestEventNotesFitTheAPI: a note at the API's 1 KiB goes as it is; a
// longer one (an alert naming long bindings, a long reason) is cut to fit,
// saying so, instead of being refused by the API server and dropped.
func TestEventNotesFitTheAPI(t *testing.T) {
	fake := events.NewFakeRecorder(2)
	r := boundedRecorder{fake}
	obj := &corev1.ConfigMap{}
	at := strings.Repeat("a", MaxEventNoteLength)
	r.Eventf(obj, nil, corev1.EventTypeWarning, "Reason", "Action", "%s", at)
	r.Eventf(obj, nil, corev1.EventTypeWarning, "Reason", "Action", "%s: %s", "deactivated", strings.Repeat("b", 40<<10))
	if got := <-fake.Events; !strings.HasSuffix(got, at) {
		t.Errorf("a note at the limit was changed")
	}
	got := <-fake.Events
	note := got[strings.Index(got, "deactivated"):]
	if len(note) > MaxEventNoteLength || !strings.HasSuffix(note, "bytes cut)") {
		t.Errorf("a 40 KiB note: %d bytes, ends %q", len(note), note[len(note)-20:])
	}
}
