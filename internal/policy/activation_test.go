package policy

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// actNow is the fixed "now" of the activation tests.
var actNow = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

var (
	actAdmin = pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "admin"}
	actEdit  = pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "edit"}
	actAlice = pimv1.UserInfo{Username: "alice", Groups: []string{"devs", "system:authenticated"}}
	actBob   = pimv1.UserInfo{Username: "bob", Groups: []string{"ops"}}
)

func actTime(d time.Duration) time.Time { return actNow.Add(d) }

func actPtr(t time.Time) *time.Time { return &t }

func actMeta(t time.Time) *metav1.Time { m := metav1.NewTime(t); return &m }

// actRA is an Eligible cluster-wide assignment of ClusterRole admin to the
// User alice, created a day before actNow and permanent, changed by mods.
func actRA(name string, mods ...func(*pimv1.RoleAssignment)) pimv1.RoleAssignment {
	ra := pimv1.RoleAssignment{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(actTime(-24 * time.Hour))},
		Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "alice"},
			RoleRef: actAdmin,
			Type:    pimv1.AssignmentEligible,
		},
	}
	for _, m := range mods {
		m(&ra)
	}
	return ra
}

func raEnds(t time.Time) func(*pimv1.RoleAssignment) {
	return func(ra *pimv1.RoleAssignment) { ra.Spec.EndTime = actMeta(t) }
}

func raStarts(t time.Time) func(*pimv1.RoleAssignment) {
	return func(ra *pimv1.RoleAssignment) { ra.Spec.StartTime = actMeta(t) }
}

func raNamespace(ns string) func(*pimv1.RoleAssignment) {
	return func(ra *pimv1.RoleAssignment) { ra.Spec.Namespace = ns }
}

func raSubject(s pimv1.Subject) func(*pimv1.RoleAssignment) {
	return func(ra *pimv1.RoleAssignment) { ra.Spec.Subject = s }
}

func actWindow(start time.Time, d time.Duration) Window {
	end := start.Add(d)
	return Window{Start: start, End: &end}
}

// joinedErrors returns the errors errors.Join put together (or err alone).
func joinedErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func assertReasons(t *testing.T, err error, want []string) {
	t.Helper()
	got := joinedErrors(err)
	if len(got) != len(want) {
		t.Fatalf("got %d reasons, want %d: %v", len(got), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(got[i].Error(), w) {
			t.Errorf("reason %d = %q, want it to contain %q", i, got[i].Error(), w)
		}
	}
}

func TestIsFinal(t *testing.T) {
	cases := []struct {
		state pimv1.ActivationState
		want  bool
	}{
		{pimv1.ActivationStateExpired, true},
		{pimv1.ActivationStateDenied, true},
		{pimv1.ActivationStateCancelled, true},
		{pimv1.ActivationStateDeactivated, true},
		{pimv1.ActivationStateFailed, true},
		{pimv1.ActivationStateTimedOut, true},
		{"", false},
		{pimv1.ActivationStatePending, false},
		{pimv1.ActivationStatePendingApproval, false},
		{pimv1.ActivationStateScheduled, false},
		{pimv1.ActivationStateActive, false},
		{"expired", false}, // states are case-sensitive
	}
	for _, tc := range cases {
		t.Run("state="+string(tc.state), func(t *testing.T) {
			if got := IsFinal(tc.state); got != tc.want {
				t.Fatalf("IsFinal(%q) = %v, want %v", tc.state, got, tc.want)
			}
		})
	}
}

func TestSubjectMatches(t *testing.T) {
	sa := pimv1.UserInfo{Username: "system:serviceaccount:build:ci", Groups: []string{"system:serviceaccounts"}}
	cases := []struct {
		name    string
		subject pimv1.Subject
		user    pimv1.UserInfo
		want    bool
	}{
		{"user by name", pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "alice"}, actAlice, true},
		{"user of another name", pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "alice"}, actBob, false},
		{"user subject named like a group of the user", pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "devs"}, actAlice, false},
		{"group the user is in", pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "devs"}, actAlice, true},
		{"group the user is not in", pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "devs"}, actBob, false},
		{"group named like the user", pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "alice"}, actAlice, false},
		{"service account", pimv1.Subject{Kind: pimv1.SubjectKindServiceAccount, Name: "ci", Namespace: "build"}, sa, true},
		{"service account of another namespace", pimv1.Subject{Kind: pimv1.SubjectKindServiceAccount, Name: "ci", Namespace: "prod"}, sa, false},
		{"service account vs a user named like it", pimv1.Subject{Kind: pimv1.SubjectKindServiceAccount, Name: "ci", Namespace: "build"}, pimv1.UserInfo{Username: "ci"}, false},
		{"unknown kind", pimv1.Subject{Kind: "Robot", Name: "alice"}, actAlice, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := SubjectMatches(tc.subject, tc.user); got != tc.want {
				t.Fatalf("SubjectMatches(%+v, %s) = %v, want %v", tc.subject, tc.user.Username, got, tc.want)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	clusterWide := actRA("cw")
	inProd := actRA("prod", raNamespace("prod"))
	cases := []struct {
		name      string
		ra        *pimv1.RoleAssignment
		roleRef   pimv1.RoleRef
		namespace string
		want      bool
	}{
		{"cluster-wide covers cluster-wide", &clusterWide, actAdmin, "", true},
		{"cluster-wide covers a namespace", &clusterWide, actAdmin, "prod", true},
		{"namespaced covers its namespace", &inProd, actAdmin, "prod", true},
		{"namespaced does not cover another namespace", &inProd, actAdmin, "staging", false},
		{"namespaced does not cover cluster-wide", &inProd, actAdmin, "", false},
		{"another role name", &clusterWide, actEdit, "prod", false},
		{"a Role of the same name", &clusterWide, pimv1.RoleRef{Kind: pimv1.RoleKindRole, Name: "admin"}, "prod", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Covers(tc.ra, tc.roleRef, tc.namespace); got != tc.want {
				t.Fatalf("Covers = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRequestedWindow(t *testing.T) {
	cases := []struct {
		name      string
		startTime *time.Time
		now       time.Time
		wantStart time.Time
		wantEnd   time.Time
	}{
		{"no startTime starts now, rounded down, and ends rounded up", nil, actTime(750 * time.Millisecond), actNow, actTime(90*time.Minute + time.Second)},
		{"a future startTime", actPtr(actTime(2 * time.Hour)), actTime(750 * time.Millisecond), actTime(2 * time.Hour), actTime(2*time.Hour + 90*time.Minute)},
		{"a past startTime starts now", actPtr(actTime(-time.Hour)), actTime(750 * time.Millisecond), actNow, actTime(90*time.Minute + time.Second)},
		{"a startTime of exactly now", actPtr(actNow), actNow, actNow, actTime(90 * time.Minute)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ar := &pimv1.ActivationRequest{Spec: pimv1.ActivationRequestSpec{Duration: metav1.Duration{Duration: 90 * time.Minute}}}
			if tc.startTime != nil {
				ar.Spec.StartTime = actMeta(*tc.startTime)
			}
			w := RequestedWindow(ar, tc.now)
			if !w.Start.Equal(tc.wantStart) {
				t.Errorf("Start = %v, want %v", w.Start, tc.wantStart)
			}
			if w.End == nil || !w.End.Equal(tc.wantEnd) {
				t.Errorf("End = %v, want %v", w.End, tc.wantEnd)
			}
		})
	}
}

// An activation never ends before the asked duration has passed: the
// start is recorded rounded down to the second, the end is the instant of
// activation plus the duration rounded up, so access lasts at least the
// duration and less than a second more.
func TestRequestedWindowRounding(t *testing.T) {
	for _, tc := range []struct {
		name               string
		subSecond          time.Duration
		duration           time.Duration
		wantStart, wantEnd time.Time
	}{
		{"a whole second", 0, time.Second, actNow, actTime(time.Second)},
		{"1 ns past the second", time.Nanosecond, time.Second, actNow, actTime(2 * time.Second)},
		{"15 ms past the second", 15 * time.Millisecond, time.Second, actNow, actTime(2 * time.Second)},
		{"999 ms past the second", 999 * time.Millisecond, time.Second, actNow, actTime(2 * time.Second)},
		{"a whole second, for an hour", 0, time.Hour, actNow, actTime(time.Hour)},
		{"1 ns past the second, for an hour", time.Nanosecond, time.Hour, actNow, actTime(time.Hour + time.Second)},
		{"15 ms past the second, for an hour", 15 * time.Millisecond, time.Hour, actNow, actTime(time.Hour + time.Second)},
		{"999 ms past the second, for an hour", 999 * time.Millisecond, time.Hour, actNow, actTime(time.Hour + time.Second)},
		{"a sub-second duration that fits in the same second", 0, 1500 * time.Millisecond, actNow, actTime(2 * time.Second)},
		{"a sub-second duration that spills over", 600 * time.Millisecond, 1500 * time.Millisecond, actNow, actTime(3 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := actNow.Add(tc.subSecond)
			ar := &pimv1.ActivationRequest{Spec: pimv1.ActivationRequestSpec{Duration: metav1.Duration{Duration: tc.duration}}}
			w := RequestedWindow(ar, now)
			if !w.Start.Equal(tc.wantStart) || w.End == nil || !w.End.Equal(tc.wantEnd) {
				t.Fatalf("RequestedWindow at %s = %v–%v, want %v–%v", now.Format(time.RFC3339Nano), w.Start, w.End, tc.wantStart, tc.wantEnd)
			}
			if held := w.End.Sub(now); held < tc.duration || held >= tc.duration+time.Second {
				t.Errorf("access held for %s, want at least %s and less than a second more", held, tc.duration)
			}
			if err := RecoveredWindowFits(ar, w, now); err != nil {
				t.Errorf("the window kubepim grants is not recoverable: %v", err)
			}
		})
	}
}

func TestEligibilityFor(t *testing.T) {
	sa := pimv1.UserInfo{Username: "system:serviceaccount:build:ci"}
	deleting := func(ra *pimv1.RoleAssignment) { ra.DeletionTimestamp = actMeta(actNow) }
	active := func(ra *pimv1.RoleAssignment) { ra.Spec.Type = pimv1.AssignmentActive }
	otherRole := func(ra *pimv1.RoleAssignment) { ra.Spec.RoleRef = actEdit }
	oneHour := actWindow(actNow, time.Hour)

	cases := []struct {
		name        string
		user        pimv1.UserInfo
		namespace   string
		want        Window
		assignments []pimv1.RoleAssignment
		wantName    string
		wantErr     []string
	}{
		{name: "user subject", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("a")}, wantName: "a"},
		{name: "group subject", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("g", raSubject(pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "devs"}))}, wantName: "g"},
		{name: "service account subject", user: sa, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("sa", raSubject(pimv1.Subject{Kind: pimv1.SubjectKindServiceAccount, Name: "ci", Namespace: "build"}))}, wantName: "sa"},
		{name: "someone else's assignment", user: actBob, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("a")},
			wantErr:     []string{"bob is not eligible for ClusterRole admin in namespace prod now"}},
		{name: "cluster-wide assignment covers a namespace", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("cw")}, wantName: "cw"},
		{name: "namespaced assignment covers its namespace", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("p", raNamespace("prod"))}, wantName: "p"},
		{name: "namespaced assignment does not cover another namespace", user: actAlice, namespace: "staging", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("p", raNamespace("prod"))},
			wantErr:     []string{"alice is not eligible for ClusterRole admin in namespace staging now"}},
		{name: "namespaced assignment does not cover cluster-wide", user: actAlice, namespace: "", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("p", raNamespace("prod"))},
			wantErr:     []string{"alice is not eligible for ClusterRole admin cluster-wide now"}},
		{name: "another role", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("e", otherRole)},
			wantErr:     []string{"alice is not eligible for ClusterRole admin in namespace prod now"}},
		{name: "an Active assignment is no eligibility", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("act", active)},
			wantErr:     []string{"not eligible"}},
		{name: "a deleting assignment is ignored", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("del", deleting)},
			wantErr:     []string{"not eligible"}},
		{name: "not yet started", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("later", raStarts(actTime(time.Hour)))},
			wantErr:     []string{"alice is not eligible"}},
		{name: "expired", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("old", raEnds(actTime(-time.Hour)))},
			wantErr:     []string{"alice is not eligible"}},
		{name: "ends exactly now counts as expired", user: actAlice, namespace: "prod", want: actWindow(actNow, 0),
			assignments: []pimv1.RoleAssignment{actRA("now", raEnds(actNow))},
			wantErr:     []string{"alice is not eligible"}},
		{name: "ends exactly when the window ends", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{actRA("exact", raEnds(actTime(time.Hour)))}, wantName: "exact"},
		{name: "ends before the requested window ends", user: actAlice, namespace: "prod", want: actWindow(actNow, 2*time.Hour),
			assignments: []pimv1.RoleAssignment{actRA("short", raEnds(actTime(30*time.Minute+40*time.Second)))},
			wantErr: []string{
				"your eligibility for ClusterRole admin in namespace prod (RoleAssignment short) ends at 2026-03-10T09:30:40Z",
				"before the requested activation would end at 2026-03-10T11:00:00Z",
				"request a duration of at most 30m0s",
			}},
		{name: "of several that end too soon, the latest is suggested", user: actAlice, namespace: "prod", want: actWindow(actNow, 2*time.Hour),
			assignments: []pimv1.RoleAssignment{
				actRA("s20", raEnds(actTime(20*time.Minute))),
				actRA("s50", raEnds(actTime(50*time.Minute))),
				actRA("s40", raEnds(actTime(40*time.Minute))),
			},
			wantErr: []string{"(RoleAssignment s50)", "at most 50m0s"}},
		{name: "one that lasts beats one that ends too soon", user: actAlice, namespace: "prod", want: actWindow(actNow, 2*time.Hour),
			assignments: []pimv1.RoleAssignment{actRA("short", raEnds(actTime(time.Hour))), actRA("long", raEnds(actTime(3*time.Hour)))},
			wantName:    "long"},
		{name: "picks the latest end", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{
				actRA("h3", raEnds(actTime(3*time.Hour))),
				actRA("h5", raEnds(actTime(5*time.Hour))),
				actRA("h4", raEnds(actTime(4*time.Hour))),
			},
			wantName: "h5"},
		{name: "picks a permanent one over any end", user: actAlice, namespace: "prod", want: oneHour,
			assignments: []pimv1.RoleAssignment{
				actRA("h3", raEnds(actTime(3*time.Hour))),
				actRA("forever"),
				actRA("h5", raEnds(actTime(5*time.Hour))),
			},
			wantName: "forever"},
		{name: "no assignments", user: actAlice, namespace: "prod", want: oneHour,
			wantErr: []string{"alice is not eligible for ClusterRole admin in namespace prod now: ask a platform admin"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EligibilityFor(tc.user, actAdmin, tc.namespace, tc.want, actNow, tc.assignments)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("EligibilityFor = %v, want an error", got.Name)
				}
				if got != nil {
					t.Errorf("EligibilityFor returned %s with its error", got.Name)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("EligibilityFor: %v", err)
			}
			if got == nil || got.Name != tc.wantName {
				t.Fatalf("EligibilityFor = %v, want %s", got, tc.wantName)
			}
			// It points into the slice it was given.
			found := false
			for i := range tc.assignments {
				found = found || got == &tc.assignments[i]
			}
			if !found {
				t.Errorf("EligibilityFor returned a copy, not an element of assignments")
			}
		})
	}
}

func TestCheckActivation(t *testing.T) {
	// The happy request: ClusterRole admin in prod for an hour, with all
	// that the strict policy below requires.
	newCheck := func() ActivationCheck {
		return ActivationCheck{
			Request: &pimv1.ActivationRequest{
				ObjectMeta: metav1.ObjectMeta{Name: "req-2"},
				Spec: pimv1.ActivationRequestSpec{
					RoleRef:       actAdmin,
					Namespace:     "prod",
					Duration:      metav1.Duration{Duration: time.Hour},
					Justification: "incident 42",
					Ticket:        &pimv1.Ticket{System: "JIRA", Number: "OPS-1"},
					Requester:     &actAlice,
				},
			},
			Requester: actAlice,
			Now:       actTime(500 * time.Millisecond),
			Setting: pimv1.RoleSettingSpec{Activation: pimv1.ActivationPolicy{
				MaxDuration:          metav1.Duration{Duration: 4 * time.Hour},
				RequireJustification: ptr.To(true),
				RequireTicket:        true,
				RequireMFA:           true,
			}},
			MFASatisfied: true,
			Assignments:  []pimv1.RoleAssignment{actRA("alice-admin", raNamespace("prod"))},
		}
	}
	active := func(name string, mods ...func(*pimv1.ActivationRequest)) *pimv1.ActivationRequest {
		ar := &pimv1.ActivationRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       pimv1.ActivationRequestSpec{RoleRef: actAdmin, Namespace: "prod", Duration: metav1.Duration{Duration: time.Hour}, Requester: &actAlice},
			Status:     pimv1.ActivationRequestStatus{State: pimv1.ActivationStateActive},
		}
		for _, m := range mods {
			m(ar)
		}
		return ar
	}
	open := func(name string, state pimv1.ActivationState) pimv1.ActivationRequest {
		ar := active(name)
		ar.Status.State = state
		return *ar
	}
	extending := func(c *ActivationCheck) {
		c.Request.Spec.Extends = "req-1"
		c.Extended = active("req-1")
		c.OpenRequests = []pimv1.ActivationRequest{*c.Extended}
	}

	cases := []struct {
		name         string
		mod          func(*ActivationCheck)
		wantEligible string
		wantErrs     []string
	}{
		{name: "happy path", mod: func(*ActivationCheck) {}, wantEligible: "alice-admin"},
		{name: "the maximum itself", mod: func(c *ActivationCheck) { c.Request.Spec.Duration.Duration = 4 * time.Hour }, wantEligible: "alice-admin"},
		{name: "nothing required, nothing given", mod: func(c *ActivationCheck) {
			c.Setting.Activation = pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: 4 * time.Hour}, RequireJustification: ptr.To(false)}
			c.Request.Spec.Justification, c.Request.Spec.Ticket, c.MFASatisfied = "", nil, false
		}, wantEligible: "alice-admin"},
		{name: "zero duration", mod: func(c *ActivationCheck) { c.Request.Spec.Duration.Duration = 0 },
			wantErrs: []string{`spec.duration must be positive, for example "1h" (at most 4h0m0s for ClusterRole admin in namespace prod)`}},
		{name: "negative duration", mod: func(c *ActivationCheck) { c.Request.Spec.Duration.Duration = -time.Hour },
			wantErrs: []string{"spec.duration must be positive"}},
		{name: "over the maximum", mod: func(c *ActivationCheck) { c.Request.Spec.Duration.Duration = 4*time.Hour + time.Second },
			wantEligible: "alice-admin",
			wantErrs:     []string{"spec.duration 4h0m1s exceeds the maximum activation of 4h0m0s for ClusterRole admin in namespace prod; request at most 4h0m0s"}},
		{name: "whitespace justification", mod: func(c *ActivationCheck) { c.Request.Spec.Justification = " \t\n " },
			wantEligible: "alice-admin",
			wantErrs:     []string{"ClusterRole admin in namespace prod requires a justification: set spec.justification"}},
		{name: "no ticket", mod: func(c *ActivationCheck) { c.Request.Spec.Ticket = nil },
			wantEligible: "alice-admin",
			wantErrs:     []string{"ClusterRole admin in namespace prod requires a ticket: set spec.ticket.system and spec.ticket.number"}},
		{name: "ticket without a system", mod: func(c *ActivationCheck) { c.Request.Spec.Ticket.System = "" },
			wantEligible: "alice-admin", wantErrs: []string{"requires a ticket"}},
		{name: "ticket with a blank number", mod: func(c *ActivationCheck) { c.Request.Spec.Ticket.Number = "  " },
			wantEligible: "alice-admin", wantErrs: []string{"requires a ticket"}},
		{name: "MFA required and not satisfied", mod: func(c *ActivationCheck) { c.MFASatisfied = false },
			wantEligible: "alice-admin",
			wantErrs:     []string{"ClusterRole admin in namespace prod requires multi-factor authentication: sign in with MFA, or give a one-time code in the kubepim.io/totp annotation"}},
		{name: "startTime in the past", mod: func(c *ActivationCheck) { c.Request.Spec.StartTime = actMeta(actTime(-2 * time.Minute)) },
			wantEligible: "alice-admin",
			wantErrs:     []string{"spec.startTime 2026-03-10T08:58:00Z is in the past; leave it out to start now"}},
		{name: "startTime a few seconds ago is allowed", mod: func(c *ActivationCheck) { c.Request.Spec.StartTime = actMeta(actTime(-30 * time.Second)) },
			wantEligible: "alice-admin"},
		{name: "startTime in the future", mod: func(c *ActivationCheck) { c.Request.Spec.StartTime = actMeta(actTime(3 * time.Hour)) },
			wantEligible: "alice-admin"},
		{name: "a second open request", mod: func(c *ActivationCheck) {
			c.OpenRequests = []pimv1.ActivationRequest{open("req-1", pimv1.ActivationStatePendingApproval)}
		}, wantEligible: "alice-admin",
			wantErrs: []string{"you already have an open request for ClusterRole admin in namespace prod: ActivationRequest req-1 (PendingApproval); cancel it, or extend it with spec.extends"}},
		{name: "an open request with no state yet is Pending", mod: func(c *ActivationCheck) {
			c.OpenRequests = []pimv1.ActivationRequest{open("req-1", "")}
		}, wantEligible: "alice-admin", wantErrs: []string{"ActivationRequest req-1 (Pending)"}},
		{name: "each open request is reported", mod: func(c *ActivationCheck) {
			c.OpenRequests = []pimv1.ActivationRequest{open("req-0", pimv1.ActivationStateScheduled), open("req-1", pimv1.ActivationStateActive)}
		}, wantEligible: "alice-admin", wantErrs: []string{"ActivationRequest req-0 (Scheduled)", "ActivationRequest req-1 (Active)"}},
		{name: "the request itself is not a second one", mod: func(c *ActivationCheck) {
			c.OpenRequests = []pimv1.ActivationRequest{open("req-2", "")}
		}, wantEligible: "alice-admin"},
		{name: "extends an Active request of its own", mod: extending, wantEligible: "alice-admin"},
		{name: "extends a request that does not exist", mod: func(c *ActivationCheck) { c.Request.Spec.Extends = "req-1" },
			wantEligible: "alice-admin",
			wantErrs:     []string{`spec.extends names ActivationRequest "req-1", which does not exist`}},
		{name: "extends someone else's request", mod: func(c *ActivationCheck) {
			extending(c)
			c.Extended.Spec.Requester = &actBob
		}, wantEligible: "alice-admin", wantErrs: []string{"spec.extends names ActivationRequest req-1, which is not yours"}},
		{name: "extends a request with no requester", mod: func(c *ActivationCheck) {
			extending(c)
			c.Extended.Spec.Requester = nil
		}, wantEligible: "alice-admin", wantErrs: []string{"which is not yours"}},
		{name: "extends a request for another role", mod: func(c *ActivationCheck) {
			extending(c)
			c.Extended.Spec.RoleRef = actEdit
		}, wantEligible: "alice-admin",
			wantErrs: []string{"spec.extends names ActivationRequest req-1, which is for ClusterRole edit in namespace prod, not ClusterRole admin in namespace prod"}},
		{name: "extends a request for another namespace", mod: func(c *ActivationCheck) {
			extending(c)
			c.Extended.Spec.Namespace = ""
		}, wantEligible: "alice-admin",
			wantErrs: []string{"which is for ClusterRole admin cluster-wide, not ClusterRole admin in namespace prod"}},
		{name: "extends an Expired request", mod: func(c *ActivationCheck) {
			extending(c)
			c.Extended.Status.State = pimv1.ActivationStateExpired
		}, wantEligible: "alice-admin",
			wantErrs: []string{"spec.extends names ActivationRequest req-1, which is Expired; only an Active request can be extended"}},
		{name: "extends a request with no state", mod: func(c *ActivationCheck) {
			extending(c)
			c.Extended.Status.State = ""
		}, wantEligible: "alice-admin", wantErrs: []string{"which is Pending; only an Active request"}},
		{name: "an extension with a startTime", mod: func(c *ActivationCheck) {
			extending(c)
			c.Request.Spec.StartTime = actMeta(actTime(time.Hour))
		}, wantEligible: "alice-admin", wantErrs: []string{"an extension starts at once: leave spec.startTime out"}},
		{name: "an extension of someone else's Expired request for another role", mod: func(c *ActivationCheck) {
			extending(c)
			c.Extended.Spec.Requester = &actBob
			c.Extended.Spec.RoleRef = actEdit
			c.Extended.Status.State = pimv1.ActivationStateExpired
		}, wantEligible: "alice-admin", wantErrs: []string{"not yours", "which is for ClusterRole edit", "which is Expired"}},
		{name: "not eligible", mod: func(c *ActivationCheck) { c.Assignments = nil },
			wantErrs: []string{"alice is not eligible for ClusterRole admin in namespace prod now"}},
		{name: "eligibility ends too soon", mod: func(c *ActivationCheck) {
			c.Assignments = []pimv1.RoleAssignment{actRA("alice-admin", raEnds(actTime(45*time.Minute)))}
		}, // Asked at 09:00:00.5, 45m would end at 09:45:01 (rounded up): 44m is the most that fits.
			wantErrs: []string{"(RoleAssignment alice-admin) ends at 2026-03-10T09:45:00Z, before the requested activation would end at 2026-03-10T10:00:01Z; request a duration of at most 44m0s"}},
		{name: "a duration that ends, rounded up, exactly when eligibility ends", mod: func(c *ActivationCheck) {
			c.Request.Spec.Duration.Duration = 44*time.Minute + 59*time.Second
			c.Assignments = []pimv1.RoleAssignment{actRA("alice-admin", raEnds(actTime(45*time.Minute)))}
		}, wantEligible: "alice-admin"},
		{name: "a duration that ends, rounded up, a second after eligibility ends", mod: func(c *ActivationCheck) {
			c.Request.Spec.Duration.Duration = 45 * time.Minute
			c.Assignments = []pimv1.RoleAssignment{actRA("alice-admin", raEnds(actTime(45*time.Minute)))}
		}, wantErrs: []string{"before the requested activation would end at 2026-03-10T09:45:01Z"}},
		{name: "eligibility checked against a future startTime", mod: func(c *ActivationCheck) {
			c.Request.Spec.StartTime = actMeta(actTime(time.Hour))
			c.Assignments = []pimv1.RoleAssignment{actRA("alice-admin", raEnds(actTime(90*time.Minute)))}
		}, wantErrs: []string{"before the requested activation would end at 2026-03-10T11:00:00Z"}},
		{name: "every reason at once", mod: func(c *ActivationCheck) {
			c.Request.Spec.Duration.Duration = 5 * time.Hour
			c.Request.Spec.Justification = ""
			c.Request.Spec.Ticket = nil
			c.MFASatisfied = false
			c.Request.Spec.StartTime = actMeta(actTime(-time.Hour))
			c.OpenRequests = []pimv1.ActivationRequest{open("req-1", pimv1.ActivationStateActive)}
			c.Assignments = nil
		}, wantErrs: []string{
			"exceeds the maximum activation",
			"requires a justification",
			"requires a ticket",
			"requires multi-factor authentication",
			"is in the past",
			"you already have an open request",
			"alice is not eligible",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCheck()
			tc.mod(&c)
			eligible, err := CheckActivation(c)
			assertReasons(t, err, tc.wantErrs)
			switch {
			case tc.wantEligible == "" && eligible != nil:
				t.Errorf("eligible = %s, want none", eligible.Name)
			case tc.wantEligible != "" && (eligible == nil || eligible.Name != tc.wantEligible):
				t.Errorf("eligible = %v, want %s", eligible, tc.wantEligible)
			}
		})
	}
}

// The reasons are joined in a fixed order, one a line.
func TestCheckActivationJoinsOneReasonALine(t *testing.T) {
	c := ActivationCheck{
		Request: &pimv1.ActivationRequest{Spec: pimv1.ActivationRequestSpec{RoleRef: actAdmin, Duration: metav1.Duration{Duration: 2 * time.Hour}}},
		Now:     actNow,
		Setting: pimv1.RoleSettingSpec{Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}, RequireJustification: ptr.To(true)}},
		Assignments: []pimv1.RoleAssignment{
			actRA("alice-admin"),
		},
		Requester: actAlice,
	}
	_, err := CheckActivation(c)
	if err == nil {
		t.Fatal("CheckActivation accepted a request over the maximum without justification")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "spec.duration 2h0m0s exceeds") || !strings.HasPrefix(lines[1], "ClusterRole admin cluster-wide requires a justification") {
		t.Fatalf("error lines = %q", lines)
	}
}

func TestEligibilityEndingBeforeTheRequestedStart(t *testing.T) {
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	now := start.Add(-2 * time.Hour)
	ra := pimv1.RoleAssignment{Spec: pimv1.RoleAssignmentSpec{
		Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "alice"},
		RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "view"},
		Type:    pimv1.AssignmentEligible,
		EndTime: &metav1.Time{Time: start.Add(-30 * time.Minute)},
	}}
	ra.Name = "alice-view"
	ra.CreationTimestamp = metav1.NewTime(now.Add(-time.Hour))
	end := start.Add(time.Hour)
	_, err := EligibilityFor(pimv1.UserInfo{Username: "alice"}, ra.Spec.RoleRef, "", Window{Start: start, End: &end}, now, []pimv1.RoleAssignment{ra})
	if err == nil || !strings.Contains(err.Error(), "before the requested start") || strings.Contains(err.Error(), "at most -") {
		t.Fatalf("err = %v, want a message about the start, not a negative duration", err)
	}
}

func TestIdleDeadline(t *testing.T) {
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: start.Add(d)} }
	ar := func(activated, used *metav1.Time) *pimv1.ActivationRequest {
		return &pimv1.ActivationRequest{Status: pimv1.ActivationRequestStatus{ActivatedAt: activated, LastUsedAt: used}}
	}
	thirty := &metav1.Duration{Duration: 30 * time.Minute}
	for _, tc := range []struct {
		name string
		ar   *pimv1.ActivationRequest
		idle *metav1.Duration
		want time.Time
	}{
		{"no idle timeout", ar(at(0), nil), nil, time.Time{}},
		{"a zero idle timeout is none", ar(at(0), nil), &metav1.Duration{}, time.Time{}},
		{"not started", ar(nil, nil), thirty, time.Time{}},
		{"never used: from its start", ar(at(0), nil), thirty, start.Add(30 * time.Minute)},
		{"from its last use", ar(at(0), at(20*time.Minute)), thirty, start.Add(50 * time.Minute)},
		{"a use before its start (an older request's, carried over) counts from the start", ar(at(0), at(-time.Hour)), thirty, start.Add(30 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IdleDeadline(tc.ar, tc.idle); !got.Equal(tc.want) {
				t.Fatalf("IdleDeadline = %v, want %v", got, tc.want)
			}
		})
	}
}
