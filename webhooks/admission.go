package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/authz"
	"github.com/kubepim/kubepim/internal/policy"
)

// Request is an admission request decoded once, into typed objects.
type Request[T client.Object] struct {
	// Operation is CREATE, UPDATE or DELETE.
	Operation admissionv1.Operation
	// Name is the object's name as the API server sent it (empty on a
	// create with generateName).
	Name string
	// SubResource is "status" on a write to the status subresource, else
	// empty.
	SubResource string
	// User is the user the API server authenticated.
	User *pimv1.UserInfo
	// DryRun is set on a server-side dry-run.
	DryRun bool
	// Old is the stored object: nil on create.
	Old T
	// New is the object as it would be stored: nil on delete. A mutator
	// changes it; the adapter answers with the JSON patch.
	New T
}

// Validator decides on a request: no errors admit it. Each refusal names
// its field; an error of type field.ErrorTypeInternal (an API call failed)
// fails the request with 500 instead, so the client may retry.
type Validator[T client.Object] func(ctx context.Context, req Request[T]) field.ErrorList

// Mutator changes req.New (the stamps kubepim writes) and may refuse as a
// Validator does.
type Mutator[T client.Object] func(ctx context.Context, req Request[T]) field.ErrorList

// object is a pointer to a kind K.
type object[K any] interface {
	*K
	client.Object
}

// validating serves v: it decodes each request and answers v's decision.
func validating[K any, T object[K]](decoder admission.Decoder, v Validator[T]) *webhook.Admission {
	return serve(decoder, v, func(admission.Request, Request[T]) admission.Response { return admission.Allowed("") })
}

// mutating serves m: it decodes each request and answers m's refusal, or
// the JSON patch from the object sent to the object m left.
func mutating[K any, T object[K]](decoder admission.Decoder, m Mutator[T]) *webhook.Admission {
	return serve(decoder, m, func(ar admission.Request, req Request[T]) admission.Response {
		if req.New == nil {
			return admission.Allowed("")
		}
		raw, err := json.Marshal(req.New)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		return admission.PatchResponseFromRaw(ar.Object.Raw, raw)
	})
}

// serve decodes each request, calls decide, and answers its errors, or
// admits with admit.
func serve[K any, T object[K]](decoder admission.Decoder, decide func(context.Context, Request[T]) field.ErrorList,
	admit func(admission.Request, Request[T]) admission.Response) *webhook.Admission {
	return &webhook.Admission{Handler: admission.HandlerFunc(func(ctx context.Context, ar admission.Request) admission.Response {
		req, err := decode[K, T](decoder, ar)
		if err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if errs := decide(ctx, req); len(errs) > 0 {
			return refuse(errs)
		}
		return admit(ar, req)
	})}
}

// decode reads the request's objects: the new one on create and update,
// the old one on update and delete.
func decode[K any, T object[K]](decoder admission.Decoder, ar admission.Request) (Request[T], error) {
	req := Request[T]{Operation: ar.Operation, Name: ar.Name, SubResource: ar.SubResource, User: authz.User(ar.UserInfo), DryRun: ptr.Deref(ar.DryRun, false)}
	if ar.Operation == admissionv1.Create || ar.Operation == admissionv1.Update {
		req.New = T(new(K))
		if err := decoder.DecodeRaw(ar.Object, req.New); err != nil {
			return req, err
		}
	}
	if ar.Operation == admissionv1.Update || ar.Operation == admissionv1.Delete {
		req.Old = T(new(K))
		if err := decoder.DecodeRaw(ar.OldObject, req.Old); err != nil {
			return req, err
		}
	}
	return req, nil
}

// refuse answers errs: 500 when one of them is internal (never admit on
// an error), else Denied (403) with the field errors as message and causes.
func refuse(errs field.ErrorList) admission.Response {
	for _, e := range errs {
		if e.Type == field.ErrorTypeInternal {
			return admission.Errored(http.StatusInternalServerError, e)
		}
	}
	resp := admission.Denied(errs.ToAggregate().Error())
	causes := make([]metav1.StatusCause, 0, len(errs))
	for _, e := range errs {
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseType(e.Type), Message: e.ErrorBody(), Field: e.Field})
	}
	resp.Result.Details = &metav1.StatusDetails{Causes: causes}
	return resp
}

// Field paths of refusals.
var (
	specPath        = field.NewPath("spec")
	metadataPath    = field.NewPath("metadata")
	annotationsPath = metadataPath.Child("annotations")
)

func annotationPath(key string) *field.Path { return annotationsPath.Key(key) }

// forbidden is one refusal.
func forbidden(path *field.Path, detail string) field.ErrorList {
	return field.ErrorList{field.Forbidden(path, detail)}
}

// internalError fails the request (500): an API call failed.
func internalError(path *field.Path, err error) field.ErrorList {
	return field.ErrorList{field.InternalError(path, err)}
}

// policyRefusals turns a policy check's errors (errors.Join) into one
// refusal each, every one on a single line.
func policyRefusals(path *field.Path, err error) field.ErrorList {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	var out field.ErrorList
	for _, e := range errs {
		out = append(out, field.Forbidden(path, strings.ReplaceAll(e.Error(), "\n", "; ")))
	}
	return out
}

// settingError refuses when a role's RoleSettings conflict, and fails (so
// the client may retry) when they could not be read.
func settingError(path *field.Path, err error) field.ErrorList {
	var conflict *policy.ErrConflictingSettings
	if errors.As(err, &conflict) {
		return forbidden(path, err.Error())
	}
	return internalError(path, err)
}
