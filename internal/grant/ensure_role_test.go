package grant

import (
	"context"
	"errors"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// EnsureRole never writes a generated role wider than it stands under a
// binding someone else could have made (an empty or narrower role, or a
// name bound before the role existed): RBAC checks a binding only when it
// is made, and a binding outlives its role.
func TestEnsureRoleNeverWidensUnderOthersBindings(t *testing.T) {
	ctx := context.Background()
	ar := scopedRequest("prod")
	owner := OwnerOfActivation(ar)
	own := ForActivation(ar, nil)
	name := ScopedRoleName(ar)
	malloryBinding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "mallory", Namespace: "prod"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mallory"}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}}
	labelled := func(rules []rbacv1.PolicyRule) *rbacv1.Role {
		r := ForScope(ar).(*rbacv1.Role)
		r.UID, r.Rules = "forged-uid", rules
		return r
	}
	wider := append(ForScope(ar).(*rbacv1.Role).Rules, rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}})
	recorded := &pimv1.GeneratedRoleReference{Kind: "Role", Namespace: "prod", Name: name, UID: "kubepims-uid"}
	tests := []struct {
		name        string
		objs        []client.Object
		known       *pimv1.GeneratedRoleReference
		unsafe      bool // ends the request
		roleRemains bool
	}{
		{name: "missing, unbound: created", roleRemains: true},
		{name: "missing, a binding already waits for the name", objs: []client.Object{malloryBinding}, unsafe: true},
		{name: "missing though recorded (deleted by someone): never made anew", known: recorded, unsafe: true},
		{name: "labelled, empty, unrecorded: never filled in", objs: []client.Object{labelled(nil)}, unsafe: true},
		{name: "labelled, wider, unrecorded: narrowed", objs: []client.Object{labelled(wider)}, roleRemains: true},
		{name: "labelled, exact, unrecorded, but bound by another", objs: []client.Object{labelled(ForScope(ar).(*rbacv1.Role).Rules), malloryBinding}, unsafe: true},
		{name: "recorded under another UID (replaced)", objs: []client.Object{labelled(wider)}, known: recorded, unsafe: true},
	}
	cluster := scopedRequest("")
	aggregated := ForScope(cluster).(*rbacv1.ClusterRole)
	aggregated.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"x": "y"}}}}
	aggregated.Rules = wider
	{
		scheme := runtime.NewScheme()
		_ = rbacv1.AddToScheme(scheme)
		c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(aggregated).Build()
		s := &Syncer{Client: c, APIReader: c}
		_, err := s.EnsureRole(ctx, OwnerOfActivation(cluster), ForScope(cluster), nil, ForActivation(cluster, nil))
		var unsafe *ErrScopedRoleUnsafe
		if !errors.As(err, &unsafe) {
			t.Errorf("an aggregated ClusterRole of the generated name was kept: %v", err)
		}
		if err := c.Get(ctx, client.ObjectKey{Name: aggregated.Name}, &rbacv1.ClusterRole{}); !apierrors.IsNotFound(err) {
			t.Errorf("the aggregated ClusterRole remains: %v", err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			_ = rbacv1.AddToScheme(scheme)
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(tt.objs...).Build()
			s := &Syncer{Client: c, APIReader: c}
			ref, err := s.EnsureRole(ctx, owner, ForScope(ar), tt.known, own)
			var unsafe *ErrScopedRoleUnsafe
			if tt.unsafe != errors.As(err, &unsafe) {
				t.Fatalf("EnsureRole: %v (ref %v), want unsafe=%v", err, ref, tt.unsafe)
			}
			if !tt.unsafe && err != nil {
				t.Fatalf("EnsureRole: %v", err)
			}
			got := &rbacv1.Role{}
			gerr := c.Get(ctx, client.ObjectKey{Namespace: "prod", Name: name}, got)
			if tt.roleRemains {
				if gerr != nil {
					t.Fatalf("role: %v", gerr)
				}
				if len(got.Rules) != 1 || got.Rules[0].Resources[0] != "pods" {
					t.Errorf("rules %+v, want exactly the request's", got.Rules)
				}
			} else if !apierrors.IsNotFound(gerr) {
				t.Errorf("the role remains (%v): %+v", gerr, got.Rules)
			}
		})
	}
}
