package webhooks

import (
	"context"
	"fmt"
	"maps"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/authz"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/policy"
)

// +kubebuilder:webhook:path=/validate-kubepim-io-v1alpha1-activationrequest,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=activationrequests,verbs=create;update,versions=v1alpha1,name=vactivationrequest.kubepim.io,admissionReviewVersions=v1

// VerbDeactivate is the RBAC verb on activationrequests that lets someone
// other than the requester deactivate an active request.
const VerbDeactivate = "deactivate"

// maxUserAnnotationBytes bounds the annotations of a request that kubepim
// does not write: a requester padding their own request to the object's
// size limit would keep an administrator's deactivation from fitting.
const maxUserAnnotationBytes = 32 << 10

// activationValidator refuses requests the role's policy does not allow,
// and cancellations or deactivations by people who may not make them.
type activationValidator struct {
	handlerBase
	keys *approval.Keys
}

func (v *activationValidator) validate(ctx context.Context, req Request[*pimv1.ActivationRequest]) field.ErrorList {
	switch req.Operation {
	case admissionv1.Create:
		return v.validateCreate(ctx, req.New, req.User)
	case admissionv1.Update:
		if errs := boundManagers(req.Old, req.New); len(errs) > 0 {
			return errs
		}
		return v.validateUpdate(ctx, req.Old, req.New, req.User)
	}
	return nil
}

func (v *activationValidator) validateCreate(ctx context.Context, ar *pimv1.ActivationRequest, user *pimv1.UserInfo) field.ErrorList {
	// At create as on every update: a request created padded would leave
	// no room for an administrator's deactivation either.
	if n := userAnnotationBytes(ar.Annotations); n > maxUserAnnotationBytes {
		return forbidden(annotationsPath, fmt.Sprintf("this request's annotations would hold %d bytes; keep them under %d, so that kubepim's own annotations "+
			"(a deactivation, an approval) always fit", n, maxUserAnnotationBytes))
	}
	// The mutating webhook stamped the requester; a mismatch means it did
	// not run, and nothing typed by a client is trusted.
	if ar.Spec.Requester == nil || !equality.Semantic.DeepEqual(*ar.Spec.Requester, *user) {
		return forbidden(specPath.Child("requester"), "spec.requester must be the authenticated user; it is set by kubepim's mutating webhook, which did not run")
	}
	if ar.Spec.MFA != nil && ar.Spec.MFA.Method == pimv1.MFAMethodClaim && !v.cfg.mfaClaimed(user) {
		return forbidden(specPath.Child("mfa"), "spec.mfa is set by kubepim's mutating webhook alone")
	}
	setting, _, err := lookup.EffectiveSetting(ctx, v.cache, ar.Spec.RoleRef, ar.Spec.Namespace)
	if err != nil {
		return settingError(specPath.Child("roleRef"), err)
	}
	// The requester's own assignments (by name, group, ServiceAccount), the
	// only ones eligibility can count: reading every assignment of the role
	// cost a copy of each of them per request — 10,000 people eligible for
	// one role made each admission take hundreds of milliseconds.
	assignments, err := lookup.AssignmentsFor(ctx, v.cache, *user)
	if err != nil {
		return internalError(specPath.Child("roleRef"), err)
	}
	open, err := lookup.OpenRequestsOf(ctx, v.cache, user.Username, ar.Spec.RoleRef, ar.Spec.Namespace)
	if err != nil {
		return internalError(specPath.Child("roleRef"), err)
	}
	var extended *pimv1.ActivationRequest
	if ar.Spec.Extends != "" {
		extended = &pimv1.ActivationRequest{}
		if err := v.cache.Get(ctx, client.ObjectKey{Name: ar.Spec.Extends}, extended); err != nil {
			if client.IgnoreNotFound(err) != nil {
				return internalError(specPath.Child("extends"), err)
			}
			extended = nil
		}
	}
	_, err = policy.CheckActivation(policy.ActivationCheck{
		Request:      ar,
		Requester:    *user,
		Now:          v.cfg.Clock.Now(),
		Setting:      setting,
		MFASatisfied: ar.Spec.MFA != nil,
		Assignments:  assignments,
		OpenRequests: open,
		Extended:     extended,
	})
	if errs := policyRefusals(specPath, err); len(errs) > 0 {
		return errs
	}
	return v.checkScope(ctx, ar)
}

// checkScope refuses a reduced-scope request (spec.permissions) that asks
// for anything its role does not allow now, naming each rule, verb and
// resource that is not in the role (policy.CheckScope). The role's rules
// are read from the API server, an aggregated ClusterRole's as
// aggregated; the controller checks them again at every grant.
func (v *activationValidator) checkScope(ctx context.Context, ar *pimv1.ActivationRequest) field.ErrorList {
	if !policy.IsReduced(ar) {
		return nil
	}
	path := specPath.Child("permissions")
	rs, _, err := lookup.RoleRules(ctx, v.direct, ar.Spec.RoleRef.Kind, ar.Spec.RoleRef.Name, ar.Spec.Namespace)
	if client.IgnoreNotFound(err) != nil {
		return internalError(path, err)
	}
	var errs field.ErrorList
	for _, p := range policy.CheckScope(ar.Spec.RoleRef, ar.Spec.Namespace, rs, err == nil, ar.Spec.Permissions) {
		errs = append(errs, field.Forbidden(path.Index(p.Index), p.Message))
	}
	return errs
}

func (v *activationValidator) validateUpdate(ctx context.Context, old, ar *pimv1.ActivationRequest, user *pimv1.UserInfo) field.ErrorList {
	isRequester := old.Spec.Requester != nil && old.Spec.Requester.Username == user.Username
	for _, k := range stampedAnnotations {
		if old.Annotations[k] != ar.Annotations[k] && ar.Annotations[k] != user.Username {
			return forbidden(annotationPath(k), fmt.Sprintf("annotation %s is set by kubepim's webhook alone", k))
		}
	}
	if old.Annotations[pimv1.AnnotationDecisions] != ar.Annotations[pimv1.AnnotationDecisions] {
		if errs := v.checkAppended(ctx, old, ar, user); len(errs) > 0 {
			return errs
		}
	}
	if added(old, ar, pimv1.AnnotationCancel) && !isRequester {
		return forbidden(annotationPath(pimv1.AnnotationCancel), fmt.Sprintf("only the requester (%s) can cancel this request", old.RequesterName()))
	}
	if added(old, ar, pimv1.AnnotationDeactivate) && !isRequester {
		path := annotationPath(pimv1.AnnotationDeactivate)
		allowed, err := v.may(ctx, user, VerbDeactivate, ar.Name)
		if err != nil {
			return internalError(path, err)
		}
		if !allowed {
			return forbidden(path, fmt.Sprintf("only the requester (%s) or someone allowed to %q activationrequests.kubepim.io can deactivate this request", old.RequesterName(), VerbDeactivate))
		}
	}
	if changed := metadataChanges(old, ar, withoutDecisionAnnotations); len(changed) > 0 && !isRequester {
		// Anyone with the shipped requester role may patch every request
		// (RBAC cannot say "your own"): what they may do to someone else's
		// is decide and, with the verb, deactivate. An owner reference to
		// a missing owner would have the garbage collector delete the
		// request, and its access with it.
		allowed, err := v.may(ctx, user, VerbManage, ar.Name)
		if err != nil {
			return internalError(metadataPath, err)
		}
		if !allowed {
			return forbidden(metadataPath, fmt.Sprintf("only the requester (%s) may change the %s of this request; approvers decide with %s or %s",
				old.RequesterName(), strings.Join(changed, ", "), pimv1.AnnotationApprove, pimv1.AnnotationDeny))
		}
	}
	for _, k := range []string{pimv1.AnnotationCancel, pimv1.AnnotationDeactivate} {
		// The reason is copied into the status message, the condition, the
		// Event and the audit trail: bounded like an approver's.
		if added(old, ar, k) {
			if err := policy.CheckReason(ar.Annotations[k]); err != nil {
				return forbidden(annotationPath(k), err.Error())
			}
		}
		if was, had := old.Annotations[k]; had {
			if is, has := ar.Annotations[k]; !has || is != was {
				// The reason is what the audit trail records.
				return forbidden(annotationPath(k), fmt.Sprintf("annotation %s cannot be removed or changed once set", k))
			}
		}
	}
	if n := userAnnotationBytes(ar.Annotations); n > maxUserAnnotationBytes && n > userAnnotationBytes(old.Annotations) {
		return forbidden(annotationsPath, fmt.Sprintf("this request's annotations would hold %d bytes; keep them under %d, so that kubepim's own annotations "+
			"(a deactivation, an approval) always fit", n, maxUserAnnotationBytes))
	}
	return nil
}

// may asks whether user may verb the named request.
func (v *activationValidator) may(ctx context.Context, user *pimv1.UserInfo, verb, name string) (bool, error) {
	return v.allowed(ctx, user, authz.Attributes{Resource: &authorizationv1.ResourceAttributes{
		Group: pimv1.GroupVersion.Group, Resource: "activationrequests", Verb: verb, Name: name,
	}})
}

// checkAppended makes sure the decisions annotation only grew by one record,
// of this user, signed by kubepim: a second line of defence should the
// mutating webhook not have run.
func (v *activationValidator) checkAppended(ctx context.Context, old, ar *pimv1.ActivationRequest, user *pimv1.UserInfo) field.ErrorList {
	path := annotationPath(pimv1.AnnotationDecisions)
	forged := forbidden(path, fmt.Sprintf("annotation %s is written by kubepim alone", pimv1.AnnotationDecisions))
	before, err := approval.Parse(old)
	if err != nil {
		return forbidden(path, err.Error())
	}
	after, err := approval.Parse(ar)
	if err != nil {
		return forbidden(path, err.Error())
	}
	if len(after) != len(before)+1 {
		return forged
	}
	for i := range before {
		if approval.Encode(after[i:i+1]) != approval.Encode(before[i:i+1]) {
			return forged
		}
	}
	key, err := v.keys.Key(ctx)
	if err != nil {
		return internalError(path, err)
	}
	if last := after[len(after)-1]; last.Record.Approver.Username != user.Username || !approval.Verify(key, old.UID, last) {
		return forged
	}
	return nil
}

func userAnnotationBytes(a map[string]string) int {
	n := 0
	for k, v := range a {
		if k == pimv1.AnnotationDecisions {
			continue
		}
		n += len(k) + len(v)
	}
	return n
}

// withoutDecisionAnnotations drops the annotations approvers and
// deactivators use (and kubepim stamps) from a request's annotations.
func withoutDecisionAnnotations(a map[string]string) map[string]string {
	out := maps.Clone(a)
	for _, k := range []string{pimv1.AnnotationApprove, pimv1.AnnotationDeny, pimv1.AnnotationDecisions,
		pimv1.AnnotationDeactivate, pimv1.AnnotationDeactivatedBy} {
		delete(out, k)
	}
	return out
}
