package webhooks

import (
	"context"
	"fmt"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// +kubebuilder:webhook:path=/validate-kubepim-io-v1alpha1-auditevent,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=auditevents,verbs=create;update;delete,versions=v1alpha1,name=vauditevent.kubepim.io,admissionReviewVersions=v1

// auditGuard refuses every write to AuditEvents except the manager's own:
// the trail is written by kubepim and pruned by its retention, and by
// nobody else, cluster admins included.
type auditGuard struct {
	// self is the manager's username.
	self func(context.Context) (string, error)
}

func (g *auditGuard) validate(ctx context.Context, req Request[*pimv1.AuditEvent]) field.ErrorList {
	me, err := g.self(ctx)
	if err != nil {
		return internalError(metadataPath, err)
	}
	if req.User.Username == me {
		return nil
	}
	return forbidden(metadataPath, fmt.Sprintf("audit events are immutable: only kubepim (%s) writes them and prunes them after their retention; %s may not %s them",
		me, req.User.Username, map[string]string{"CREATE": "create", "UPDATE": "change", "DELETE": "delete"}[string(req.Operation)]))
}

// selfIdentity asks the API server, once, who the manager is.
type selfIdentity struct {
	client client.Client
	once   sync.Mutex
	name   string
}

func (s *selfIdentity) username(ctx context.Context) (string, error) {
	s.once.Lock()
	defer s.once.Unlock()
	if s.name != "" {
		return s.name, nil
	}
	review := &authenticationv1.SelfSubjectReview{}
	if err := s.client.Create(ctx, review); err != nil {
		return "", fmt.Errorf("asking the API server who the manager is: %w", err)
	}
	s.name = review.Status.UserInfo.Username
	return s.name, nil
}
