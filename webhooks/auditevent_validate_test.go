package webhooks

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestAuditGuard(t *testing.T) {
	const manager = "system:serviceaccount:kubepim-system:kubepim-manager"
	ev := &pimv1.AuditEvent{ObjectMeta: metav1.ObjectMeta{Name: "e1"}}
	self := func(context.Context) (string, error) { return manager, nil }
	for _, tc := range []struct {
		name string
		self func(context.Context) (string, error)
		req  Request[*pimv1.AuditEvent]
		want want
	}{
		{"allows the manager writing", self, create(user(manager), ev), allowed},
		{"allows the manager pruning", self, remove(user(manager), ev), allowed},
		{"refuses an admin creating", self, create(user("root", "system:masters"), ev),
			refused("metadata", "audit events are immutable: only kubepim ("+manager+") writes them and prunes them after their retention; root may not create them")},
		{"refuses an admin changing", self, update(user("root"), ev, ev.DeepCopy()), refused("metadata", "root may not change them")},
		{"refuses an admin deleting", self, remove(user("root"), ev), refused("metadata", "root may not delete them")},
		{"fails when the manager does not know who it is", func(context.Context) (string, error) { return "", errAPI }, create(user(manager), ev), failed("metadata")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.check(t, (&auditGuard{self: tc.self}).validate(context.Background(), tc.req))
		})
	}
}
