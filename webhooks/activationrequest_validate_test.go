package webhooks

import (
	"context"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestActivationValidatorCreate(t *testing.T) {
	alice := user("alice")
	withMFA := mfaUser("alice")
	for _, tc := range []struct {
		name string
		user *pimv1.UserInfo
		ar   *pimv1.ActivationRequest
		want want
	}{
		{"allows an eligible requester", alice, activation("a", "alice"), allowed},
		{"refuses a requester that is not the user", alice, activation("a", "mallory"),
			refused("spec.requester", "must be the authenticated user")},
		{"refuses a missing requester", alice, func() *pimv1.ActivationRequest { ar := activation("a", ""); ar.Spec.Requester = nil; return ar }(),
			refused("spec.requester", "must be the authenticated user")},
		{"refuses an MFA claim the user does not have", alice, func() *pimv1.ActivationRequest {
			ar := activation("a", "alice")
			ar.Spec.MFA = &pimv1.MFAProof{Method: pimv1.MFAMethodClaim}
			return ar
		}(), refused("spec.mfa", "set by kubepim's mutating webhook alone")},
		{"allows an MFA claim the user has", withMFA, func() *pimv1.ActivationRequest {
			ar := activation("a", "alice")
			ar.Spec.Requester = withMFA
			ar.Spec.MFA = &pimv1.MFAProof{Method: pimv1.MFAMethodClaim}
			return ar
		}(), allowed},
		{"refuses someone not eligible", user("mallory"), activation("a", "mallory"),
			refused("spec", "mallory is not eligible for ClusterRole view cluster-wide")},
		{"refuses each policy breach", alice, func() *pimv1.ActivationRequest {
			ar := activation("a", "alice")
			ar.Spec.Justification, ar.Spec.Duration.Duration = "", 0
			return ar
		}(), refused("spec", "requires a justification")},
		{"refuses extending a request that does not exist", alice, func() *pimv1.ActivationRequest {
			ar := activation("a", "alice")
			ar.Spec.Extends = "gone"
			return ar
		}(), refused("spec", `spec.extends names ActivationRequest "gone", which does not exist`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeClient(eligible("alice-view", "alice", clusterRole("view")))
			v := &activationValidator{handlerBase: testBase(c, allowing()), keys: testKeys(c)}
			tc.want.check(t, v.validate(context.Background(), create(tc.user, tc.ar)))
		})
	}
}

func TestActivationValidatorCreateEachBreach(t *testing.T) {
	c := fakeClient(eligible("alice-view", "alice", clusterRole("view")))
	v := &activationValidator{handlerBase: testBase(c, allowing()), keys: testKeys(c)}
	ar := activation("a", "alice")
	ar.Spec.Justification, ar.Spec.Duration.Duration = "", 0
	errs := v.validate(context.Background(), create(user("alice"), ar))
	if len(errs) != 2 || !strings.Contains(errs[0].Detail, "spec.duration must be positive") || !strings.Contains(errs[1].Detail, "requires a justification") {
		t.Errorf("errors = %v, want the duration's and the justification's", errs.ToAggregate())
	}
}

func TestActivationValidatorUpdate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		user   *pimv1.UserInfo
		access *access
		old    *pimv1.ActivationRequest
		edit   func(*pimv1.ActivationRequest)
		want   want
	}{
		{name: "allows the requester cancelling", user: user("alice"), access: allowing(), old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) {
				annotated(ar, pimv1.AnnotationCancel, "oops", pimv1.AnnotationCancelledBy, "alice")
			}, want: allowed},
		{name: "refuses anyone else cancelling", user: user("bob"), access: allowing("bob manage activationrequests"), old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) {
				annotated(ar, pimv1.AnnotationCancel, "", pimv1.AnnotationCancelledBy, "bob")
			},
			want: refused("metadata.annotations[kubepim.io/cancel]", "only the requester (alice) can cancel")},
		{name: "refuses an actor stamp that is not the user", user: user("alice"), access: allowing(), old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, pimv1.AnnotationCancelledBy, "bob") },
			want: refused("metadata.annotations[kubepim.io/cancelled-by]", "set by kubepim's webhook alone")},
		{name: "allows deactivating with the verb", user: user("root"), access: allowing("root deactivate activationrequests"), old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) {
				annotated(ar, pimv1.AnnotationDeactivate, "over", pimv1.AnnotationDeactivatedBy, "root")
			}, want: allowed},
		{name: "refuses deactivating without the verb", user: user("bob"), access: allowing(), old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) {
				annotated(ar, pimv1.AnnotationDeactivate, "mine now", pimv1.AnnotationDeactivatedBy, "bob")
			}, want: refused("metadata.annotations[kubepim.io/deactivate]", `only the requester (alice) or someone allowed to "deactivate"`)},
		{name: "fails when the access review fails", user: user("bob"), access: &access{err: errAPI}, old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) {
				annotated(ar, pimv1.AnnotationDeactivate, "x", pimv1.AnnotationDeactivatedBy, "bob")
			}, want: failed("metadata.annotations[kubepim.io/deactivate]")},
		{name: "refuses someone else changing the metadata", user: user("mallory"), access: allowing(), old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) {
				ar.Finalizers = []string{"x/y"}
				ar.Labels = map[string]string{"a": "b"}
			},
			want: refused("metadata", "only the requester (alice) may change the labels, finalizers of this request")},
		{name: "allows the verb manage to change the metadata", user: user("root"), access: allowing("root manage activationrequests"), old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) { ar.Labels = map[string]string{"a": "b"} }, want: allowed},
		{name: "allows the requester changing the metadata", user: user("alice"), access: allowing(), old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, "note", "x") }, want: allowed},
		{name: "refuses changing a cancellation's reason", user: user("alice"), access: allowing(),
			old:  annotated(activation("a", "alice"), pimv1.AnnotationCancel, "first", pimv1.AnnotationCancelledBy, "alice"),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, pimv1.AnnotationCancel, "second") },
			want: refused("metadata.annotations[kubepim.io/cancel]", "cannot be removed or changed once set")},
		{name: "refuses removing a deactivation", user: user("alice"), access: allowing(),
			old:  annotated(activation("a", "alice"), pimv1.AnnotationDeactivate, "first", pimv1.AnnotationDeactivatedBy, "alice"),
			edit: func(ar *pimv1.ActivationRequest) { delete(ar.Annotations, pimv1.AnnotationDeactivate) },
			want: refused("metadata.annotations[kubepim.io/deactivate]", "cannot be removed or changed once set")},
		{name: "refuses padding the annotations", user: user("alice"), access: allowing(), old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, "example.com/pad", strings.Repeat("p", 40<<10)) },
			want: refused("metadata.annotations", "keep them under 32768")},
		{name: "refuses a hand-written record", user: user("bob"), access: allowing(), old: pending(activation("a", "alice")),
			edit: func(ar *pimv1.ActivationRequest) {
				annotated(ar, pimv1.AnnotationDecisions, `[{"record":{"approver":{"username":"bob"},"decision":"Approve"},"signature":"AAAA"}]`)
			}, want: refused("metadata.annotations[kubepim.io/decisions]", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeClient()
			v := &activationValidator{handlerBase: testBase(c, tc.access), keys: testKeys(c)}
			ar := tc.old.DeepCopy()
			tc.edit(ar)
			tc.want.check(t, v.validate(context.Background(), update(tc.user, tc.old, ar)))
		})
	}
}

// A record the mutating webhook signed passes the validating webhook.
func TestActivationValidatorAcceptsTheMutatorsRecord(t *testing.T) {
	m := activationMutatorFor(t)
	v := &activationValidator{handlerBase: m.handlerBase, keys: m.keys}
	bob := user("bob")
	old := pending(activation("a", "alice"))
	ar := annotated(old.DeepCopy(), pimv1.AnnotationApprove, "go ahead")
	if errs := m.mutate(context.Background(), update(bob, old, ar)); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	allowed.check(t, v.validate(context.Background(), update(bob, old, ar)))
	refused("metadata.annotations[kubepim.io/decisions]", "written by kubepim alone").
		check(t, v.validate(context.Background(), update(user("carol"), old, ar)))
}

func TestActivationValidatorCreateReducedScope(t *testing.T) {
	alice := user("alice")
	podAdmin := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pod-admin"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"get", "list", "delete"}, APIGroups: []string{""}, Resources: []string{"pods"}},
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}},
	}}
	scoped := func(ns string, ps ...pimv1.PermissionRule) *pimv1.ActivationRequest {
		ar := activation("a", "alice")
		ar.Spec.RoleRef, ar.Spec.Namespace, ar.Spec.Permissions = clusterRole("pod-admin"), ns, ps
		return ar
	}
	getPods := pimv1.PermissionRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	for _, tc := range []struct {
		name string
		ar   *pimv1.ActivationRequest
		want want
	}{
		{"allows a subset of the role", scoped("prod", getPods), allowed},
		{"refuses a verb the role lacks, naming the rule", scoped("prod", getPods,
			pimv1.PermissionRule{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"secrets"}}),
			refused("spec.permissions[1]", "ClusterRole pod-admin in namespace prod does not allow list secrets")},
		{"refuses a resource the role lacks", scoped("prod", pimv1.PermissionRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/exec"}}),
			refused("spec.permissions[0]", "does not allow get pods/exec")},
		{"refuses a non-resource URL in a namespace", scoped("prod", pimv1.PermissionRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}),
			refused("spec.permissions[0]", "nonResourceURLs are granted only cluster-wide")},
		{"refuses a role that does not exist", func() *pimv1.ActivationRequest {
			ar := scoped("prod", getPods)
			ar.Spec.RoleRef = clusterRole("gone")
			return ar
		}(), refused("spec.permissions[0]", "ClusterRole gone in namespace prod does not exist")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeClient(podAdmin, eligible("alice-pod-admin", "alice", clusterRole("pod-admin")), eligible("alice-gone", "alice", clusterRole("gone")))
			v := &activationValidator{handlerBase: testBase(c, allowing()), keys: testKeys(c)}
			tc.want.check(t, v.validate(context.Background(), create(alice, tc.ar)))
		})
	}
}
