package webhooks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/internal/policy"
)

// stampedAnnotations are set by kubepim's webhook alone.
var stampedAnnotations = []string{pimv1.AnnotationCancelledBy, pimv1.AnnotationDeactivatedBy}

// VerbDeactivate is the RBAC verb on activationrequests that lets someone
// other than the requester deactivate an active request.
const VerbDeactivate = "deactivate"

// activationMutator stamps the requester and the MFA proof on create, and
// who cancelled or deactivated on update.
type activationMutator struct {
	handlerBase
	totp *mfa.TOTPVerifier
	keys *approval.Keys
}

func (m *activationMutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	ar := &pimv1.ActivationRequest{}
	if err := m.decoder.Decode(req, ar); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	user := userInfo(req.UserInfo)
	switch req.Operation {
	case admissionv1.Create:
		for _, k := range []string{pimv1.AnnotationApprove, pimv1.AnnotationDeny, pimv1.AnnotationDecisions} {
			if _, ok := ar.Annotations[k]; ok {
				return admission.Denied(fmt.Sprintf("annotation %s cannot be set on a new request: approvers decide on existing requests", k))
			}
		}
		ar.Spec.Requester = user
		ar.Spec.MFA = nil
		for _, k := range stampedAnnotations {
			delete(ar.Annotations, k)
		}
		if code, ok := ar.Annotations[pimv1.AnnotationTOTP]; ok {
			// The code never reaches storage.
			delete(ar.Annotations, pimv1.AnnotationTOTP)
			if err := m.totp.Verify(ctx, user.Username, strings.TrimSpace(code), ptr.Deref(req.DryRun, false)); err != nil {
				return admission.Denied(err.Error())
			}
			ar.Spec.MFA = &pimv1.MFAProof{Method: pimv1.MFAMethodTOTP, VerifiedAt: metav1.NewTime(m.cfg.Clock.Now().Truncate(1e9))}
		} else if hasMFAClaim(user, m.cfg) {
			ar.Spec.MFA = &pimv1.MFAProof{Method: pimv1.MFAMethodClaim, VerifiedAt: metav1.NewTime(m.cfg.Clock.Now().Truncate(1e9))}
		}
	case admissionv1.Update:
		old := &pimv1.ActivationRequest{}
		if err := m.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		delete(ar.Annotations, pimv1.AnnotationTOTP)
		for _, k := range stampedAnnotations {
			restore(ar, old, k)
		}
		if added(old, ar, pimv1.AnnotationCancel) {
			setAnnotation(ar, pimv1.AnnotationCancelledBy, user.Username)
		}
		if added(old, ar, pimv1.AnnotationDeactivate) {
			setAnnotation(ar, pimv1.AnnotationDeactivatedBy, user.Username)
		}
		if resp := m.decide(ctx, old, ar, user); !resp.Allowed {
			return resp
		}
	default:
		return admission.Allowed("")
	}
	return patched(req, ar)
}

// activationValidator refuses requests the role's policy does not allow,
// and cancellations or deactivations by people who may not make them.
type activationValidator struct {
	handlerBase
	keys *approval.Keys
}

func (v *activationValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	ar := &pimv1.ActivationRequest{}
	if err := v.decoder.Decode(req, ar); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	user := userInfo(req.UserInfo)
	switch req.Operation {
	case admissionv1.Create:
		return v.validateCreate(ctx, ar, user)
	case admissionv1.Update:
		old := &pimv1.ActivationRequest{}
		if err := v.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		return v.validateUpdate(ctx, old, ar, user)
	}
	return admission.Allowed("")
}

func (v *activationValidator) validateCreate(ctx context.Context, ar *pimv1.ActivationRequest, user *pimv1.UserInfo) admission.Response {
	// The mutating webhook stamped the requester; a mismatch means it did
	// not run, and nothing typed by a client is trusted.
	if ar.Spec.Requester == nil || !equality.Semantic.DeepEqual(*ar.Spec.Requester, *user) {
		return admission.Denied("spec.requester must be the authenticated user; it is set by kubepim's mutating webhook, which did not run")
	}
	if ar.Spec.MFA != nil && ar.Spec.MFA.Method == pimv1.MFAMethodClaim && !hasMFAClaim(user, v.cfg) {
		return admission.Denied("spec.mfa is set by kubepim's mutating webhook alone")
	}
	setting, _, err := lookup.EffectiveSetting(ctx, v.cache, ar.Spec.RoleRef, ar.Spec.Namespace)
	if err != nil {
		return denyOrError(err)
	}
	assignments, err := lookup.AssignmentsOf(ctx, v.cache, ar.Spec.RoleRef)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	open, err := lookup.OpenRequestsOf(ctx, v.cache, user.Username, ar.Spec.RoleRef, ar.Spec.Namespace)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	var extended *pimv1.ActivationRequest
	if ar.Spec.Extends != "" {
		extended = &pimv1.ActivationRequest{}
		if err := v.cache.Get(ctx, client.ObjectKey{Name: ar.Spec.Extends}, extended); err != nil {
			if client.IgnoreNotFound(err) != nil {
				return admission.Errored(http.StatusInternalServerError, err)
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
	if err != nil {
		return admission.Denied(joinLines(err))
	}
	return admission.Allowed("")
}

func (v *activationValidator) validateUpdate(ctx context.Context, old, ar *pimv1.ActivationRequest, user *pimv1.UserInfo) admission.Response {
	isRequester := old.Spec.Requester != nil && old.Spec.Requester.Username == user.Username
	for _, k := range stampedAnnotations {
		if old.Annotations[k] != ar.Annotations[k] && ar.Annotations[k] != user.Username {
			return admission.Denied(fmt.Sprintf("annotation %s is set by kubepim's webhook alone", k))
		}
	}
	if old.Annotations[pimv1.AnnotationDecisions] != ar.Annotations[pimv1.AnnotationDecisions] {
		if err := v.checkAppended(ctx, old, ar, user); err != nil {
			return admission.Denied(err.Error())
		}
	}
	if added(old, ar, pimv1.AnnotationCancel) && !isRequester {
		return admission.Denied(fmt.Sprintf("only the requester (%s) can cancel this request", requesterOf(old)))
	}
	if added(old, ar, pimv1.AnnotationDeactivate) && !isRequester {
		allowed, err := v.may(ctx, user, VerbDeactivate, ar.Name)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		if !allowed {
			return admission.Denied(fmt.Sprintf("only the requester (%s) or someone allowed to %q activationrequests.kubepim.io can deactivate this request", requesterOf(old), VerbDeactivate))
		}
	}
	if changed := othersMetadataChanges(old, ar); len(changed) > 0 && !isRequester {
		// Anyone with the shipped requester role may patch every request
		// (RBAC cannot say "your own"): what they may do to someone else's
		// is decide and, with the verb, deactivate. An owner reference to
		// a missing owner would have the garbage collector delete the
		// request, and its access with it.
		allowed, err := v.may(ctx, user, VerbManage, ar.Name)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		if !allowed {
			return admission.Denied(fmt.Sprintf("only the requester (%s) may change the %s of this request; approvers decide with %s or %s",
				requesterOf(old), strings.Join(changed, ", "), pimv1.AnnotationApprove, pimv1.AnnotationDeny))
		}
	}
	for _, k := range []string{pimv1.AnnotationCancel, pimv1.AnnotationDeactivate} {
		if was, had := old.Annotations[k]; had {
			if is, has := ar.Annotations[k]; !has || is != was {
				// The reason is what the audit trail records.
				return admission.Denied(fmt.Sprintf("annotation %s cannot be removed or changed once set", k))
			}
		}
	}
	if n := userAnnotationBytes(ar.Annotations); n > maxUserAnnotationBytes && n > userAnnotationBytes(old.Annotations) {
		return admission.Denied(fmt.Sprintf("this request's annotations would hold %d bytes; keep them under %d, so that kubepim's own annotations "+
			"(a deactivation, an approval) always fit", n, maxUserAnnotationBytes))
	}
	return admission.Allowed("")
}

// may asks the API server whether user may verb the named request.
func (v *activationValidator) may(ctx context.Context, user *pimv1.UserInfo, verb, name string) (bool, error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, vals := range user.Extra {
		extra[k] = vals
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Group: pimv1.GroupVersion.Group, Resource: "activationrequests", Verb: verb, Name: name,
		},
	}}
	if err := v.direct.Create(ctx, sar); err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

func hasMFAClaim(user *pimv1.UserInfo, cfg Config) bool {
	for _, v := range user.Extra[cfg.MFAClaim] {
		if slices.Contains(cfg.MFAClaimValues, v) {
			return true
		}
	}
	return false
}

// denyOrError refuses for a policy reason, and fails (so the client may
// retry) for anything else.
func denyOrError(err error) admission.Response {
	var conflict *policy.ErrConflictingSettings
	if errors.As(err, &conflict) || errors.As(err, new(*refusal)) {
		return admission.Denied(err.Error())
	}
	return admission.Errored(http.StatusInternalServerError, err)
}

// refusal is a policy refusal from a helper that also returns API errors.
type refusal struct{ error }

func requesterOf(ar *pimv1.ActivationRequest) string {
	if ar.Spec.Requester == nil {
		return "unknown"
	}
	return ar.Spec.Requester.Username
}

func added(old, cur client.Object, key string) bool {
	_, had := old.GetAnnotations()[key]
	_, has := cur.GetAnnotations()[key]
	return has && !had
}

func restore(cur, old client.Object, key string) {
	if v, ok := old.GetAnnotations()[key]; ok {
		setAnnotation(cur, key, v)
		return
	}
	a := cur.GetAnnotations()
	delete(a, key)
	cur.SetAnnotations(a)
}

func setAnnotation(obj client.Object, key, value string) {
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[key] = value
	obj.SetAnnotations(a)
}

// joinLines turns errors.Join's newline-separated list into one line a
// kubectl user reads at once.
func joinLines(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// decide turns an approver's kubepim.io/approve or kubepim.io/deny
// annotation into a signed record in kubepim.io/decisions, after checking
// that this user may decide on this request now.
func (m *activationMutator) decide(ctx context.Context, old, ar *pimv1.ActivationRequest, user *pimv1.UserInfo) admission.Response {
	if old.Annotations[pimv1.AnnotationDecisions] != ar.Annotations[pimv1.AnnotationDecisions] {
		return admission.Denied(fmt.Sprintf("annotation %s is written by kubepim alone; decide with %s=\"<reason>\" or %s=\"<reason>\"",
			pimv1.AnnotationDecisions, pimv1.AnnotationApprove, pimv1.AnnotationDeny))
	}
	approve, approving := ar.Annotations[pimv1.AnnotationApprove]
	deny, denying := ar.Annotations[pimv1.AnnotationDeny]
	if !approving && !denying {
		return admission.Allowed("")
	}
	if approving && denying {
		return admission.Denied("approve or deny, not both")
	}
	decision, reason := pimv1.DecisionApprove, approve
	if denying {
		decision, reason = pimv1.DecisionDeny, deny
	}
	// The decision annotation never stays: the record replaces it.
	for _, k := range []string{pimv1.AnnotationApprove, pimv1.AnnotationDeny} {
		delete(ar.Annotations, k)
	}
	key, err := m.keys.Key(ctx)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	signed, err := approval.Parse(old)
	if err != nil {
		return admission.Denied(err.Error())
	}
	var records []pimv1.ApprovalRecord
	for _, s := range signed {
		if approval.Verify(key, old.UID, s) {
			records = append(records, s.Record)
		}
	}
	setting, _, err := lookup.EffectiveSetting(ctx, m.cache, old.Spec.RoleRef, old.Spec.Namespace)
	if err != nil {
		return denyOrError(err)
	}
	if !setting.Activation.Approval.Required && old.Status.State != pimv1.ActivationStatePendingApproval {
		return admission.Denied(fmt.Sprintf("%s needs no approval", policy.RoleDescription(old.Spec.RoleRef, old.Spec.Namespace)))
	}
	if err := policy.CheckDecision(setting.Activation.Approval, old.Status.State, requesterOf(old), *user, decision, strings.TrimSpace(reason), records); err != nil {
		return admission.Denied(err.Error())
	}
	record := pimv1.ApprovalRecord{
		Approver: pimv1.UserInfo{Username: user.Username, UID: user.UID, Groups: policy.DecidingGroups(setting.Activation.Approval.Approvers, user.Groups)},
		Decision: decision,
		Reason:   strings.TrimSpace(reason),
		Time:     metav1.NewTime(m.cfg.Clock.Now().UTC().Truncate(1e9)),
	}
	signed = append(signed, approval.SignedRecord{Record: record, Signature: approval.Sign(key, old.UID, record)})
	setAnnotation(ar, pimv1.AnnotationDecisions, approval.Encode(signed))
	return admission.Allowed("")
}

// checkAppended makes sure the decisions annotation only grew by one record,
// of this user, signed by kubepim: a second line of defence should the
// mutating webhook not have run.
func (v *activationValidator) checkAppended(ctx context.Context, old, ar *pimv1.ActivationRequest, user *pimv1.UserInfo) error {
	forged := fmt.Errorf("annotation %s is written by kubepim alone", pimv1.AnnotationDecisions)
	before, err := approval.Parse(old)
	if err != nil {
		return err
	}
	after, err := approval.Parse(ar)
	if err != nil {
		return err
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
		return err
	}
	if last := after[len(after)-1]; last.Record.Approver.Username != user.Username || !approval.Verify(key, old.UID, last) {
		return forged
	}
	return nil
}

// maxUserAnnotationBytes bounds the annotations of a request that kubepim
// does not write: a requester padding their own request to the object's
// size limit would keep an administrator's deactivation from fitting.
const maxUserAnnotationBytes = 32 << 10

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

// othersMetadataChanges lists what an update changes of a request's
// metadata besides the annotations approvers and deactivators use (and
// kubepim stamps).
func othersMetadataChanges(old, cur *pimv1.ActivationRequest) []string {
	var changed []string
	if !maps.Equal(old.Labels, cur.Labels) {
		changed = append(changed, "labels")
	}
	decisionKeys := []string{pimv1.AnnotationApprove, pimv1.AnnotationDeny, pimv1.AnnotationDecisions,
		pimv1.AnnotationDeactivate, pimv1.AnnotationDeactivatedBy}
	other := func(a map[string]string) map[string]string {
		out := maps.Clone(a)
		for _, k := range decisionKeys {
			delete(out, k)
		}
		return out
	}
	if !maps.Equal(other(old.Annotations), other(cur.Annotations)) {
		changed = append(changed, "annotations")
	}
	if !slices.Equal(old.Finalizers, cur.Finalizers) {
		changed = append(changed, "finalizers")
	}
	if !equality.Semantic.DeepEqual(old.OwnerReferences, cur.OwnerReferences) {
		changed = append(changed, "ownerReferences")
	}
	return changed
}
