package webhooks

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

func setting(role string) *pimv1.RoleSetting {
	spec := policy.DefaultRoleSettingSpec()
	spec.RoleRef = pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: role}
	return &pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: role}, Spec: spec}
}

func TestStampSetting(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func() (Request[*pimv1.RoleSetting], *pimv1.RoleSetting)
		want string
	}{
		{"stamps the creator over a typed stamp", func() (Request[*pimv1.RoleSetting], *pimv1.RoleSetting) {
			rs := annotated(setting("view"), pimv1.AnnotationChangedBy, "mallory")
			return create(user("gitops"), rs), rs
		}, "gitops"},
		{"stamps who changed the spec", func() (Request[*pimv1.RoleSetting], *pimv1.RoleSetting) {
			old := annotated(setting("view"), pimv1.AnnotationChangedBy, "gitops")
			rs := old.DeepCopy()
			rs.Spec.Activation.MaxDuration = metav1.Duration{Duration: time.Hour}
			return update(user("dana"), old, rs), rs
		}, "dana"},
		{"puts the stamp back on a metadata change", func() (Request[*pimv1.RoleSetting], *pimv1.RoleSetting) {
			old := annotated(setting("view"), pimv1.AnnotationChangedBy, "gitops")
			rs := annotated(old.DeepCopy(), pimv1.AnnotationChangedBy, "mallory")
			return update(user("mallory"), old, rs), rs
		}, "gitops"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, rs := tc.req()
			allowed.check(t, stampSetting(context.Background(), req))
			if got := rs.Annotations[pimv1.AnnotationChangedBy]; got != tc.want {
				t.Errorf("changed-by = %q, want %q", got, tc.want)
			}
		})
	}
}
