package webhooks

import (
	"context"
	"fmt"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/internal/policy"
)

// +kubebuilder:webhook:path=/mutate-kubepim-io-v1alpha1-activationrequest,mutating=true,failurePolicy=fail,sideEffects=NoneOnDryRun,groups=kubepim.io,resources=activationrequests,verbs=create;update,versions=v1alpha1,name=mactivationrequest.kubepim.io,admissionReviewVersions=v1

// The mutating webhook reads TOTP enrollments (and records wrong codes).
// +kubebuilder:rbac:groups=core,namespace=kubepim-system,resources=secrets,verbs=get;create;update

// stampedAnnotations are set by kubepim's webhook alone.
var stampedAnnotations = []string{pimv1.AnnotationCancelledBy, pimv1.AnnotationDeactivatedBy}

// activationMutator stamps the requester and the MFA proof on create, who
// cancelled or deactivated on update, and turns an approver's decision
// into a signed record.
type activationMutator struct {
	handlerBase
	totp *mfa.TOTPVerifier
	keys *approval.Keys
}

func (m *activationMutator) mutate(ctx context.Context, req Request[*pimv1.ActivationRequest]) field.ErrorList {
	ar, user := req.New, req.User
	switch req.Operation {
	case admissionv1.Create:
		for _, k := range []string{pimv1.AnnotationApprove, pimv1.AnnotationDeny, pimv1.AnnotationDecisions} {
			if _, ok := ar.Annotations[k]; ok {
				return forbidden(annotationPath(k), fmt.Sprintf("annotation %s cannot be set on a new request: approvers decide on existing requests", k))
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
			if err := m.totp.Verify(ctx, user.Username, strings.TrimSpace(code), req.DryRun); err != nil {
				return forbidden(annotationPath(pimv1.AnnotationTOTP), err.Error())
			}
			ar.Spec.MFA = &pimv1.MFAProof{Method: pimv1.MFAMethodTOTP, VerifiedAt: metav1.NewTime(m.cfg.Clock.Now().Truncate(time.Second))}
		} else if m.cfg.mfaClaimed(user) {
			ar.Spec.MFA = &pimv1.MFAProof{Method: pimv1.MFAMethodClaim, VerifiedAt: metav1.NewTime(m.cfg.Clock.Now().Truncate(time.Second))}
		}
	case admissionv1.Update:
		old := req.Old
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
		return m.decide(ctx, old, ar, user)
	}
	return nil
}

// decide turns an approver's kubepim.io/approve or kubepim.io/deny
// annotation into a signed record in kubepim.io/decisions, after checking
// that this user may decide on this request now.
func (m *activationMutator) decide(ctx context.Context, old, ar *pimv1.ActivationRequest, user *pimv1.UserInfo) field.ErrorList {
	if old.Annotations[pimv1.AnnotationDecisions] != ar.Annotations[pimv1.AnnotationDecisions] {
		return forbidden(annotationPath(pimv1.AnnotationDecisions), fmt.Sprintf("annotation %s is written by kubepim alone; decide with %s=\"<reason>\" or %s=\"<reason>\"",
			pimv1.AnnotationDecisions, pimv1.AnnotationApprove, pimv1.AnnotationDeny))
	}
	approve, approving := ar.Annotations[pimv1.AnnotationApprove]
	deny, denying := ar.Annotations[pimv1.AnnotationDeny]
	if !approving && !denying {
		return nil
	}
	if approving && denying {
		return forbidden(annotationPath(pimv1.AnnotationDeny), "approve or deny, not both")
	}
	decision, reason, path := pimv1.DecisionApprove, approve, annotationPath(pimv1.AnnotationApprove)
	if denying {
		decision, reason, path = pimv1.DecisionDeny, deny, annotationPath(pimv1.AnnotationDeny)
	}
	// The decision annotation never stays: the record replaces it.
	for _, k := range []string{pimv1.AnnotationApprove, pimv1.AnnotationDeny} {
		delete(ar.Annotations, k)
	}
	key, err := m.keys.Key(ctx)
	if err != nil {
		return internalError(path, err)
	}
	signed, err := approval.Parse(old)
	if err != nil {
		return forbidden(annotationPath(pimv1.AnnotationDecisions), err.Error())
	}
	var records []pimv1.ApprovalRecord
	for _, s := range signed {
		if approval.Verify(key, old.UID, s) {
			records = append(records, s.Record)
		}
	}
	setting, _, err := lookup.EffectiveSetting(ctx, m.cache, old.Spec.RoleRef, old.Spec.Namespace)
	if err != nil {
		return settingError(path, err)
	}
	if !setting.Activation.Approval.Required && old.Status.State != pimv1.ActivationStatePendingApproval {
		return forbidden(path, fmt.Sprintf("%s needs no approval", policy.RoleDescription(old.Spec.RoleRef, old.Spec.Namespace)))
	}
	if err := policy.CheckDecision(setting.Activation.Approval, old.Status.State, old.RequesterName(), *user, decision, strings.TrimSpace(reason), records); err != nil {
		return forbidden(path, err.Error())
	}
	record := pimv1.ApprovalRecord{
		Approver: pimv1.UserInfo{Username: user.Username, UID: user.UID, Groups: policy.DecidingGroups(setting.Activation.Approval.Approvers, user.Groups)},
		Decision: decision,
		Reason:   strings.TrimSpace(reason),
		Time:     metav1.NewTime(m.cfg.Clock.Now().UTC().Truncate(time.Second)),
	}
	signed = append(signed, approval.SignedRecord{Record: record, Signature: approval.Sign(key, old.UID, record)})
	if err := approval.CheckRoom(signed); err != nil {
		return forbidden(path, err.Error())
	}
	setAnnotation(ar, pimv1.AnnotationDecisions, approval.Encode(signed))
	return nil
}
