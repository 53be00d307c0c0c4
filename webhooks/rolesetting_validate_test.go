package webhooks

import (
	"context"
	"testing"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestSettingGuard(t *testing.T) {
	gitops := user("gitops")
	strict := func() *pimv1.RoleSetting {
		rs := setting("admin")
		rs.Spec.Activation.RequireMFA = true
		return rs
	}
	for _, tc := range []struct {
		name   string
		access *access
		req    Request[*pimv1.RoleSetting]
		want   want
	}{
		{"allows tightening without asking", &access{err: errAPI}, create(gitops, strict()), allowed},
		{"allows weakening with manage", allowing("gitops manage rolesettings"), update(gitops, strict(), setting("admin")), allowed},
		{"allows weakening with bind", allowing("gitops bind clusterroles"), update(gitops, strict(), setting("admin")), allowed},
		{"refuses weakening without either", allowing(), update(gitops, strict(), setting("admin")),
			refused("spec", "this weakens the policy of ClusterRole admin cluster-wide (activation.requireMFA turned off)")},
		{"refuses deleting a stricter setting", allowing(), remove(gitops, strict()), refused("spec", "this weakens the policy")},
		{"fails when the access review fails", &access{err: errAPI}, remove(gitops, strict()), failed("spec")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &settingGuard{handlerBase: testBase(fakeClient(), tc.access)}
			tc.want.check(t, g.validate(context.Background(), tc.req))
		})
	}
}
