// Package webhooks holds kubepim's admission webhooks. They run inside the
// manager and take every identity (requester, approver, assigner) from the
// API server's authenticated userInfo, never from what a client typed.
//
// Each kind has a file per direction (<kind>_mutate.go, <kind>_validate.go)
// with its +kubebuilder:webhook marker beside the handler. Handlers are
// typed: admission.go decodes a request once into a Request (old and new
// object, user, operation, dry-run), calls a Validator or Mutator, and
// answers its field.ErrorList as a refusal naming each field (403), or as
// a failure (500) when an API call failed; a Mutator's changes to the new
// object become the JSON patch.
package webhooks
