// Package lookup defines the cache indexes kubepim's controllers and
// webhooks look objects up by, so that no reconcile or admission lists
// everything.
package lookup

import (
	"context"
	"strconv"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/grant"
)

// Index names.
const (
	// RoleSettingByRole: RoleSettings by the role they govern (SettingKey).
	RoleSettingByRole = "kubepim.io/setting-role"
	// AssignmentByRole: RoleAssignments by role (RoleKey).
	AssignmentByRole = "kubepim.io/assignment-role"
	// ActivationByRole: ActivationRequests by role (RoleKey).
	ActivationByRole = "kubepim.io/activation-role"
	// ActivationByRequesterGrant: ActivationRequests by requester, role and
	// namespace (RequesterGrantKey).
	ActivationByRequesterGrant = "kubepim.io/activation-requester-grant"
	// ActivationByExtends: ActivationRequests by the request they extend.
	ActivationByExtends = "kubepim.io/activation-extends"
	// ActivationByRequester: ActivationRequests by the requester's username
	// (the authorizer's first lookup).
	ActivationByRequester = "kubepim.io/activation-requester"
	// AssignmentBySubject: RoleAssignments by subject (SubjectKey).
	AssignmentBySubject = "kubepim.io/assignment-subject"
	// NotificationByChannel: Notifications by channel name.
	NotificationByChannel = "kubepim.io/notification-channel"
	// ItemByReviewInstance: AccessReviewItems by review UID and instance
	// (ReviewInstanceKey).
	ItemByReviewInstance = "kubepim.io/item-review-instance"
)

// ReviewInstanceKey is the ItemByReviewInstance value of an instance.
func ReviewInstanceKey(reviewUID string, instance int32) string {
	return reviewUID + "/" + strconv.Itoa(int(instance))
}

// SettingKey is the RoleSettingByRole value of a role.
func SettingKey(ref pimv1.RoleSettingRoleRef) string {
	return ref.Kind + "/" + ref.Namespace + "/" + ref.Name
}

// RoleKey is the AssignmentByRole and ActivationByRole value of a role.
func RoleKey(ref pimv1.RoleRef) string { return ref.Kind + "/" + ref.Name }

// RequesterGrantKey is the ActivationByRequesterGrant value.
func RequesterGrantKey(username string, ref pimv1.RoleRef, namespace string) string {
	return username + "\x00" + RoleKey(ref) + "\x00" + namespace
}

// SubjectKey is the AssignmentBySubject value of a subject: "User/alice",
// "Group/devs", "ServiceAccount/ns/name".
func SubjectKey(s pimv1.Subject) string {
	if s.Kind == pimv1.SubjectKindServiceAccount {
		return s.Kind + "/" + s.Namespace + "/" + s.Name
	}
	return s.Kind + "/" + s.Name
}

// Setup registers every index with the manager's cache.
func Setup(ctx context.Context, indexer client.FieldIndexer) error {
	byOwner := func(obj client.Object) []string {
		if key := grant.OwnerKey(obj); key != "" {
			return []string{key}
		}
		return nil
	}
	indexes := []struct {
		obj     client.Object
		field   string
		extract client.IndexerFunc
	}{
		{&rbacv1.ClusterRoleBinding{}, grant.OwnerIndex, byOwner},
		{&rbacv1.RoleBinding{}, grant.OwnerIndex, byOwner},
		{&pimv1.RoleSetting{}, RoleSettingByRole, func(obj client.Object) []string {
			return []string{SettingKey(obj.(*pimv1.RoleSetting).Spec.RoleRef)}
		}},
		{&pimv1.RoleAssignment{}, AssignmentByRole, func(obj client.Object) []string {
			return []string{RoleKey(obj.(*pimv1.RoleAssignment).Spec.RoleRef)}
		}},
		{&pimv1.ActivationRequest{}, ActivationByRole, func(obj client.Object) []string {
			return []string{RoleKey(obj.(*pimv1.ActivationRequest).Spec.RoleRef)}
		}},
		{&pimv1.ActivationRequest{}, ActivationByRequesterGrant, func(obj client.Object) []string {
			ar := obj.(*pimv1.ActivationRequest)
			if ar.Spec.Requester == nil {
				return nil
			}
			return []string{RequesterGrantKey(ar.Spec.Requester.Username, ar.Spec.RoleRef, ar.Spec.Namespace)}
		}},
		{&pimv1.ActivationRequest{}, ActivationByRequester, func(obj client.Object) []string {
			if r := obj.(*pimv1.ActivationRequest).Spec.Requester; r != nil {
				return []string{r.Username}
			}
			return nil
		}},
		{&pimv1.RoleAssignment{}, AssignmentBySubject, func(obj client.Object) []string {
			return []string{SubjectKey(obj.(*pimv1.RoleAssignment).Spec.Subject)}
		}},
		{&pimv1.ActivationRequest{}, ActivationByExtends, func(obj client.Object) []string {
			if ext := obj.(*pimv1.ActivationRequest).Spec.Extends; ext != "" {
				return []string{ext}
			}
			return nil
		}},
		{&pimv1.Notification{}, NotificationByChannel, func(obj client.Object) []string {
			return []string{obj.(*pimv1.Notification).Spec.Channel}
		}},
		{&pimv1.AccessReviewItem{}, ItemByReviewInstance, func(obj client.Object) []string {
			item := obj.(*pimv1.AccessReviewItem)
			return []string{ReviewInstanceKey(item.Spec.ReviewUID, item.Spec.Instance)}
		}},
	}
	for _, ix := range indexes {
		if err := indexer.IndexField(ctx, ix.obj, ix.field, ix.extract); err != nil {
			return err
		}
	}
	return nil
}
