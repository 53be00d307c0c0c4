package grant

import "fmt"

// AccessMode is how an activation's access reaches the API server
// (--access-mode; docs/authorizer.md).
type AccessMode string

const (
	// AccessModeBindings: kubepim creates a RoleBinding or
	// ClusterRoleBinding when an activation starts and deletes it when it
	// ends. Works everywhere, managed control planes included.
	AccessModeBindings AccessMode = "bindings"
	// AccessModeAuthorizer: activations get no binding; the API server asks
	// kubepim's authorization webhook, which allows a request while an
	// activation that covers it is in force at that instant. Needs the API
	// server's --authorization-config. Active RoleAssignments keep their
	// bindings in both modes: they are standing access.
	AccessModeAuthorizer AccessMode = "authorizer"
)

// ParseAccessMode reads --access-mode; empty is bindings.
func ParseAccessMode(s string) (AccessMode, error) {
	switch AccessMode(s) {
	case "", AccessModeBindings:
		return AccessModeBindings, nil
	case AccessModeAuthorizer:
		return AccessModeAuthorizer, nil
	}
	return "", fmt.Errorf("--access-mode=%q: want %s or %s", s, AccessModeBindings, AccessModeAuthorizer)
}

// BindsActivations reports whether activations are granted with bindings.
func (m AccessMode) BindsActivations() bool { return m != AccessModeAuthorizer }
