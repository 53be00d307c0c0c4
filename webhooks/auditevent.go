package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// auditGuard refuses every write to AuditEvents except the manager's own:
// the trail is written by kubepim and pruned by its retention, and by
// nobody else, cluster admins included.
type auditGuard struct {
	handlerBase
	self *selfIdentity
}

func (g *auditGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	me, err := g.self.username(ctx)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if req.UserInfo.Username == me {
		return admission.Allowed("")
	}
	return admission.Denied(fmt.Sprintf("audit events are immutable: only kubepim (%s) writes them and prunes them after their retention; %s may not %s them",
		me, req.UserInfo.Username, map[string]string{"CREATE": "create", "UPDATE": "change", "DELETE": "delete"}[string(req.Operation)]))
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
