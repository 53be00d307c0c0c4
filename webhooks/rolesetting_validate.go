package webhooks

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/authz"
	"github.com/kubepim/kubepim/internal/policy"
)

// +kubebuilder:webhook:path=/validate-kubepim-io-v1alpha1-rolesetting,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=rolesettings,verbs=create;update;delete,versions=v1alpha1,name=vrolesetting.kubepim.io,admissionReviewVersions=v1

// settingGuard refuses creating, changing or deleting a RoleSetting in a way
// that weakens its role's policy, unless the user could grant the role
// themselves (bind it, or hold its permissions) or may "manage"
// rolesettings.kubepim.io.
type settingGuard struct{ handlerBase }

func (g *settingGuard) validate(ctx context.Context, req Request[*pimv1.RoleSetting]) field.ErrorList {
	// A RoleSetting created or deleted is weighed against the defaults.
	old, updated := policy.DefaultRoleSettingSpec(), policy.DefaultRoleSettingSpec()
	var roleRef pimv1.RoleSettingRoleRef
	if req.Old != nil {
		old, roleRef = req.Old.Spec, req.Old.Spec.RoleRef
	}
	if req.New != nil {
		updated, roleRef = req.New.Spec, req.New.Spec.RoleRef
	}
	weaker := policy.Weakens(old, updated)
	if len(weaker) == 0 {
		return nil
	}
	manage, err := g.allowed(ctx, req.User, authz.Attributes{Resource: &authorizationv1.ResourceAttributes{
		Group: pimv1.GroupVersion.Group, Resource: "rolesettings", Verb: VerbManage, Name: req.Name,
	}})
	if err != nil {
		return internalError(specPath, err)
	}
	if manage {
		return nil
	}
	role := pimv1.RoleRef{Kind: roleRef.Kind, Name: roleRef.Name}
	ok, err := g.mayGrant(ctx, req.User, role, roleRef.Namespace)
	if err != nil {
		return internalError(specPath.Child("roleRef"), err)
	}
	if ok {
		return nil
	}
	return forbidden(specPath, fmt.Sprintf("this weakens the policy of %s (%s): it needs permission to bind the role, or %q on rolesettings.kubepim.io",
		policy.RoleDescription(role, roleRef.Namespace), strings.Join(weaker, "; "), VerbManage))
}
