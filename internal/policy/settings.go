package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// DefaultRoleSettingSpec is the policy of a role that has no RoleSetting. It
// mirrors the CRD's defaults, so a role with an empty RoleSetting and a role
// with none behave alike.
func DefaultRoleSettingSpec() pimv1.RoleSettingSpec {
	return pimv1.RoleSettingSpec{
		Activation: pimv1.ActivationPolicy{
			MaxDuration:          metav1.Duration{Duration: 8 * time.Hour},
			RequireJustification: ptr.To(true),
			Approval: pimv1.ApprovalPolicy{
				RequiredApprovals: 1,
				Timeout:           metav1.Duration{Duration: 24 * time.Hour},
			},
		},
		Assignment: pimv1.AssignmentPolicy{
			Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(true)},
			Active:   pimv1.ActiveAssignmentPolicy{AllowPermanent: ptr.To(true)},
		},
	}
}

// SettingRoleRef is the role a RoleSetting must name to govern a grant of
// roleRef in namespace: a ClusterRole is governed by the ClusterRole's
// setting wherever it is bound; a Role by the setting of that namespaced Role.
func SettingRoleRef(roleRef pimv1.RoleRef, namespace string) pimv1.RoleSettingRoleRef {
	if roleRef.Kind == pimv1.RoleKindRole {
		return pimv1.RoleSettingRoleRef{Kind: roleRef.Kind, Name: roleRef.Name, Namespace: namespace}
	}
	return pimv1.RoleSettingRoleRef{Kind: roleRef.Kind, Name: roleRef.Name}
}

// ErrConflictingSettings says a role has more than one RoleSetting.
type ErrConflictingSettings struct {
	Role  string
	Names []string
}

func (e *ErrConflictingSettings) Error() string {
	return fmt.Sprintf("%s is governed by more than one RoleSetting (%s); kubepim refuses to guess which applies: ask your platform team to keep one",
		e.Role, strings.Join(e.Names, ", "))
}

// EffectiveSetting picks the policy of a role from the RoleSettings that
// name it: the defaults when there is none, the one when there is one, and
// an error when there are several.
func EffectiveSetting(role string, settings []pimv1.RoleSetting) (pimv1.RoleSettingSpec, string, error) {
	live := slices.DeleteFunc(slices.Clone(settings), func(rs pimv1.RoleSetting) bool { return !rs.DeletionTimestamp.IsZero() })
	switch len(live) {
	case 0:
		return DefaultRoleSettingSpec(), "", nil
	case 1:
		return live[0].Spec, live[0].Name, nil
	}
	names := make([]string, 0, len(live))
	for _, rs := range live {
		names = append(names, rs.Name)
	}
	slices.Sort(names)
	return pimv1.RoleSettingSpec{}, "", &ErrConflictingSettings{Role: role, Names: names}
}
