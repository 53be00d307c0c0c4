package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// VerbManage on rolesettings.kubepim.io lets a GitOps pipeline or a
// platform team weaken a role's policy without being able to bind the role.
const VerbManage = "manage"

// settingGuard refuses creating, changing or deleting a RoleSetting in a way
// that weakens its role's policy, unless the user could grant the role
// themselves (bind it, or hold its permissions) or may "manage"
// rolesettings.kubepim.io.
type settingGuard struct{ handlerBase }

func (g *settingGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	old, updated := policy.DefaultRoleSettingSpec(), policy.DefaultRoleSettingSpec()
	var roleRef pimv1.RoleSettingRoleRef
	if req.Operation != admissionv1.Create {
		rs := &pimv1.RoleSetting{}
		if err := g.decoder.DecodeRaw(req.OldObject, rs); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		old, roleRef = rs.Spec, rs.Spec.RoleRef
	}
	if req.Operation != admissionv1.Delete {
		rs := &pimv1.RoleSetting{}
		if err := g.decoder.Decode(req, rs); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		updated, roleRef = rs.Spec, rs.Spec.RoleRef
	}
	weaker := policy.Weakens(old, updated)
	if len(weaker) == 0 {
		return admission.Allowed("")
	}
	user := userInfo(req.UserInfo)
	a := access{g.direct}
	manage, err := a.allowed(ctx, user, &authorizationv1.ResourceAttributes{
		Group: pimv1.GroupVersion.Group, Resource: "rolesettings", Verb: VerbManage, Name: req.Name,
	}, nil)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if manage {
		return admission.Allowed("")
	}
	grantErr := a.mayGrant(ctx, user, pimv1.RoleRef{Kind: roleRef.Kind, Name: roleRef.Name}, roleRef.Namespace)
	if grantErr == nil {
		return admission.Allowed("")
	}
	if resp := denyOrError(grantErr); resp.Result != nil && resp.Result.Code == http.StatusInternalServerError {
		return resp
	}
	return admission.Denied(fmt.Sprintf("this weakens the policy of %s (%s): it needs permission to bind the role, or %q on rolesettings.kubepim.io",
		describeGrant(pimv1.RoleRef{Kind: roleRef.Kind, Name: roleRef.Name}, roleRef.Namespace), strings.Join(weaker, "; "), VerbManage))
}

// settingStamper records who last created or changed a RoleSetting's spec.
type settingStamper struct{ handlerBase }

func (m *settingStamper) Handle(_ context.Context, req admission.Request) admission.Response {
	rs := &pimv1.RoleSetting{}
	if err := m.decoder.Decode(req, rs); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	switch req.Operation {
	case admissionv1.Create:
		setAnnotation(rs, pimv1.AnnotationChangedBy, req.UserInfo.Username)
	case admissionv1.Update:
		old := &pimv1.RoleSetting{}
		if err := m.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		restore(rs, old, pimv1.AnnotationChangedBy)
		if !equality.Semantic.DeepEqual(old.Spec, rs.Spec) {
			setAnnotation(rs, pimv1.AnnotationChangedBy, req.UserInfo.Username)
		}
	default:
		return admission.Allowed("")
	}
	return patched(req, rs)
}
