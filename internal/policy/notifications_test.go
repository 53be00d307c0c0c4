package policy

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestNotified(t *testing.T) {
	all := []string{pimv1.AudienceAdmins, pimv1.AudienceRequester, pimv1.AudienceApprovers}
	tests := []struct {
		name   string
		policy pimv1.NotificationPolicy
		event  string
		want   []string
	}{
		{"defaults: approval needed reaches everyone", pimv1.NotificationPolicy{}, pimv1.EventApprovalNeeded, all},
		{"defaults: approved reaches the requester only", pimv1.NotificationPolicy{}, pimv1.EventApproved, []string{pimv1.AudienceRequester}},
		{"defaults: expiring soon reaches the requester only", pimv1.NotificationPolicy{}, pimv1.EventExpiringSoon, []string{pimv1.AudienceRequester}},
		{"defaults: expired reaches admins and requester", pimv1.NotificationPolicy{}, pimv1.EventExpired, []string{pimv1.AudienceAdmins, pimv1.AudienceRequester}},
		{"switched off", pimv1.NotificationPolicy{Events: pimv1.NotificationEvents{
			Activated: pimv1.NotificationSwitches{Admins: pimv1.NotificationSwitch{Enabled: boolPtr(false)}},
		}}, pimv1.EventActivated, []string{pimv1.AudienceRequester}},
		{"switched on where the default is off", pimv1.NotificationPolicy{Events: pimv1.NotificationEvents{
			Approved: pimv1.NotificationSwitches{Approvers: pimv1.NotificationSwitch{Enabled: boolPtr(true)}},
		}}, pimv1.EventApproved, []string{pimv1.AudienceRequester, pimv1.AudienceApprovers}},
		{"critical only drops a non-critical event", pimv1.NotificationPolicy{Events: pimv1.NotificationEvents{
			Activated: pimv1.NotificationSwitches{Requester: pimv1.NotificationSwitch{CriticalOnly: ptr.To(true)}},
		}}, pimv1.EventActivated, []string{pimv1.AudienceAdmins}},
		{"critical only keeps a critical event", pimv1.NotificationPolicy{Events: pimv1.NotificationEvents{
			ApprovalNeeded: pimv1.NotificationSwitches{Approvers: pimv1.NotificationSwitch{CriticalOnly: ptr.To(true)}},
		}}, pimv1.EventApprovalNeeded, all},
		{"critical only never switches on", pimv1.NotificationPolicy{Events: pimv1.NotificationEvents{
			Denied: pimv1.NotificationSwitches{Admins: pimv1.NotificationSwitch{CriticalOnly: ptr.To(true)}},
		}}, pimv1.EventDenied, []string{pimv1.AudienceRequester}},
		{"unknown event reaches nobody", pimv1.NotificationPolicy{}, "somethingElse", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Notified(tt.policy, tt.event); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Notified() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReminders(t *testing.T) {
	a, b := Reminders(pimv1.NotificationPolicy{})
	if !reflect.DeepEqual(a, DefaultAssignmentReminders) || !reflect.DeepEqual(b, DefaultActivationReminders) {
		t.Errorf("defaults: %v %v", a, b)
	}
	a, b = Reminders(pimv1.NotificationPolicy{Reminders: pimv1.ExpiryReminders{
		Assignment: []metav1.Duration{{Duration: 72 * time.Hour}}, Activation: []metav1.Duration{{Duration: 5 * time.Minute}, {Duration: 0}},
	}})
	if !reflect.DeepEqual(a, []time.Duration{72 * time.Hour}) || !reflect.DeepEqual(b, []time.Duration{5 * time.Minute}) {
		t.Errorf("set: %v %v", a, b)
	}
}

func TestActivationOccurrences(t *testing.T) {
	at := func(d time.Duration) time.Time { return actNow.Add(d) }
	cond := func(typ, status, reason string, when time.Time) metav1.Condition {
		return metav1.Condition{Type: typ, Status: metav1.ConditionStatus(status), Reason: reason, LastTransitionTime: metav1.NewTime(when)}
	}
	reminders := []time.Duration{15 * time.Minute, 2 * time.Hour}
	tests := []struct {
		name     string
		status   pimv1.ActivationRequestStatus
		now      time.Time
		want     []Occurrence
		wantNext time.Time
	}{
		{"pending: nothing yet", pimv1.ActivationRequestStatus{State: pimv1.ActivationStatePending}, actNow, nil, time.Time{}},
		{"waiting for approval", pimv1.ActivationRequestStatus{State: pimv1.ActivationStatePendingApproval,
			Conditions: []metav1.Condition{cond(pimv1.ConditionApproved, "False", "PendingApproval", at(-time.Minute))}}, actNow,
			[]Occurrence{{Event: pimv1.EventApprovalNeeded, At: at(-time.Minute)}}, time.Time{}},
		{"approved and active, reminder not yet due", pimv1.ActivationRequestStatus{State: pimv1.ActivationStateActive,
			ActivatedAt: actMeta(at(-10 * time.Minute)), ExpiresAt: actMeta(at(50 * time.Minute)),
			Conditions: []metav1.Condition{cond(pimv1.ConditionApproved, "True", "Approved", at(-10*time.Minute))}}, actNow,
			[]Occurrence{{Event: pimv1.EventApproved, At: at(-10 * time.Minute)}, {Event: pimv1.EventActivated, At: at(-10 * time.Minute)}},
			at(35 * time.Minute)},
		{"active, the 15-minute reminder due; the 2-hour one falls before the start", pimv1.ActivationRequestStatus{State: pimv1.ActivationStateActive,
			ActivatedAt: actMeta(at(-50 * time.Minute)), ExpiresAt: actMeta(at(10 * time.Minute))}, actNow,
			[]Occurrence{{Event: pimv1.EventActivated, At: at(-50 * time.Minute)},
				{Event: pimv1.EventExpiringSoon, At: at(-5 * time.Minute), Key: reminderKey(at(10*time.Minute), 15*time.Minute)}}, time.Time{}},
		{"scheduled: not activated yet", pimv1.ActivationRequestStatus{State: pimv1.ActivationStateScheduled,
			ActivatedAt: actMeta(at(time.Hour)), ExpiresAt: actMeta(at(2 * time.Hour))}, actNow, nil, time.Time{}},
		{"expired", pimv1.ActivationRequestStatus{State: pimv1.ActivationStateExpired, ActivatedAt: actMeta(at(-time.Hour)),
			ExpiresAt: actMeta(at(-time.Minute)), EndedAt: actMeta(at(-time.Minute)),
			Conditions: []metav1.Condition{cond(pimv1.ConditionReady, "True", pimv1.ReasonExpired, at(-time.Minute))}}, actNow,
			[]Occurrence{{Event: pimv1.EventActivated, At: at(-time.Hour)}, {Event: pimv1.EventExpired, At: at(-time.Minute)}}, time.Time{}},
		{"superseded by an extension: not expired", pimv1.ActivationRequestStatus{State: pimv1.ActivationStateExpired, ActivatedAt: actMeta(at(-time.Hour)),
			ExpiresAt: actMeta(at(time.Minute)), EndedAt: actMeta(at(-time.Minute)),
			Conditions: []metav1.Condition{cond(pimv1.ConditionReady, "True", "Extended", at(-time.Minute))}}, actNow,
			[]Occurrence{{Event: pimv1.EventActivated, At: at(-time.Hour)}}, time.Time{}},
		{"denied", pimv1.ActivationRequestStatus{State: pimv1.ActivationStateDenied, EndedAt: actMeta(at(-time.Minute)),
			Conditions: []metav1.Condition{cond(pimv1.ConditionApproved, "False", "Denied", at(-2*time.Minute))}}, actNow,
			[]Occurrence{{Event: pimv1.EventDenied, At: at(-time.Minute)}}, time.Time{}},
		{"cancelled before it started: nothing", pimv1.ActivationRequestStatus{State: pimv1.ActivationStateCancelled,
			ActivatedAt: actMeta(at(time.Hour)), EndedAt: actMeta(at(-time.Minute))}, actNow, nil, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ar := &pimv1.ActivationRequest{Status: tt.status}
			got, next := ActivationOccurrences(ar, reminders, tt.now)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("occurrences = %+v, want %+v", got, tt.want)
			}
			if !next.Equal(tt.wantNext) {
				t.Errorf("next = %v, want %v", next, tt.wantNext)
			}
		})
	}
}

func TestAssignmentOccurrences(t *testing.T) {
	at := func(d time.Duration) time.Time { return actNow.Add(d) }
	day := 24 * time.Hour
	reminders := DefaultAssignmentReminders
	tests := []struct {
		name     string
		spec     pimv1.RoleAssignmentSpec
		status   pimv1.RoleAssignmentStatus
		want     []Occurrence
		wantNext time.Time
	}{
		{"scheduled: nothing", pimv1.RoleAssignmentSpec{Type: pimv1.AssignmentEligible},
			pimv1.RoleAssignmentStatus{State: pimv1.AssignmentStateScheduled, StartTime: actMeta(at(day))}, nil, time.Time{}},
		{"eligible for 30 days: both reminders ahead", pimv1.RoleAssignmentSpec{Type: pimv1.AssignmentEligible, EndTime: actMeta(at(30 * day))},
			pimv1.RoleAssignmentStatus{State: pimv1.AssignmentStateEligible, StartTime: actMeta(at(-time.Hour))},
			[]Occurrence{{Event: pimv1.EventEligibleAssigned, At: at(-time.Hour)}}, at(16 * day)},
		{"active, permanent: no reminders", pimv1.RoleAssignmentSpec{Type: pimv1.AssignmentActive},
			pimv1.RoleAssignmentStatus{State: pimv1.AssignmentStateActive, StartTime: actMeta(at(-time.Hour))},
			[]Occurrence{{Event: pimv1.EventActiveAssigned, At: at(-time.Hour)}}, time.Time{}},
		{"a week long: only the one-day reminder, due", pimv1.RoleAssignmentSpec{Type: pimv1.AssignmentActive, EndTime: actMeta(at(12 * time.Hour))},
			pimv1.RoleAssignmentStatus{State: pimv1.AssignmentStateActive, StartTime: actMeta(at(-6 * day))},
			[]Occurrence{{Event: pimv1.EventActiveAssigned, At: at(-6 * day)}, {Event: pimv1.EventExpiringSoon, At: at(-12 * time.Hour), Key: reminderKey(at(12*time.Hour), day)}}, time.Time{}},
		{"expired", pimv1.RoleAssignmentSpec{Type: pimv1.AssignmentEligible, EndTime: actMeta(at(-time.Minute))},
			pimv1.RoleAssignmentStatus{State: pimv1.AssignmentStateExpired, StartTime: actMeta(at(-2 * day))},
			[]Occurrence{{Event: pimv1.EventEligibleAssigned, At: at(-2 * day)}, {Event: pimv1.EventExpired, At: at(-time.Minute)}}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra := &pimv1.RoleAssignment{Spec: tt.spec, Status: tt.status}
			got, next := AssignmentOccurrences(ra, reminders, actNow)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("occurrences = %+v, want %+v", got, tt.want)
			}
			if !next.Equal(tt.wantNext) {
				t.Errorf("next = %v, want %v", next, tt.wantNext)
			}
		})
	}
}

func boolPtr(b bool) *bool { return &b }

// reminderKey spells the key of the reminder `before` ahead of end.
func reminderKey(end time.Time, before time.Duration) string {
	return strconv.FormatInt(end.Unix(), 10) + "-" + before.String()
}
