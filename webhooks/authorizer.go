package webhooks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/authz/rules"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/policy"
)

// AuthorizerPath is where the manager's webhook server answers the API
// server's SubjectAccessReviews in --access-mode=authorizer.
const AuthorizerPath = "/authorize"

// maxAuthorizeBody bounds a SubjectAccessReview the authorizer reads: a
// user in 10,000 groups fits; anything larger is refused, and the API
// server's failurePolicy (NoOpinion) applies.
const maxAuthorizeBody = 4 << 20

// The manager's cache holds roles in authorizer mode: the decision reads
// their rules at the instant of each request.
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;roles,verbs=list;watch

var (
	authorizerDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubepim_authorizer_decisions_total",
		Help: "SubjectAccessReviews kubepim's authorizer answered, by decision (allowed, no-opinion, error).",
	}, []string{"decision"})
	authorizerSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kubepim_authorizer_decision_seconds",
		Help:    "Seconds kubepim's authorizer took to decide, from the decoded request to the decision (reads of its cache included).",
		Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1},
	})
)

func init() {
	metrics.Registry.MustRegister(authorizerDecisions, authorizerSeconds)
}

// accessAuthorizer is the authorization webhook: the API server sends it
// each request RBAC did not allow (the matchConditions of
// config/authorizer keep system users and kubepim itself away), and it
// answers allowed when an activation in force now allows it
// (policy.DecideAccess), and no opinion otherwise — never denied, so the
// authorizers after it still have their say. Everything is read from the
// manager's cache at the instant of the request; nothing is cached between
// requests, and the API server is told not to cache the answers either.
type accessAuthorizer struct {
	cache client.Reader
	clock clock.PassiveClock
	log   logr.Logger
	// usage records when each activation (and its eligibility) was last
	// used; nil records nothing.
	usage *usageRecorder
}

func (a *accessAuthorizer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a SubjectAccessReview", http.StatusMethodNotAllowed)
		return
	}
	var sar authorizationv1.SubjectAccessReview
	if err := json.NewDecoder(io.LimitReader(r.Body, maxAuthorizeBody)).Decode(&sar); err != nil {
		http.Error(w, "want a SubjectAccessReview (authorization.k8s.io/v1) as JSON", http.StatusBadRequest)
		return
	}
	if sar.APIVersion != authorizationv1.SchemeGroupVersion.String() || sar.Kind != "SubjectAccessReview" {
		http.Error(w, "want apiVersion authorization.k8s.io/v1, kind SubjectAccessReview (subjectAccessReviewVersion: v1)", http.StatusBadRequest)
		return
	}
	// The decision's own duration, for the metric: measured on the wall
	// clock on purpose (a fake clock would make it zero); no decision reads it.
	start := time.Now()
	d, err := a.decide(r.Context(), sar.Spec)
	authorizerSeconds.Observe(time.Since(start).Seconds())
	status := authorizationv1.SubjectAccessReviewStatus{Allowed: d.Allowed, Reason: d.Reason}
	switch {
	case err != nil:
		// No opinion, as for any failure: access kubepim cannot confirm is
		// not given.
		authorizerDecisions.WithLabelValues("error").Inc()
		a.log.Error(err, "authorizer: reading the cache", "user", sar.Spec.User)
		status = authorizationv1.SubjectAccessReviewStatus{EvaluationError: "kubepim could not read its cache"}
	case d.Allowed:
		authorizerDecisions.WithLabelValues("allowed").Inc()
		a.log.V(1).Info("authorizer: allowed", "user", sar.Spec.User, "activation", d.Activation)
		a.usage.Record(d.Activation, d.Eligibility, a.clock.Now())
	default:
		authorizerDecisions.WithLabelValues("no-opinion").Inc()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(authorizationv1.SubjectAccessReview{TypeMeta: sar.TypeMeta, Status: status})
}

// decide gathers, from the cache, what policy.DecideAccess needs about
// this user: their ActivationRequests, the assignments whose subject is
// the requester each of those was made by (by name, group or
// ServiceAccount: the only ones the eligibility check can count), the
// settings of their roles, their own assignments (for the hint), and the
// rules of every role involved. Assignments are read by subject, not by
// role: a role thousands are eligible for would otherwise cost a copy of
// every one of its assignments at each request (docs/performance.md).
func (a *accessAuthorizer) decide(ctx context.Context, spec authorizationv1.SubjectAccessReviewSpec) (policy.AccessDecision, error) {
	user := pimv1.UserInfo{Username: spec.User, UID: spec.UID, Groups: spec.Groups}
	in := policy.AccessInput{Now: a.clock.Now(), User: user, Attributes: rules.FromSpec(spec), Rules: map[policy.RoleID][]rbacv1.PolicyRule{}}
	if user.Username == "" {
		return policy.AccessDecision{}, nil
	}
	var err error
	if in.Activations, err = lookup.ActivationsOf(ctx, a.cache, user.Username); err != nil {
		return policy.AccessDecision{}, err
	}
	seen := map[types.UID]bool{}
	addAssignments := func(ras []pimv1.RoleAssignment) {
		for _, ra := range ras {
			if !seen[ra.UID] {
				seen[ra.UID] = true
				in.Assignments = append(in.Assignments, ra)
			}
		}
	}
	roleSeen := map[policy.RoleID]bool{}
	addRole := func(id policy.RoleID) error {
		if roleSeen[id] {
			return nil
		}
		roleSeen[id] = true
		rs, err := a.rules(ctx, id)
		if err == nil && rs != nil {
			in.Rules[id] = rs
		}
		return err
	}
	bySubject := map[string][]pimv1.RoleAssignment{}
	assignmentsFor := func(u pimv1.UserInfo) ([]pimv1.RoleAssignment, error) {
		key := u.Username + "\x00" + strings.Join(u.Groups, "\x00")
		if ras, ok := bySubject[key]; ok {
			return ras, nil
		}
		ras, err := lookup.AssignmentsFor(ctx, a.cache, u)
		if err == nil {
			bySubject[key] = ras
		}
		return ras, err
	}
	settingsSeen := map[policy.RoleID]bool{}
	for _, ar := range in.Activations {
		if policy.IsFinal(ar.Status.State) {
			continue
		}
		id := policy.RoleOf(ar.Spec.RoleRef, ar.Spec.Namespace)
		if err := addRole(id); err != nil {
			return policy.AccessDecision{}, err
		}
		// The requester as kubepim's webhook stamped them (their groups
		// then), which is whom the eligibility check matches.
		if ar.Spec.Requester != nil {
			ras, err := assignmentsFor(*ar.Spec.Requester)
			if err != nil {
				return policy.AccessDecision{}, err
			}
			addAssignments(ras)
		}
		if !settingsSeen[id] {
			settingsSeen[id] = true
			rss, err := lookup.SettingsOf(ctx, a.cache, ar.Spec.RoleRef, ar.Spec.Namespace)
			if err != nil {
				return policy.AccessDecision{}, err
			}
			in.Settings = append(in.Settings, rss...)
		}
	}
	if d := policy.DecideAccess(in); d.Allowed {
		return d, nil
	}
	// Denied: what could the user activate that would allow it?
	own, err := assignmentsFor(user)
	if err != nil {
		return policy.AccessDecision{}, err
	}
	for _, ra := range own {
		if ra.Spec.Type == pimv1.AssignmentEligible {
			if err := addRole(policy.RoleOf(ra.Spec.RoleRef, ra.Spec.Namespace)); err != nil {
				return policy.AccessDecision{}, err
			}
		}
	}
	addAssignments(own)
	return policy.DecideAccess(in), nil
}

// rules reads a role's rules from the cache; nil when it does not exist.
func (a *accessAuthorizer) rules(ctx context.Context, id policy.RoleID) ([]rbacv1.PolicyRule, error) {
	rs, _, err := lookup.RoleRules(ctx, a.cache, id.Kind, id.Name, id.Namespace)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rs == nil {
		rs = []rbacv1.PolicyRule{}
	}
	return rs, nil
}
