package grant

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestNameShort(t *testing.T) {
	cases := []struct {
		prefix, owner, want string
	}{
		{"ar", "alice-admin", "kubepim-ar-alice-admin"},
		{"ra", "bob.edit.prod", "kubepim-ra-bob.edit.prod"},
		// 11 + 224 = 235: the longest name kept as it is (shorter than
		// any hashed name, which is 253 long).
		{"ar", strings.Repeat("x", 224), "kubepim-ar-" + strings.Repeat("x", 224)},
	}
	for _, tc := range cases {
		if got := Name(tc.prefix, tc.owner); got != tc.want {
			t.Errorf("Name(%q, %d chars) = %q, want %q", tc.prefix, len(tc.owner), got, tc.want)
		}
	}
}

func TestNameLong(t *testing.T) {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:])[:16] }
	long := strings.Repeat("a", 225) // 236 with the prefix
	longer := strings.Repeat("a", 253)
	sibling := strings.Repeat("a", 252) + "b" // same first 236 characters as longer

	for _, owner := range []string{long, longer, sibling} {
		got := Name("ar", owner)
		if len(got) != 253 {
			t.Errorf("Name of a %d-char owner has %d chars, want 253", len(owner), len(got))
		}
		full := "kubepim-ar-" + owner
		if want := full[:236] + "-" + sum(owner); got != want {
			t.Errorf("Name of a %d-char owner = %q, want %q", len(owner), got, want)
		}
		if again := Name("ar", owner); again != got {
			t.Errorf("Name is not deterministic: %q, %q", got, again)
		}
	}
	if Name("ar", longer) == Name("ar", sibling) {
		t.Error("two owners that differ only past the cut share a binding name")
	}
	if Name("ar", long) == Name("ar", longer) {
		t.Error("two owners of different lengths share a binding name")
	}
}

func TestSubjectFor(t *testing.T) {
	cases := []struct {
		name string
		in   pimv1.Subject
		want rbacv1.Subject
	}{
		{"user", pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "alice"},
			rbacv1.Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "alice"}},
		{"user with a stray namespace drops it", pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "alice", Namespace: "prod"},
			rbacv1.Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "alice"}},
		{"group", pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "sre"},
			rbacv1.Subject{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "sre"}},
		{"service account", pimv1.Subject{Kind: pimv1.SubjectKindServiceAccount, Name: "ci", Namespace: "build"},
			rbacv1.Subject{Kind: "ServiceAccount", APIGroup: "", Name: "ci", Namespace: "build"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := SubjectFor(tc.in); got != tc.want {
				t.Fatalf("SubjectFor = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDesired(t *testing.T) {
	owner := Owner{Kind: "ActivationRequest", Name: "req-1", UID: types.UID("uid-1")}
	subject := rbacv1.Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "alice"}
	wantMeta := func(namespace string) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name:      "kubepim-ar-req-1",
			Namespace: namespace,
			Labels: map[string]string{
				"app.kubernetes.io/managed-by": "kubepim",
				"kubepim.io/owner-kind":        "ActivationRequest",
				"kubepim.io/owner-uid":         "uid-1",
			},
			Annotations: map[string]string{"kubepim.io/owner-name": "req-1"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "kubepim.io/v1alpha1", Kind: "ActivationRequest", Name: "req-1", UID: "uid-1",
			}},
		}
	}

	t.Run("cluster-wide is a ClusterRoleBinding", func(t *testing.T) {
		obj := Desired(owner, "kubepim-ar-req-1", Grant{Subject: subject, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "admin"}})
		crb, ok := obj.(*rbacv1.ClusterRoleBinding)
		if !ok {
			t.Fatalf("Desired = %T, want *ClusterRoleBinding", obj)
		}
		want := &rbacv1.ClusterRoleBinding{
			ObjectMeta: wantMeta(""),
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "admin"},
			Subjects:   []rbacv1.Subject{subject},
		}
		if !reflect.DeepEqual(crb, want) {
			t.Fatalf("Desired =\n%+v\nwant\n%+v", crb, want)
		}
	})

	t.Run("namespaced is a RoleBinding", func(t *testing.T) {
		for _, kind := range []string{pimv1.RoleKindClusterRole, pimv1.RoleKindRole} {
			obj := Desired(owner, "kubepim-ar-req-1", Grant{Subject: subject, RoleRef: pimv1.RoleRef{Kind: kind, Name: "deployer"}, Namespace: "prod"})
			rb, ok := obj.(*rbacv1.RoleBinding)
			if !ok {
				t.Fatalf("Desired = %T, want *RoleBinding", obj)
			}
			want := &rbacv1.RoleBinding{
				ObjectMeta: wantMeta("prod"),
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: kind, Name: "deployer"},
				Subjects:   []rbacv1.Subject{subject},
			}
			if !reflect.DeepEqual(rb, want) {
				t.Fatalf("Desired =\n%+v\nwant\n%+v", rb, want)
			}
		}
	})

	t.Run("a desired binding is found by its owner", func(t *testing.T) {
		obj := Desired(owner, "b", Grant{Subject: subject, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "admin"}, Namespace: "prod"})
		if got := OwnerKey(obj); got != "ActivationRequest/req-1" {
			t.Errorf("OwnerKey = %q", got)
		}
		if got := OwnerName(obj, "ActivationRequest"); got != "req-1" {
			t.Errorf("OwnerName = %q", got)
		}
		if got := OwnerName(obj, "RoleAssignment"); got != "" {
			t.Errorf("OwnerName of another kind = %q, want empty", got)
		}
	})
}

func TestOwnerKeyAndName(t *testing.T) {
	rb := func(labels, annotations map[string]string) client.Object {
		return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "prod", Labels: labels, Annotations: annotations}}
	}
	managed := map[string]string{"app.kubernetes.io/managed-by": "kubepim", "kubepim.io/owner-kind": "RoleAssignment"}
	named := map[string]string{"kubepim.io/owner-name": "alice-admin"}
	cases := []struct {
		name      string
		obj       client.Object
		wantKey   string
		wantOwner string // OwnerName(obj, "RoleAssignment")
	}{
		{"managed", rb(managed, named), "RoleAssignment/alice-admin", "alice-admin"},
		{"managed ClusterRoleBinding", &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: managed, Annotations: named}}, "RoleAssignment/alice-admin", "alice-admin"},
		{"unmanaged, no labels", rb(nil, nil), "", ""},
		{"unmanaged, with owner labels and name", rb(map[string]string{"kubepim.io/owner-kind": "RoleAssignment"}, named), "", ""},
		{"managed by someone else", rb(map[string]string{"app.kubernetes.io/managed-by": "helm", "kubepim.io/owner-kind": "RoleAssignment"}, named), "", ""},
		{"managed, no owner kind", rb(map[string]string{"app.kubernetes.io/managed-by": "kubepim"}, named), "", ""},
		{"managed, no owner name", rb(managed, nil), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := OwnerKey(tc.obj); got != tc.wantKey {
				t.Errorf("OwnerKey = %q, want %q", got, tc.wantKey)
			}
			if got := OwnerName(tc.obj, "RoleAssignment"); got != tc.wantOwner {
				t.Errorf("OwnerName = %q, want %q", got, tc.wantOwner)
			}
		})
	}
}

func TestEcho(t *testing.T) {
	binding := func(rv string) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "kubepim-ar-x", UID: "u1", ResourceVersion: rv,
			Labels: map[string]string{pimv1.LabelOwnerKind: "ActivationRequest"}}}
	}
	s := &Syncer{}

	// The watch event comes back after the response: an echo once.
	done := expect(&s.mu, &s.created, echoKey(binding("")))
	done(true, "5")
	if s.Echo("RoleAssignment", binding("5"), false) {
		t.Error("an echo for another owner kind")
	}
	if !s.Echo("ActivationRequest", binding("5"), false) {
		t.Error("the create's own event is no echo")
	}
	if s.Echo("ActivationRequest", binding("5"), false) {
		t.Error("an echo counted twice")
	}

	// Before the response: an echo, and nothing is left behind.
	done = expect(&s.mu, &s.created, echoKey(binding("")))
	if !s.Echo("ActivationRequest", binding("7"), false) {
		t.Error("an event before the response is no echo")
	}
	done(true, "7")
	if len(s.created) != 0 {
		t.Errorf("left behind: %v", s.created)
	}

	// Changed by someone else since the create: not an echo.
	done = expect(&s.mu, &s.created, echoKey(binding("")))
	done(true, "8")
	if s.Echo("ActivationRequest", binding("9"), false) {
		t.Error("a later version taken for the echo")
	}

	// A failed request expects nothing.
	done = expect(&s.mu, &s.deleted, types.UID("u1"))
	done(false, "")
	if s.Echo("ActivationRequest", binding("9"), true) || len(s.deleted) != 0 {
		t.Error("a failed delete left an echo")
	}
	done = expect(&s.mu, &s.deleted, types.UID("u1"))
	done(true, "")
	if !s.Echo("ActivationRequest", binding("9"), true) || len(s.deleted) != 0 {
		t.Error("a delete's own event is no echo")
	}
}

// An owner whose plain name equals another owner's hashed name would take
// the other's binding name (and block its grant).
func TestNameNoCollisionBetweenPlainAndHashed(t *testing.T) {
	long := strings.Repeat("l", 250)
	hashed := Name("ar", long)
	forger := strings.TrimPrefix(hashed, "kubepim-ar-")
	if got := Name("ar", forger); got == hashed {
		t.Fatalf("owner %q gets %q, the binding name of owner %q", forger, got, long)
	}
}
