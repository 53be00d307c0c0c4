package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestReviewInstances(t *testing.T) {
	first := time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC)
	three := int32(3)
	cases := []struct {
		name       string
		recurrence pimv1.AccessReviewRecurrence
		duration   time.Duration
		n          int32
		wantStart  time.Time
		wantDue    time.Time
		exists     bool
	}{
		{"one-time", pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceOneTime}, 7 * 24 * time.Hour, 1, first, first.Add(7 * 24 * time.Hour), true},
		{"one-time has no second", pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceOneTime}, time.Hour, 2, first.Add(0), first.Add(time.Hour), false},
		{"weekly, third", pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceWeekly}, time.Hour, 3, first.AddDate(0, 0, 14), first.AddDate(0, 0, 14).Add(time.Hour), true},
		{"weekly duration capped at the period", pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceWeekly}, 30 * 24 * time.Hour, 1, first, first.AddDate(0, 0, 7), true},
		{"quarterly, second", pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceQuarterly}, time.Hour, 2, first.AddDate(0, 3, 0), first.AddDate(0, 3, 0).Add(time.Hour), true},
		{"annually, second", pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceAnnually}, time.Hour, 2, first.AddDate(1, 0, 0), first.AddDate(1, 0, 0).Add(time.Hour), true},
		{"occurrences reached", pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceMonthly, Occurrences: three}, time.Hour, 4, first.AddDate(0, 3, 0), first.AddDate(0, 3, 0).Add(time.Hour), false},
		{"past the end date", pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceWeekly, EndDate: &metav1.Time{Time: first.AddDate(0, 0, 10)}}, time.Hour, 3, first.AddDate(0, 0, 14), first.AddDate(0, 0, 14).Add(time.Hour), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := pimv1.AccessReviewSpec{Recurrence: tc.recurrence, Duration: metav1.Duration{Duration: tc.duration}}
			start, due := ReviewInstance(spec, first, tc.n)
			if tc.exists && (!start.Equal(tc.wantStart) || !due.Equal(tc.wantDue)) {
				t.Errorf("instance %d = %v..%v, want %v..%v", tc.n, start, due, tc.wantStart, tc.wantDue)
			}
			if got := HasInstance(spec, first, tc.n); got != tc.exists {
				t.Errorf("HasInstance(%d) = %v, want %v", tc.n, got, tc.exists)
			}
		})
	}
}

func TestRecommend(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	eligible := func(assignedAgo time.Duration) *pimv1.RoleAssignment {
		return &pimv1.RoleAssignment{Spec: pimv1.RoleAssignmentSpec{Type: pimv1.AssignmentEligible,
			Subject: pimv1.Subject{Kind: "User", Name: "alice"}, RoleRef: pimv1.RoleRef{Kind: "ClusterRole", Name: "ops"},
			StartTime: &metav1.Time{Time: now.Add(-assignedAgo)}}}
	}
	activated := func(user, role string, ago time.Duration) pimv1.ActivationRequest {
		return pimv1.ActivationRequest{Spec: pimv1.ActivationRequestSpec{Requester: &pimv1.UserInfo{Username: user}, RoleRef: pimv1.RoleRef{Kind: "ClusterRole", Name: role}},
			Status: pimv1.ActivationRequestStatus{ActivatedAt: &metav1.Time{Time: now.Add(-ago)}}}
	}
	used := func(ar pimv1.ActivationRequest, ago time.Duration) pimv1.ActivationRequest {
		ar.Status.LastUsedAt = &metav1.Time{Time: now.Add(-ago)}
		return ar
	}
	eligibleUsed := func(assignedAgo, usedAgo time.Duration) *pimv1.RoleAssignment {
		ra := eligible(assignedAgo)
		ra.Status.LastUsedAt = &metav1.Time{Time: now.Add(-usedAgo)}
		return ra
	}
	cases := []struct {
		name        string
		ra          *pimv1.RoleAssignment
		activations []pimv1.ActivationRequest
		want        pimv1.ReviewDecision
		reason      string
		tracked     bool
	}{
		{"used last week", eligible(100 * day), []pimv1.ActivationRequest{activated("alice", "ops", 7*day)}, pimv1.ReviewDecisionApprove, "activated", false},
		{"last used long ago", eligible(100 * day), []pimv1.ActivationRequest{activated("alice", "ops", 60*day)}, pimv1.ReviewDecisionDeny, "not activated in the last 30 days", false},
		{"never used, assigned long ago", eligible(100 * day), nil, pimv1.ReviewDecisionDeny, "never activated", false},
		{"never used, newly assigned", eligible(2 * day), nil, pimv1.ReviewDecisionApprove, "assigned within", false},
		{"someone else's activation does not count", eligible(100 * day), []pimv1.ActivationRequest{activated("bob", "ops", day)}, pimv1.ReviewDecisionDeny, "never activated", false},
		{"another role's activation does not count", eligible(100 * day), []pimv1.ActivationRequest{activated("alice", "other", day)}, pimv1.ReviewDecisionDeny, "never activated", false},
		// Authorizer mode: kubepim sees each use.
		{name: "used last week through the eligibility", ra: eligibleUsed(100*day, 7*day), want: pimv1.ReviewDecisionApprove, reason: "last used 2026-11-17T12:00:00Z", tracked: true},
		{name: "used last week through an activation", ra: eligible(100 * day), activations: []pimv1.ActivationRequest{used(activated("alice", "ops", 8*day), 7*day)},
			want: pimv1.ReviewDecisionApprove, reason: "last used", tracked: true},
		{name: "activated last week, last used long ago", ra: eligibleUsed(100*day, 60*day), activations: []pimv1.ActivationRequest{activated("alice", "ops", 7*day)},
			want: pimv1.ReviewDecisionDeny, reason: "not used in the last 30 days (last used 2026-09-25T12:00:00Z)", tracked: true},
		{name: "activated last week, never used", ra: eligible(100 * day), activations: []pimv1.ActivationRequest{activated("alice", "ops", 7*day)},
			want: pimv1.ReviewDecisionDeny, reason: "activated 2026-11-17T12:00:00Z but never used", tracked: true},
		{name: "the latest use wins", ra: eligibleUsed(100*day, 60*day), activations: []pimv1.ActivationRequest{used(activated("alice", "ops", 3*day), 2*day)},
			want: pimv1.ReviewDecisionApprove, reason: "last used 2026-11-22", tracked: true},
		{name: "someone else's use does not count", ra: eligible(100 * day), activations: []pimv1.ActivationRequest{used(activated("bob", "ops", 3*day), 2*day)},
			want: pimv1.ReviewDecisionDeny, reason: "never activated", tracked: true},
		{name: "a use in the future (a clock ahead) does not count", ra: eligibleUsed(100*day, -day), want: pimv1.ReviewDecisionDeny, reason: "never activated", tracked: true},
		{name: "never used, newly assigned", ra: eligible(2 * day), want: pimv1.ReviewDecisionApprove, reason: "assigned within", tracked: true},
		{name: "a recorded use counts untracked too (mode switched back)", ra: eligibleUsed(100*day, 60*day), activations: []pimv1.ActivationRequest{activated("alice", "ops", 60*day)},
			want: pimv1.ReviewDecisionDeny, reason: "not used in the last 30 days"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, reason, _ := Recommend(tc.ra, tc.activations, now, 30, tc.tracked)
			if got != tc.want || !strings.Contains(reason, tc.reason) {
				t.Fatalf("Recommend = %s (%s), want %s (%s)", got, reason, tc.want, tc.reason)
			}
		})
	}
}

func TestReviewerViaAndDefaults(t *testing.T) {
	alice := pimv1.Subject{Kind: "User", Name: "alice"}
	named := pimv1.AccessReviewSpec{ReviewerType: pimv1.ReviewerTypeNamed, Reviewers: []pimv1.Principal{{Kind: "Group", Name: "leads"}, {Kind: "Group", Name: "sre"}, {Kind: "User", Name: "dana"}},
		FallbackReviewers: []pimv1.Principal{{Kind: "User", Name: "root"}}}
	self := pimv1.AccessReviewSpec{ReviewerType: pimv1.ReviewerTypeSelf, FallbackReviewers: []pimv1.Principal{{Kind: "User", Name: "root"}, {Kind: "Group", Name: "leads"}}}
	many := make([]string, 0, 201)
	for i := 0; i < 200; i++ {
		many = append(many, fmt.Sprintf("team-%d", i))
	}
	cases := []struct {
		name    string
		spec    pimv1.AccessReviewSpec
		subject pimv1.Subject
		user    pimv1.UserInfo
		via     string // "" = refused
	}{
		{"named, via group", named, alice, pimv1.UserInfo{Username: "erin", Groups: []string{"leads"}}, "Group leads"},
		{"named, first of the review's groups, in 200", named, alice, pimv1.UserInfo{Username: "erin", Groups: append(slices.Clone(many), "sre", "leads")}, "Group leads"},
		{"named by name before group", named, alice, pimv1.UserInfo{Username: "dana", Groups: []string{"sre"}}, "User dana"},
		{"named, fallback", named, alice, pimv1.UserInfo{Username: "root"}, "User root"},
		{"named, stranger", named, alice, pimv1.UserInfo{Username: "mallory", Groups: many}, ""},
		{"named, own access", named, alice, pimv1.UserInfo{Username: "alice", Groups: []string{"leads"}}, ""},
		{"named, own access through a group", named, pimv1.Subject{Kind: "Group", Name: "sre"}, pimv1.UserInfo{Username: "erin", Groups: []string{"leads", "sre"}}, ""},
		{"self, assignee", self, alice, pimv1.UserInfo{Username: "alice"}, "Self"},
		{"self, member of the assigned group", self, pimv1.Subject{Kind: "Group", Name: "ops"}, pimv1.UserInfo{Username: "bob", Groups: []string{"ops"}}, "Self"},
		{"self, someone else", self, alice, pimv1.UserInfo{Username: "bob"}, ""},
		{"self, fallback", self, alice, pimv1.UserInfo{Username: "root"}, "User root"},
		{"self, fallback group", self, alice, pimv1.UserInfo{Username: "erin", Groups: []string{"leads"}}, "Group leads"},
	}
	for _, tc := range cases {
		via, err := ReviewerVia(tc.spec, tc.subject, "abc", tc.user)
		if via != tc.via || (err == nil) != (tc.via != "") {
			t.Errorf("%s: ReviewerVia = %q, %v; want %q", tc.name, via, err, tc.via)
		}
		if (MayReview(tc.spec, tc.subject, "abc", tc.user) == nil) != (tc.via != "") {
			t.Errorf("%s: MayReview disagrees with ReviewerVia", tc.name)
		}
	}
	for def, want := range map[pimv1.ReviewDecision]pimv1.ReviewDecision{
		pimv1.ReviewDecisionNone: "", pimv1.ReviewDecisionApprove: pimv1.ReviewDecisionApprove,
		pimv1.ReviewDecisionDeny: pimv1.ReviewDecisionDeny, pimv1.ReviewDecisionRecommendation: pimv1.ReviewDecisionDeny,
	} {
		if got := FinalReviewDecision("", pimv1.ReviewDecisionDeny, def); got != want {
			t.Errorf("FinalReviewDecision(default %s) = %q, want %q", def, got, want)
		}
	}
	if got := FinalReviewDecision(pimv1.ReviewDecisionApprove, pimv1.ReviewDecisionDeny, pimv1.ReviewDecisionDeny); got != pimv1.ReviewDecisionApprove {
		t.Errorf("a reviewer's decision must stand over the default, got %q", got)
	}
}

func TestReviewsAs(t *testing.T) {
	named := pimv1.AccessReviewSpec{ReviewerType: pimv1.ReviewerTypeNamed, Reviewers: []pimv1.Principal{{Kind: "Group", Name: "leads"}},
		FallbackReviewers: []pimv1.Principal{{Kind: "User", Name: "root"}}}
	self := pimv1.AccessReviewSpec{ReviewerType: pimv1.ReviewerTypeSelf, FallbackReviewers: []pimv1.Principal{{Kind: "Group", Name: "leads"}}}
	for _, tc := range []struct {
		spec pimv1.AccessReviewSpec
		user pimv1.UserInfo
		want string
	}{
		{named, pimv1.UserInfo{Username: "erin", Groups: []string{"leads"}}, "Group leads"},
		{named, pimv1.UserInfo{Username: "root"}, "User root"},
		{named, pimv1.UserInfo{Username: "mallory"}, ""},
		{self, pimv1.UserInfo{Username: "bob"}, "Self"},
		{self, pimv1.UserInfo{Username: "erin", Groups: []string{"leads"}}, "Group leads"},
	} {
		if got := ReviewsAs(tc.spec, tc.user); got != tc.want {
			t.Errorf("ReviewsAs(%s, %s) = %q, want %q", tc.spec.ReviewerType, tc.user.Username, got, tc.want)
		}
	}
	if got := DescribeReviewers(named); got != "Group leads, User root" {
		t.Errorf("DescribeReviewers = %q", got)
	}
}

func TestReviewItemName(t *testing.T) {
	uid := "3b0b6f23-d319-49ce-b3fe-68979fd7e02f"
	if got := ReviewItemName("quarterly", uid, 3, "0123456789ab"); got != "quarterly.3b0b6f23.3.0123456789ab" {
		t.Errorf("short name: %q", got)
	}
	if ReviewItemName("quarterly", uid, 3, "0123456789ab") == ReviewItemName("quarterly", "4c0b6f23-d319-49ce-b3fe-68979fd7e02f", 3, "0123456789ab") {
		t.Error("a review created again under the same name must not meet its predecessor's items")
	}
	long := strings.Repeat("a", 253)
	a, b := ReviewItemName(long, uid, 1, "0123456789ab"), ReviewItemName(long[:252]+"b", uid, 1, "0123456789ab")
	if len(a) > 253 || a == b {
		t.Errorf("long names must fit and stay distinct: %q %q", a, b)
	}
}
