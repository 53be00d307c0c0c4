package webhooks

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func admissionRequest(t *testing.T, op admissionv1.Operation, old, cur *pimv1.RoleSetting) admission.Request {
	t.Helper()
	raw := func(rs *pimv1.RoleSetting) runtime.RawExtension {
		if rs == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "1", Operation: op, Name: "view", DryRun: ptr.To(true),
		UserInfo: authenticationv1.UserInfo{Username: "dana", UID: "7", Groups: []string{"leads"}, Extra: map[string]authenticationv1.ExtraValue{"amr": {"mfa"}}},
		Object:   raw(cur), OldObject: raw(old),
	}}
}

func TestValidatingDecodesOnce(t *testing.T) {
	decoder := admission.NewDecoder(testScheme())
	old, cur := setting("view"), annotated(setting("view"), "note", "x")
	for _, tc := range []struct {
		op       admissionv1.Operation
		old, cur *pimv1.RoleSetting
	}{
		{admissionv1.Create, nil, cur},
		{admissionv1.Update, old, cur},
		{admissionv1.Delete, old, nil},
	} {
		t.Run(string(tc.op), func(t *testing.T) {
			var got Request[*pimv1.RoleSetting]
			resp := validating(decoder, func(_ context.Context, req Request[*pimv1.RoleSetting]) field.ErrorList {
				got = req
				return nil
			}).Handle(context.Background(), admissionRequest(t, tc.op, tc.old, tc.cur))
			if !resp.Allowed {
				t.Fatalf("refused: %+v", resp.Result)
			}
			if got.Operation != tc.op || got.Name != "view" || !got.DryRun || got.User.Username != "dana" || got.User.UID != "7" ||
				got.User.Groups[0] != "leads" || got.User.Extra["amr"][0] != "mfa" {
				t.Errorf("request = %+v, user %+v", got, got.User)
			}
			if (got.Old == nil) != (tc.old == nil) || (got.New == nil) != (tc.cur == nil) {
				t.Errorf("old %v, new %v; want old %v, new %v", got.Old, got.New, tc.old, tc.cur)
			}
			if got.New != nil && got.New.Annotations["note"] != "x" {
				t.Errorf("new = %+v", got.New)
			}
		})
	}
}

func TestValidatingAnswers(t *testing.T) {
	decoder := admission.NewDecoder(testScheme())
	path := annotationPath(pimv1.AnnotationDecisions)
	for _, tc := range []struct {
		name    string
		errs    field.ErrorList
		allowed bool
		code    int32
		message string
	}{
		{"admits without errors", nil, true, http.StatusOK, ""},
		{"refuses naming the field", forbidden(path, "written by kubepim alone"), false, http.StatusForbidden,
			"metadata.annotations[kubepim.io/decisions]: Forbidden: written by kubepim alone"},
		{"refuses with every error", append(forbidden(specPath, "a"), field.Forbidden(specPath.Child("b"), "b")), false, http.StatusForbidden,
			"[spec: Forbidden: a, spec.b: Forbidden: b]"},
		{"fails, never admits, when an API call failed", append(forbidden(specPath, "a"), internalError(specPath, errAPI)...), false, http.StatusInternalServerError,
			"spec: Internal error: " + errAPI.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := validating(decoder, func(context.Context, Request[*pimv1.RoleSetting]) field.ErrorList { return tc.errs }).
				Handle(context.Background(), admissionRequest(t, admissionv1.Create, nil, setting("view")))
			if resp.Allowed != tc.allowed || resp.Result.Code != tc.code || resp.Result.Message != tc.message {
				t.Errorf("response = %v %d %q; want %v %d %q", resp.Allowed, resp.Result.Code, resp.Result.Message, tc.allowed, tc.code, tc.message)
			}
			if tc.code == http.StatusForbidden {
				if resp.Result.Reason != metav1.StatusReasonForbidden || len(resp.Result.Details.Causes) != len(tc.errs) || resp.Result.Details.Causes[0].Field != tc.errs[0].Field {
					t.Errorf("result = %+v", resp.Result)
				}
			}
		})
	}
}

func TestMutatingAnswersThePatch(t *testing.T) {
	decoder := admission.NewDecoder(testScheme())
	handler := mutating(decoder, func(_ context.Context, req Request[*pimv1.RoleSetting]) field.ErrorList {
		if req.New != nil {
			setAnnotation(req.New, pimv1.AnnotationChangedBy, req.User.Username)
		}
		return nil
	})
	resp := handler.Handle(context.Background(), admissionRequest(t, admissionv1.Create, nil, setting("view")))
	if !resp.Allowed || len(resp.Patches) != 1 || resp.Patches[0].Path != "/metadata/annotations" {
		t.Errorf("response = %+v", resp)
	}
	if resp := handler.Handle(context.Background(), admissionRequest(t, admissionv1.Delete, setting("view"), nil)); !resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("delete: %+v", resp)
	}
	refusing := mutating(decoder, func(context.Context, Request[*pimv1.RoleSetting]) field.ErrorList { return forbidden(specPath, "no") })
	if resp := refusing.Handle(context.Background(), admissionRequest(t, admissionv1.Create, nil, setting("view"))); resp.Allowed || len(resp.Patches) != 0 {
		t.Errorf("refusal: %+v", resp)
	}
}

func TestUndecodableIsABadRequest(t *testing.T) {
	req := admissionRequest(t, admissionv1.Update, setting("view"), setting("view"))
	req.OldObject.Raw = []byte(`{"spec": 1}`)
	resp := validating(admission.NewDecoder(testScheme()), func(context.Context, Request[*pimv1.RoleSetting]) field.ErrorList { return nil }).
		Handle(context.Background(), req)
	if resp.Allowed || resp.Result.Code != http.StatusBadRequest {
		t.Errorf("response = %+v", resp.Result)
	}
}
